// io_uring_full_sq_test.cc: the io_uring backend when its submission queue (SQ) is full and the
// kernel takes no flush of it (a copy of the backend whose flushes fail with EAGAIN:
// faults/full_sq_shim.c). What finds no SQE then (the read of the wake-up eventfd, a cancel, a
// request kept before the first wait, the re-arm of an operation that goes on) is owed, and
// queued as soon as a wait has made room: it neither fails a wait (the loop aborts on a wait's
// error), nor ends an operation, nor leaves a wait blocked without it. On reactors of queue
// depth 8, io_uring's smallest SQ.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/plugin_loader.h"
#include "runtime/reactor.h"
#include "runtime/unique_fd.h"
#include "tests/reactors/reactor_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::AcceptOne;
using testing::BlockingClient;
using testing::Listener;

// The limit each wait that should end at once is given. One that runs to it fails: on its count
// of completions, or, for a wake-up (0 completions either way), on having reached its limit.
constexpr auto kWaitLimit = seconds(20);

std::string FullSqIoUring() {
  const char* root = std::getenv("TEST_SRCDIR");
  return std::string(root != nullptr ? root : ".") + "/brrr/tests/reactors/faults/full_sq/libbrrr_reactor_io_uring.so";
}

class FullSqTest : public testing::ReactorTest {
 protected:
  static constexpr int kSqEntries = 8;  // the SQ of a ring of queue depth 8, io_uring's smallest
  static constexpr uint64_t kFiller = 1000;  // user_data of FillSq's waits: kFiller + pipe index

  void SetUp() override {
    ReactorTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(MakeSmallOneThreadReactor());
    // The first wait enables a one-thread ring and starts the wake-up read.
    ASSERT_EQ(WaitWithoutBlocking(), 0);
  }

  // reactor_: a one-thread ring of kSqEntries, not waited on yet.
  void MakeSmallOneThreadReactor() {
    ReactorConfig config;
    config.queue_depth = kSqEntries;
    config.one_thread = true;
    auto made = PluginLoader::Default().CreateReactor(GetParam(), config);
    ASSERT_TRUE(made.ok()) << made.status();
    reactor_ = *std::move(made);
  }

  void TearDown() override {
    if (reactor_ != nullptr && !HasFailure()) EndFillerWaits();
    reactor_.reset();
    for (const std::array<int, 2>& p : pipes_) {
      ::close(p[0]);
      ::close(p[1]);
    }
    ReactorTest::TearDown();
  }

  // A pipe whose read end nothing writes to, unless the test does.
  std::array<int, 2> NewPipe() {
    int p[2] = {-1, -1};
    EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    pipes_.push_back({p[0], p[1]});
    return pipes_.back();
  }

  // Fills the SQ, empty since the last wait that entered the kernel: submits kSqEntries waits
  // for readability on new idle pipes.
  void FillSq() {
    for (int i = 0; i < kSqEntries; ++i) {
      const uint64_t id = kFiller + pipes_.size();
      ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kPollReadable, .fd = NewPipe()[0]}), 0);
      fillers_.push_back(id);
    }
  }

  // Cancels FillSq's waits and collects their final completions.
  void EndFillerWaits() {
    for (uint64_t id : fillers_) EXPECT_EQ(reactor_->cancel(pipes_[id - kFiller][0], id), 0);
    std::vector<Completion> all = WaitUntil([&](const std::vector<Completion>& a) {
      size_t finals = 0;
      for (const Completion& c : a) finals += c.user_data >= kFiller && !c.more();
      return finals == fillers_.size();
    });
    for (const Completion& c : all) EXPECT_EQ(c.result, -ECANCELED) << "filler " << c.user_data;
    fillers_.clear();
  }

  std::vector<std::array<int, 2>> pipes_;
  std::vector<uint64_t> fillers_;
  std::vector<char> pool_;  // a provided-buffer pool: lent to the reactor until it is destroyed
};

// The wake-up read's completion is reaped while the SQ is full, so its re-arm finds no SQE. The
// waits after it go on (they failed, and the loop aborted the process); and a wake() that comes
// while the read is still owed ends the next wait soon: the eventfd keeps its count, and the
// read, once queued, completes at once.
TEST_P(FullSqTest, AWakeUpReadThatFindsNoSqeIsOwedNotAWaitError) {
  std::array<int, 2> p = NewPipe();
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kPollReadable, .fd = p[0]}), 0);
  ASSERT_EQ(WaitWithoutBlocking(), 0);
  // Two completions, in this order (both come from this thread's own writes): the wait's, then
  // the wake-up read's. A wait with room for one takes the first and leaves the other.
  ASSERT_EQ(::write(p[1], "x", 1), 1);
  reactor_->wake();
  Completion one[1];
  absl::StatusOr<int> n = reactor_->wait(one, 0);
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(*n, 1);
  EXPECT_EQ(one[0].user_data, 1u);

  ASSERT_NO_FATAL_FAILURE(FillSq());
  EXPECT_EQ(WaitWithoutBlocking(), 0) << "the wait that reaps the wake-up read";
  EXPECT_EQ(WaitWithoutBlocking(), 0) << "the wait after it, which finds the read owed";

  ASSERT_NO_FATAL_FAILURE(FillSq());
  reactor_->wake();
  Completion batch[8];
  TimePoint start = Clock::now();
  n = reactor_->wait(batch, std::chrono::nanoseconds(kWaitLimit).count());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_LT(Clock::now() - start, kWaitLimit) << "a wake-up that came while the read was owed did not end the wait";
}

// A cancel that finds the SQ full is owed. The wait that follows queues it as soon as it has
// made room, not at the wait after it, which nothing may bring: on an idle loop, a socket's
// close waits for its cancelled operation's final completion.
TEST_P(FullSqTest, ACancelThatFindsNoSqeEndsItsOperationWithinTheNextWait) {
  std::array<int, 2> p = NewPipe();
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kPollReadable, .fd = p[0]}), 0);
  ASSERT_EQ(WaitWithoutBlocking(), 0);  // in the kernel
  ASSERT_NO_FATAL_FAILURE(FillSq());
  ASSERT_EQ(reactor_->cancel(p[0], 1), 0);
  Completion batch[8];
  absl::StatusOr<int> n = reactor_->wait(batch, std::chrono::nanoseconds(kWaitLimit).count());
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(*n, 1) << "no final completion for the cancelled operation";
  EXPECT_EQ(batch[0].user_data, 1u);
  EXPECT_EQ(batch[0].result, -ECANCELED);
  EXPECT_FALSE(batch[0].more());
}

// Operations submitted before the first wait, past what the SQ holds, are kept for that wait to
// arm: a one-thread ring cannot be entered before it, and here no flush is taken either. With
// the SQ full and its flush not taken, the wait arms them as soon as it has made room, not at
// the wait after it: one that completes at once does so within the first.
TEST_P(FullSqTest, RequestsOwedBeforeTheFirstWaitAreArmedWithinIt) {
  ASSERT_NO_FATAL_FAILURE(MakeSmallOneThreadReactor());  // afresh: no wait yet
  for (int i = 0; i < 12; ++i) {
    const uint64_t id = kFiller + pipes_.size();
    ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kPollReadable, .fd = NewPipe()[0]}), 0);
    fillers_.push_back(id);
  }
  std::array<int, 2> p = NewPipe();
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kPollWritable, .fd = p[1]}), 0);
  Completion batch[8];
  absl::StatusOr<int> n = reactor_->wait(batch, std::chrono::nanoseconds(kWaitLimit).count());
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(*n, 1) << "the wait for a writable pipe did not complete";
  EXPECT_EQ(batch[0].user_data, 1u);
  EXPECT_EQ(batch[0].result, 0);
}

// More receives complete at once than the SQ has entries, each re-armed as it is reaped (an
// emulated multishot receive: a length below the buffer size makes single-shot requests). The
// re-arms past the SQ's room are owed, not the operations' end: every completion is flagged
// MORE, and every receive goes on to take the next message; cancelled, each ends.
TEST_P(FullSqTest, ReArmsThatFindNoSqeAreOwedAndTheOperationsGoOn) {
  constexpr uint32_t kSize = 1024;
  constexpr uint32_t kCount = 64;
  constexpr int kConnections = 16;  // twice the SQ
  pool_.resize(kSize * kCount);
  ASSERT_EQ(reactor_->provide_buffers(pool_.data(), kSize, kCount), absl::OkStatus());
  Listener l;
  std::vector<std::unique_ptr<BlockingClient>> clients;
  std::vector<UniqueFd> fds;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<BlockingClient>(l.port));
    fds.emplace_back(AcceptOne(l));
    ASSERT_TRUE(fds.back().valid());
    ASSERT_EQ(reactor_->submit({.user_data = static_cast<uint64_t>(i + 1),
                                .opcode = IoOpcode::kRecv,
                                .flags = kOpMultishot | kOpBufferSelect,
                                .fd = fds.back().get(),
                                .len = 16}),
              0);
    if (i % 4 == 3) {
      ASSERT_EQ(WaitWithoutBlocking(), 0);  // four at a time: the SQ holds eight
    }
  }
  auto each_receives = [&](const std::string& message) {
    for (auto& client : clients) ASSERT_TRUE(client->send_all(message));
    // Every receive completes before the next wait, which reaps them all at once.
    std::this_thread::sleep_for(milliseconds(50));
    std::vector<int> received(kConnections, 0);
    std::vector<Completion> all = WaitUntil([&](const std::vector<Completion>& a) { return a.size() >= kConnections; });
    for (const Completion& c : all) {
      ASSERT_GE(c.user_data, 1u);
      ASSERT_LE(c.user_data, static_cast<uint64_t>(kConnections));
      EXPECT_TRUE(c.more()) << "receive " << c.user_data << " ended (" << c.result << ")";
      ASSERT_TRUE(c.has_buffer());
      EXPECT_EQ(std::string(pool_.data() + c.buffer_id * kSize, c.result), message);
      reactor_->recycle_buffer(c.buffer_id);
      ++received[c.user_data - 1];
    }
    for (int i = 0; i < kConnections; ++i) EXPECT_EQ(received[i], 1) << "receive " << i + 1;
  };
  each_receives("hello");
  ASSERT_FALSE(HasFailure());
  each_receives("again");
  ASSERT_FALSE(HasFailure());

  for (int i = 0; i < kConnections; ++i) ASSERT_EQ(reactor_->cancel(fds[i].get(), i + 1), 0);
  std::vector<Completion> all = WaitUntil([&](const std::vector<Completion>& a) {
    size_t finals = 0;
    for (const Completion& c : a) finals += c.user_data <= kConnections && !c.more();
    return finals == kConnections;
  });
  for (const Completion& c : all) EXPECT_EQ(c.result, -ECANCELED) << "receive " << c.user_data;
  for (const UniqueFd& fd : fds) EXPECT_EQ(reactor_->release_fd(fd.get()), 0);
}

INSTANTIATE_TEST_SUITE_P(FullSq, FullSqTest, ::testing::Values(FullSqIoUring()), testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
