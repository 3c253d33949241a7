// Receives that fill many provided buffers at once, checked on every backend through the
// Reactor wrapper: data that waits in the socket before the receive starts (on io_uring one
// kernel receive, a bundle, takes several 16 KiB buffers and the backend hands them out one
// completion each), a wait() array smaller than a bundle, more data than the pool holds
// (the pool runs dry, the receive ends with ENOBUFS and starts again), and a peer that
// closes or resets the connection behind its data. Every byte must arrive, in order.
//
// On io_uring the tests also check that bundles happened (ReactorCounters::recv_bundles, and
// the loop's published figure LoopStats::backend_recv_bundles),
// unless the kernel predates them (6.10) or BRRR_IO_URING_BUNDLES=0 turns them off; run
// this target with --test_env=BRRR_IO_URING_BUNDLES=0 to check the per-buffer receives.
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/plugin_loader.h"
#include "runtime/reactor.h"
#include "runtime/receiver.h"
#include "runtime/socket.h"
#include "tests/reactors/reactor_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/listener_fixture.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::AcceptOne;
using testing::BlockingClient;
using testing::Listener;
using testing::ReactorTest;

constexpr uint32_t kBufferSize = 16 * 1024;  // the runtime's default pool buffers
constexpr const char* kBundlesEnv = "BRRR_IO_URING_BUNDLES";

// Whether `backend` should receive in bundles here: io_uring on Linux 6.10 or later, not
// turned off through the environment.
bool ExpectBundles(const std::string& backend) {
  return backend == "io_uring" && testing::IoUringFeatureExpected(kBundlesEnv, 6, 10);
}

// What a stream of multishot receives delivered, in order, and how it ended.
struct Received {
  std::string bytes;
  int enobufs = 0;           // receives the dry pool ended (each restarted)
  int32_t end_result = 1;    // the last receive's final result: 0 at end of stream, or -errno
  size_t max_per_wait = 0;   // the most completions one wait() returned
};

// Receives from fd into the pool until the stream ends (end of stream or an error), wait()ing
// with an array of `batch` completions. `hold`: keep every buffer until the receive ends, so
// the pool runs dry (the receive then ends with ENOBUFS and is started again once they are
// back, returned in reverse); otherwise each buffer is recycled as soon as its data is copied. Bounded: 30 s.
Received ReceiveStream(Reactor& reactor, const std::vector<char>& pool, int fd, size_t batch,
                       bool hold) {
  Received got;
  std::vector<uint32_t> held;
  uint64_t user_data = 100;
  auto arm = [&] {
    return reactor.submit({.user_data = user_data, .opcode = IoOpcode::kRecv,
                           .flags = kOpMultishot | kOpBufferSelect, .fd = fd});
  };
  EXPECT_EQ(arm(), 0);
  bool armed = true;
  std::vector<Completion> out(batch);
  TimePoint give_up = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < give_up) {
    if (!armed) {
      // Last received first: the pool then hands its buffers out in another order than their
      // ids, so a backend that took a bundle's buffers for consecutive ids would be caught.
      for (auto id = held.rbegin(); id != held.rend(); ++id) reactor.recycle_buffer(*id);
      held.clear();
      if (got.end_result <= 0) break;
      ++user_data;
      EXPECT_EQ(arm(), 0);
      armed = true;
    }
    absl::StatusOr<int> n = reactor.wait(out, 10'000'000);
    EXPECT_TRUE(n.ok()) << n.status();
    if (!n.ok()) break;
    got.max_per_wait = std::max(got.max_per_wait, static_cast<size_t>(*n));
    for (int i = 0; i < *n; ++i) {
      const Completion& c = out[i];
      EXPECT_EQ(c.user_data, user_data) << "a completion after its receive's final one";
      if (c.result > 0) {
        EXPECT_TRUE(c.has_buffer());
        EXPECT_LE(static_cast<uint32_t>(c.result), kBufferSize);
        got.bytes.append(pool.data() + static_cast<size_t>(c.buffer_id) * kBufferSize,
                         static_cast<size_t>(c.result));
        if (hold) {
          held.push_back(c.buffer_id);
        } else {
          reactor.recycle_buffer(c.buffer_id);
        }
      }
      if (c.more()) continue;
      armed = false;
      if (c.result == -ENOBUFS) {
        ++got.enobufs;
      } else if (c.result <= 0) {
        got.end_result = c.result;
      }
    }
  }
  EXPECT_FALSE(armed) << "timed out before the stream ended";
  for (uint32_t id : held) reactor.recycle_buffer(id);
  return got;
}

// Waits (bounded: 3 s) until fd has at least `bytes` to read, so that the receive about to
// start finds them all at once.
void WaitForWaitingBytes(int fd, int bytes) {
  int waiting = 0;
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(::ioctl(fd, FIONREAD, &waiting), 0);
    if (waiting >= bytes) return;
    std::this_thread::sleep_for(milliseconds(1));
  }
  FAIL() << "only " << waiting << " bytes arrived of the " << bytes << " awaited";
}

// A connection whose peer writes `payload` from its own thread (it may not fit into the
// socket buffers before the receive starts), then shuts its side down.
class Stream {
 public:
  Stream(const Listener& l, std::string payload)
      : client_(l.port), fd_(AcceptOne(l)), payload_(std::move(payload)) {
    writer_ = std::thread([this] {
      sent_ = client_.send_all(payload_);
      client_.shutdown_write();
    });
  }
  ~Stream() {
    if (writer_.joinable()) writer_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  const std::string& payload() const { return payload_; }
  bool finish() {
    writer_.join();
    return sent_;
  }

 private:
  BlockingClient client_;
  int fd_;
  std::string payload_;
  std::thread writer_;
  bool sent_ = false;
};

// 200 KiB written at once into a connection, 64 KiB of it waiting before the receive starts:
// 13 buffers' worth, received in order.
TEST_P(ReactorTest, ManyBuffersReceivedAtOnceArriveInOrder) {
  std::vector<char> pool(kBufferSize * 64);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kBufferSize, 64), absl::OkStatus());
  Listener l;
  Stream s(l, testing::RandomBytes(200 * 1024 + 7, 21));
  ASSERT_GE(s.fd(), 0);
  WaitForWaitingBytes(s.fd(), 64 * 1024);
  Received got = ReceiveStream(*reactor_, pool, s.fd(), 64, /*hold=*/false);
  EXPECT_TRUE(s.finish());
  EXPECT_EQ(got.bytes.size(), s.payload().size());
  EXPECT_TRUE(got.bytes == s.payload()) << "bytes out of order or lost";
  EXPECT_EQ(got.end_result, 0);
  if (ExpectBundles(GetParam())) {
    EXPECT_GT(reactor_->counters().recv_bundles, 0u) << "no receive filled several buffers";
  } else {
    EXPECT_EQ(reactor_->counters().recv_bundles, 0u);
  }
  EXPECT_EQ(reactor_->release_fd(s.fd()), 0);
}

// The same through a wait() array of 2: a bundle of more buffers than that reaches the caller
// over several waits, still in order, and nothing after a receive's final completion.
TEST_P(ReactorTest, ABundleLargerThanTheWaitArrayCrossesWaits) {
  std::vector<char> pool(kBufferSize * 64);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kBufferSize, 64), absl::OkStatus());
  Listener l;
  Stream s(l, testing::RandomBytes(200 * 1024 + 1, 22));
  ASSERT_GE(s.fd(), 0);
  WaitForWaitingBytes(s.fd(), 64 * 1024);
  Received got = ReceiveStream(*reactor_, pool, s.fd(), 2, /*hold=*/false);
  EXPECT_TRUE(s.finish());
  EXPECT_LE(got.max_per_wait, 2u);
  EXPECT_TRUE(got.bytes == s.payload()) << "bytes out of order or lost";
  EXPECT_EQ(got.end_result, 0);
  if (ExpectBundles(GetParam())) {
    EXPECT_GT(reactor_->counters().recv_bundles, 0u);
  }
}

// More data than the pool (8 x 16 KiB) holds, buffers kept until each receive ends: the pool
// runs dry (ENOBUFS), the receive starts again once the buffers are back, and the bytes still
// come in order across the restarts.
TEST_P(ReactorTest, MoreDataThanThePoolHoldsKeepsItsOrder) {
  constexpr uint32_t kCount = 8;
  std::vector<char> pool(kBufferSize * kCount);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kBufferSize, kCount), absl::OkStatus());
  Listener l;
  Stream s(l, testing::RandomBytes(200 * 1024 + 3, 23));
  ASSERT_GE(s.fd(), 0);
  WaitForWaitingBytes(s.fd(), 64 * 1024);
  Received got = ReceiveStream(*reactor_, pool, s.fd(), 64, /*hold=*/true);
  EXPECT_TRUE(s.finish());
  EXPECT_GE(got.enobufs, 1) << "the pool never ran dry";
  EXPECT_TRUE(got.bytes == s.payload()) << "bytes out of order or lost";
  EXPECT_EQ(got.end_result, 0);
  if (ExpectBundles(GetParam())) {
    EXPECT_GT(reactor_->counters().recv_bundles, 0u);
  }
}

// The peer writes and closes before the receive starts: its data, then the end of stream,
// arrive behind one another (on io_uring the data in bundles, the end in a CQE of its own).
TEST_P(ReactorTest, APeerThatClosedBehindItsDataEndsAfterTheLastByte) {
  std::vector<char> pool(kBufferSize * 64);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kBufferSize, 64), absl::OkStatus());
  Listener l;
  const std::string payload = testing::RandomBytes(100 * 1024 + 5, 24);
  auto client = std::make_unique<BlockingClient>(l.port);
  int fd = AcceptOne(l);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(client->send_all(payload));  // fits the loopback socket buffers
  client.reset();
  WaitForWaitingBytes(fd, static_cast<int>(payload.size()));
  Received got = ReceiveStream(*reactor_, pool, fd, 64, /*hold=*/false);
  EXPECT_TRUE(got.bytes == payload) << "bytes out of order or lost";
  EXPECT_EQ(got.end_result, 0);
  if (ExpectBundles(GetParam())) {
    EXPECT_GT(reactor_->counters().recv_bundles, 0u);
  }
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// The peer resets the connection behind its data: what arrives is a prefix of what it sent,
// in order, and the receive ends (end of stream or ECONNRESET) with no buffer lost.
TEST_P(ReactorTest, APeerThatResetBehindItsDataEndsTheReceive) {
  std::vector<char> pool(kBufferSize * 64);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kBufferSize, 64), absl::OkStatus());
  Listener l;
  const std::string payload = testing::RandomBytes(100 * 1024 + 9, 25);
  auto client = std::make_unique<BlockingClient>(l.port);
  int fd = AcceptOne(l);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(client->send_all(payload));
  WaitForWaitingBytes(fd, static_cast<int>(payload.size()));
  client->set_linger_zero();
  client.reset();
  Received got = ReceiveStream(*reactor_, pool, fd, 64, /*hold=*/false);
  EXPECT_TRUE(got.bytes == payload.substr(0, got.bytes.size())) << "bytes out of order";
  EXPECT_TRUE(got.end_result == 0 || got.end_result == -ECONNRESET)
      << got.end_result << " after " << got.bytes.size() << " of " << payload.size() << " bytes";
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
  // Every buffer came back: a pool's worth can be received again.
  Listener l2;
  Stream s(l2, testing::RandomBytes(64 * kBufferSize, 26));
  ASSERT_GE(s.fd(), 0);
  Received again = ReceiveStream(*reactor_, pool, s.fd(), 64, /*hold=*/true);
  EXPECT_TRUE(s.finish());
  EXPECT_TRUE(again.bytes == s.payload());
  EXPECT_EQ(reactor_->release_fd(s.fd()), 0);
}

// Receive after receive in bundles, every buffer recycled at once: the ring gets back each
// buffer a bundle took, so a loop that has received many bundles still has its whole pool on
// the ring and still receives in bundles. (A backend that counted one buffer off the ring per
// bundle instead of the several it took would put back only one of them each time: the ring
// shrinks bundle after bundle to a single buffer, and from then on every receive takes one
// buffer, one completion per 16 KiB.) 40 connections with 100 KiB waiting each (7 buffers),
// 280 buffers' worth through a pool of 64: each of the last 10 still receives in a bundle.
TEST_P(ReactorTest, ManyBundlesInARowKeepTheWholePoolOnTheRing) {
  std::vector<char> pool(kBufferSize * 64);
  ASSERT_EQ(reactor_->provide_buffers(pool.data(), kBufferSize, 64), absl::OkStatus());
  Listener l;
  for (uint32_t round = 0; round < 40; ++round) {
    const uint64_t bundles_before = reactor_->counters().recv_bundles;
    Stream s(l, testing::RandomBytes(100 * 1024 + round, 40 + round));
    ASSERT_GE(s.fd(), 0);
    WaitForWaitingBytes(s.fd(), static_cast<int>(s.payload().size()));
    Received got = ReceiveStream(*reactor_, pool, s.fd(), 64, /*hold=*/false);
    EXPECT_TRUE(s.finish());
    ASSERT_TRUE(got.bytes == s.payload())
        << "round " << round << ": " << got.bytes.size() << " of " << s.payload().size() << " bytes, in order or not";
    ASSERT_EQ(got.end_result, 0) << "round " << round;
    EXPECT_EQ(got.enobufs, 0) << "round " << round << ": every buffer was recycled, the pool cannot run dry";
    EXPECT_EQ(reactor_->release_fd(s.fd()), 0);
    if (round >= 30 && ExpectBundles(GetParam())) {
      EXPECT_GT(reactor_->counters().recv_bundles, bundles_before)
          << "round " << round << ": 100 KiB waited, and the receive took it one buffer at a time";
    }
  }
}

// BRRR_IO_URING_BUNDLES=0 turns bundles off for the io_uring reactors created afterwards: the
// same transfer then takes one kernel receive per buffer. (An io_uring setting: not a test of
// every backend.)
TEST(RecvBundleSwitchTest, BundlesTurnOffThroughTheEnvironment) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(std::string("io_uring"));
  const char* before = std::getenv(kBundlesEnv);
  std::string saved = before != nullptr ? before : "";
  ASSERT_EQ(::setenv(kBundlesEnv, "0", 1), 0);
  auto r = PluginLoader::Default().CreateReactor("io_uring");
  if (before != nullptr) {
    ::setenv(kBundlesEnv, saved.c_str(), 1);
  } else {
    ::unsetenv(kBundlesEnv);
  }
  ASSERT_TRUE(r.ok()) << r.status();
  std::unique_ptr<Reactor> off = *std::move(r);
  std::vector<char> pool(kBufferSize * 64);
  ASSERT_EQ(off->provide_buffers(pool.data(), kBufferSize, 64), absl::OkStatus());
  Listener l;
  Stream s(l, testing::RandomBytes(200 * 1024 + 11, 27));
  ASSERT_GE(s.fd(), 0);
  WaitForWaitingBytes(s.fd(), 64 * 1024);
  Received got = ReceiveStream(*off, pool, s.fd(), 64, /*hold=*/false);
  EXPECT_TRUE(s.finish());
  EXPECT_TRUE(got.bytes == s.payload());
  EXPECT_EQ(off->counters().recv_bundles, 0u);
  EXPECT_EQ(off->release_fd(s.fd()), 0);
}

// The loop's figure backend_recv_bundles (GetStats, brrrctl, Prometheus) counts the bundles its
// backend received: a Receiver on the loop's own pool takes 200 KiB, 64 KiB of it waiting before
// the receive starts, and the figure grows where bundles are used, stays 0 elsewhere.
class LoopBundleTest : public testing::ListenerFixture {};

TEST_P(LoopBundleTest, TheLoopFigureCountsTheBackendsBundles) {
  struct Collector : Receiver::Handler {
    void on_data(Chunk chunk) override { data.append(chunk.data(), chunk.size()); }
    void on_end(absl::Status s) override {
      ended = true;
      status = s;
    }
    std::string data;
    bool ended = false;
    absl::Status status;
  } got;
  BlockingClient client(port());
  Socket conn = Accept();
  ASSERT_TRUE(conn.valid());
  const uint64_t before = loop_->stats().backend_recv_bundles;
  const std::string payload = testing::RandomBytes(200 * 1024 + 13, 28);
  std::thread writer([&] {
    EXPECT_TRUE(client.send_all(payload));
    client.shutdown_write();
  });
  WaitForWaitingBytes(conn.fd(), 64 * 1024);
  Receiver receiver(conn, got);
  receiver.start();
  RunUntil([&] { return got.ended; });
  writer.join();
  EXPECT_TRUE(got.status.ok()) << got.status;
  EXPECT_TRUE(got.data == payload) << "bytes out of order or lost";
  if (ExpectBundles(GetParam())) {
    EXPECT_GT(loop_->stats().backend_recv_bundles, before) << "the loop does not publish its backend's bundles";
  } else {
    EXPECT_EQ(loop_->stats().backend_recv_bundles, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, LoopBundleTest, ::testing::ValuesIn(testing::AllBackends()), testing::BackendName());

INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, ReactorTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
