// thread_cpu_clock.h: the CPU time (user and system) of the thread that runs an event loop,
// and the time it waited for a core, readable from any thread: what the loop's thread costs,
// the kernel's work in its system calls included (EventLoop's `cpu` figure,
// runtime/loop_stats.h), and how long it was ready to run while another thread or process had
// the core (its `run_queue_wait` figure: a loop starved of CPU, by more loops than cores or by
// a neighbour, which a stall report or UTIL alone cannot tell from a slow task).
//
//   ThreadCpuClock cpu;
//   cpu.follow_current_thread();          // loop thread, as a run starts (nothing to do when it
//                                         // is the thread followed already)
//   int64_t ns = cpu.total_ns();          // any thread
//   int64_t waited = cpu.run_queue_wait_ns();   // any thread
//   cpu.stop_following();                 // loop thread, as run_forever returns
//
// Counted from when a thread starts following: while a run_forever runs, and from a
// run_once on (its caller runs it again soon, so it is not stopped after each). The totals
// carry over from one thread to the next and never go down. The wait is the kernel's
// schedstat (/proc/self/task/TID/schedstat, its second figure): 0 on a kernel built without
// it (CONFIG_SCHED_INFO).
//
// Threads: follow_current_thread and stop_following from the loop's runner (one at a time, as
// the loop itself); total_ns and run_queue_wait_ns from any thread (the wait reads a /proc
// file: three system calls).
#ifndef BRRR_RUNTIME_THREAD_CPU_CLOCK_H_
#define BRRR_RUNTIME_THREAD_CPU_CLOCK_H_

#include <sys/types.h>
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
  // Adds what the followed thread used up to now to the totals, and follows no thread.
  void stop_following();
  // Nanoseconds of CPU the followed threads have used so far (0 before any).
  int64_t total_ns() const;
  // Nanoseconds the followed threads have waited on a run queue, ready to run, so far (0 before
  // any, and where the kernel keeps no schedstats).
  int64_t run_queue_wait_ns() const;

 private:
  // A thread's CPU clock in nanoseconds, or -1 if it cannot be read (the thread has ended).
  static int64_t Read(clockid_t clock);
  // A thread's time on a run queue in nanoseconds, or -1 if it cannot be read (the thread has
  // ended, or the kernel keeps no schedstats).
  static int64_t ReadRunQueueWait(pid_t tid);
  // The fields below as one consistent set, for the totals.
  struct Fields {
    bool following = false;
    clockid_t clock = 0;
    pid_t tid = 0;
    int64_t clock_at_start_ns = 0;
    int64_t wait_at_start_ns = -1;  // -1: not readable when the thread started following
    int64_t carried_ns = 0;
    int64_t carried_wait_ns = 0;
  };
  Fields read_fields() const;
  void write_fields(const Fields& fields);
  // The totals that `fields` make now, never below ones returned before.
  int64_t total_ns_of(const Fields& fields) const;
  int64_t run_queue_wait_ns_of(const Fields& fields) const;

  SequenceLock lock_;  // over the seven below
  std::atomic<bool> following_{false};
  std::atomic<clockid_t> clock_{0};
  std::atomic<pid_t> tid_{0};
  std::atomic<int64_t> clock_at_start_ns_{0};
  std::atomic<int64_t> wait_at_start_ns_{-1};
  std::atomic<int64_t> carried_ns_{0};
  std::atomic<int64_t> carried_wait_ns_{0};
  // The most any reader has seen: a read after the thread has ended returns it.
  NeverFalling<int64_t> last_total_ns_;
  NeverFalling<int64_t> last_wait_ns_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_THREAD_CPU_CLOCK_H_
