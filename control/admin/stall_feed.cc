#include "control/admin/stall_feed.h"

#include <algorithm>

namespace brrr::control {

StallFeed::StallFeed(std::vector<EventLoop*> loops, bool in_progress, std::function<void()> arrived)
    : loops_(std::move(loops)), in_progress_(in_progress), queue_(std::make_shared<Queue>()) {
  for (EventLoop* loop : loops_) {
    subscriptions_.push_back(
        loop->stall_detector().subscribe([queue = queue_, in_progress, arrived](const StallReport& report) {
          if (report.in_progress && !in_progress) return;
          {
            std::lock_guard<std::mutex> lock(queue->mu);
            if (queue->reports.size() >= kQueueLimit) {
              queue->reports.pop_front();
              ++queue->dropped;
            }
            queue->reports.push_back(report);
          }
          if (arrived != nullptr) arrived();
        }));
  }
}

StallFeed::~StallFeed() {
  for (size_t i = 0; i < loops_.size(); ++i) loops_[i]->stall_detector().unsubscribe(subscriptions_[i]);
}

std::vector<StallReport> StallFeed::Recent() const {
  std::vector<StallReport> all;
  for (EventLoop* loop : loops_) {
    std::vector<StallReport> recent = loop->stall_detector().recent();
    all.insert(all.end(), recent.begin(), recent.end());
  }
  std::sort(all.begin(), all.end(),
            [](const StallReport& a, const StallReport& b) { return a.detected_at_ns < b.detected_at_ns; });
  if (in_progress_) {
    for (EventLoop* loop : loops_) {
      if (std::optional<StallReport> running = loop->stall_detector().in_progress()) all.push_back(*running);
    }
  }
  return all;
}

std::optional<StallReport> StallFeed::Next() {
  std::lock_guard<std::mutex> lock(queue_->mu);
  if (queue_->reports.empty()) return std::nullopt;
  StallReport report = std::move(queue_->reports.front());
  queue_->reports.pop_front();
  return report;
}

uint64_t StallFeed::dropped() const {
  std::lock_guard<std::mutex> lock(queue_->mu);
  return queue_->dropped;
}

}  // namespace brrr::control
