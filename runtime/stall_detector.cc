#include "runtime/stall_detector.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace brrr {

std::string FormatStall(const StallReport& r) {
  return absl::StrFormat("brrr: loop %u: executing <%s> took %.3f seconds (after %u tasks)",
                         r.loop_id, r.task, static_cast<double>(r.duration_ns) / 1e9,
                         r.tasks_run_before);
}

StallDetector::StallDetector(uint32_t loop_id, int64_t threshold_ns, Sink sink)
    : loop_id_(loop_id), threshold_ns_(threshold_ns), sink_(std::move(sink)) {
  if (!sink_) {
    sink_ = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  }
}

bool StallDetector::may_print(int64_t now_ns) {
  if (tokens_updated_ns_ != 0) {
    double elapsed_s = static_cast<double>(now_ns - tokens_updated_ns_) / 1e9;
    print_tokens_ = std::min(kPrintBurst, print_tokens_ + elapsed_s * kPrintsPerSecond);
  }
  tokens_updated_ns_ = now_ns;
  if (print_tokens_ < 1) return false;
  print_tokens_ -= 1;
  return true;
}

void StallDetector::report(const TaskLabel& label, int64_t duration_ns,
                           uint64_t tasks_run_before, int64_t now_ns) {
  count_.add(1);
  StallReport r;
  r.loop_id = loop_id_;
  r.task = label.ToString();
  r.duration_ns = duration_ns;
  r.tasks_run_before = tasks_run_before;
  r.detected_at_ns = now_ns;
  r.sequence = count_.load();

  std::string line;
  {
    std::lock_guard<std::mutex> lock(mu_);
    recent_.push_back(r);
    if (recent_.size() > kRecentCapacity) recent_.pop_front();
    for (auto& [id, subscriber] : subscribers_) subscriber(r);
    if (may_print(now_ns)) {
      line = FormatStall(r);
      if (unprinted_ > 0) {
        absl::StrAppend(&line, absl::StrFormat(" [%u more stalls not printed]", unprinted_));
        unprinted_ = 0;
      }
    } else {
      ++unprinted_;
    }
  }
  if (!line.empty()) sink_(line);
}

std::vector<StallReport> StallDetector::recent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {recent_.begin(), recent_.end()};
}

uint64_t StallDetector::subscribe(Subscriber subscriber) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = next_subscriber_id_++;
  subscribers_.emplace(id, std::move(subscriber));
  return id;
}

void StallDetector::unsubscribe(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.erase(id);
}

}  // namespace brrr
