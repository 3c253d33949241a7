// thread_cpu_clock.h: the CPU time (user and system) of the thread that runs an event loop,
// readable from any thread: what the loop's thread costs, the kernel's work in its system
// calls included (EventLoop's `cpu` figure, runtime/loop_stats.h).
//
//   ThreadCpuClock cpu;
//   cpu.follow_current_thread();   // loop thread, as a run starts (nothing to do when it is
//                                  // the thread followed already)
//   int64_t ns = cpu.total_ns();   // any thread
//   cpu.stop_following();          // loop thread, as run_forever returns
//
// Counted from when a thread starts following: while a run_forever runs, and from a
// run_once on (its caller runs it again soon, so it is not stopped after each). The total
// carries over from one thread to the next and never goes down.
//
// Threads: follow_current_thread and stop_following from the loop's runner (one at a time, as
// the loop itself); total_ns from any thread.
#ifndef BRRR_RUNTIME_THREAD_CPU_CLOCK_H_
#define BRRR_RUNTIME_THREAD_CPU_CLOCK_H_

#include <time.h>

#include <atomic>
#include <cstdint>

#include "runtime/never_falling.h"
#include "runtime/sequence_lock.h"

namespace brrr {

class ThreadCpuClock {
 public:
  // Follows the calling thread from now on, carrying over what another thread used.
  void follow_current_thread();
  // Adds what the followed thread used up to now to the total, and follows no thread.
  void stop_following();
  // Nanoseconds of CPU the followed threads have used so far (0 before any).
  int64_t total_ns() const;

 private:
  // A thread's CPU clock in nanoseconds, or -1 if it cannot be read (the thread has ended).
  static int64_t Read(clockid_t clock);
  // The fields below as one consistent set, for total_ns.
  struct Fields {
    bool following = false;
    clockid_t clock = 0;
    int64_t clock_at_start_ns = 0;
    int64_t carried_ns = 0;
  };
  Fields read_fields() const;
  void write_fields(const Fields& fields);
  // The total that `fields` make now, never below one returned before.
  int64_t total_ns_of(const Fields& fields) const;

  SequenceLock lock_;  // over the four below
  std::atomic<bool> following_{false};
  std::atomic<clockid_t> clock_{0};
  std::atomic<int64_t> clock_at_start_ns_{0};
  std::atomic<int64_t> carried_ns_{0};
  // The most any reader has seen: a read after the thread has ended returns it.
  NeverFalling<int64_t> last_total_ns_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_THREAD_CPU_CLOCK_H_
