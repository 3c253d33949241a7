// The plugin ABI's contract (runtime/reactor_abi.h), checked directly on every backend through
// the Reactor wrapper: wake-ups and timeouts, accepts (single and multishot), cancellation that
// never loses a result, the one-op-per-side rule, release_fd, validation at submit, counters,
// destruction with operations in flight, and more completions at once than the queue depth.
// Also run on fault-injecting copies: the readiness backends' (faults/fault_shim.c) and
// io_uring's (faults/busy_ring_shim.c, faults/full_sq_shim.c). (Provided buffers:
// reactor_buffers_conformance_test; connect and sends: reactor_send_conformance_test.)
#include "runtime/reactor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/plugin_loader.h"
#include "tests/reactors/reactor_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/threads.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::AcceptOne;
using testing::BlockingClient;
using testing::Listener;
using testing::ReactorTest;

// The wake-up must end a wait that is already asleep in the kernel (a wake sent before the wait
// is AWakeBeforeTheWaitIsNotLost's case).
TEST_P(ReactorTest, WakeFromAnotherThreadEndsAnUnboundedWait) {
  EXPECT_EQ(testing::OnlyTheWakeEndsAnUnboundedWait(*reactor_, [](pid_t) {}), "");
}

// The longest timeout there is waits as none does. Before, the readiness backends computed its
// deadline by a signed addition that overflowed (undefined behaviour; UBSan stops there).
TEST_P(ReactorTest, TheLongestTimeoutWaitsUntilTheWake) {
  EXPECT_EQ(testing::OnlyTheWakeEndsAnUnboundedWait(
                *reactor_, [](pid_t) {}, std::numeric_limits<int64_t>::max()),
            "");
}

// A signal that is not the wake-up (here SIGUSR2, with a handler that does nothing, as the stall
// sampler's) interrupts the kernel wait, and the backend waits on: only the wake-up ends it. The
// waker leaves the wait 50 ms to end wrongly after the signal before it sends the wake-up.
TEST_P(ReactorTest, AnotherSignalDoesNotEndAnUnboundedWait) {
  struct sigaction action {};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGUSR2, &action, &before), 0);
  std::string wrong = testing::OnlyTheWakeEndsAnUnboundedWait(*reactor_, [](pid_t waiting_thread) {
    EXPECT_EQ(syscall(SYS_tgkill, getpid(), waiting_thread, SIGUSR2), 0);
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_TRUE(testing::WaitUntilBlockedInWait(waiting_thread)) << "the wait did not go back to sleep";
  });
  EXPECT_EQ(wrong, "") << "a signal that is not the wake-up ends the wait";
  sigaction(SIGUSR2, &before, nullptr);
}

// A process forked from a thread that has waited (the plugin has its thread id) makes a
// reactor of its own, and a wake from another thread still ends its wait: the child's thread has
// an id of its own, not the forking thread's (poll and select wake the waiting thread by its id).
TEST_P(ReactorTest, AForkedChildIsWokenOnItsOwnThread) {
  Completion c[4];
  ASSERT_TRUE(reactor_->wait(c, 1'000'000).ok());
  const std::string backend = GetParam();
  std::string child = testing::RunInForkedChild(
      [&backend] {
        ReactorConfig config;
        config.one_thread = true;
        absl::StatusOr<std::unique_ptr<Reactor>> own = PluginLoader::Default().CreateReactor(backend, config);
        if (!own.ok()) {
          std::fprintf(stderr, "the child's reactor: %s\n", std::string(own.status().message()).c_str());
          return 2;
        }
        std::string wrong = testing::OnlyTheWakeEndsAnUnboundedWait(**own, [](pid_t) {});
        if (!wrong.empty()) std::fprintf(stderr, "the child's wait: %s\n", wrong.c_str());
        return wrong.empty() ? 0 : 1;
      },
      std::chrono::seconds(20));  // a wait that is never woken ends the child there
  EXPECT_EQ(child, "") << "the forked child's wait";
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

// Readiness that completes nothing does not end a wait: a receive pending on an idle
// connection (epoll reports a new descriptor writable at once, and no operation waits for
// that) leaves an unbounded wait to the wake-up and a timed one to its timeout.
TEST_P(ReactorTest, ReadinessThatCompletesNothingDoesNotEndAWait) {
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  char buf[8];
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kRecv, .fd = fd, .len = sizeof buf, .buf = buf}), 0);
  EXPECT_EQ(testing::OnlyTheWakeEndsAnUnboundedWait(*reactor_, [](pid_t) {}), "");

  BlockingClient second(l.port);
  int second_fd = AcceptOne(l);
  char second_buf[8];
  ASSERT_EQ(reactor_->submit({.user_data = 2, .opcode = IoOpcode::kRecv, .fd = second_fd, .len = sizeof second_buf,
                              .buf = second_buf}),
            0);
  Completion c[4];
  TimePoint start = Clock::now();
  absl::StatusOr<int> n = reactor_->wait(c, 50'000'000);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_GE(Clock::now() - start, milliseconds(50)) << "the timed wait ended early, with nothing completed";

  for (int id : {1, 2}) ASSERT_EQ(reactor_->cancel(id == 1 ? fd : second_fd, id), 0);
  WaitUntil([](auto& a) { return HasFinal(a, 1) && HasFinal(a, 2); });
  for (int f : {fd, second_fd}) {
    EXPECT_EQ(reactor_->release_fd(f), 0);
    ::close(f);
  }
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

// Operations that end on some descriptors leave the others' where they were: with receives on
// three, cancelling the first's and then the last's leaves the middle one's to complete. (poll
// keeps its descriptors in an array and fills a gap with the last entry: one that moved and was
// then taken out lost the middle one's entry, if its index was not kept.)
TEST_P(ReactorTest, EndingSomeOperationsLeavesTheOthersInPlace) {
  Listener l;
  std::vector<std::unique_ptr<BlockingClient>> clients;
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<BlockingClient>(l.port));
    fds.push_back(AcceptOne(l));
  }
  char buf[3][16];
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(reactor_->submit({.user_data = static_cast<uint64_t>(i + 1), .opcode = IoOpcode::kRecv, .fd = fds[i],
                                .len = sizeof buf[i], .buf = buf[i]}),
              0);
  }
  for (int i : {0, 2}) {
    ASSERT_EQ(reactor_->cancel(fds[i], static_cast<uint64_t>(i + 1)), 0);
    auto cancelled = WaitUntil([&](auto& a) { return HasFinal(a, static_cast<uint64_t>(i + 1)); });
    EXPECT_EQ(cancelled.back().result, -ECANCELED) << "descriptor " << i;
  }
  ASSERT_TRUE(clients[1]->send_all("middle"));
  auto middle = WaitUntil([](auto& a) { return HasFinal(a, 2); });
  ASSERT_EQ(middle.back().result, 6) << "the middle descriptor's receive";
  EXPECT_EQ(std::string(buf[1], 6), "middle");
  // And the last one takes a new receive.
  ASSERT_TRUE(clients[2]->send_all("last"));
  ASSERT_EQ(reactor_->submit({.user_data = 4, .opcode = IoOpcode::kRecv, .fd = fds[2], .len = sizeof buf[2],
                              .buf = buf[2]}),
            0);
  auto last = WaitUntil([](auto& a) { return HasFinal(a, 4); });
  ASSERT_EQ(last.back().result, 4);
  EXPECT_EQ(std::string(buf[2], 4), "last");
  for (int fd : fds) {
    EXPECT_EQ(reactor_->release_fd(fd), 0);
    ::close(fd);
  }
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

// kConnections accepted connections, each with a single-shot receive submitted (user_data i + 1,
// into its own 16-byte slot) and its client's message already in the socket.
class ReadyConnections {
 public:
  static constexpr int kConnections = 100;

  explicit ReadyConnections(Reactor& reactor) : buffers_(kConnections * kSlot) {
    for (int i = 0; i < kConnections; ++i) {
      clients_.push_back(std::make_unique<BlockingClient>(listener_.port));
      fds_.push_back(AcceptOne(listener_));
      EXPECT_GE(fds_.back(), 0);
      EXPECT_EQ(reactor.submit({.user_data = static_cast<uint64_t>(i + 1), .opcode = IoOpcode::kRecv,
                                .fd = fds_.back(), .len = kSlot, .buf = &buffers_[i * kSlot]}),
                0);
    }
    // A loopback send is in the peer's socket when it returns.
    for (int i = 0; i < kConnections; ++i) EXPECT_TRUE(clients_[i]->send_all(message(i)));
  }

  static std::string message(int i) { return "message " + std::to_string(i); }
  // Whether connection i's receive of `bytes` got its message (`whole`) or a start of it.
  bool holds_message_or_its_start(int i, int32_t bytes, bool whole) const {
    std::string got(&buffers_[i * kSlot], bytes);
    std::string sent = message(i);
    return whole ? got == sent : sent.compare(0, got.size(), got) == 0;
  }
  int fd(int i) const { return fds_[i]; }

  // Releases and closes every descriptor still open.
  void close_all(Reactor& reactor) {
    for (int& fd : fds_) {
      if (fd < 0) continue;
      EXPECT_EQ(reactor.release_fd(fd), 0);
      ::close(fd);
      fd = -1;
    }
  }
  void forget(int i) { fds_[i] = -1; }

 private:
  static constexpr uint32_t kSlot = 16;
  Listener listener_;
  std::vector<std::unique_ptr<BlockingClient>> clients_;
  std::vector<int> fds_;
  std::vector<char> buffers_;
};

// One wait() (up to 10 ms) for at most `max` completions (up to 256), appended to `all`;
// returns how many it handed out.
int WaitOnce(Reactor& reactor, std::vector<Completion>& all, size_t max = 256) {
  Completion batch[256];
  absl::StatusOr<int> n = reactor.wait(std::span<Completion>(batch, std::min<size_t>(max, 256)), 10'000'000);
  EXPECT_TRUE(n.ok()) << n.status();
  if (!n.ok()) return 0;
  all.insert(all.end(), batch, batch + *n);
  return *n;
}

// Many descriptors ready at once: each receive completes once, with its own data. The
// readiness backends serve a few of the descriptors one kernel wait reported per wait() call
// (the loop sends the echoes of those before the next are received, readiness_core.h), so the
// first wait() hands out fewer completions than there are ready descriptors, and the waits
// after it serve the rest without asking the kernel again.
TEST_P(ReactorTest, ManyReadyDescriptorsAreEachServedOnceAFewPerWait) {
  ReadyConnections ready(*reactor_);
  const bool counted = !reactor_->has(kCapNativeOps) && !testing::IsFaulty(GetParam());
  ReactorCounters before = reactor_->counters();
  std::vector<Completion> all;
  int first = WaitOnce(*reactor_, all);
  if (counted) {
    EXPECT_GT(first, 0);
    EXPECT_LT(first, ReadyConnections::kConnections) << "every ready descriptor served by one wait()";
  }
  std::vector<Completion> rest =
      WaitUntil([&](auto& a) { return all.size() + a.size() >= static_cast<size_t>(ReadyConnections::kConnections); });
  all.insert(all.end(), rest.begin(), rest.end());
  if (counted) {
    EXPECT_EQ(reactor_->counters().waits - before.waits, 1u) << "the kernel was asked again before every "
                                                                "descriptor it had reported was served";
  }
  std::vector<int> completions(ReadyConnections::kConnections, 0);
  for (const Completion& c : all) {
    ASSERT_GE(c.user_data, 1u);
    ASSERT_LE(c.user_data, static_cast<uint64_t>(ReadyConnections::kConnections));
    int i = static_cast<int>(c.user_data - 1);
    ++completions[i];
    ASSERT_GT(c.result, 0) << "connection " << i;
    // The fault-injecting plugins cut receives short on purpose.
    EXPECT_TRUE(ready.holds_message_or_its_start(i, c.result, !testing::IsFaulty(GetParam())));
  }
  for (int i = 0; i < ReadyConnections::kConnections; ++i) EXPECT_EQ(completions[i], 1) << "connection " << i;
  ready.close_all(*reactor_);
}

// More descriptors ready than one wait() serves, again and again: which of them come first
// changes from one kernel wait to the next, so that none is always among the last (the
// scanning backends start each walk of their sets one place further on). Over as many rounds
// as there are descriptors, each is in the first wait()'s completions at least once.
TEST_P(ReactorTest, NoReadyDescriptorIsAlwaysServedLast) {
  constexpr int kConnections = 40;  // more than a readiness wait() serves (readiness_core.h)
  Listener l;
  std::vector<std::unique_ptr<BlockingClient>> clients;
  std::vector<int> fds;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<BlockingClient>(l.port));
    fds.push_back(AcceptOne(l));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(clients.back()->send_all("x"));  // never read: readable for the whole test
  }
  std::vector<int> first_served(kConnections, 0);
  for (int round = 0; round < kConnections; ++round) {
    for (int i = 0; i < kConnections; ++i) {
      ASSERT_EQ(reactor_->submit({.user_data = static_cast<uint64_t>(i + 1), .opcode = IoOpcode::kPollReadable,
                                  .fd = fds[i]}),
                0);
    }
    std::vector<Completion> first;
    WaitOnce(*reactor_, first);
    for (const Completion& c : first) ++first_served[c.user_data - 1];
    std::vector<Completion> rest = WaitUntil([&](auto& a) { return first.size() + a.size() >= kConnections; });
    ASSERT_EQ(first.size() + rest.size(), static_cast<size_t>(kConnections)) << "round " << round;
  }
  for (int i = 0; i < kConnections; ++i) {
    EXPECT_GT(first_served[i], 0) << "descriptor " << i << " was never among the first served";
  }
  for (int fd : fds) {
    EXPECT_EQ(reactor_->release_fd(fd), 0);
    ::close(fd);
  }
}

// A descriptor released while its receive's result is not handed out yet (on the readiness
// backends the kernel's report of it still waits to be served; on io_uring its completion
// waits in the ring): the receive cancelled, the descriptor released and closed between two
// waits. Its receive ends once, cancelled or with its data, and every other descriptor is
// still served once.
TEST_P(ReactorTest, ReleasingADescriptorWhoseResultIsNotHandedOutYetLosesNothing) {
  ReadyConnections ready(*reactor_);
  std::vector<Completion> all;
  WaitOnce(*reactor_, all, 8);
  auto finals_of = [&all](uint64_t id) {
    int n = 0;
    for (const Completion& c : all) n += c.user_data == id && !c.more();
    return n;
  };
  // From the middle on: the backends serve from either end of the connections (epoll in the
  // order the data came, poll from its array's end), so a middle one is not served yet.
  int victim = -1;
  for (int k = 0; k < ReadyConnections::kConnections && victim < 0; ++k) {
    int i = (ReadyConnections::kConnections / 2 + k) % ReadyConnections::kConnections;
    if (finals_of(static_cast<uint64_t>(i + 1)) == 0) victim = i;
  }
  ASSERT_GE(victim, 0) << "a wait for 8 completions handed out all " << ReadyConnections::kConnections;
  const uint64_t victim_id = static_cast<uint64_t>(victim + 1);
  // -ENOENT: the receive has finished and its completion follows.
  int cancelled = reactor_->cancel(ready.fd(victim), victim_id);
  EXPECT_TRUE(cancelled == 0 || cancelled == -ENOENT) << cancelled;
  // The final completion may still be on its way: wait for it before releasing the descriptor.
  std::vector<Completion> more =
      WaitUntil([&](auto& a) { return HasFinal(all, victim_id) || HasFinal(a, victim_id); });
  all.insert(all.end(), more.begin(), more.end());
  ASSERT_EQ(reactor_->release_fd(ready.fd(victim)), 0);
  ::close(ready.fd(victim));
  ready.forget(victim);
  more = WaitUntil([&](auto& a) { return all.size() + a.size() >= static_cast<size_t>(ReadyConnections::kConnections); });
  all.insert(all.end(), more.begin(), more.end());
  for (int i = 0; i < ReadyConnections::kConnections; ++i) {
    EXPECT_EQ(finals_of(static_cast<uint64_t>(i + 1)), 1) << "connection " << i;
  }
  for (const Completion& c : all) {
    if (c.user_data == victim_id) {
      EXPECT_TRUE(c.result == -ECANCELED ||
                  (c.result > 0 && ready.holds_message_or_its_start(victim, c.result, !testing::IsFaulty(GetParam()))))
          << c.result;
    }
  }
  ready.close_all(*reactor_);
}

TEST_P(ReactorTest, DestroyingWithOperationsInFlightIsSafe) {
  constexpr uint32_t kSize = 256;
  std::vector<char> pool(kSize * 8);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, 8), absl::OkStatus());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  char buf[64];
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kRecv, .fd = fd, .len = sizeof buf, .buf = buf}), 0);
  ASSERT_EQ(reactor_->submit({.user_data = 2, .opcode = IoOpcode::kAccept, .flags = kOpMultishot, .fd = l.fd}), 0);
  reactor_.reset();  // ASan checks nothing touches the buffers afterwards
  ::close(fd);
}

// Connections a multishot accept took but wait() had no room to hand out are the backend's:
// destroying it closes them (the fixture's TearDown counts this process's descriptors), and
// their clients see the end of the stream (or, any the backend had not taken, a reset once
// the listener closes) instead of waiting on a connection nobody holds.
TEST_P(ReactorTest, DestroyingClosesConnectionsAcceptedButNotHandedOut) {
  auto l = std::make_unique<Listener>();
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(std::make_unique<BlockingClient>(l->port));
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .flags = kOpMultishot, .fd = l->fd}), 0);
  Completion one[1];
  int handed_out = 0;
  for (int i = 0; i < 100 && handed_out == 0; ++i) {
    absl::StatusOr<int> n = reactor_->wait(one, 100'000'000);
    ASSERT_TRUE(n.ok()) << n.status();
    handed_out = *n;
  }
  ASSERT_EQ(handed_out, 1);
  ASSERT_GE(one[0].result, 0);
  ::close(one[0].result);
  reactor_.reset();
  l.reset();
  for (auto& client : clients) EXPECT_EQ(client->recv_until_eof(), "");
}

// More completions at once than the reactor was made for: a multishot accept of 100 waiting
// connections on a reactor of queue depth 8 (io_uring's smallest ring: its CQ ring holds 32,
// the kernel keeps the rest on its overflow list). Every unbounded wait hands out some of them,
// never none (reactor_abi.h: -1 waits until something completes or wake() is called), until
// all have come. A watchdog wakes a wait that would hang for completions lost.
TEST_P(ReactorTest, MoreCompletionsAtOnceThanTheQueueDepthAllCome) {
  ReactorConfig config;
  config.queue_depth = 8;
  config.one_thread = true;
  auto made = PluginLoader::Default().CreateReactor(GetParam(), config);
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<Reactor> small = *std::move(made);
  constexpr size_t kConnections = 100;
  Listener l;
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (size_t i = 0; i < kConnections; ++i) clients.push_back(std::make_unique<BlockingClient>(l.port));
  ASSERT_EQ(small->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .flags = kOpMultishot, .fd = l.fd}), 0);
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 3000 && !done; ++i) std::this_thread::sleep_for(milliseconds(10));
    small->wake();
  });
  std::vector<int> accepted;
  Completion batch[4];
  while (accepted.size() < kConnections) {
    absl::StatusOr<int> n = small->wait(batch, -1);
    EXPECT_TRUE(n.ok()) << n.status();
    if (!n.ok() || *n == 0) {
      ADD_FAILURE() << "an unbounded wait returned nothing with " << kConnections - accepted.size()
                    << " connections still to come";
      break;
    }
    for (const Completion& c : std::span(batch, *n)) {
      EXPECT_TRUE(c.more());
      EXPECT_GE(c.result, 0);
      if (c.result >= 0) accepted.push_back(c.result);
    }
  }
  done = true;
  watchdog.join();
  for (int fd : accepted) ::close(fd);
  small.reset();
}

// More operations submitted before the first wait() than the queue depth holds (io_uring: the
// one-thread ring is enabled by that wait and cannot be entered to flush its SQ before it, and
// under RLIMIT_MEMLOCK create() makes the ring small): every submit is taken, each receive
// completes once with its data, and one cancelled before that wait ends cancelled. A reactor
// destroyed with such operations, never having waited, ends them quietly.
TEST_P(ReactorTest, MoreOperationsBeforeTheFirstWaitThanTheQueueDepthAreAllTaken) {
  ReactorConfig config;
  config.queue_depth = 8;
  config.one_thread = true;
  auto made = PluginLoader::Default().CreateReactor(GetParam(), config);
  ASSERT_TRUE(made.ok()) << made.status();
  reactor_ = *std::move(made);
  ReadyConnections ready(*reactor_);
  Listener l;
  BlockingClient quiet_client(l.port);
  int quiet = AcceptOne(l);
  char quiet_buf[16];
  constexpr uint64_t kQuiet = ReadyConnections::kConnections + 1;
  ASSERT_EQ(
      reactor_->submit(
          {.user_data = kQuiet, .opcode = IoOpcode::kRecv, .fd = quiet, .len = sizeof quiet_buf, .buf = quiet_buf}),
      0);
  ASSERT_EQ(reactor_->cancel(quiet, kQuiet), 0);
  std::vector<Completion> all = WaitUntil([](auto& a) {
    size_t finals = 0;
    for (const Completion& c : a) finals += !c.more();
    return finals >= kQuiet;
  });
  std::vector<int> completions(kQuiet, 0);
  for (const Completion& c : all) {
    ASSERT_GE(c.user_data, 1u);
    ASSERT_LE(c.user_data, kQuiet);
    int i = static_cast<int>(c.user_data - 1);
    ++completions[i];
    if (c.user_data == kQuiet) {
      EXPECT_EQ(c.result, -ECANCELED) << "the receive cancelled before the first wait";
      continue;
    }
    ASSERT_GT(c.result, 0) << "connection " << i;
    EXPECT_TRUE(ready.holds_message_or_its_start(i, c.result, !testing::IsFaulty(GetParam())));
  }
  for (int i = 0; i < static_cast<int>(kQuiet); ++i) EXPECT_EQ(completions[i], 1) << "operation " << i + 1;
  ready.close_all(*reactor_);
  EXPECT_EQ(reactor_->release_fd(quiet), 0);
  ::close(quiet);

  auto unwaited = PluginLoader::Default().CreateReactor(GetParam(), config);
  ASSERT_TRUE(unwaited.ok()) << unwaited.status();
  std::vector<std::unique_ptr<BlockingClient>> clients;
  std::vector<int> fds;
  char bufs[20][16];
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<BlockingClient>(l.port));
    fds.push_back(AcceptOne(l));
    ASSERT_EQ((*unwaited)->submit({.user_data = static_cast<uint64_t>(i + 1),
                                   .opcode = IoOpcode::kRecv,
                                   .fd = fds.back(),
                                   .len = sizeof bufs[i],
                                   .buf = bufs[i]}),
              0)
        << "receive " << i;
  }
  unwaited->reset();
  for (int fd : fds) ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, ReactorTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

// The copy of io_uring in tests/reactors/faults/`directory`.
std::string FaultyIoUring(const std::string& directory) {
  const char* root = std::getenv("TEST_SRCDIR");
  return std::string(root != nullptr ? root : ".") + "/brrr/tests/reactors/faults/" + directory +
         "/libbrrr_reactor_io_uring.so";
}

// And on a copy of io_uring whose kernel refuses a wait now and then with EBUSY or EAGAIN
// (tests/reactors/faults/busy_ring_shim.c): neither ends a wait before its time.
INSTANTIATE_TEST_SUITE_P(BusyRing, ReactorTest, ::testing::Values(FaultyIoUring("io_uring")),
                         testing::FaultyBackendName());
// And on one whose kernel takes no flush of a full submission queue (faults/full_sq_shim.c):
// what finds no SQE, a submit's request among them, is owed to the next wait, not refused.
INSTANTIATE_TEST_SUITE_P(FullSq, ReactorTest, ::testing::Values(FaultyIoUring("full_sq")),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
