#include "runtime/stack_sampler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace brrr {
namespace {

// The sampler bound to this thread (ThreadScope), read by the handler. The loop thread
// writes it before it can be signalled, so the handler's read finds the thread's TLS block
// already allocated.
thread_local StackSampler* t_sampler = nullptr;
thread_local pid_t t_tid = 0;
thread_local bool t_signal_unblocked = false;

// gettid is a system call: read once per thread, and again in a forked child, whose one thread
// inherits the forking thread's copy (with the parent's id) but has an id of its own.
pid_t ThisThreadId() {
  static const bool forgotten_in_forked_children = [] {
    return ::pthread_atfork(nullptr, nullptr, [] { t_tid = 0; }) == 0;
  }();
  (void)forgotten_in_forked_children;
  if (t_tid == 0) t_tid = static_cast<pid_t>(::syscall(SYS_gettid));
  return t_tid;
}

struct Unwound {
  uintptr_t* pcs;
  int capacity;
  int depth;
  uintptr_t handler;      // the signal handler's entry point
  int handler_frame = -1;  // the index of its frame, if seen
};

// One frame: its address, moved back into the call instruction unless the unwinder says it
// is an interrupted instruction (the signal frame's).
_Unwind_Reason_Code CollectFrame(struct _Unwind_Context* context, void* arg) {
  auto* out = static_cast<Unwound*>(arg);
  if (out->depth >= out->capacity) return _URC_END_OF_STACK;
  int before_instruction = 0;
  uintptr_t ip = _Unwind_GetIPInfo(context, &before_instruction);
  if (ip == 0) return _URC_END_OF_STACK;
  if (out->handler != 0 && _Unwind_GetRegionStart(context) == out->handler) out->handler_frame = out->depth;
  out->pcs[out->depth++] = before_instruction ? ip : ip - 1;
  return _URC_NO_REASON;
}

// Returns the depth; *handler_frame is the frame of the function starting at `handler`, or -1.
int Unwind(uintptr_t* pcs, int capacity, uintptr_t handler, int* handler_frame) {
  Unwound out{pcs, capacity, 0, handler};
  _Unwind_Backtrace(CollectFrame, &out);
  *handler_frame = out.handler_frame;
  return out.depth;
}

}  // namespace

int StackSampler::Signal() { return SIGRTMIN + 3; }

absl::Status StackSampler::Install() {
  static absl::Status* installed = [] {
    // The unwinder's one-time set-up (its register table, libgcc_s's lookups) happens here,
    // on an ordinary thread, not in the first handler.
    uintptr_t scratch[4];
    int unused;
    (void)Unwind(scratch, 4, 0, &unused);
    struct sigaction old {};
    if (sigaction(Signal(), nullptr, &old) != 0) {
      return new absl::Status(absl::InternalError(
          absl::StrCat("cannot read the handler of signal ", Signal(), " (SIGRTMIN+3): ", std::strerror(errno))));
    }
    bool ours = (old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction == &StackSampler::OnSignal;
    if (!ours && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
      return new absl::Status(absl::FailedPreconditionError(absl::StrCat(
          "signal ", Signal(), " (SIGRTMIN+3) already has a handler; brrr samples stalled loops with it, so "
          "stall reports will have no stacks (free that signal, or turn the stall watchdog off)")));
    }
    struct sigaction action {};
    action.sa_sigaction = &StackSampler::OnSignal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(Signal(), &action, nullptr) != 0) {
      return new absl::Status(absl::InternalError(
          absl::StrCat("cannot install the handler of signal ", Signal(), " (SIGRTMIN+3): ", std::strerror(errno))));
    }
    return new absl::Status();
  }();
  return *installed;
}

StackSampler::ThreadScope::ThreadScope(StackSampler* sampler) : sampler_(sampler), previous_(t_sampler) {
  if (sampler_ == nullptr) return;
  if (!t_signal_unblocked) {
    // Programs block signals before starting threads (brrr-echo does), and threads inherit
    // that; a loop thread must take this one.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, Signal());
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    t_signal_unblocked = true;
  }
  t_sampler = sampler_;
  previous_tid_ = sampler_->tid_.exchange(ThisThreadId(), std::memory_order_acq_rel);
}

StackSampler::SignalBlockedScope::SignalBlockedScope() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, Signal());
  pthread_sigmask(SIG_BLOCK, &set, &before_);
}

StackSampler::SignalBlockedScope::~SignalBlockedScope() { pthread_sigmask(SIG_SETMASK, &before_, nullptr); }

StackSampler::ThreadScope::~ThreadScope() {
  if (sampler_ == nullptr) return;
  sampler_->tid_.store(previous_tid_, std::memory_order_release);
  t_sampler = previous_;
}

void StackSampler::OnSignal(int, siginfo_t*, void* context) {
  int saved_errno = errno;
  if (StackSampler* sampler = t_sampler) sampler->record(context);
  errno = saved_errno;
}

void StackSampler::record(const void* context) {
  uint64_t request = requested_.load(std::memory_order_acquire);
  if (request == done_.load(std::memory_order_relaxed)) return;  // nothing asked (a stray signal)
  depth_ = Unwind(frames_.data(), kMaxFrames, reinterpret_cast<uintptr_t>(&StackSampler::OnSignal), &handler_frame_);
  interrupted_pc_ = 0;
#if defined(__x86_64__)
  if (context != nullptr) {
    interrupted_pc_ = static_cast<uintptr_t>(static_cast<const ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]);
  }
#endif
  done_.store(request, std::memory_order_release);
}

std::optional<StackSampler::Sample> StackSampler::sample(Duration timeout) {
  pid_t tid = tid_.load(std::memory_order_acquire);
  if (tid == 0) return std::nullopt;
  uint64_t request = requested_.load(std::memory_order_relaxed) + 1;
  requested_.store(request, std::memory_order_release);
  if (::syscall(SYS_tgkill, ::getpid(), tid, Signal()) != 0) return std::nullopt;
  signals_sent_.fetch_add(1, std::memory_order_relaxed);
  const int64_t deadline = MonotonicNanos() + timeout.count();
  while (done_.load(std::memory_order_acquire) != request) {
    if (MonotonicNanos() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  Sample s;
  // The signal frame's instruction is where the thread was; what came before it is the
  // handler's own frames. Under ThreadSanitizer, which runs handlers later, from its own
  // code, the interrupted instruction is not on the stack: then what follows the handler.
  int first = handler_frame_ + 1;
  for (int i = 0; i < depth_; ++i) {
    if (frames_[i] == interrupted_pc_) {
      first = i;
      break;
    }
  }
  s.pcs.assign(frames_.begin() + first, frames_.begin() + depth_);
  return s;
}

}  // namespace brrr
