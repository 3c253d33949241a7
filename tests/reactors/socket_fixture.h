// socket_fixture.h: one event loop on a backend, driving brrr's async sockets, for the socket
// conformance tests every backend runs (a parameterised fixture whose parameter is the
// backend's name), and the small coroutines those tests serve and wait with. Skips a backend
// that cannot start here; checks that no descriptor leaked.
//
//   TEST_P(SocketTest, Foo) {
//     Socket listener = Listen();
//     auto main_task = [&]() -> Task<> { co_await ServeEcho(listener, 1); };
//     std::thread client([&] { EXPECT_EQ(EchoThroughBlockingClient(PortOf(listener), "x"), "x"); });
//     Run(main_task());  // bounded: 60 s
//     client.join();
//   }
//
// Threading: the loop runs on the test's thread, inside Run. Ownership: the fixture owns the
// loop (and a manual clock that outlives it); the coroutines borrow what they are given.
#ifndef BRRR_TESTS_REACTORS_SOCKET_FIXTURE_H_
#define BRRR_TESTS_REACTORS_SOCKET_FIXTURE_H_

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/manual_clock.h"
#include "runtime/socket.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr::testing {

// An event loop on the backend GetParam().
class SocketTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    RaiseFdLimit(8192);
    fds_before_ = CountOpenFds();
    BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
    loop_ = NewLoop(GetParam());
    ASSERT_NE(loop_, nullptr);
  }

  void TearDown() override {
    loop_.reset();
    if (!IsSkipped()) {
      EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptors leaked";
    }
  }

  // Runs `task` on the loop, failing the test (instead of hanging) after 60 s.
  template <typename T>
  T Run(Task<T> task) {
    auto bounded = run_until_complete(*loop_, wait_for(std::move(task), std::chrono::seconds(60)));
    if constexpr (std::is_void_v<T>) {
      EXPECT_TRUE(bounded.ok()) << bounded;
    } else if constexpr (std::is_same_v<WaitResult<T>, T>) {
      return bounded;  // a Status or a StatusOr: the 60 s limit, if it came, is in it
    } else {
      EXPECT_TRUE(bounded.ok()) << bounded.status();
      if (!bounded.ok()) return T{};
      return *std::move(bounded);
    }
  }

  Socket Listen(int family = AF_INET) {
    auto s = Socket::Listen(*loop_, SocketAddress::Loopback(0, family));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : Socket();
  }

  static uint16_t PortOf(const Socket& s) { return s.local_address()->port(); }

  ManualClock clock_;  // for tests in virtual time; declared first: it must outlive the loop
  std::unique_ptr<EventLoop> loop_;
  int fds_before_ = -1;
};

// Echoes until the peer closes its side, then closes.
inline Task<> EchoUntilEof(Socket s) {
  std::vector<char> buf(65536);
  for (;;) {
    absl::StatusOr<size_t> n = co_await s.recv(buf.data(), buf.size());
    if (!n.ok() || *n == 0) break;
    if (!(co_await s.send_all(buf.data(), *n)).ok()) break;
  }
}

// Accepts `count` connections and echoes on each.
inline Task<> ServeEcho(Socket& listener, int count) {
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<Socket> conn = co_await listener.accept();
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) co_return;
    create_task(EchoUntilEof(*std::move(conn)), "echo");
  }
}

// Keeps the loop serving until another thread raises `flag`.
inline Task<> WaitUntil(const std::atomic<bool>& flag) {
  while (!flag.load()) co_await sleep(std::chrono::milliseconds(1));
}

// Keeps the loop running until `holds` does (the event itself, not a guess at how long it
// takes); returns whether it did within 30,000 turns of at least 1 ms each.
inline Task<bool> Eventually(const std::function<bool()>& holds) {
  for (int i = 0; i < 30000 && !holds(); ++i) co_await sleep(std::chrono::milliseconds(1));
  co_return holds();
}

// Sends `payload` from one thread while reading the echo in another; returns what came back.
inline std::string EchoThroughBlockingClient(uint16_t port, const std::string& payload) {
  BlockingClient client(port);
  std::thread writer([&] {
    EXPECT_TRUE(client.send_all(payload));
    client.shutdown_write();
  });
  std::string echoed = client.recv_until_eof();
  writer.join();
  return echoed;
}

}  // namespace brrr::testing

#endif  // BRRR_TESTS_REACTORS_SOCKET_FIXTURE_H_
