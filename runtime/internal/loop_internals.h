// loop_internals.h: the parts of an event loop that the runtime's own layers build on (sockets,
// receivers, senders, coroutine tasks, timers' handles, run_blocking), kept out of EventLoop's
// public API. //runtime:loop_internals is visible to the runtime, its tests and benchmarks
// only: the echo server and the admin plane use EventLoop's public methods.
//
//   IoRegistry& io = LoopInternals::io(loop);          // loop thread
//   LoopInternals::register_task(loop, task);
//
// Threads: as the EventLoop methods they forward to: the loop's thread.
#ifndef BRRR_RUNTIME_INTERNAL_LOOP_INTERNALS_H_
#define BRRR_RUNTIME_INTERNAL_LOOP_INTERNALS_H_

#include "runtime/event_loop.h"

namespace brrr {

class LoopInternals {
 public:
  static Reactor& reactor(EventLoop& loop) { return *loop.reactor_; }
  // False once the loop's destructor has shut the backend down.
  static bool has_reactor(const EventLoop& loop) { return loop.reactor_.has_value(); }
  static IoRegistry& io(EventLoop& loop) { return loop.io_; }
  static SocketTable& sockets(EventLoop& loop) { return loop.sockets_; }
  static BlockingPool& blocking_pool(EventLoop& loop) { return loop.blocking_pool(); }
  // The pool of receive buffers provided to the backend, created on first use; null if the
  // backend has no provided buffers (receivers then use heap blocks).
  static BufferPool* receive_buffers(EventLoop& loop) { return loop.receive_buffers(); }
  static void check_thread(const EventLoop& loop, const char* operation) { loop.owner_.check(operation); }
  // Coroutine tasks register while alive so the loop can destroy leftovers at shutdown.
  static void register_task(EventLoop& loop, TaskContext* task) { loop.register_task(task); }
  static void unregister_task(EventLoop& loop, TaskContext* task) { loop.unregister_task(task); }
  // Calls f.flush() once the current batch of I/O completions has been handed out, or, when
  // called from a task, just before the loop next waits (deferred_flush.h).
  static void defer_flush(EventLoop& loop, DeferredFlush& f) { loop.flushes_.add(f); }
  static void cancel_flush(EventLoop& loop, DeferredFlush& f) { loop.flushes_.remove(f); }
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_INTERNAL_LOOP_INTERNALS_H_
