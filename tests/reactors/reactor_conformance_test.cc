// The plugin ABI's contract (runtime/reactor_abi.h), checked directly on every backend through
// the Reactor wrapper: wake-ups and timeouts, accepts (single and multishot), cancellation that
// never loses a result, the one-op-per-side rule, release_fd, validation at submit, counters,
// and destruction with operations in flight. (Provided buffers: reactor_buffers_conformance_test;
// connect and sends: reactor_send_conformance_test.)
#include "runtime/reactor.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "tests/reactors/reactor_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/threads.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::AcceptOne;
using testing::BlockingClient;
using testing::Listener;
using testing::ReactorTest;

// The wake-up must end a wait that is already asleep in the kernel: the waker waits until /proc
// shows this thread blocked in the backend's wait system call (a wake sent before the wait is
// AWakeBeforeTheWaitIsNotLost's case), and the wait must not end before the wake was sent.
TEST_P(ReactorTest, WakeFromAnotherThreadEndsAnUnboundedWait) {
  pid_t waiting_thread = testing::CurrentThreadId();
  std::atomic<bool> wake_sent{false};
  std::thread waker([&] {
    EXPECT_TRUE(testing::WaitUntilBlockedInWait(waiting_thread)) << "the wait never blocked";
    wake_sent = true;
    reactor_->wake();
  });
  Completion c[4];
  absl::StatusOr<int> n = reactor_->wait(c, -1);
  bool woken_by_the_wake = wake_sent.load();
  waker.join();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_TRUE(woken_by_the_wake) << "the unbounded wait returned before anyone woke it";
}

TEST_P(ReactorTest, AWakeBeforeTheWaitIsNotLost) {
  reactor_->wake();
  Completion c[4];
  absl::StatusOr<int> n = reactor_->wait(c, -1);  // returns at once
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
}

// A lower bound on the clock the backend's timeout runs on: load can only make the wait longer.
TEST_P(ReactorTest, ATimedWaitReturnsNoEarlierThanItsTimeout) {
  Completion c[4];
  TimePoint start = Clock::now();
  absl::StatusOr<int> n = reactor_->wait(c, 5'000'000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  EXPECT_GE(Clock::now() - start, milliseconds(5));
}

TEST_P(ReactorTest, SingleShotAccept) {
  Listener l;
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .fd = l.fd}), 0);
  BlockingClient client(l.port);
  auto all = WaitUntil([](auto& a) { return HasFinal(a, 1); });
  ASSERT_EQ(all.size(), 1u);
  EXPECT_FALSE(all[0].more());
  ASSERT_GE(all[0].result, 0);
  EXPECT_TRUE(::fcntl(all[0].result, F_GETFL) & O_NONBLOCK) << "accepted sockets are non-blocking";
  EXPECT_TRUE(::fcntl(all[0].result, F_GETFD) & FD_CLOEXEC);
  ::close(all[0].result);
}

TEST_P(ReactorTest, MultishotAcceptDeliversEveryConnectionUntilCancelled) {
  Listener l;
  ASSERT_EQ(reactor_->submit({.user_data = 9, .opcode = IoOpcode::kAccept, .flags = kOpMultishot, .fd = l.fd}), 0);
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(std::make_unique<BlockingClient>(l.port));
  auto all = WaitUntil([](auto& a) { return a.size() >= 5; });
  for (const Completion& c : all) {
    EXPECT_EQ(c.user_data, 9u);
    EXPECT_TRUE(c.more()) << "a multishot accept stays armed";
    EXPECT_GE(c.result, 0);
    ::close(c.result);
  }
  ASSERT_EQ(reactor_->cancel(l.fd, 9), 0);
  auto rest = WaitUntil([](auto& a) { return HasFinal(a, 9); });
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].result, -ECANCELED);
  EXPECT_FALSE(rest[0].more());
}

TEST_P(ReactorTest, OneOperationPerSideAndDescriptor) {
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  char buf[16];
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kRecv, .fd = fd, .len = sizeof buf, .buf = buf}), 0);
  EXPECT_EQ(reactor_->submit({.user_data = 2, .opcode = IoOpcode::kPollReadable, .fd = fd}), -EBUSY);
  EXPECT_EQ(reactor_->submit({.user_data = 3, .opcode = IoOpcode::kRecv, .fd = fd, .len = sizeof buf, .buf = buf}), -EBUSY);
  // The write side is independent.
  ASSERT_EQ(reactor_->submit({.user_data = 4, .opcode = IoOpcode::kPollWritable, .fd = fd}), 0);
  EXPECT_EQ(reactor_->release_fd(fd), -EBUSY) << "operations are in flight";
  auto w = WaitUntil([](auto& a) { return HasFinal(a, 4); });
  EXPECT_EQ(w.back().result, 0);
  ASSERT_EQ(reactor_->cancel(fd, 1), 0);
  auto r = WaitUntil([](auto& a) { return HasFinal(a, 1); });
  EXPECT_EQ(r.back().result, -ECANCELED);
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

TEST_P(ReactorTest, CancellingNeverLosesAResult) {
  // Whether the cancel wins or the recv does, the byte is delivered exactly once.
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  char buf[8];
  for (int round = 0; round < 20; ++round) {
    uint64_t id = 100 + round;
    ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kRecv, .fd = fd, .len = 1, .buf = buf}), 0);
    ASSERT_TRUE(client.send_all(std::string(1, static_cast<char>('a' + round))));
    if (round % 2 == 0) std::this_thread::sleep_for(milliseconds(1));
    int rc = reactor_->cancel(fd, id);
    EXPECT_TRUE(rc == 0 || rc == -ENOENT) << rc;
    auto all = WaitUntil([&](auto& a) { return HasFinal(a, id); });
    const Completion& last = all.back();
    if (last.result == 1) {
      EXPECT_EQ(buf[0], 'a' + round);
    } else {
      ASSERT_EQ(last.result, -ECANCELED);
      // Not consumed: the byte is still in the socket.
      ASSERT_EQ(reactor_->submit({.user_data = id + 1000, .opcode = IoOpcode::kRecv, .fd = fd, .len = 1, .buf = buf}), 0);
      auto again = WaitUntil([&](auto& a) { return HasFinal(a, id + 1000); });
      ASSERT_EQ(again.back().result, 1);
      EXPECT_EQ(buf[0], 'a' + round);
    }
  }
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

TEST_P(ReactorTest, CancellingTwiceOrUnknownOperations) {
  Listener l;
  ASSERT_EQ(reactor_->submit({.user_data = 5, .opcode = IoOpcode::kAccept, .fd = l.fd}), 0);
  EXPECT_EQ(reactor_->cancel(l.fd, 77), -ENOENT);
  ASSERT_EQ(reactor_->cancel(l.fd, 5), 0);
  int second = reactor_->cancel(l.fd, 5);
  EXPECT_TRUE(second == 0 || second == -ENOENT) << second;
  auto all = WaitUntil([](auto& a) { return HasFinal(a, 5); });
  int finals = 0;
  for (const Completion& c : all) finals += c.user_data == 5 && !c.more();
  EXPECT_EQ(finals, 1) << "exactly one final completion per operation";
  // Nothing else arrives for it.
  Completion extra[4];
  absl::StatusOr<int> n = reactor_->wait(extra, 20'000'000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(reactor_->release_fd(l.fd), 0);
}

TEST_P(ReactorTest, InvalidOperationsAreRefusedAtSubmit) {
  Listener l;
  char buf[4];
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = static_cast<IoOpcode>(99), .fd = l.fd}), -EINVAL);
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kRecv, .flags = kOpMultishot, .fd = l.fd,
                              .len = sizeof buf, .buf = buf}),
            -EINVAL)
      << "multishot recv needs provided buffers";
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kRecv, .flags = kOpBufferSelect, .fd = l.fd}),
            -ENOBUFS)
      << "no pool provided yet";
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kSend, .flags = kOpMultishot, .fd = l.fd,
                              .len = sizeof buf, .buf = buf}),
            -EINVAL);
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .fd = -1}), -EBADF);
  EXPECT_EQ(reactor_->release_fd(l.fd), 0);
}

TEST_P(ReactorTest, CountersMove) {
  ReactorCounters before = reactor_->counters();
  Listener l;
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .fd = l.fd}), 0);
  BlockingClient client(l.port);
  auto all = WaitUntil([](auto& a) { return HasFinal(a, 1); });
  ::close(all.back().result);
  ReactorCounters after = reactor_->counters();
  EXPECT_EQ(after.submitted, before.submitted + 1);
  EXPECT_EQ(after.completed, before.completed + 1);
  EXPECT_GT(after.waits, before.waits);
  EXPECT_GT(after.syscalls, before.syscalls);
  EXPECT_EQ(reactor_->release_fd(l.fd), 0);
}

TEST_P(ReactorTest, DestroyingWithOperationsInFlightIsSafe) {
  constexpr uint32_t kSize = 256;
  std::vector<char> pool(kSize * 8);
  ASSERT_TRUE(reactor_->provide_buffers(pool.data(), kSize, 8).ok());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  char buf[64];
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kRecv, .fd = fd, .len = sizeof buf, .buf = buf}), 0);
  ASSERT_EQ(reactor_->submit({.user_data = 2, .opcode = IoOpcode::kAccept, .flags = kOpMultishot, .fd = l.fd}), 0);
  reactor_.reset();  // ASan checks nothing touches the buffers afterwards
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, ReactorTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
