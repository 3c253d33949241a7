// The plugin ABI's contract (runtime/reactor_abi.h), checked directly on every backend through
// the Reactor wrapper: wake-ups, timeouts, multishot accept and recv with provided buffers,
// cancellation that never loses a result, the one-op-per-side rule, release_fd, validation.
#include "runtime/reactor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/plugin_loader.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/threads.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::BlockingClient;

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
int AcceptOne(const Listener& l) {
  for (int i = 0; i < 10000; ++i) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return -1;
}

class ReactorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fds_before_ = testing::CountOpenFds();
    BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
    auto r = PluginLoader::Default().CreateReactor(GetParam());
    ASSERT_TRUE(r.ok()) << r.status();
    reactor_ = *std::move(r);
  }
  void TearDown() override {
    reactor_.reset();
    if (!IsSkipped()) {
      EXPECT_EQ(testing::CountOpenFds(), fds_before_) << "descriptors leaked";
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

  static bool HasFinal(const std::vector<Completion>& all, uint64_t user_data) {
    for (const Completion& c : all) {
      if (c.user_data == user_data && !c.more()) return true;
    }
    return false;
  }

  std::unique_ptr<Reactor> reactor_;
  int fds_before_ = -1;
};

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

TEST_P(ReactorTest, MultishotRecvWithProvidedBuffersUntilEndOfStream) {
  constexpr uint32_t kSize = 1024;
  constexpr uint32_t kCount = 16;
  std::vector<char> pool(kSize * kCount);
  ASSERT_TRUE(reactor_->provide_buffers(pool.data(), kSize, kCount).ok());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(reactor_->submit({.user_data = 3, .opcode = IoOpcode::kRecv,
                              .flags = kOpMultishot | kOpBufferSelect, .fd = fd}),
            0);
  const std::string payload = testing::RandomBytes(10000, 5);
  ASSERT_TRUE(client.send_all(payload));
  std::string received;
  auto all = WaitUntil([&](auto& a) {
    size_t bytes = 0;
    for (const Completion& c : a) bytes += c.result > 0 ? c.result : 0;
    return bytes >= payload.size();
  });
  for (const Completion& c : all) {
    EXPECT_TRUE(c.more());
    ASSERT_TRUE(c.has_buffer());
    ASSERT_LT(c.buffer_id, kCount);
    ASSERT_GT(c.result, 0);
    ASSERT_LE(static_cast<uint32_t>(c.result), kSize);
    received.append(pool.data() + c.buffer_id * kSize, c.result);
    reactor_->recycle_buffer(c.buffer_id);
  }
  EXPECT_TRUE(received == payload);
  client.close();
  auto end = WaitUntil([](auto& a) { return HasFinal(a, 3); });
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0].result, 0) << "end of stream ends the multishot recv";
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// Data already waiting fills provided buffers in fewer system calls than buffers: io_uring
// receives in the kernel, the readiness backends fill several buffers per recvmsg. 64 KiB
// waits in the socket before a multishot receive with 4 KiB buffers starts.
TEST_P(ReactorTest, ABurstFillsSeveralBuffersPerSystemCall) {
  constexpr uint32_t kSize = 4096;
  constexpr uint32_t kCount = 64;
  constexpr size_t kBurst = 64 * 1024;
  std::vector<char> pool(kSize * kCount);
  ASSERT_TRUE(reactor_->provide_buffers(pool.data(), kSize, kCount).ok());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  ASSERT_GE(fd, 0);
  const std::string payload = testing::RandomBytes(kBurst, 11);
  ASSERT_TRUE(client.send_all(payload));
  int waiting = 0;
  for (int i = 0; i < 3000 && waiting < static_cast<int>(kBurst); ++i) {
    ASSERT_EQ(::ioctl(fd, FIONREAD, &waiting), 0);
    if (waiting < static_cast<int>(kBurst)) std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(waiting, static_cast<int>(kBurst));
  ReactorCounters before = reactor_->counters();
  ASSERT_EQ(reactor_->submit({.user_data = 6, .opcode = IoOpcode::kRecv,
                              .flags = kOpMultishot | kOpBufferSelect, .fd = fd}),
            0);
  std::string received;
  size_t buffers = 0;
  WaitUntil([&](auto& a) {
    for (size_t i = buffers; i < a.size(); ++i) {
      if (a[i].result <= 0) continue;
      received.append(pool.data() + a[i].buffer_id * kSize, a[i].result);
      reactor_->recycle_buffer(a[i].buffer_id);
    }
    buffers = a.size();
    return received.size() >= kBurst;
  });
  ReactorCounters after = reactor_->counters();
  EXPECT_TRUE(received == payload);
  EXPECT_GE(buffers, kBurst / kSize);
  EXPECT_LT(after.syscalls - before.syscalls, kBurst / kSize) << "one system call per buffer (or more)";
  client.close();
  WaitUntil([](auto& a) { return HasFinal(a, 6); });
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// A buffer handed back is used again soon, not after every other buffer of a large pool: a
// receive then writes to memory still in the cache. 300 messages, one at a time, each buffer
// recycled as soon as it arrives, through a pool of 1,024: the buffers used stay a small set
// (io_uring keeps 64 of them on its ring for one receive; the readiness backends reuse the
// last one returned).
TEST_P(ReactorTest, RecycledBuffersAreReusedSoon) {
  constexpr uint32_t kSize = 1024;
  constexpr uint32_t kCount = 1024;
  std::vector<char> pool(kSize * kCount);
  ASSERT_TRUE(reactor_->provide_buffers(pool.data(), kSize, kCount).ok());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  ASSERT_EQ(reactor_->submit({.user_data = 5, .opcode = IoOpcode::kRecv,
                              .flags = kOpMultishot | kOpBufferSelect, .fd = fd}),
            0);
  std::set<uint32_t> used;
  size_t received = 0;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(client.send_all(std::string(100, static_cast<char>('a' + i % 26))));
    auto all = WaitUntil([&](auto& a) {
      size_t bytes = 0;
      for (const Completion& c : a) bytes += c.result > 0 ? c.result : 0;
      return bytes >= 100;
    });
    for (const Completion& c : all) {
      ASSERT_TRUE(c.has_buffer());
      received += static_cast<size_t>(c.result);
      used.insert(c.buffer_id);
      reactor_->recycle_buffer(c.buffer_id);
    }
  }
  EXPECT_EQ(received, 300u * 100u);
  EXPECT_LE(used.size(), 68u) << "buffers cycle through the whole pool";
  client.close();
  WaitUntil([](auto& a) { return HasFinal(a, 5); });
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

TEST_P(ReactorTest, ARunDryPoolEndsMultishotRecvWithENOBUFS) {
  constexpr uint32_t kSize = 512;
  std::vector<char> pool(kSize * 4);
  ASSERT_TRUE(reactor_->provide_buffers(pool.data(), kSize, 4).ok());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  ASSERT_EQ(reactor_->submit({.user_data = 4, .opcode = IoOpcode::kRecv,
                              .flags = kOpMultishot | kOpBufferSelect, .fd = fd}),
            0);
  ASSERT_TRUE(client.send_all(std::string(8192, 'z')));  // more than the pool holds
  auto all = WaitUntil([](auto& a) { return HasFinal(a, 4); });
  EXPECT_EQ(all.back().result, -ENOBUFS);
  size_t data_completions = 0;
  for (const Completion& c : all) {
    if (c.result > 0) {
      ++data_completions;
      reactor_->recycle_buffer(c.buffer_id);
    }
  }
  EXPECT_LE(data_completions, 4u);
  EXPECT_GE(data_completions, 1u);
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
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

TEST_P(ReactorTest, ConnectSucceedsOrIsRefused) {
  Listener l;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(l.port);
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kConnect, .fd = fd, .len = sizeof a, .buf = &a}), 0);
  auto ok = WaitUntil([](auto& all) { return HasFinal(all, 1); });
  EXPECT_EQ(ok.back().result, 0);
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);

  uint16_t closed_port;
  {
    Listener gone;
    closed_port = gone.port;
  }
  fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  a.sin_port = htons(closed_port);
  ASSERT_EQ(reactor_->submit({.user_data = 2, .opcode = IoOpcode::kConnect, .fd = fd, .len = sizeof a, .buf = &a}), 0);
  auto refused = WaitUntil([](auto& all) { return HasFinal(all, 2); });
  EXPECT_EQ(refused.back().result, -ECONNREFUSED);
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

TEST_P(ReactorTest, SendNeverRaisesSigpipe) {
  Listener l;
  auto client = std::make_unique<BlockingClient>(l.port);
  int fd = AcceptOne(l);
  client.reset();  // the peer is gone
  std::string data(1 << 20, 'p');
  int32_t last = 0;
  for (int i = 0; i < 50 && last >= 0; ++i) {
    uint64_t id = 10 + i;
    ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kSend, .fd = fd,
                                .len = static_cast<uint32_t>(data.size()), .buf = data.data()}),
              0);
    auto all = WaitUntil([&](auto& a) { return HasFinal(a, id); });
    last = all.back().result;
  }
  EXPECT_TRUE(last == -EPIPE || last == -ECONNRESET) << last;  // and the process is still here
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// A gathered send: several entries, some large enough that the kernel takes them in parts;
// what arrives is their concatenation, in order, with nothing lost or repeated.
TEST_P(ReactorTest, SendMsgSendsItsEntriesInOrder) {
  if (!reactor_->has(kCapSendMsg)) GTEST_SKIP() << GetParam() << " has no SENDMSG";
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  std::vector<std::string> parts = {"head:", std::string(300000, '\0'), "-middle-", std::string(70000, 'z'), ":tail"};
  for (size_t i = 0; i < parts[1].size(); ++i) parts[1][i] = static_cast<char>(i * 7 + i / 256);
  std::string expected;
  for (const std::string& p : parts) expected += p;

  std::string received;
  std::thread reader([&] { received = client.recv_exact(expected.size()); });
  size_t sent = 0;
  for (uint64_t id = 1; sent < expected.size() && id < 10000; ++id) {
    // The entries from where the last partial send stopped.
    std::vector<iovec> iov;
    size_t skip = sent;
    for (std::string& p : parts) {
      if (skip >= p.size()) {
        skip -= p.size();
        continue;
      }
      iov.push_back({p.data() + skip, p.size() - skip});
      skip = 0;
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kSendMsg, .fd = fd, .buf = &msg}), 0);
    auto all = WaitUntil([&](auto& a) { return HasFinal(a, id); });
    ASSERT_GT(all.back().result, 0);
    sent += static_cast<size_t>(all.back().result);
  }
  reader.join();
  EXPECT_EQ(sent, expected.size());
  EXPECT_TRUE(received == expected) << "the bytes differ (" << received.size() << " received)";
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

TEST_P(ReactorTest, SendMsgNeverRaisesSigpipeAndChecksItsArguments) {
  if (!reactor_->has(kCapSendMsg)) GTEST_SKIP() << GetParam() << " has no SENDMSG";
  Listener l;
  auto client = std::make_unique<BlockingClient>(l.port);
  int fd = AcceptOne(l);
  std::string data(1 << 20, 'q');
  iovec iov[2] = {{data.data(), data.size() / 2}, {data.data() + data.size() / 2, data.size() / 2}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kSendMsg, .fd = fd, .len = 2, .buf = &msg}), -EINVAL)
      << "len must be 0: the msghdr counts the entries";
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kSendMsg, .flags = kOpMultishot, .fd = fd, .buf = &msg}),
            -EINVAL);
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kSendMsg, .fd = fd}), -EFAULT);

  client.reset();  // the peer is gone
  int32_t last = 0;
  for (int i = 0; i < 50 && last >= 0; ++i) {
    uint64_t id = 10 + i;
    ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kSendMsg, .fd = fd, .buf = &msg}), 0);
    auto all = WaitUntil([&](auto& a) { return HasFinal(a, id); });
    last = all.back().result;
  }
  EXPECT_TRUE(last == -EPIPE || last == -ECONNRESET) << last;  // and the process is still here
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
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
