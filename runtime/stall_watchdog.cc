#include "runtime/stall_watchdog.h"

#include <algorithm>
#include <optional>

#include "runtime/hot_path.h"
#include "runtime/symbolizer.h"

namespace brrr {

StallWatchdog::StallWatchdog(Watched watched) : watched_(watched) {}

StallWatchdog::~StallWatchdog() {
  // Whoever destroys the loop owns it now: no Running scope is alive, none can start.
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StallWatchdog::loop_idle() {
  uint32_t expected = kBusy;
  state_.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel);
}

BRRR_HOT_PATH void StallWatchdog::loop_busy() {
  if (state_.exchange(kBusy, std::memory_order_acq_rel) != kParked) return;
  // Rare: only after the watchdog found the loop idle and went to sleep.
  std::lock_guard<std::mutex> lock(mu_);
  wake_.notify_one();
}

StallWatchdog::Running::Running(StallWatchdog* watchdog)
    : watchdog_(watchdog), bound_(watchdog != nullptr ? watchdog->watched_.sampler : nullptr) {
  if (watchdog_ == nullptr) return;
  if (!watchdog_->thread_.joinable()) {
    StackSampler::SignalBlockedScope not_for_the_watchdog;  // bound_ has just opened it here
    watchdog_->thread_ = std::thread([w = watchdog_] { w->run(); });
  }
  ++watchdog_->running_depth_;
  watchdog_->loop_busy();
}

StallWatchdog::Running::~Running() {
  if (watchdog_ == nullptr) return;
  if (--watchdog_->running_depth_ == 0) watchdog_->loop_idle();
}

void StallWatchdog::run() {
  std::unique_lock<std::mutex> lock(mu_);
  int64_t sampled_start = 0;  // the start of the stalled task being sampled, 0 when none
  int64_t next_sample_ns = 0;
  auto forget_stall = [&] {
    if (sampled_start != 0) watched_.detector->progress_ended(sampled_start);
    sampled_start = 0;
  };
  while (!stopping_) {
    uint32_t idle = kIdle;
    if (state_.compare_exchange_strong(idle, kParked, std::memory_order_acq_rel)) {
      forget_stall();
      idle_sleeps_.fetch_add(1, std::memory_order_relaxed);
      wake_.wait(lock, [this] { return stopping_ || state_.load(std::memory_order_acquire) != kParked; });
      continue;
    }
    looks_.fetch_add(1, std::memory_order_relaxed);
    const int64_t threshold = std::max<int64_t>(watched_.detector->threshold_ns(), 1'000'000);
    int64_t now = MonotonicNanos();
    std::optional<CurrentTask::Snapshot> task = watched_.current->read();
    int64_t wake_at;
    // The task being sampled stays a stall, sampled at the threshold's pace, until it ends,
    // though the threshold was raised past its duration meanwhile: its samples went out with
    // the sequence its end takes, and the loop reports that end (StallDetector::was_sampled).
    if (task.has_value() && (now - task->start_ns >= threshold || task->start_ns == sampled_start)) {
      if (task->start_ns != sampled_start) {
        forget_stall();
        sampled_start = task->start_ns;
        next_sample_ns = now;
      }
      if (now >= next_sample_ns) {
        lock.unlock();
        now = sample(*task);
        lock.lock();
        next_sample_ns = DeadlineAfter(now, Duration(threshold));
      }
      wake_at = next_sample_ns;
    } else {
      forget_stall();
      // A task running now crosses the threshold at its start plus the threshold; one that
      // starts later, a threshold after that at the earliest.
      wake_at = DeadlineAfter(task.has_value() ? task->start_ns : now, Duration(threshold));
    }
    wake_at = std::min(wake_at, now + kLongestSleep.count());
    wake_.wait_until(lock, FromNanos(wake_at), [this] { return stopping_; });
  }
  lock.unlock();
  forget_stall();
}

int64_t StallWatchdog::sample(const CurrentTask::Snapshot& task) {
  samples_.fetch_add(1, std::memory_order_relaxed);
  StallSample sample;
  std::optional<StackSampler::Sample> stack = watched_.sampler->sample(kSampleTimeout);
  int64_t now = MonotonicNanos();
  // The task may have ended while the signal was on its way: then the stack is some later
  // task's (or the loop's own), and is not reported as this one's.
  std::optional<CurrentTask::Snapshot> still = watched_.current->read();
  if (!still.has_value() || still->start_ns != task.start_ns) return now;
  sample.running_ns = now - task.start_ns;
  if (watched_.thread_times != nullptr) {
    sample.thread = {.cpu_ns = watched_.thread_times->total_ns(),
                     .run_queue_wait_ns = watched_.thread_times->run_queue_wait_ns()};
  }
  if (stack.has_value()) sample.frames = SymbolizeFrames(stack->pcs);
  watched_.detector->report_progress(task.label, task.start_ns, watched_.tasks_run->load(), now, std::move(sample));
  return MonotonicNanos();
}

}  // namespace brrr
