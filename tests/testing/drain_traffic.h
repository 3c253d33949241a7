// drain_traffic.h: a client's traffic across the SIGTERM that starts a server's drain, for the
// tests that check a drain loses no byte of an open connection (every backend, and every faulty
// copy of one).
//
//   std::string payload = testing::RandomBytes(4 << 20, 8);
//   std::string echoed = testing::EchoAcrossASigterm(*server, client, payload);
//   EXPECT_TRUE(echoed == payload);
#ifndef BRRR_TESTS_TESTING_DRAIN_TRAFFIC_H_
#define BRRR_TESTS_TESTING_DRAIN_TRAFFIC_H_

#include <string>

#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr::testing {

// Sends `payload` (over 1,000 bytes) on `client`, a connection to `server`, and returns what
// comes back until the server's end of stream: the first 1,000 bytes are echoed before anything
// else (so the connection is the server's, not one in its listener's backlog), half the payload
// is sent before SIGTERM and the rest once the server says it is draining, then the client
// shuts its write side. A reader thread takes the echo meanwhile, so neither side waits on
// the other's buffers. Each step that fails is a test failure (EXPECT).
std::string EchoAcrossASigterm(Process& server, BlockingClient& client, const std::string& payload);

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_DRAIN_TRAFFIC_H_
