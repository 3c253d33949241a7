// StallFeed, the queue behind WatchStalls: a reader that falls behind loses the oldest reports
// past StallFeed::kQueueLimit, counted, and sees the gap in their sequence numbers; the queue
// holds no more than the limit (a client that never reads cannot make it grow).
#include "control/admin/stall_feed.h"

#include <chrono>
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
  const auto now = std::chrono::steady_clock::now();
  std::optional<StallReport> first = feed.Next(now);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->sequence, kBeyond + 1) << "the oldest ten were dropped";
  uint64_t kept = 1;
  uint64_t last = first->sequence;
  while (std::optional<StallReport> next = feed.Next(now)) {
    EXPECT_EQ(next->sequence, last + 1);
    last = next->sequence;
    ++kept;
  }
  EXPECT_EQ(kept, StallFeed::kQueueLimit);
  EXPECT_EQ(last, StallFeed::kQueueLimit + kBeyond);
}

}  // namespace
}  // namespace brrr::control
