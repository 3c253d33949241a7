#include "tests/testing/drain_traffic.h"

#include <signal.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "gtest/gtest.h"

namespace brrr::testing {

std::string EchoAcrossASigterm(Process& server, BlockingClient& client, const std::string& payload) {
  constexpr size_t kFirst = 1000;
  std::string echoed;
  EXPECT_TRUE(client.send_all(payload.substr(0, kFirst)));
  echoed = client.recv_exact(kFirst);
  EXPECT_EQ(echoed, payload.substr(0, kFirst));
  std::thread reader([&] { echoed += client.recv_until_eof(); });
  const size_t half = payload.size() / 2;
  EXPECT_TRUE(client.send_all(payload.substr(kFirst, half - kFirst)));
  server.Signal(SIGTERM);
  EXPECT_TRUE(server.WaitForOutput("draining"));
  // The open connection keeps being served while the server drains.
  EXPECT_TRUE(client.send_all(payload.substr(half))) << std::strerror(errno);
  client.shutdown_write();
  reader.join();
  return echoed;
}

}  // namespace brrr::testing
