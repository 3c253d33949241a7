// event.h: Event, a flag coroutines can wait for (asyncio.Event).
//
//   Event ready;
//   co_await ready.wait();   // suspends until set() (returns at once if already set)
//   ready.set();             // wakes every waiter (through the ready queue)
//   ready.clear();
//
// Waiting is cancellable like any await. An event destroyed while unset wakes the tasks
// still waiting for it with BrokenPromiseError: it will never be set, and they must not go on
// as if it had been. Threads: loop thread.
#ifndef BRRR_RUNTIME_EVENT_H_
#define BRRR_RUNTIME_EVENT_H_

#include "runtime/create_task.h"
#include "runtime/event_loop.h"
#include "runtime/future.h"

namespace brrr {

class Event {
 public:
  explicit Event(EventLoop& loop) : loop_(loop), promise_(loop) {}
  // On the loop running on this thread; throws std::logic_error if there is none.
  Event() : Event(detail::CurrentLoopOrThrow("Event()")) {}

  bool is_set() const { return set_; }
  void set() {
    if (set_) return;
    set_ = true;
    promise_.set_result();
  }
  void clear() {
    if (!set_) return;
    set_ = false;
    promise_ = Promise<>(loop_);
  }
  // An awaitable that finishes once the event is set (throws BrokenPromiseError if the event
  // is destroyed first).
  auto wait() const { return promise_.get_future().operator co_await(); }

 private:
  EventLoop& loop_;
  Promise<> promise_;
  bool set_ = false;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_EVENT_H_
