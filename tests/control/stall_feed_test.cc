// StallFeed, the queue behind WatchStalls: a reader that falls behind loses the oldest reports
// past StallFeed::kQueueLimit, counted, and sees the gap in their sequence numbers; the queue
// holds no more than the limit (a client that never reads cannot make it grow).
#include "control/admin/stall_feed.h"

#include <memory>
#include <optional>

#include "gtest/gtest.h"
#include "runtime/event_loop.h"
#include "runtime/task_label.h"

namespace brrr::control {
namespace {

TEST(StallFeedTest, AReaderThatFallsBehindLosesTheOldestPastTheLimitAndSeesTheGap) {
  EventLoopOptions options;
  options.stall_sink = [](const std::string&) {};
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create(std::move(options));
  ASSERT_TRUE(loop.ok()) << loop.status();
  StallFeed feed({loop->get()});
  constexpr uint64_t kBeyond = 10;
  for (uint64_t i = 0; i < StallFeed::kQueueLimit + kBeyond; ++i) {
    (*loop)->stall_detector().report(TaskLabel("test:stall"), 200'000'000, i, 1'000'000'000 + i);
  }
  EXPECT_EQ(feed.dropped(), kBeyond);
  std::optional<StallReport> first = feed.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->sequence, kBeyond + 1) << "the oldest ten were dropped";
  uint64_t kept = 1;
  uint64_t last = first->sequence;
  while (std::optional<StallReport> next = feed.Next()) {
    EXPECT_EQ(next->sequence, last + 1);
    last = next->sequence;
    ++kept;
  }
  EXPECT_EQ(kept, StallFeed::kQueueLimit);
  EXPECT_EQ(last, StallFeed::kQueueLimit + kBeyond);
}

// Each report queued calls `arrived` (WatchStalls' wait is woken so, not by looking again and
// again); a report the feed does not want (a sample of a stall in progress) does not.
TEST(StallFeedTest, EachReportQueuedCallsArrived) {
  EventLoopOptions options;
  options.stall_sink = [](const std::string&) {};
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create(std::move(options));
  ASSERT_TRUE(loop.ok()) << loop.status();
  int arrived = 0;
  StallFeed feed({loop->get()}, /*in_progress=*/false, [&] { ++arrived; });
  (*loop)->stall_detector().report(TaskLabel("test:stall"), 200'000'000, 1, 1'000'000'000);
  EXPECT_EQ(arrived, 1);
  (*loop)->stall_detector().report(TaskLabel("test:stall"), 200'000'000, 2, 2'000'000'000);
  EXPECT_EQ(arrived, 2);
  ASSERT_TRUE(feed.Next().has_value());
  ASSERT_TRUE(feed.Next().has_value());
  EXPECT_FALSE(feed.Next().has_value());
}

}  // namespace
}  // namespace brrr::control
