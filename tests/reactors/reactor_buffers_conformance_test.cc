// The plugin ABI's provided buffers (runtime/reactor_abi.h), checked directly on every backend
// through the Reactor wrapper: a multishot receive into a pool until end of stream, a burst
// that fills several buffers per system call, recycled buffers reused soon, and a pool that
// runs dry ending the receive with ENOBUFS.
#include "runtime/reactor.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/reactors/reactor_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::AcceptOne;
using testing::BlockingClient;
using testing::Listener;
using testing::ReactorTest;

// Whether `bytes` came to wait in fd's receive queue (polled every 1 ms, up to 3 s).
bool QueuedInSocket(int fd, int bytes) {
  int waiting = 0;
  for (int i = 0; i < 3000; ++i) {
    if (::ioctl(fd, FIONREAD, &waiting) != 0) return false;
    if (waiting >= bytes) return waiting == bytes;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return false;
}

// Appends the data of the completions not seen yet to `received`, each from its pool buffer,
// and hands the buffers back.
void TakeFromPool(Reactor& reactor, const std::vector<char>& pool, uint32_t buffer_size,
                  const std::vector<Completion>& all, size_t& seen, std::string& received) {
  for (size_t i = seen; i < all.size(); ++i) {
    if (all[i].result <= 0) continue;
    received.append(pool.data() + all[i].buffer_id * buffer_size, all[i].result);
    reactor.recycle_buffer(all[i].buffer_id);
  }
  seen = all.size();
}

TEST_P(ReactorTest, MultishotRecvWithProvidedBuffersUntilEndOfStream) {
  constexpr uint32_t kSize = 1024;
  constexpr uint32_t kCount = 16;
  std::vector<char> pool(kSize * kCount);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, kCount), absl::OkStatus());
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

// A multishot receive into the pool with a length below the buffer size takes at most that
// length at a time (reactor_abi.h: "receive up to len bytes"): 26 bytes waiting come in pieces
// of 16 at most (16 and 10, or smaller where a faulty copy reads short), in order, each in a
// buffer of its own, and the receive goes on until cancelled.
TEST_P(ReactorTest, ACappedMultishotRecvIntoThePoolTakesAtMostItsLengthEachTime) {
  constexpr uint32_t kSize = 1024;
  constexpr uint32_t kCount = 16;
  std::vector<char> pool(kSize * kCount);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, kCount), absl::OkStatus());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  ASSERT_GE(fd, 0);
  const std::string payload = "waiting before the receive";
  ASSERT_TRUE(client.send_all(payload));
  ASSERT_TRUE(QueuedInSocket(fd, static_cast<int>(payload.size())));
  ASSERT_EQ(
      reactor_->submit(
          {.user_data = 6, .opcode = IoOpcode::kRecv, .flags = kOpMultishot | kOpBufferSelect, .fd = fd, .len = 16}),
      0);
  auto all = WaitUntil([&](auto& a) {
    size_t bytes = 0;
    for (const Completion& c : a) bytes += c.result > 0 ? c.result : 0;
    return bytes >= payload.size() || HasFinal(a, 6);
  });
  std::string received;
  for (const Completion& c : all) {
    EXPECT_TRUE(c.more());
    ASSERT_GT(c.result, 0);
    EXPECT_LE(c.result, 16) << "more than the receive's length";
    ASSERT_TRUE(c.has_buffer());
  }
  size_t seen = 0;
  TakeFromPool(*reactor_, pool, kSize, all, seen, received);
  EXPECT_TRUE(received == payload) << received;
  ASSERT_EQ(reactor_->cancel(fd, 6), 0);
  WaitUntil([](auto& a) { return HasFinal(a, 6); });
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// A multishot receive capped below the buffer size (io_uring runs it as single shots, re-armed
// one after another) that is cancelled before it ever waited, with data already in the socket,
// ends: whatever it received, then its final completion, and nothing after that.
TEST_P(ReactorTest, ACancelledCappedMultishotRecvEndsThoughDataWasWaiting) {
  constexpr uint32_t kSize = 1024;
  constexpr uint32_t kCount = 16;
  std::vector<char> pool(kSize * kCount);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, kCount), absl::OkStatus());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(client.send_all("waiting before the receive"));
  ASSERT_TRUE(QueuedInSocket(fd, 26));
  ASSERT_EQ(
      reactor_->submit(
          {.user_data = 5, .opcode = IoOpcode::kRecv, .flags = kOpMultishot | kOpBufferSelect, .fd = fd, .len = 16}),
      0);
  ASSERT_EQ(reactor_->cancel(fd, 5), 0);
  auto all = WaitUntil([](auto& a) { return HasFinal(a, 5); });
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i + 1 < all.size(); ++i) EXPECT_TRUE(all[i].more()) << "completion " << i;
  EXPECT_FALSE(all.back().more());
  EXPECT_TRUE(all.back().result > 0 || all.back().result == -ECANCELED) << all.back().result;
  for (const Completion& c : all) {
    if (c.has_buffer()) reactor_->recycle_buffer(c.buffer_id);
  }
  // Nothing follows the final completion, though the socket has data left.
  Completion batch[8];
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<int> n = reactor_->wait(batch, 2'000'000);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0) << "a completion after the final one";
  }
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// The burst tests' pool (kCount buffers of kSize, given to the reactor by the test) and one
// accepted connection (fd, -1 if none came) with its client; kBurst bytes make a burst.
namespace burst {
constexpr uint32_t kSize = 4096;
constexpr uint32_t kCount = 64;
constexpr size_t kBurst = 64 * 1024;
}  // namespace burst
struct BurstConnection {
  std::vector<char> pool = std::vector<char>(burst::kSize * burst::kCount);
  Listener listener;
  BlockingClient client{listener.port};
  int fd = AcceptOne(listener);

  // Sends `payload` and waits until it all sits in the socket, then receives it with a
  // multishot receive into the pool (user_data `id`, the pool already provided) until every
  // byte came, through `wait_until` (the fixture's WaitUntil). Fills in what came; false if
  // a step failed (with its failure reported).
  template <typename WaitUntil>
  bool ReceiveWaiting(Reactor& reactor, const std::string& payload, uint64_t id, WaitUntil wait_until) {
    EXPECT_TRUE(client.send_all(payload));
    EXPECT_TRUE(QueuedInSocket(fd, static_cast<int>(payload.size())));
    before = reactor.counters();
    int rc = reactor.submit(
        {.user_data = id, .opcode = IoOpcode::kRecv, .flags = kOpMultishot | kOpBufferSelect, .fd = fd});
    EXPECT_EQ(rc, 0);
    if (::testing::Test::HasFailure()) return false;
    wait_until([&](const std::vector<Completion>& a) {
      TakeFromPool(reactor, pool, burst::kSize, a, buffers, received);
      return received.size() >= payload.size();
    });
    after = reactor.counters();
    return true;
  }
  std::string received;
  size_t buffers = 0;
  ReactorCounters before;  // at the submit
  ReactorCounters after;   // at the last byte
};

// Data already waiting fills provided buffers in fewer system calls than buffers: io_uring
// receives in the kernel, the readiness backends fill several buffers per recvmsg. 64 KiB
// waits in the socket before a multishot receive with 4 KiB buffers starts.
TEST_P(ReactorTest, ABurstFillsSeveralBuffersPerSystemCall) {
  using burst::kBurst, burst::kCount, burst::kSize;
  BurstConnection c;
  const int fd = c.fd;
  ASSERT_EQ(reactor_->provide_buffers(c.pool.data(), kSize, kCount), absl::OkStatus());
  ASSERT_GE(fd, 0);
  const std::string payload = testing::RandomBytes(kBurst, 11);
  ASSERT_TRUE(c.ReceiveWaiting(*reactor_, payload, 6, [&](auto done) { return WaitUntil(done); }));
  EXPECT_TRUE(c.received == payload);
  EXPECT_GE(c.buffers, kBurst / kSize);
  EXPECT_LT(c.after.syscalls - c.before.syscalls, kBurst / kSize) << "one system call per buffer (or more)";
  c.client.close();
  WaitUntil([](auto& a) { return HasFinal(a, 6); });
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// A message that fills four buffers exactly (64 KiB in the default 16 KiB ones) is read with
// one receive on the readiness backends: they offer more buffers than that, so the read comes
// back short and proves the socket drained. Offered exactly four, the read would fill them all
// and a second one would have to find out that nothing is left. (io_uring receives in the
// kernel, with no call per receive to count.)
TEST_P(ReactorTest, AMessageThatFillsFourBuffersTakesOneReceive) {
  using burst::kCount, burst::kSize;
  if (reactor_->has(kCapNativeOps)) GTEST_SKIP() << "receives in the kernel: no call per receive";
  if (testing::IsFaulty(GetParam())) GTEST_SKIP() << "adds interrupted and short calls on purpose";
  BurstConnection c;
  const int fd = c.fd;
  ASSERT_EQ(reactor_->provide_buffers(c.pool.data(), kSize, kCount), absl::OkStatus());
  ASSERT_GE(fd, 0);
  const std::string message = testing::RandomBytes(4 * kSize, 13);
  ASSERT_TRUE(c.ReceiveWaiting(*reactor_, message, 8, [&](auto done) { return WaitUntil(done); }));
  EXPECT_TRUE(c.received == message);
  EXPECT_EQ(c.buffers, 4u);
  EXPECT_EQ((c.after.syscalls - c.after.waits) - (c.before.syscalls - c.before.waits), 1u)
      << "system calls besides waits: the receive, and nothing else";
  c.client.close();
  WaitUntil([](auto& a) { return HasFinal(a, 8); });
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// The buffers one receive fills lie back to back in memory, in order, whatever order the
// runtime handed them back in: the readiness backends take them off their free list in
// address order, so the kernel gets one span and the runtime can send the message on with one
// plain send (runtime/sender.h). Four messages of four buffers each, every one received whole
// by one receive, their buffers recycled in a different scrambled order each time.
// (io_uring's buffer ring has an order of its own: not checked there.)
TEST_P(ReactorTest, TheBuffersOfOneReceiveAreNeighboursInAddressOrder) {
  using burst::kCount, burst::kSize;
  if (reactor_->has(kCapNativeOps)) GTEST_SKIP() << "buffers come off io_uring's ring in its order";
  if (testing::IsFaulty(GetParam())) GTEST_SKIP() << "short receives on purpose split a message";
  BurstConnection c;
  const int fd = c.fd;
  ASSERT_GE(fd, 0);
  ASSERT_EQ(reactor_->provide_buffers(c.pool.data(), kSize, kCount), absl::OkStatus());
  ASSERT_EQ(reactor_->submit({.user_data = 9, .opcode = IoOpcode::kRecv,
                              .flags = kOpMultishot | kOpBufferSelect, .fd = fd}),
            0);
  const std::vector<std::vector<int>> recycle_orders = {{3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}, {0, 2, 1, 3}};
  for (size_t m = 0; m < recycle_orders.size(); ++m) {
    const std::string message = testing::RandomBytes(4 * kSize, 30 + m);
    ASSERT_TRUE(c.client.send_all(message));
    ASSERT_TRUE(QueuedInSocket(fd, static_cast<int>(message.size())));
    auto all = WaitUntil([&](auto& a) {
      size_t bytes = 0;
      for (const Completion& done : a) bytes += done.result > 0 ? done.result : 0;
      return bytes >= message.size();
    });
    std::vector<uint32_t> ids;
    std::string received;
    for (const Completion& done : all) {
      ASSERT_GT(done.result, 0);
      ASSERT_TRUE(done.has_buffer());
      ids.push_back(done.buffer_id);
      received.append(c.pool.data() + done.buffer_id * kSize, done.result);
    }
    EXPECT_TRUE(received == message) << "message " << m;
    ASSERT_EQ(ids.size(), 4u) << "message " << m;
    for (size_t i = 1; i < ids.size(); ++i) {
      EXPECT_EQ(ids[i], ids[i - 1] + 1) << "message " << m << ": buffers " << ids[i - 1] << " then " << ids[i];
    }
    for (int k : recycle_orders[m]) reactor_->recycle_buffer(ids[k]);
  }
  c.client.close();
  WaitUntil([](auto& a) { return HasFinal(a, 9); });
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// A descriptor that has been receiving small messages still fills several buffers per system
// call once a burst comes (the readiness backends receive small messages into one buffer with
// recv, and must go back to recvmsg over several): eight 100-byte messages, each received
// before the next is sent, then 64 KiB (on the readiness backends waiting whole in the socket
// before the reactor looks). Every byte, in order; on the real backends fewer calls than
// buffers.
TEST_P(ReactorTest, AfterSmallMessagesABurstStillFillsSeveralBuffersPerSystemCall) {
  using burst::kBurst, burst::kCount, burst::kSize;
  BurstConnection c;
  std::vector<char>& pool = c.pool;
  BlockingClient& client = c.client;
  const int fd = c.fd;
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, kCount), absl::OkStatus());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(reactor_->submit({.user_data = 7, .opcode = IoOpcode::kRecv,
                              .flags = kOpMultishot | kOpBufferSelect, .fd = fd}),
            0);
  std::string received;
  size_t seen = 0;
  auto take = [&](const std::vector<Completion>& a) { TakeFromPool(*reactor_, pool, kSize, a, seen, received); };
  std::string expected;
  for (int m = 0; m < 8; ++m) {
    const std::string small = testing::RandomBytes(100, 20 + m);
    expected += small;
    ASSERT_TRUE(client.send_all(small));
    seen = 0;
    WaitUntil([&](auto& a) {
      take(a);
      return received.size() >= expected.size();
    });
  }
  const std::string burst = testing::RandomBytes(kBurst, 12);
  expected += burst;
  ASSERT_TRUE(client.send_all(burst));
  // A readiness backend reads only inside wait(), so the burst can be made to wait whole in
  // the socket. io_uring's armed receive takes it in the kernel as it comes (without
  // DEFER_TASKRUN even before the next wait), at no system call per buffer either way.
  if (!reactor_->has(kCapNativeOps)) {
    ASSERT_TRUE(QueuedInSocket(fd, static_cast<int>(kBurst)));
  }
  ReactorCounters before = reactor_->counters();
  seen = 0;
  WaitUntil([&](auto& a) {
    take(a);
    return received.size() >= expected.size();
  });
  ReactorCounters after = reactor_->counters();
  EXPECT_TRUE(received == expected);
  // The fault-injecting plugins add interrupted and short calls on purpose: every byte must
  // still arrive, but their calls are not counted.
  if (!testing::IsFaulty(GetParam())) {
    EXPECT_LT(after.syscalls - before.syscalls, kBurst / kSize) << "one system call per buffer (or more)";
  }
  client.close();
  WaitUntil([](auto& a) { return HasFinal(a, 7); });
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
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, kCount), absl::OkStatus());
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

// Every backend takes a pool of up to kMaxProvidedBuffers buffers, and refuses a larger one.
// Before, io_uring refused any past 32768 while the other backends (and brrr-echo's
// --recv_buffers) took up to 65536: a pool that loaded on epoll was lost on io_uring.
TEST_P(ReactorTest, APoolOfTheMostBuffersIsTakenAndALargerOneRefused) {
  constexpr uint32_t kSize = 512;
  std::vector<char> pool(size_t{kSize} * (kMaxProvidedBuffers + 1));
  absl::Status larger = reactor_->provide_buffers(pool.data(), kSize, kMaxProvidedBuffers + 1);
  EXPECT_NE(larger.message().find("Invalid argument"), absl::string_view::npos) << larger;
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, kMaxProvidedBuffers), absl::OkStatus());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  ASSERT_EQ(
      reactor_->submit({.user_data = 5, .opcode = IoOpcode::kRecv, .flags = kOpMultishot | kOpBufferSelect, .fd = fd}),
      0);
  ASSERT_TRUE(client.send_all("into the pool"));
  size_t seen = 0;
  std::string received;
  auto all = WaitUntil([&](auto& a) {
    TakeFromPool(*reactor_, pool, kSize, a, seen, received);
    return received.size() >= 13;
  });
  EXPECT_EQ(received, "into the pool");
  for (const Completion& c : all) EXPECT_LT(c.buffer_id, kMaxProvidedBuffers);
  client.close();
  WaitUntil([](auto& a) { return HasFinal(a, 5); });
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

TEST_P(ReactorTest, ARunDryPoolEndsMultishotRecvWithENOBUFS) {
  constexpr uint32_t kSize = 512;
  std::vector<char> pool(kSize * 4);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, 4), absl::OkStatus());
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

// -ENOBUFS means the pool is handed out, not that the part of it a backend keeps ready ran out
// (io_uring keeps only a hot part of the pool on its ring, at least 64 buffers): 96 buffers'
// worth of bytes, held by the test, come in from a pool of 256 without an end; once every one
// of the 256 is held, the receive ends with -ENOBUFS.
TEST_P(ReactorTest, ENOBUFSOnlyOnceThePoolIsHandedOut) {
  constexpr uint32_t kSize = 512;
  constexpr uint32_t kCount = 256;
  std::vector<char> pool(kSize * kCount);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kSize, kCount), absl::OkStatus());
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  ASSERT_EQ(reactor_->submit({.user_data = 7, .opcode = IoOpcode::kRecv,
                              .flags = kOpMultishot | kOpBufferSelect, .fd = fd}),
            0);
  auto bytes_in = [](const std::vector<Completion>& a) {
    size_t bytes = 0;
    for (const Completion& c : a) bytes += c.result > 0 ? static_cast<size_t>(c.result) : 0;
    return bytes;
  };
  constexpr size_t kPart = 96 * kSize;
  ASSERT_TRUE(client.send_all(std::string(kPart, 'p')));
  std::vector<Completion> held = WaitUntil([&](auto& a) { return bytes_in(a) >= kPart || HasFinal(a, 7); });
  EXPECT_FALSE(HasFinal(held, 7)) << "the receive ended (" << held.back().result << ") with "
                                  << kCount - held.size() << " of " << kCount << " buffers never handed out";
  EXPECT_EQ(bytes_in(held), kPart);

  // More than the rest of the pool holds: now it is handed out, and the receive ends so.
  ASSERT_TRUE(client.send_all(std::string(kCount * kSize, 'q')));
  std::vector<Completion> rest = WaitUntil([](auto& a) { return HasFinal(a, 7); });
  held.insert(held.end(), rest.begin(), rest.end());
  EXPECT_EQ(held.back().result, -ENOBUFS);
  size_t buffers = 0;
  for (const Completion& c : held) {
    if (c.result <= 0) continue;
    ASSERT_TRUE(c.has_buffer());
    ++buffers;
    reactor_->recycle_buffer(c.buffer_id);
  }
  EXPECT_EQ(buffers, kCount) << "the receive ended before the pool was handed out";
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// Handing back a buffer the runtime no longer holds (here one it handed back already, while
// another is still out, so the pool is not all back) breaks reactor_abi.h's promise: two
// receives would share that buffer. Every backend stops the process with the same message.
TEST_P(ReactorTest, RecyclingABufferTwiceAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        constexpr uint32_t kSize = 1024;
        std::vector<char> pool(kSize * 16);
        if (!reactor_->provide_buffers(pool.data(), kSize, 16).ok()) return;
        Listener l;
        BlockingClient client(l.port);
        int fd = AcceptOne(l);
        if (reactor_->submit({.user_data = 1, .opcode = IoOpcode::kRecv, .flags = kOpMultishot | kOpBufferSelect,
                              .fd = fd}) != 0) {
          return;
        }
        if (!client.send_all(std::string(2 * kSize, 'r'))) return;  // two buffers' worth
        auto all = WaitUntil([](auto& a) {
          size_t bytes = 0;
          for (const Completion& c : a) bytes += c.result > 0 ? c.result : 0;
          return bytes >= 2 * kSize;
        });
        if (all.size() < 2 || !all[0].has_buffer()) return;
        reactor_->recycle_buffer(all[0].buffer_id);
        reactor_->recycle_buffer(all[0].buffer_id);
      },
      "brrr reactor: recycle_buffer\\([0-9]+\\) of a buffer the runtime does not own");
}

INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, ReactorTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
