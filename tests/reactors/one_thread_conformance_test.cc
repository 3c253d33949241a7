// A reactor made with ReactorConfig::one_thread (BRRR_REACTOR_ONE_THREAD): built on the test
// thread, driven by another (the thread of its first wait()), destroyed on the test thread
// again, as the echo server does with its loops. Every backend keeps reactor_abi.h's promise
// there: destroy() returns, and afterwards no buffer given to the backend is written, neither
// a receive's own buffer nor the provided-buffer pool, while data arrives for both; no
// descriptor leaks. Both ways the driving thread can be at that point: gone (joined), or
// alive and idle. On io_uring this is the one-thread ring (SINGLE_ISSUER | DEFER_TASKRUN,
// Linux 6.1), whose requests only that thread may enter: a test checks that the ring really
// is one (another thread's wait is refused with EEXIST), unless
// BRRR_IO_URING_DEFER_TASKRUN=0 turns it off.
#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/plugin_loader.h"
#include "runtime/reactor.h"
#include "tests/reactors/reactor_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/skips.h"

namespace brrr {
namespace {

using testing::AcceptOne;
using testing::BlockingClient;
using testing::Listener;

constexpr uint32_t kPoolBufferSize = 4096;
constexpr uint32_t kPoolBuffers = 8;
constexpr char kUntouched = 'x';

std::unique_ptr<Reactor> MakeOneThreadReactor(const std::string& backend, uint32_t queue_depth = 0) {
  ReactorConfig config;
  config.one_thread = true;
  if (queue_depth != 0) config.queue_depth = queue_depth;
  auto r = PluginLoader::Default().CreateReactor(backend, config);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : nullptr;
}

// Completions from `reactor`'s waits, handed out by user_data as asked for.
class Completions {
 public:
  explicit Completions(Reactor& reactor) : reactor_(reactor) {}

  // The next completion for `user_data`, waiting for it (bounded: 30 s).
  Completion Next(uint64_t user_data) {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      auto it = std::find_if(seen_.begin(), seen_.end(), [&](const Completion& c) { return c.user_data == user_data; });
      if (it != seen_.end()) {
        Completion c = *it;
        seen_.erase(it);
        return c;
      }
      if (std::chrono::steady_clock::now() >= give_up) break;
      Completion batch[16];
      absl::StatusOr<int> n = reactor_.wait(batch, 10'000'000);
      EXPECT_TRUE(n.ok()) << n.status();
      if (!n.ok()) break;
      seen_.insert(seen_.end(), batch, batch + *n);
    }
    ADD_FAILURE() << "no completion for " << user_data << " in 30 s";
    return Completion{.user_data = user_data, .result = -ETIMEDOUT};
  }

 private:
  Reactor& reactor_;
  std::vector<Completion> seen_;
};

class OneThreadTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fds_before_ = testing::CountOpenFds();
    BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  }
  void TearDown() override {
    if (!IsSkipped()) {
      EXPECT_EQ(testing::CountOpenFds(), fds_before_) << "descriptors leaked";
    }
  }

  // Builds the reactor here, lets a second thread drive it (two connections accepted, a
  // receive into `own_` on one, a multishot receive from the pool on the other, both left in
  // flight), then destroys it here, with that thread gone (`join_first`) or still alive; then
  // sends to both connections and checks that no byte of either buffer changed.
  void DestroyElsewhereWithReceivesInFlight(bool join_first) {
    std::unique_ptr<Reactor> reactor = MakeOneThreadReactor(GetParam());
    ASSERT_NE(reactor, nullptr);
    void* pool = ::mmap(nullptr, kPoolBufferSize * kPoolBuffers, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    ASSERT_NE(pool, MAP_FAILED);
    std::memset(pool, kUntouched, kPoolBufferSize * kPoolBuffers);
    std::memset(own_, kUntouched, sizeof own_);
    const bool pooled = reactor->has(kCapProvidedBuffers);
    if (pooled) {
      ASSERT_EQ(reactor->provide_buffers(pool, kPoolBufferSize, kPoolBuffers), absl::OkStatus());
    }

    Listener listener;
    // Queued on this thread before any wait(): the driving thread's first wait starts it.
    ASSERT_EQ(reactor->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .flags = kOpMultishot, .fd = listener.fd}),
              0);
    BlockingClient to_own(listener.port);
    BlockingClient to_pool(listener.port);

    std::latch in_flight(1);  // the driver has the receives in flight
    std::latch release(1);    // the driver may end
    int accepted[2] = {-1, -1};
    std::thread driver([&] {
      Completions completions(*reactor);
      for (int& fd : accepted) fd = completions.Next(1).result;
      if (accepted[0] >= 0 && accepted[1] >= 0) {
        EXPECT_EQ(reactor->submit({.user_data = 2, .opcode = IoOpcode::kRecv, .fd = accepted[0], .len = sizeof own_,
                                   .buf = own_}),
                  0);
        if (pooled) {
          EXPECT_EQ(reactor->submit({.user_data = 3, .opcode = IoOpcode::kRecv,
                                     .flags = kOpMultishot | kOpBufferSelect, .fd = accepted[1]}),
                    0);
        }
        Completion batch[16];
        EXPECT_TRUE(reactor->wait(batch, 0).ok());  // hands them to the kernel; no data yet
      }
      in_flight.count_down();
      if (!join_first) release.wait();
    });
    in_flight.wait();
    if (join_first) driver.join();
    const bool both_accepted = accepted[0] >= 0 && accepted[1] >= 0;
    EXPECT_TRUE(both_accepted) << accepted[0] << " " << accepted[1];

    reactor.reset();  // on this thread, not the driver's
    if (both_accepted) {
      EXPECT_TRUE(to_own.send_all("written after destroy"));
      EXPECT_TRUE(to_pool.send_all("written after destroy"));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // time for a stray copy to land
    }
    if (!join_first) {
      release.count_down();
      driver.join();
    }
    EXPECT_TRUE(std::all_of(own_, own_ + sizeof own_, [](char c) { return c == kUntouched; }))
        << "the receive's buffer was written after destroy()";
    const char* bytes = static_cast<const char*>(pool);
    EXPECT_TRUE(std::all_of(bytes, bytes + kPoolBufferSize * kPoolBuffers, [](char c) { return c == kUntouched; }))
        << "a pool buffer was written after destroy()";
    ::munmap(pool, kPoolBufferSize * kPoolBuffers);
    for (int fd : accepted) {
      if (fd >= 0) ::close(fd);
    }
  }

  char own_[256];
  int fds_before_ = -1;
};

TEST_P(OneThreadTest, DestroyedAfterItsThreadEndedTouchesNoBufferAgain) { DestroyElsewhereWithReceivesInFlight(true); }

TEST_P(OneThreadTest, DestroyedWhileItsThreadLivesTouchesNoBufferAgain) { DestroyElsewhereWithReceivesInFlight(false); }

// The reactor echoes on the thread of its first wait() though it was built on another (the
// accept was queued there), and is destroyed on the thread that ran it: the plain case.
TEST_P(OneThreadTest, BuiltHereRunThereAndDestroyedThere) {
  std::unique_ptr<Reactor> reactor = MakeOneThreadReactor(GetParam());
  ASSERT_NE(reactor, nullptr);
  Listener listener;
  ASSERT_EQ(reactor->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .fd = listener.fd}), 0);
  BlockingClient client(listener.port);
  std::thread driver([&] {
    Completions completions(*reactor);
    Completion accepted = completions.Next(1);
    ASSERT_GE(accepted.result, 0);
    char buf[64];
    ASSERT_EQ(reactor->submit({.user_data = 2, .opcode = IoOpcode::kRecv, .fd = accepted.result, .len = sizeof buf,
                               .buf = buf}),
              0);
    Completion got = completions.Next(2);
    ASSERT_EQ(got.result, 4);
    ASSERT_EQ(reactor->submit({.user_data = 3, .opcode = IoOpcode::kSend, .fd = accepted.result, .len = 4, .buf = buf}),
              0);
    EXPECT_EQ(completions.Next(3).result, 4);
    reactor.reset();
    ::close(accepted.result);
  });
  ASSERT_TRUE(client.send_all("ping"));
  EXPECT_EQ(client.recv_exact(4), "ping");
  driver.join();
}

// The thread of the first wait() ends, and a new thread destroys the reactor: glibc is likely to
// give it the ended thread's pthread_t (it reuses a joined thread's stack, where that lives), but
// it is another thread for the kernel. destroy() keeps its promise there without complaint
// (io_uring: no io_uring_enter that the one-thread ring refuses, reported on stderr).
TEST_P(OneThreadTest, DestroyedByANewThreadAfterItsThreadEnded) {
  std::unique_ptr<Reactor> reactor = MakeOneThreadReactor(GetParam());
  ASSERT_NE(reactor, nullptr);
  Listener listener;
  ASSERT_EQ(reactor->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .flags = kOpMultishot, .fd = listener.fd}),
            0);
  pthread_t driver_id{};
  std::thread driver([&] {
    driver_id = ::pthread_self();
    Completion batch[4];
    EXPECT_TRUE(reactor->wait(batch, 0).ok());
  });
  driver.join();
  pthread_t destroyer_id{};
  ::testing::internal::CaptureStderr();
  std::thread destroyer([&] {
    destroyer_id = ::pthread_self();
    reactor.reset();
  });
  destroyer.join();
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  if (!::pthread_equal(driver_id, destroyer_id)) {
    std::printf("note: the destroying thread did not get the ended thread's pthread_t\n");
  }
}

// More connections than a ring of queue depth 8 holds completions for (its CQ ring: 32) come in
// one wait of the driving thread, which hands out one of them; the rest wait in the ring and on
// the kernel's overflow list, which only that thread may flush on io_uring's one-thread ring.
// Destroyed on another thread, the reactor closes every connection it took but did not hand
// out (the fixture counts this process's descriptors), as it does on its own thread.
TEST_P(OneThreadTest, DestroyedElsewhereClosesEveryConnectionNotHandedOut) {
  std::unique_ptr<Reactor> reactor = MakeOneThreadReactor(GetParam(), 8);
  ASSERT_NE(reactor, nullptr);
  auto listener = std::make_unique<Listener>();
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < 64; ++i) clients.push_back(std::make_unique<BlockingClient>(listener->port));
  ASSERT_EQ(reactor->submit({.user_data = 1, .opcode = IoOpcode::kAccept, .flags = kOpMultishot, .fd = listener->fd}),
            0);
  std::thread driver([&] {
    Completion one[1];
    absl::StatusOr<int> n = reactor->wait(one, 10'000'000'000);
    ASSERT_TRUE(n.ok()) << n.status();
    ASSERT_EQ(*n, 1);
    EXPECT_GE(one[0].result, 0);
    if (one[0].result >= 0) ::close(one[0].result);
  });
  driver.join();
  reactor.reset();  // on this thread, not the driver's
  listener.reset();
}

INSTANTIATE_TEST_SUITE_P(Backends, OneThreadTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

// io_uring on Linux 6.1 or later, unless the environment turns it off: the ring is a
// one-thread ring, so once a thread has waited on it the kernel refuses every other
// (io_uring_enter: EEXIST), which is what lets it run completion work in batches. (An io_uring
// setting: not a test of every backend.)
bool ExpectOneThreadRing() { return testing::IoUringFeatureExpected("BRRR_IO_URING_DEFER_TASKRUN", 6, 1); }

TEST(IoUringOneThreadRingTest, OnlyTheThreadOfTheFirstWaitMayWait) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(std::string("io_uring"));
  std::unique_ptr<Reactor> reactor = MakeOneThreadReactor("io_uring");
  ASSERT_NE(reactor, nullptr);
  std::thread first([&] {
    Completion batch[4];
    EXPECT_TRUE(reactor->wait(batch, 0).ok());
  });
  first.join();
  Completion batch[4];
  absl::StatusOr<int> second = reactor->wait(batch, 0);
  if (ExpectOneThreadRing()) {
    ASSERT_FALSE(second.ok()) << "another thread waited on a one-thread ring";
    EXPECT_NE(second.status().message().find(std::strerror(EEXIST)), std::string::npos) << second.status();
  } else {
    EXPECT_TRUE(second.ok()) << second.status();
  }
  // Without the promise the ring is an ordinary one: any thread may wait, one at a time.
  auto plain = PluginLoader::Default().CreateReactor("io_uring");
  ASSERT_TRUE(plain.ok()) << plain.status();
  std::thread other([&] { EXPECT_TRUE((*plain)->wait(batch, 0).ok()); });
  other.join();
  EXPECT_TRUE((*plain)->wait(batch, 0).ok());
}

}  // namespace
}  // namespace brrr
