// stall_detector.h: reports tasks that held their event loop for too long.
//
// The loop measures every task it runs. One that ran for at least the threshold (default
// 100 ms, changeable at any time from any thread) is a stall: it is counted, kept in a small
// ring of recent stalls, handed to every subscriber, and printed, as asyncio's debug mode
// prints "Executing <Task ...> took 0.105 seconds":
//
//   brrr: loop 0: executing <inject:blocking_spin> took 0.300 seconds (after 1234 tasks)
//
// Printing is rate-limited (a burst of 10, then 10 a second); what was not printed is counted
// and mentioned in the next line that is. Counting and subscribers are not rate-limited.
//
// Threads: report() runs on the loop thread (it is the slow path: a stall just happened).
// Everything else is thread-safe. Subscribers are called on the loop thread and must return
// quickly (copy the report into a queue of their own).
#ifndef BRRR_RUNTIME_STALL_DETECTOR_H_
#define BRRR_RUNTIME_STALL_DETECTOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/single_writer.h"
#include "runtime/task_label.h"

namespace brrr {

struct StallReport {
  uint32_t loop_id = 0;
  std::string task;              // the task's label (name or call site)
  int64_t duration_ns = 0;       // how long it ran
  uint64_t tasks_run_before = 0; // tasks the loop had completed before this one
  int64_t detected_at_ns = 0;    // monotonic clock, when it ended
  uint64_t sequence = 0;         // 1, 2, ... per loop
};

// Formats a report as the one printed line (without newline).
std::string FormatStall(const StallReport& report);

class StallDetector {
 public:
  using Sink = std::function<void(const std::string& line)>;
  using Subscriber = std::function<void(const StallReport&)>;

  static constexpr int64_t kDefaultThresholdNs = 100'000'000;
  static constexpr size_t kRecentCapacity = 64;

  // `sink` receives printed lines; the default writes them to stderr.
  explicit StallDetector(uint32_t loop_id, int64_t threshold_ns = kDefaultThresholdNs,
                         Sink sink = nullptr);

  int64_t threshold_ns() const { return threshold_ns_.load(); }
  // Any thread. Values <= 0 are rejected by callers that take user input.
  void set_threshold_ns(int64_t ns) { threshold_ns_.store(ns); }

  // Loop thread: a task labelled `label` ran for duration_ns >= threshold.
  void report(const TaskLabel& label, int64_t duration_ns, uint64_t tasks_run_before,
              int64_t now_ns);

  uint64_t stall_count() const { return count_.load(); }
  std::vector<StallReport> recent() const;

  // Returns an id for unsubscribe().
  uint64_t subscribe(Subscriber subscriber);
  void unsubscribe(uint64_t id);

 private:
  bool may_print(int64_t now_ns);  // token bucket; guarded by mu_

  const uint32_t loop_id_;
  // Atomic because any thread may set it; the loop reads it after every task.
  std::atomic<int64_t> threshold_ns_;
  SingleWriter<uint64_t> count_;
  Sink sink_;

  mutable std::mutex mu_;
  std::deque<StallReport> recent_;              // guarded by mu_
  std::map<uint64_t, Subscriber> subscribers_;  // guarded by mu_
  uint64_t next_subscriber_id_ = 1;             // guarded by mu_
  double print_tokens_ = kPrintBurst;           // guarded by mu_
  int64_t tokens_updated_ns_ = 0;               // guarded by mu_
  uint64_t unprinted_ = 0;                      // guarded by mu_

  static constexpr double kPrintBurst = 10;
  static constexpr double kPrintsPerSecond = 10;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_STALL_DETECTOR_H_
