// stack_sampler.h: the call stack of a loop's thread, taken from another thread while the
// loop thread is busy (stuck in a task).
//
// The watchdog (stall_watchdog.h) asks; the loop thread answers in a signal handler:
//
//   StackSampler sampler;                        // one per loop
//   { StackSampler::ThreadScope bound(&sampler); // loop thread, while it runs the loop
//     ... }
//   std::optional<StackSampler::Sample> s = sampler.sample(std::chrono::milliseconds(500));
//   // another thread: s->pcs, innermost first
//
// sample() sends kSignal (SIGRTMIN+3, reserved for this) to the bound thread with tgkill and
// waits, bounded, until the handler has recorded the stack. The handler is async-signal-safe:
// it only walks the stack with the unwinder (_Unwind_Backtrace: libgcc finds each frame's
// unwind table with glibc's _dl_find_object, which takes no lock and allocates nothing;
// Install() makes the one-time initialisations happen first) into a buffer preallocated in
// the sampler, then publishes it with a release store of the request's sequence number.
// Symbolizing (symbolizer.h) happens on the asking thread, never in the handler.
//
// Why the unwinder and not absl::GetStackTrace: on x86-64 Abseil follows frame pointers,
// which loses the interrupted function itself (its frame is the one the signal cut into) and
// stops in libc and libstdc++, built without frame pointers (a sleep sits in nanosleep).
// The unwinder reads the signal frame and the unwind tables every Debian library has.
//
// A sampled thread sees the signal interrupt a blocking system call: SA_RESTART restarts
// most, epoll_wait and its kind return EINTR (the backends retry), and nanosleep returns
// early (std::this_thread::sleep_for sleeps again for the rest).
//
// Threads: ThreadScope on the loop thread; sample() from one other thread at a time (the
// watchdog's). The sampler must outlive every ThreadScope bound to it.
#ifndef BRRR_RUNTIME_STACK_SAMPLER_H_
#define BRRR_RUNTIME_STACK_SAMPLER_H_

#include <signal.h>
#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "runtime/clock.h"

namespace brrr {

class StackSampler {
 public:
  // Frames recorded per sample (the handler's own two or three included).
  static constexpr int kMaxFrames = 48;

  // The real-time signal brrr reserves for sampling: SIGRTMIN + 3. A program that blocks
  // signals in its other threads should block this one too (only loop threads unblock it).
  static int Signal();

  // Installs the process-wide handler for Signal(), once. Fails if something else already
  // handles that signal (brrr will not take it over).
  static absl::Status Install();

  struct Sample {
    // Innermost first, starting at the interrupted instruction when the handler could tell
    // which frame that is (the signal frame), else at the handler's own frames. Return
    // addresses are moved back by one byte, into the call instruction, as symbolizers want.
    std::vector<uintptr_t> pcs;
  };

  StackSampler() = default;
  StackSampler(const StackSampler&) = delete;
  StackSampler& operator=(const StackSampler&) = delete;

  // Loop thread: binds this thread to `sampler` (null: does nothing) for the scope's life and
  // unblocks Signal() on it. Nests: the innermost scope wins until it ends.
  class ThreadScope {
   public:
    explicit ThreadScope(StackSampler* sampler);
    ~ThreadScope();
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

   private:
    StackSampler* sampler_;
    StackSampler* previous_;
    pid_t previous_tid_ = 0;
  };

  // Any thread: blocks Signal() on this thread for the scope's life, then restores its mask.
  // A new thread starts with its starter's mask, and a loop thread has Signal() open
  // (ThreadScope): wrap the start of every thread a loop thread may start (the stall
  // watchdog's, the blocking pool's) so that only loop threads take the signal.
  class SignalBlockedScope {
   public:
    SignalBlockedScope();
    ~SignalBlockedScope();
    SignalBlockedScope(const SignalBlockedScope&) = delete;
    SignalBlockedScope& operator=(const SignalBlockedScope&) = delete;

   private:
    sigset_t before_;
  };

  // Signals the bound thread and waits up to `timeout` for its stack. nullopt: no thread is
  // bound, or it did not answer in time (it blocks the signal, or, under ThreadSanitizer,
  // which delivers signals at its next intercepted call, it makes none).
  std::optional<Sample> sample(Duration timeout);

  // Signals sent by sample() so far (tests: an idle loop is never signalled).
  uint64_t signals_sent() const { return signals_sent_.load(std::memory_order_relaxed); }

 private:
  static void OnSignal(int signal, siginfo_t* info, void* context);
  void record(const void* ucontext);

  std::atomic<pid_t> tid_{0};  // the bound thread's kernel id, 0 when none
  // A request is pending while requested_ != done_: the watchdog raises requested_ (release)
  // and signals; the handler writes frames_ and then done_ (release); the watchdog reads
  // frames_ only after seeing done_ == its request (acquire).
  std::atomic<uint64_t> requested_{0};
  std::atomic<uint64_t> done_{0};
  std::array<uintptr_t, kMaxFrames> frames_{};
  int depth_ = 0;
  int handler_frame_ = -1;
  uintptr_t interrupted_pc_ = 0;
  std::atomic<uint64_t> signals_sent_{0};
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_STACK_SAMPLER_H_
