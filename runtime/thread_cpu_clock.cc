#include "runtime/thread_cpu_clock.h"

#include <pthread.h>

#include <algorithm>

namespace brrr {

int64_t ThreadCpuClock::Read(clockid_t clock) {
  timespec ts;
  if (::clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

ThreadCpuClock::Fields ThreadCpuClock::read_fields() const {
  for (;;) {
    const uint64_t before = sequence_.load(std::memory_order_acquire);
    if (before % 2 != 0) continue;  // being written
    Fields f{.following = following_.load(std::memory_order_acquire),
             .clock = clock_.load(std::memory_order_acquire),
             .clock_at_start_ns = clock_at_start_ns_.load(std::memory_order_acquire),
             .carried_ns = carried_ns_.load(std::memory_order_acquire)};
    std::atomic_thread_fence(std::memory_order_acquire);
    if (sequence_.load(std::memory_order_relaxed) == before) return f;
  }
}

void ThreadCpuClock::write_fields(const Fields& f) {
  sequence_.fetch_add(1, std::memory_order_acq_rel);  // odd: readers wait
  following_.store(f.following, std::memory_order_release);
  clock_.store(f.clock, std::memory_order_release);
  clock_at_start_ns_.store(f.clock_at_start_ns, std::memory_order_release);
  carried_ns_.store(f.carried_ns, std::memory_order_release);
  sequence_.fetch_add(1, std::memory_order_release);
}

void ThreadCpuClock::follow_current_thread() {
  // The thread's clock names it by its kernel thread id (no system call to get it), which,
  // unlike a pthread_t or std::thread::id, a thread started after another has ended does not
  // take over at once.
  clockid_t clock;
  if (::pthread_getcpuclockid(::pthread_self(), &clock) != 0) return;
  if (following_.load(std::memory_order_relaxed) && clock_.load(std::memory_order_relaxed) == clock) return;
  Fields f = read_fields();
  if (f.following) f.carried_ns = total_ns_of(f);  // another thread ran it last (run_once)
  const int64_t now = Read(clock);
  if (now < 0) return;
  write_fields({.following = true, .clock = clock, .clock_at_start_ns = now, .carried_ns = f.carried_ns});
}

void ThreadCpuClock::stop_following() {
  if (!following_.load(std::memory_order_relaxed)) return;
  Fields f = read_fields();
  write_fields({.following = false, .carried_ns = total_ns_of(f)});
}

int64_t ThreadCpuClock::total_ns() const { return total_ns_of(read_fields()); }

int64_t ThreadCpuClock::total_ns_of(const Fields& f) const {
  int64_t total = f.carried_ns;
  if (f.following) {
    const int64_t now = Read(f.clock);
    // A thread that has ended (its clock no longer reads): what was last seen stands.
    if (now >= 0) total += std::max<int64_t>(0, now - f.clock_at_start_ns);
  }
  int64_t seen = last_total_ns_.load(std::memory_order_relaxed);
  while (total > seen && !last_total_ns_.compare_exchange_weak(seen, total, std::memory_order_relaxed)) {
  }
  return std::max(total, seen);
}

}  // namespace brrr
