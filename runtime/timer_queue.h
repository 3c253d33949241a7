// timer_queue.h: pending timers, ordered by deadline, with cancellable ids.
//
// A binary min-heap of (deadline, sequence) over a slot table. Scheduling is O(log n) (O(1) on
// average when deadlines grow, as they do); cancelling is O(1): the slot's callback is
// destroyed at once (so whatever it captured is released) and its heap entry becomes a
// tombstone, skipped when it surfaces. Tombstones are swept out when they outnumber the live
// timers, so memory stays proportional to the pending count. Ids carry a generation, so a
// stale id never cancels a newer timer that reused its slot. Equal deadlines fire in the
// order they were scheduled.
//
//   TimerQueue timers;
//   TimerId id = timers.schedule(deadline_ns, [] { ... }, "retry");
//   timers.cancel(id);
//   DueTimer due;
//   while (timers.pop_due(now_ns, &due)) due.fn();
//
// Threads: loop thread only.
#ifndef BRRR_RUNTIME_TIMER_QUEUE_H_
#define BRRR_RUNTIME_TIMER_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/callback.h"
#include "runtime/task_label.h"

namespace brrr {

struct TimerId {
  uint32_t slot = 0;
  uint32_t generation = 0;  // 0 never names a timer
};

struct DueTimer {
  Callback fn;
  TaskLabel label;
  int64_t deadline_ns = 0;
};

class TimerQueue {
 public:
  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  TimerId schedule(int64_t deadline_ns, Callback fn, TaskLabel label);

  // Returns true if the timer was pending (it will not run); false if it already ran, was
  // cancelled, or never existed.
  bool cancel(TimerId id);

  bool is_pending(TimerId id) const;

  // Pending (scheduled, not cancelled, not yet run) timers.
  std::size_t size() const { return live_; }

  // The earliest pending deadline, if any.
  std::optional<int64_t> next_deadline() {
    drop_dead_top();
    if (heap_.empty()) return std::nullopt;
    return heap_.front().deadline_ns;
  }

  // False when no timer is due by now_ns, so that pop_due would find none: a look at the
  // earliest entry (the heap orders cancelled entries by their deadline too), for the loop to
  // skip its timer phase in the common case at the cost of a comparison.
  bool may_have_due(int64_t now_ns) const { return !heap_.empty() && heap_.front().deadline_ns <= now_ns; }

  // Moves the earliest pending timer with deadline <= now_ns that was scheduled before
  // `scheduled_before` (a next_sequence() taken earlier) into *out. False if none is. Due
  // timers scheduled since wait beside the heap until pop_due returns false, so call it until
  // it does before anything else (next_deadline, may_have_due) looks at the queue.
  bool pop_due(int64_t now_ns, DueTimer* out, uint64_t scheduled_before = UINT64_MAX);
  // Where the sequence of scheduled timers stands: what schedule() gives next.
  uint64_t next_sequence() const { return next_sequence_; }

  // Destroys every pending timer without running it. A timer that a callback's destructor
  // schedules meanwhile stays pending.
  void clear();

 private:
  struct Slot {
    Callback fn;
    TaskLabel label;
    uint32_t generation = 0;  // odd while pending
    uint32_t next_free = 0;
  };
  struct HeapEntry {
    int64_t deadline_ns;
    uint64_t sequence;
    uint32_t slot;
    uint32_t generation;
  };
  static bool later(const HeapEntry& a, const HeapEntry& b) {
    return a.deadline_ns != b.deadline_ns ? a.deadline_ns > b.deadline_ns : a.sequence > b.sequence;
  }

  bool is_live(const HeapEntry& e) const { return slots_[e.slot].generation == e.generation; }
  // Pops cancelled entries off the top of the heap.
  void drop_dead_top() {
    if (!heap_.empty() && !is_live(heap_.front())) pop_dead_top();
  }
  void pop_dead_top();
  void sweep_tombstones();
  // Puts back what pop_due set aside.
  void restore_set_aside();
  uint32_t allocate_slot();
  // Frees the slot and hands back its callback, for the caller to destroy once the queue is
  // consistent again: a callback's destructor may schedule or cancel timers.
  [[nodiscard]] Callback release_slot(uint32_t slot);

  std::vector<Slot> slots_;
  std::vector<HeapEntry> heap_;
  std::vector<HeapEntry> set_aside_;  // due, but too new for the pop_due calls under way
  uint32_t free_head_ = kNoSlot;
  std::size_t live_ = 0;
  uint64_t next_sequence_ = 0;

  static constexpr uint32_t kNoSlot = UINT32_MAX;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_TIMER_QUEUE_H_
