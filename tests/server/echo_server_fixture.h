// echo_server_fixture.h: the real brrr-echo binary as a child process, started on each backend
// (a parameterised test: one run per backend that starts here), for the echo server tests.
//
//   TEST_P(EchoServerTest, Foo) {
//     auto server = Start({"--loops=2"});   // brrr-echo --backend=<param> --port=0 --loops=2
//     EXPECT_EQ(EchoOf("hello"), "hello");  // a client on port_, the echo read back
//     EXPECT_EQ(Stop(*server), 0);          // SIGTERM, then its exit code
//   }
//   INSTANTIATE_TEST_SUITE_P(Backends, EchoServerTest, ::testing::ValuesIn(testing::AllBackends()),
//                            testing::BackendName());
//
// Threading: the test's thread; EchoOf writes from a thread of its own while it reads.
// Ownership: the test owns each server Start returns; port_ is the last one's.
#ifndef BRRR_TESTS_SERVER_ECHO_SERVER_FIXTURE_H_
#define BRRR_TESTS_SERVER_ECHO_SERVER_FIXTURE_H_

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr::testing {

// The brrr-echo binary in the test's runfiles.
inline std::string EchoBinary() { return Runfile("server/brrr-echo/brrr-echo"); }

// brrr-echo on the backend GetParam() (a test may start several); skipped where that backend
// cannot start.
class EchoServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  }

  // Starts brrr-echo on this backend and a free port.
  std::unique_ptr<Process> Start(std::vector<std::string> args = {}, ProcessOptions options = {}) {
    args.insert(args.begin(), {"--backend=" + GetParam(), "--port=0"});
    auto p = std::make_unique<Process>(EchoBinary(), args, options);
    port_ = p->ListeningPort();
    EXPECT_NE(port_, 0) << "stdout: " << p->out() << "\nstderr: " << p->err();
    return p;
  }

  // SIGTERM, then the exit code (bounded).
  static int Stop(Process& p) {
    p.Signal(SIGTERM);
    std::optional<int> code = p.Wait(std::chrono::seconds(30));
    EXPECT_TRUE(code.has_value()) << "the server did not exit after SIGTERM";
    return code.value_or(-1);
  }

  // Sends `payload` and reads the echo concurrently.
  std::string EchoOf(const std::string& payload) {
    BlockingClient c(port_);
    std::thread writer([&] {
      EXPECT_TRUE(c.send_all(payload));
      c.shutdown_write();
    });
    std::string echoed = c.recv_until_eof();
    writer.join();
    return echoed;
  }

  uint16_t port_ = 0;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_SERVER_ECHO_SERVER_FIXTURE_H_
