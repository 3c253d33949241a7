// threads.h: what a thread of this process is doing right now, read from /proc, for tests that
// must act only once a thread really sleeps in the kernel: a wake-up test that posts before the
// loop waits passes through the wake-before-wait path and proves nothing about waking a
// blocked wait.
//
//   pid_t loop_thread = testing::CurrentThreadId();         // on the thread that will wait
//   ASSERT_TRUE(testing::WaitUntilBlockedInWait(loop_thread));  // on another thread
//   loop->call_soon_threadsafe(...);                         // now it wakes a blocked wait
//
// SharedCpu makes a thread wait for its core: the calling thread and a spinner run on one CPU,
// so the caller is preempted every time slice, wherever it is.
//
//   { testing::SharedCpu shared;  testing::SpinOwnCpu(30'000'000); }   // it waited on the run queue
//
// Linux on x86-64 only (system call numbers). Threads: any.
#ifndef BRRR_TESTS_TESTING_THREADS_H_
#define BRRR_TESTS_TESTING_THREADS_H_

#include <sched.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace brrr::testing {

// The calling thread's id (gettid).
pid_t CurrentThreadId();

// Whether thread `tid` of this process is asleep in one of the system calls a backend waits
// in: epoll_wait, epoll_pwait, epoll_pwait2, ppoll, pselect6, poll, select, io_uring_enter.
bool BlockedInWait(pid_t tid);

// Waits until BlockedInWait(tid), polling; false if it did not happen within `timeout`.
bool WaitUntilBlockedInWait(pid_t tid, std::chrono::nanoseconds timeout = std::chrono::seconds(30));

// Spins until the calling thread has used `ns` more of CPU (its CPU clock); returns what it used.
int64_t SpinOwnCpu(int64_t ns);

// Runs the calling thread and a spinning one on the calling thread's CPU, so the caller is
// preempted every time slice, wherever it is; restores the caller's CPUs when destroyed.
class SharedCpu {
 public:
  SharedCpu();
  ~SharedCpu();
  SharedCpu(const SharedCpu&) = delete;
  SharedCpu& operator=(const SharedCpu&) = delete;

 private:
  cpu_set_t saved_;
  std::atomic<bool> stop_{false};
  std::thread spinner_;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_THREADS_H_
