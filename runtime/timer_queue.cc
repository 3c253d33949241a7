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
void TimerQueue::release_slot(uint32_t slot) {
  Slot& s = slots_[slot];
  s.fn.reset();
  ++s.generation;
  s.next_free = free_head_;
  free_head_ = slot;
  --live_;
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
  release_slot(id.slot);
  if (heap_.size() > 1024 && heap_.size() > 2 * live_) sweep_tombstones();
  return true;
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
  drop_dead_top();
  // The heap is ordered by (deadline, sequence): once the earliest is too new, the rest due by
  // now_ns are newer still.
  if (heap_.empty() || heap_.front().deadline_ns > now_ns || heap_.front().sequence >= scheduled_before) return false;
  HeapEntry top = heap_.front();
  std::pop_heap(heap_.begin(), heap_.end(), later);
  heap_.pop_back();
  Slot& s = slots_[top.slot];
  out->fn = std::move(s.fn);
  out->label = s.label;
  out->deadline_ns = top.deadline_ns;
  release_slot(top.slot);
  return true;
}

void TimerQueue::clear() {
  for (const HeapEntry& e : heap_) {
    if (is_live(e)) release_slot(e.slot);
  }
  heap_.clear();
}

}  // namespace brrr
