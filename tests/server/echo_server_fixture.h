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

  // The server's open descriptors once the count has settled (the same for half a second, at
  // most 10 s): listening comes before the rest of its start (under a sanitizer, a descriptor
  // or two it opens while starting may still be open at first).
  static int SettledOpenFds(const Process& p) {
    int fds = p.OpenFds();
    int same_readings = 0;
    auto settle_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (same_readings < 25 && std::chrono::steady_clock::now() < settle_by) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      int now = p.OpenFds();
      same_readings = now == fds ? same_readings + 1 : 0;
      fds = now;
    }
    return fds;
  }

  // Waits (at most `timeout`) until the server has `want` descriptors open; returns the count
  // it last saw. The server closes its side of a connection as it notices the client's close.
  static int WaitForOpenFds(const Process& p, int want, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    auto give_up = std::chrono::steady_clock::now() + timeout;
    int fds = p.OpenFds();
    while (fds != want && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      fds = p.OpenFds();
    }
    return fds;
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
