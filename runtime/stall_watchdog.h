// stall_watchdog.h: a loop's watchdog, which says where the loop is stuck while it still is.
//
// The stall detector reports a long task when it ends; a task that blocks for minutes (or
// for ever) would say nothing until then. The watchdog is a thread of the loop's own that
// reads the start of the loop's current task (CurrentTask, published without locks) and,
// once that task has run for the stall threshold, samples the loop thread's stack
// (stack_sampler.h: a signal whose handler only copies frames), symbolizes it on its own
// thread and reports it to the detector (StallDetector::report_progress), as Seastar's
// reactor stall reports do, with the loop thread's CPU time and run-queue wait at that moment
// (so a report can say how the thread spent the stall: computing, waiting for a core, or
// blocked). While the task keeps running it samples again a threshold after
// the previous sample was reported, so a long block shows whether it moves; the detector
// keeps the first and newest samples. A sampled task stays a stall until it ends, also when
// the threshold is raised past its duration meanwhile: its end is reported as the stall its
// samples announced.
//
// When it looks: it sleeps until the current task's start plus the threshold (or one
// threshold when no task runs), so it detects a stall within the threshold plus scheduling
// delay and wakes at most once per threshold while the loop is busy, and at least once a
// second (a changed threshold takes effect then). The loop tells it when it goes idle
// (waits for I/O, or stops running): it then sleeps until the loop is busy again, so an
// idle loop costs nothing, and a loop that is never past the threshold is never signalled.
//
// One per loop rather than one per process: the loop owns its watchdog's life (started when
// the loop first runs, joined when it is destroyed: no registry to keep in step with loops
// coming and going), and symbolizing one loop's stall never delays noticing another's. The
// price is one thread per loop that sleeps while its loop is idle.
//
//   StallWatchdog watchdog({.current = &current, .tasks_run = &tasks_run,
//                           .detector = &detector, .sampler = &sampler});
//   {
//     StallWatchdog::Running running(&watchdog);  // loop thread, around running the loop
//     watchdog.loop_idle();  ... wait for I/O ...  watchdog.loop_busy();
//   }
//
// Threads: loop_idle/loop_busy and Running on the loop thread; counters from any thread.
// Ownership: borrows everything in Watched, which must outlive the watchdog. Its thread
// starts with the first Running scope (a loop that never runs costs no thread); the
// destructor stops and joins it.
#ifndef BRRR_RUNTIME_STALL_WATCHDOG_H_
#define BRRR_RUNTIME_STALL_WATCHDOG_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "runtime/current_task.h"
#include "runtime/single_writer.h"
#include "runtime/stack_sampler.h"
#include "runtime/stall_detector.h"
#include "runtime/thread_cpu_clock.h"

namespace brrr {

class StallWatchdog {
 public:
  struct Watched {
    const CurrentTask* current = nullptr;
    const SingleWriter<uint64_t>* tasks_run = nullptr;  // tasks the loop has completed
    StallDetector* detector = nullptr;
    StackSampler* sampler = nullptr;
    // The loop thread's CPU and run-queue wait, read with each sample; null: not read.
    const ThreadCpuClock* thread_times = nullptr;
  };

  // How long a sample waits for the loop thread to answer.
  static constexpr Duration kSampleTimeout = std::chrono::milliseconds(500);
  // The longest it sleeps while the loop is busy.
  static constexpr Duration kLongestSleep = std::chrono::seconds(1);

  explicit StallWatchdog(Watched watched);
  ~StallWatchdog();
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

  // Loop thread: the loop will run no task until loop_busy() (it waits for I/O).
  void loop_idle();
  // Loop thread: the loop may run tasks again. Wakes the watchdog if it slept for idleness.
  void loop_busy();

  // Loop thread, around running the loop (run_forever, run_once): starts the watchdog's
  // thread the first time, binds the sampler to this thread and marks the loop busy, then
  // idle when the outermost one ends. Null: no-op.
  class Running {
   public:
    explicit Running(StallWatchdog* watchdog);
    ~Running();
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

   private:
    StallWatchdog* watchdog_;
    StackSampler::ThreadScope bound_;
  };

  // For tests and statistics: how often it examined a busy loop, slept for an idle one,
  // and sampled a stalled one.
  uint64_t looks() const { return looks_.load(std::memory_order_relaxed); }
  uint64_t idle_sleeps() const { return idle_sleeps_.load(std::memory_order_relaxed); }
  uint64_t samples() const { return samples_.load(std::memory_order_relaxed); }

 private:
  // The state the loop and the watchdog share; only the watchdog sets kParked, and only the
  // loop leaves it (with an exchange that tells it to wake the watchdog).
  enum State : uint32_t { kBusy = 0, kIdle = 1, kParked = 2 };

  void run();
  // Samples the task that started at start_ns and reports it. Returns when that happened.
  int64_t sample(const CurrentTask::Snapshot& task);

  const Watched watched_;
  std::atomic<uint32_t> state_{kBusy};
  int running_depth_ = 0;  // loop thread only: nested Running scopes

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_

  std::atomic<uint64_t> looks_{0};
  std::atomic<uint64_t> idle_sleeps_{0};
  std::atomic<uint64_t> samples_{0};

  std::thread thread_;  // started by the first Running (loop thread); joined by the destructor
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_STALL_WATCHDOG_H_
