// task_injector.h: runs operator-requested tasks on event loops, to see how the server (and
// the stall detector, the loop lag, the queue depth) reacts to a loop that is blocked, or to
// one that merely has a sleeping coroutine: the tutorial's busy-wait and time.sleep versus
// asyncio.sleep.
//
//   TaskInjector injector(loops, /*max_block=*/std::chrono::seconds(10));
//   absl::StatusOr<InjectionStatus> i = injector.Inject(
//       {.kind = InjectionKind::kBlockingSpin, .duration = 300ms, .count = 1});
//   injector.Cancel(i->id);
//
// Each target loop runs `count` runs, one every `interval` (from start to start; a run that
// starts late is not made up for). A blocking run holds the loop thread for its duration
// (BlockingSpin busy-waits, BlockingSleep sleeps); a NonblockingSleep run is a coroutine that
// awaits sleep(duration) while the loop goes on. Runs are named "inject:blocking_spin",
// "inject:blocking_sleep" and "inject:nonblocking_sleep", which is what stall reports and
// LoopStats::current_task show. Cancelling stops runs not yet started, ends a blocking run in
// progress within a millisecond, and cancels sleeping coroutines.
//
// Bounds. Every run of a blocking kind ends before the loop runs anything else, so those keep
// nothing alive; a NonblockingSleep run is a coroutine (a task with its frame and its timer)
// that lives for the duration. At most kMaxLiveRuns of them may be alive at once on a loop,
// counting every injection, so an operator cannot have a loop fill its memory with sleepers
// (a million one-hour runs at interval 0 would be a million live tasks). The limit is applied
// when injecting, where the operator can still change the request: an injection's runs on a
// loop can be alive together at most
//   count                                   with interval 0,
//   min(count, floor(duration / interval) + 1)  otherwise
// (runs start at least one interval apart and each ends at its start plus the duration; the
// timers fire in deadline order), and Inject refuses with ResourceExhausted, naming the limit,
// an injection whose runs could take a loop past it beside the active injections' runs.
// A cancelled injection frees its share at once, while its runs unwind on the next loop
// iteration. A run due on a loop that is at the limit (which that check leaves to such
// moments, or to a thread preempted between a run's start and its sleep) starts a millisecond
// later, so the limit holds at every instant.
//
// Threads: every method from any thread; runs happen on their loops' threads. The loops must
// outlive the injector; the injector cancels what remains when it is destroyed, and its runs
// keep what they use alive, so a loop may still finish a run after that.
#ifndef BRRR_CONTROL_TASK_INJECTOR_H_
#define BRRR_CONTROL_TASK_INJECTOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "control/admin/admin_figures.h"
#include "control/admin/injection_spec.h"
#include "runtime/event_loop.h"

namespace brrr::control {

struct InjectionStatus {
  enum class State { kActive, kFinished, kCancelled };
  uint64_t id = 0;
  InjectionSpec spec;                 // loops filled in
  State state = State::kActive;
  uint64_t runs_started = 0;
  uint64_t runs_finished = 0;
  int64_t injected_at_ns = 0;         // monotonic clock
};

class TaskInjector {
 public:
  static constexpr size_t kMaxActive = 100;
  // NonblockingSleep runs alive at once on one loop, all injections together (see Bounds).
  static constexpr uint64_t kMaxLiveRuns = 10'000;
  static constexpr size_t kFinishedKept = 100;

  // `max_block`: the longest blocking run allowed.
  TaskInjector(std::vector<EventLoop*> loops, Duration max_block);
  ~TaskInjector();
  TaskInjector(const TaskInjector&) = delete;
  TaskInjector& operator=(const TaskInjector&) = delete;

  // Validates (CheckInjectionSpec against max_block() and the loops; ResourceExhausted past
  // kMaxActive active injections, or for NonblockingSleep runs that could pass kMaxLiveRuns on
  // a loop) and schedules the runs.
  absl::StatusOr<InjectionStatus> Inject(InjectionSpec spec);
  // NotFound for an unknown id; FailedPrecondition if it already finished.
  absl::StatusOr<InjectionStatus> Cancel(uint64_t id);
  // Active injections, then the last kFinishedKept finished or cancelled ones; newest first.
  std::vector<InjectionStatus> List();
  std::vector<InjectionStatus> Active();
  // The admin plane's figures of a loop (admin_figures.h): injections_running, the runs in
  // progress on it now (a sleeping NonblockingSleep run counts).
  AdminLoopStats figures(uint32_t loop) const;
  Duration max_block() const { return max_block_; }

 private:
  struct Injection;
  struct LoopRuns;

  // On the target loop's thread; they use nothing but the injection they are given.
  static void Schedule(const std::shared_ptr<Injection>& injection, size_t loop_slot, TimePoint due);
  static void StartRun(const std::shared_ptr<Injection>& injection, size_t loop_slot);
  static void FinishRun(Injection& injection, size_t loop_slot);
  static InjectionStatus StatusOf(const Injection& injection);
  // The most runs of `spec` that can be alive at once on one of its loops (see Bounds).
  static uint64_t LiveRunsAtMost(const InjectionSpec& spec);
  void Retire();  // moves finished injections from active_ to finished_; mu_ held
  // OK, or ResourceExhausted if `spec`'s runs beside the active injections' could pass
  // kMaxLiveRuns on one of its loops; mu_ held.
  absl::Status FitsLiveRunLimit(const InjectionSpec& spec) const;

  const std::vector<EventLoop*> loops_;
  const Duration max_block_;
  std::shared_ptr<std::vector<std::atomic<uint64_t>>> running_;  // per loop; runs share it

  mutable std::mutex mu_;
  uint64_t next_id_ = 1;                                          // guarded by mu_
  std::map<uint64_t, std::shared_ptr<Injection>> active_;         // guarded by mu_
  std::deque<InjectionStatus> finished_;                          // guarded by mu_; newest first
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_TASK_INJECTOR_H_
