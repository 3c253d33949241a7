#include "runtime/timer_queue.h"

#include <algorithm>

namespace brrr {

uint32_t TimerQueue::allocate_slot() {
  if (free_head_ != kNoSlot) {
    uint32_t slot = free_head_;
    free_head_ = slots_[slot].next_free;
    return slot;
  }
  slots_.emplace_back();
  return static_cast<uint32_t>(slots_.size() - 1);
}

// Frees a slot; bumping the generation to even turns its heap entry into a tombstone.
Callback TimerQueue::release_slot(uint32_t slot) {
  Slot& s = slots_[slot];
  Callback fn = std::move(s.fn);
  ++s.generation;
  s.next_free = free_head_;
  free_head_ = slot;
  --live_;
  return fn;
}

TimerId TimerQueue::schedule(int64_t deadline_ns, Callback fn, TaskLabel label) {
  uint32_t slot = allocate_slot();
  Slot& s = slots_[slot];
  ++s.generation;  // odd: pending
  s.fn = std::move(fn);
  s.label = label;
  heap_.push_back(HeapEntry{deadline_ns, next_sequence_++, slot, s.generation});
  std::push_heap(heap_.begin(), heap_.end(), later);
  ++live_;
  return TimerId{slot, s.generation};
}

bool TimerQueue::is_pending(TimerId id) const {
  return id.slot < slots_.size() && id.generation != 0 && slots_[id.slot].generation == id.generation;
}

bool TimerQueue::cancel(TimerId id) {
  if (!is_pending(id)) return false;
  Callback fn = release_slot(id.slot);
  if (heap_.size() > 1024 && heap_.size() > 2 * live_) sweep_tombstones();
  return true;  // fn is destroyed now, with the queue consistent
}

void TimerQueue::sweep_tombstones() {
  std::erase_if(heap_, [this](const HeapEntry& e) { return !is_live(e); });
  std::make_heap(heap_.begin(), heap_.end(), later);
}

void TimerQueue::pop_dead_top() {
  while (!heap_.empty() && !is_live(heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
  }
}

bool TimerQueue::pop_due(int64_t now_ns, DueTimer* out, uint64_t scheduled_before) {
  for (;;) {
    drop_dead_top();
    if (heap_.empty() || heap_.front().deadline_ns > now_ns) {
      if (!set_aside_.empty()) restore_set_aside();
      return false;
    }
    if (heap_.front().sequence < scheduled_before) break;
    // Too new, yet due: scheduled in the past by a callback of this phase. Older due timers
    // may lie behind it (a later deadline, an earlier sequence): it waits beside the heap.
    set_aside_.push_back(heap_.front());
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
  }
  HeapEntry top = heap_.front();
  std::pop_heap(heap_.begin(), heap_.end(), later);
  heap_.pop_back();
  out->label = slots_[top.slot].label;
  out->deadline_ns = top.deadline_ns;
  // Last: the assignment destroys whatever callback *out still held.
  out->fn = release_slot(top.slot);
  return true;
}

void TimerQueue::restore_set_aside() {
  for (const HeapEntry& e : set_aside_) {
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  set_aside_.clear();
}

void TimerQueue::clear() {
  // Every callback leaves its slot before any is destroyed: their destructors may schedule or
  // cancel timers, and then find an empty queue, not one half cleared.
  std::vector<Callback> released;
  released.reserve(live_);
  for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
    if (slots_[slot].generation % 2 == 1) released.push_back(release_slot(slot));
  }
  heap_.clear();
  set_aside_.clear();
}

}  // namespace brrr
