// call_slots.h: how many admin calls may be in progress at once (--admin_max_calls).
//
// gRPC's synchronous server runs each call on a thread of its own for as long as the call
// lasts, and a stream (health Watch, WatchStats, WatchStalls) lasts until its client leaves:
// without a bound, one connection opening thousands of streams makes the process start
// thousands of threads. The call gate (call_gate.h) takes a slot for every call before its
// handler runs and answers a call past the limit RESOURCE_EXHAUSTED at once.
//
//   CallSlots slots(64);
//   if (std::optional<CallSlots::Slot> slot = slots.TryTake()) {
//     ... the call ...                  // the slot is given back as it goes out of scope
//   } else { /* refuse: slots.limit() calls are in progress */ }
//
// Threads: any thread; the count is one atomic.
#ifndef BRRR_CONTROL_CALL_SLOTS_H_
#define BRRR_CONTROL_CALL_SLOTS_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

namespace brrr::control {

class CallSlots {
 public:
  // `limit` >= 1: calls that may hold a slot at once.
  explicit CallSlots(uint32_t limit) : limit_(limit) {}
  CallSlots(const CallSlots&) = delete;
  CallSlots& operator=(const CallSlots&) = delete;

  // A slot held for one call; given back when destroyed.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : slots_(std::exchange(other.slots_, nullptr)) {}
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot() {
      if (slots_ != nullptr) slots_->in_use_.fetch_sub(1, std::memory_order_relaxed);
    }

   private:
    friend class CallSlots;
    explicit Slot(CallSlots* slots) : slots_(slots) {}
    CallSlots* slots_;  // null once moved from
  };

  // A slot, or nullopt (and nothing taken) when `limit` calls hold one already.
  std::optional<Slot> TryTake() {
    uint32_t held = in_use_.load(std::memory_order_relaxed);
    do {
      if (held >= limit_) return std::nullopt;
    } while (!in_use_.compare_exchange_weak(held, held + 1, std::memory_order_relaxed));
    return Slot(this);
  }

  uint32_t limit() const { return limit_; }

 private:
  const uint32_t limit_;
  std::atomic<uint32_t> in_use_{0};
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_CALL_SLOTS_H_
