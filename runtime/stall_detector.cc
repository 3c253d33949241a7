#include "runtime/stall_detector.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/line_output.h"

namespace brrr {
namespace {

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

// "after 12 tasks", and how the thread spent the time since the first sample where known.
std::string AfterTasks(const StallReport& r) {
  std::string text = absl::StrFormat("after %u tasks", r.tasks_run_before);
  if (std::optional<StallTimeSplit> split = SplitSinceFirstSample(r)) {
    absl::StrAppendFormat(&text,
                          "; since the first sample %.3f s: %.3f on a core, %.3f waiting for one, %.3f asleep or "
                          "blocked",
                          Seconds(split->span_ns), Seconds(split->on_core_ns), Seconds(split->waiting_for_core_ns),
                          Seconds(split->off_core_ns));
  }
  return text;
}

std::string FormatProgress(const StallReport& r) {
  std::string text = absl::StrFormat("brrr: loop %u: <%s> has been running for %.3f seconds (%s)", r.loop_id, r.task,
                                     Seconds(r.duration_ns), AfterTasks(r));
  if (r.samples.empty()) return text;
  const StallSample& newest = r.samples.back();
  if (newest.frames.empty()) {
    absl::StrAppend(&text, ", stack not sampled (the loop thread did not answer in time)");
    return text;
  }
  if (r.samples.size() >= 2 && r.samples[r.samples.size() - 2].frames == newest.frames) {
    absl::StrAppendFormat(&text, ", same stack as at %.3f seconds", Seconds(r.samples[r.samples.size() - 2].running_ns));
    return text;
  }
  absl::StrAppend(&text, ", stack:");
  for (size_t i = 0; i < newest.frames.size(); ++i) absl::StrAppendFormat(&text, "\n    #%u %s", i, newest.frames[i]);
  return text;
}

// Whether a frame is in the C or C++ runtime rather than in the program: the end-of-stall
// line names the innermost frame that is not, where the program's own code was.
bool InRuntimeLibrary(const std::string& frame) {
  static constexpr const char* kObjects[] = {"(linux-vdso.so", "(libc.so", "(libstdc++.so", "(libm.so",
                                             "(libgcc_s.so", "(ld-linux", "(libtsan.so", "(libasan.so", "(libubsan.so"};
  for (const char* object : kObjects) {
    if (frame.find(object) != std::string::npos) return true;
  }
  return frame.starts_with("std::") || frame.starts_with("??");
}

const std::string& OwnFrame(const std::vector<std::string>& frames) {
  for (const std::string& frame : frames) {
    if (!InRuntimeLibrary(frame)) return frame;
  }
  return frames.front();
}

}  // namespace

std::optional<StallTimeSplit> SplitSinceFirstSample(const StallReport& r) {
  if (r.samples.empty()) return std::nullopt;
  const StallSample& first = r.samples.front();
  const ThreadTimes& last = r.in_progress ? r.samples.back().thread : r.thread_at_end;
  const int64_t last_running_ns = r.in_progress ? r.samples.back().running_ns : r.duration_ns;
  if (!first.thread.known() || !last.known() || last_running_ns <= first.running_ns) return std::nullopt;
  StallTimeSplit split;
  split.span_ns = last_running_ns - first.running_ns;
  // The thread's clocks and the loop's are read a moment apart: the parts are kept within the
  // span and add up to it.
  split.on_core_ns = std::clamp<int64_t>(last.cpu_ns - first.thread.cpu_ns, 0, split.span_ns);
  split.waiting_for_core_ns =
      std::clamp<int64_t>(last.run_queue_wait_ns - first.thread.run_queue_wait_ns, 0, split.span_ns - split.on_core_ns);
  split.off_core_ns = split.span_ns - split.on_core_ns - split.waiting_for_core_ns;
  return split;
}

std::string FormatStall(const StallReport& r) {
  if (r.in_progress) return FormatProgress(r);
  std::string line = absl::StrFormat("brrr: loop %u: executing <%s> took %.3f seconds (%s)", r.loop_id, r.task,
                                     Seconds(r.duration_ns), AfterTasks(r));
  auto answered = std::find_if(r.samples.rbegin(), r.samples.rend(),
                               [](const StallSample& s) { return !s.frames.empty(); });
  if (answered != r.samples.rend()) {
    absl::StrAppendFormat(&line, "; stack sampled %u %s, last in %s", r.samples.size(),
                          r.samples.size() == 1 ? "time" : "times", OwnFrame(answered->frames));
  }
  return line;
}

StallDetector::StallDetector(uint32_t loop_id, int64_t threshold_ns, Sink sink)
    : loop_id_(loop_id), threshold_ns_(threshold_ns), sink_(std::move(sink)) {
  if (!sink_) {
    sink_ = [](const std::string& line) { PrintToStderr("%s", line); };
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

std::string StallDetector::publish(const StallReport& r, int64_t now_ns) {
  for (auto& [id, subscriber] : subscribers_) subscriber(r);
  if (!may_print(now_ns)) {
    ++(r.in_progress ? unprinted_samples_ : unprinted_);
    return "";
  }
  std::string text = FormatStall(r);
  std::string note;
  if (unprinted_ > 0) note = absl::StrFormat(" [%u more stalls not printed]", unprinted_);
  if (unprinted_samples_ > 0) {
    note = absl::StrFormat(" [%u more stalls and %u stall samples not printed]", unprinted_, unprinted_samples_);
  }
  unprinted_ = unprinted_samples_ = 0;
  // On the first line, where a reader of the log looks for it.
  text.insert(std::min(text.find('\n'), text.size()), note);
  return text;
}

void StallDetector::report(const TaskLabel& label, int64_t duration_ns, uint64_t tasks_run_before, int64_t now_ns,
                           ThreadTimes thread) {
  count_.add(1);
  std::unique_lock<std::mutex> printing(print_mu_, std::defer_lock);
  StallReport r;
  r.loop_id = loop_id_;
  r.task = label.ToString();
  r.duration_ns = duration_ns;
  r.tasks_run_before = tasks_run_before;
  r.detected_at_ns = now_ns;
  r.sequence = count_.load();
  r.thread_at_end = thread;

  std::string text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_ended_start_ns_ = now_ns - duration_ns;
    if (in_progress_.has_value() && in_progress_start_ns_ == last_ended_start_ns_) {
      r.samples = std::move(in_progress_->samples);
      in_progress_.reset();
      sampled_start_ns_.store(0, std::memory_order_relaxed);
    }
    recent_.push_back(r);
    if (recent_.size() > kRecentCapacity) recent_.pop_front();
    text = publish(r, now_ns);
    if (!text.empty()) printing.lock();
  }
  if (!text.empty()) sink_(text);
}

void StallDetector::report_progress(const TaskLabel& label, int64_t start_ns, uint64_t tasks_run_before,
                                    int64_t now_ns, StallSample sample) {
  std::string text;
  std::unique_lock<std::mutex> printing(print_mu_, std::defer_lock);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The task ended (and was reported) between the watchdog's look and now.
    if (start_ns <= last_ended_start_ns_) return;
    if (!in_progress_.has_value() || in_progress_start_ns_ != start_ns) {
      in_progress_.emplace();
      in_progress_start_ns_ = start_ns;
      in_progress_->loop_id = loop_id_;
      in_progress_->task = label.ToString();
      in_progress_->tasks_run_before = tasks_run_before;
      in_progress_->in_progress = true;
      // The loop is inside this task, so no other stall can end before it does.
      in_progress_->sequence = count_.load() + 1;
      sampled_start_ns_.store(start_ns, std::memory_order_relaxed);
    }
    StallReport& r = *in_progress_;
    r.duration_ns = now_ns - start_ns;
    r.detected_at_ns = now_ns;
    // The first sample shows where the stall began; the newest ones where it is going.
    if (r.samples.size() >= kSamplesKept) r.samples.erase(r.samples.begin() + 1);
    r.samples.push_back(std::move(sample));
    text = publish(r, now_ns);
    if (!text.empty()) printing.lock();
  }
  if (!text.empty()) sink_(text);
}

void StallDetector::progress_ended(int64_t start_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_progress_.has_value() && in_progress_start_ns_ == start_ns) {
    in_progress_.reset();
    sampled_start_ns_.store(0, std::memory_order_relaxed);
  }
}

uint64_t StallDetector::stalls_seen() const {
  uint64_t seen = count_.load();
  {
    // The stall in progress has the sequence its end will take: the count once it has ended.
    std::lock_guard<std::mutex> lock(mu_);
    if (in_progress_.has_value()) seen = std::max(seen, in_progress_->sequence);
  }
  // The watchdog may drop a stall in progress (progress_ended) just before the loop reports its
  // end: what was given stands meanwhile.
  return stalls_seen_given_.give(seen);
}

std::vector<StallReport> StallDetector::recent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {recent_.begin(), recent_.end()};
}

std::optional<StallReport> StallDetector::in_progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_progress_;
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
