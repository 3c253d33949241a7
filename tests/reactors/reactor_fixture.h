// reactor_fixture.h: one backend's Reactor, created through the plugin loader and driven by
// hand, for the conformance tests of the plugin ABI (runtime/reactor_abi.h) that every backend
// runs: a parameterised fixture whose parameter is the backend's name. Skips a backend that
// cannot start here; checks that no descriptor leaked.
//
//   TEST_P(ReactorTest, Foo) {
//     Listener l;                                    // 127.0.0.1, a port the kernel chose
//     ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .fd = l.fd}), 0);
//     BlockingClient client(l.port);
//     auto all = WaitUntil([](auto& a) { return HasFinal(a, 1); });
//   }
//   INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest, ::testing::ValuesIn(testing::AllBackends()),
//                            testing::BackendName());
//
// Threading: the reactor is the test thread's; another thread may only call wake(). So it is
// made with ReactorConfig::one_thread, as the server's loops are (on io_uring the one-thread
// ring, unless BRRR_IO_URING_DEFER_TASKRUN=0).
// Ownership: the fixture owns the reactor; a Listener owns its descriptor.
#ifndef BRRR_TESTS_REACTORS_REACTOR_FIXTURE_H_
#define BRRR_TESTS_REACTORS_REACTOR_FIXTURE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/plugin_loader.h"
#include "runtime/reactor.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/threads.h"

namespace brrr::testing {

// A listening socket on 127.0.0.1, port chosen by the kernel.
struct Listener {
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 128);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd); }
  int fd;
  uint16_t port;
};

// Accepts one connection synchronously (the test's server side), non-blocking.
inline int AcceptOne(const Listener& l) {
  for (int i = 0; i < 10000; ++i) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return -1;
}

// Waits without a limit (or with `timeout_ns`, one too long to end first) on `reactor` while
// another thread, once /proc shows the wait asleep in
// the backend's wait system call, runs `before_wake` (given the waiting thread) and then wakes
// the reactor. Returns what went wrong, or "" when the wait ended with nothing completed and not
// before the wake-up was sent. A result rather than assertions, so that a death test's child
// process (wake_signal_test) can check it too.
inline std::string OnlyTheWakeEndsAnUnboundedWait(Reactor& reactor, const std::function<void(pid_t)>& before_wake,
                                                  int64_t timeout_ns = -1) {
  pid_t waiting_thread = CurrentThreadId();
  std::atomic<bool> wake_sent{false};
  std::atomic<bool> blocked{false};
  std::thread waker([&] {
    blocked = WaitUntilBlockedInWait(waiting_thread);
    before_wake(waiting_thread);
    wake_sent = true;
    reactor.wake();
  });
  Completion c[4];
  absl::StatusOr<int> n = reactor.wait(c, timeout_ns);
  bool woken_by_the_wake = wake_sent.load();
  waker.join();
  if (!blocked.load()) return "the wait never blocked";
  if (!n.ok()) return std::string(n.status().message());
  if (*n != 0) return "the wait ended with " + std::to_string(*n) + " completions, not 0";
  if (!woken_by_the_wake) return "the unbounded wait returned before the wake-up was sent";
  return "";
}

// The backend GetParam()'s reactor, with waits that collect completions (bounded: 30 s).
class ReactorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fds_before_ = CountOpenFds();
    BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
    ReactorConfig config;
    config.one_thread = true;
    // io_uring's own default, a quarter of the runtime's: rings pin memory against
    // RLIMIT_MEMLOCK (8 MiB on Debian, shared by every process of the user), and four test
    // processes at once make and close them (the kernel frees a closed ring's share later).
    config.queue_depth = 256;
    auto r = PluginLoader::Default().CreateReactor(GetParam(), config);
    ASSERT_TRUE(r.ok()) << r.status();
    reactor_ = *std::move(r);
  }
  void TearDown() override {
    reactor_.reset();
    if (!IsSkipped()) {
      EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptors leaked";
    }
  }

  // Waits (bounded: 30 s) until `done` says so, collecting every completion.
  std::vector<Completion> WaitUntil(const std::function<bool(const std::vector<Completion>&)>& done) {
    std::vector<Completion> all;
    TimePoint give_up = Clock::now() + std::chrono::seconds(30);
    Completion batch[64];
    while (!done(all) && Clock::now() < give_up) {
      absl::StatusOr<int> n = reactor_->wait(batch, 10'000'000);
      EXPECT_TRUE(n.ok()) << n.status();
      if (!n.ok()) break;
      all.insert(all.end(), batch, batch + *n);
    }
    EXPECT_TRUE(done(all)) << "timed out waiting for completions";
    return all;
  }

  // One wait() that does not block; its completions are dropped. How many it handed out, or
  // -1 (a test failure) when it failed.
  int WaitWithoutBlocking() {
    Completion batch[64];
    absl::StatusOr<int> n = reactor_->wait(batch, 0);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : -1;
  }

  // Sends `text` on fd with kSends (as user_data id) and waits until it has all gone. A send
  // may be partial (reactor_abi.h; the fault-injecting plugins make some so): the rest goes in
  // another kSend, as the runtime's Sender does.
  void SendAll(int fd, const std::string& text, uint64_t id) {
    size_t sent = 0;
    while (sent < text.size()) {
      ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kSend, .fd = fd,
                                  .len = static_cast<uint32_t>(text.size() - sent),
                                  .buf = const_cast<char*>(text.data() + sent)}),
                0);
      auto all = WaitUntil([&](auto& a) { return HasFinal(a, id); });
      ASSERT_GT(all.back().result, 0) << "the send failed or moved nothing";
      sent += static_cast<size_t>(all.back().result);
    }
    ASSERT_EQ(sent, text.size());
  }

  static bool HasFinal(const std::vector<Completion>& all, uint64_t user_data) {
    for (const Completion& c : all) {
      if (c.user_data == user_data && !c.more()) return true;
    }
    return false;
  }

  std::unique_ptr<Reactor> reactor_;
  int fds_before_ = -1;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_REACTORS_REACTOR_FIXTURE_H_
