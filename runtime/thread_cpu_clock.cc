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
  return lock_.read([&] {
    return Fields{.following = following_.load(std::memory_order_relaxed),
                  .clock = clock_.load(std::memory_order_relaxed),
                  .clock_at_start_ns = clock_at_start_ns_.load(std::memory_order_relaxed),
                  .carried_ns = carried_ns_.load(std::memory_order_relaxed)};
  });
}

void ThreadCpuClock::write_fields(const Fields& f) {
  lock_.begin_write();
  following_.store(f.following, std::memory_order_relaxed);
  clock_.store(f.clock, std::memory_order_relaxed);
  clock_at_start_ns_.store(f.clock_at_start_ns, std::memory_order_relaxed);
  carried_ns_.store(f.carried_ns, std::memory_order_relaxed);
  lock_.end_write();
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
  return last_total_ns_.give(total);
}

}  // namespace brrr
