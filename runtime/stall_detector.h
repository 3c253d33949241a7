// stall_detector.h: reports tasks that held their event loop for too long.
//
// The loop measures every task it runs. One that ran for at least the threshold (default
// 100 ms, changeable at any time from any thread) is a stall: it is counted, kept in a small
// ring of recent stalls, handed to every subscriber, and printed, as asyncio's debug mode
// prints "Executing <Task ...> took 0.105 seconds":
//
//   brrr: loop 0: executing <inject:blocking_spin> took 0.300 seconds (after 1234 tasks)
//
// While such a task still runs, the loop's watchdog (stall_watchdog.h) samples where the
// loop thread is and reports each sample here (report_progress): it is printed with its
// stack, handed to subscribers as a report with in_progress set, and kept with the stall, so
// the report at the task's end carries the stacks too:
//
//   brrr: loop 0: <inject:blocking_spin> has been running for 0.100 seconds (after 1234 tasks), stack:
//       #0 brrr::control::(anonymous namespace)::InjectedBlockingSpin() (brrr-echo+0x66997)
//       #1 brrr::control::TaskInjector::StartRun() (brrr-echo+0x68d71)
//       ...
//   brrr: loop 0: <inject:blocking_spin> has been running for 0.200 seconds (after 1234 tasks; since the first sample
//   0.100 s: 0.099 on a core, 0.001 waiting for one, 0.000 asleep or blocked), same stack as at 0.100 seconds brrr:
//   loop 0: executing <inject:blocking_spin> took 0.300 seconds (after 1234 tasks; since the first sample 0.200 s:
//   0.198 on a core, 0.002 waiting for one, 0.000 asleep or blocked); stack sampled 2 times, last in
//   brrr::control::(anonymous namespace)::InjectedBlockingSpin() (brrr-echo+0x66997)
//
// (Since the first sample, the loop thread's time split three ways, from its CPU clock and the
// kernel's schedstat: a task computing, a loop starved of CPU, a task blocked in the kernel.)
//
// (The end line names the innermost frame of the newest answered sample that is not in the C
// or C++ runtime, that is where the program's own code was.)
//
// Printing is rate-limited (a burst of 10, then 10 a second); what was not printed is counted
// and mentioned in the next line that is. Counting and subscribers are not rate-limited.
//
// Threads: report() runs on the loop thread (it is the slow path: a stall just happened);
// report_progress() and progress_ended() on the watchdog's. Everything else is thread-safe.
// Subscribers are called on either of those threads and must return quickly (copy the
// report into a queue of their own).
#ifndef BRRR_RUNTIME_STALL_DETECTOR_H_
#define BRRR_RUNTIME_STALL_DETECTOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/never_falling.h"
#include "runtime/single_writer.h"
#include "runtime/task_label.h"

namespace brrr {

// The loop thread's own time so far, as its CPU clock and the kernel's schedstat count it
// (ThreadCpuClock): totals, -1 where not read.
struct ThreadTimes {
  int64_t cpu_ns = -1;
  int64_t run_queue_wait_ns = -1;
  bool known() const { return cpu_ns >= 0 && run_queue_wait_ns >= 0; }
};

// One look at a stalled loop thread's stack.
struct StallSample {
  int64_t running_ns = 0;           // how long the task had been running then
  std::vector<std::string> frames;  // innermost first; empty: the thread did not answer in time
  ThreadTimes thread;               // the loop thread's times then
};

struct StallReport {
  uint32_t loop_id = 0;
  std::string task;              // the task's label (name or call site)
  int64_t duration_ns = 0;       // how long it ran
  uint64_t tasks_run_before = 0; // tasks the loop had completed before this one
  int64_t detected_at_ns = 0;    // monotonic clock, when it ended
  uint64_t sequence = 0;         // 1, 2, ... per loop
  // True while the task still runs: duration_ns is how long so far, detected_at_ns when the
  // stack was sampled. Such a report has the sequence its stall will end with.
  bool in_progress = false;
  // The stacks sampled while it ran, oldest first: the first and the newest ones, at most
  // StallDetector::kSamplesKept. Empty when it ended before the watchdog looked.
  std::vector<StallSample> samples;
  // The loop thread's times as the task ended (unknown while it runs: the newest sample has
  // them).
  ThreadTimes thread_at_end;
};

// How the loop thread spent a stall from its first sample on (to its end, or to the newest
// sample while it runs): on a core, waiting for one (ready, on the kernel's run queue: more
// runnable threads than cores), or neither (asleep or blocked in the kernel: I/O, a lock, a
// page fault). The parts add up to the span.
struct StallTimeSplit {
  int64_t span_ns = 0;
  int64_t on_core_ns = 0;
  int64_t waiting_for_core_ns = 0;
  int64_t off_core_ns = 0;
};
// Nullopt when there is no such span (no sample; one only, the task still running) or the
// thread's times were not read.
std::optional<StallTimeSplit> SplitSinceFirstSample(const StallReport& report);

// Formats a report as it is printed (without the final newline): one line for a stall that
// ended, a line and its stack for a sample of one in progress.
std::string FormatStall(const StallReport& report);

class StallDetector {
 public:
  using Sink = std::function<void(const std::string& line)>;
  using Subscriber = std::function<void(const StallReport&)>;

  static constexpr int64_t kDefaultThresholdNs = 100'000'000;
  static constexpr size_t kRecentCapacity = 64;
  static constexpr size_t kSamplesKept = 8;

  // `sink` receives printed lines; the default writes them to stderr (LineOutput: the loop does
  // not wait for the reader).
  explicit StallDetector(uint32_t loop_id, int64_t threshold_ns = kDefaultThresholdNs,
                         Sink sink = nullptr);

  int64_t threshold_ns() const { return threshold_ns_.load(); }
  // Any thread. Values <= 0 are rejected by callers that take user input.
  void set_threshold_ns(int64_t ns) { threshold_ns_.store(ns); }

  // Loop thread: whether the task that started at start_ns was reported in progress
  // (report_progress). Its end is then a stall whatever the threshold is by then: its samples
  // went out with the sequence that end takes. One relaxed load, checked after every task.
  bool was_sampled(int64_t start_ns) const { return sampled_start_ns_.load(std::memory_order_relaxed) == start_ns; }

  // Loop thread: a task labelled `label` ran for duration_ns >= threshold, or was sampled;
  // `thread`: the loop thread's times now.
  void report(const TaskLabel& label, int64_t duration_ns, uint64_t tasks_run_before, int64_t now_ns,
              ThreadTimes thread = {});

  // Watchdog thread: the task labelled `label`, started at start_ns, is still running at
  // now_ns, past the threshold, and `sample` shows where.
  void report_progress(const TaskLabel& label, int64_t start_ns, uint64_t tasks_run_before, int64_t now_ns,
                       StallSample sample);
  // Watchdog thread: the task started at start_ns no longer runs. Its samples are dropped if
  // its end was not reported (the loop reports the end of every sampled task, so this only
  // tidies up).
  void progress_ended(int64_t start_ns);

  // Stalls that ended (not the one in progress).
  uint64_t stall_count() const { return count_.load(); }
  // Stalls that ended, and the one in progress once the watchdog has seen it (it counts once:
  // its end does not count it again), so that an alert on the count fires while a loop stays
  // stuck, not only once it is free. Never falls from one read to the next.
  uint64_t stalls_seen() const;
  // The stalls that ended, oldest first.
  std::vector<StallReport> recent() const;
  // The stall running now, as its latest sample reported it; nullopt when none is.
  std::optional<StallReport> in_progress() const;

  // Returns an id for unsubscribe().
  uint64_t subscribe(Subscriber subscriber);
  void unsubscribe(uint64_t id);

 private:
  bool may_print(int64_t now_ns);  // token bucket; guarded by mu_
  // Hands `r` to the subscribers; returns what to print, or "" (rate-limited). Guarded by mu_.
  std::string publish(const StallReport& r, int64_t now_ns);

  const uint32_t loop_id_;
  // Atomic because any thread may set it; the loop reads it after every task.
  std::atomic<int64_t> threshold_ns_;
  // The start of the task in progress_ (0: none); read by the loop after every task, so it is
  // kept beside the threshold, not behind mu_.
  std::atomic<int64_t> sampled_start_ns_{0};
  SingleWriter<uint64_t> count_;
  Sink sink_;

  // Taken before mu_ is released and held while the sink prints: lines come out in the order
  // their reports were made, though printing happens outside mu_.
  std::mutex print_mu_;
  mutable std::mutex mu_;
  std::deque<StallReport> recent_;              // guarded by mu_
  std::optional<StallReport> in_progress_;      // guarded by mu_
  int64_t in_progress_start_ns_ = 0;            // guarded by mu_
  int64_t last_ended_start_ns_ = 0;             // the last reported stall's start; guarded by mu_
  std::map<uint64_t, Subscriber> subscribers_;  // guarded by mu_
  uint64_t next_subscriber_id_ = 1;             // guarded by mu_
  double print_tokens_ = kPrintBurst;           // guarded by mu_
  int64_t tokens_updated_ns_ = 0;               // guarded by mu_
  uint64_t unprinted_ = 0;                      // guarded by mu_
  uint64_t unprinted_samples_ = 0;              // guarded by mu_
  NeverFalling<uint64_t> stalls_seen_given_;

  static constexpr double kPrintBurst = 10;
  static constexpr double kPrintsPerSecond = 10;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_STALL_DETECTOR_H_
