#include "runtime/thread_cpu_clock.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace brrr {

int64_t ThreadCpuClock::Read(clockid_t clock) {
  timespec ts;
  if (::clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t ThreadCpuClock::ReadRunQueueWait(pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", static_cast<int>(tid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char text[128];
  ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return -1;
  text[n] = '\0';
  // "ns on a core, ns waiting on a run queue, timeslices run".
  unsigned long long on_core = 0, waited = 0;
  if (std::sscanf(text, "%llu %llu", &on_core, &waited) != 2) return -1;
  return static_cast<int64_t>(waited);
}

ThreadCpuClock::Fields ThreadCpuClock::read_fields() const {
  return lock_.read([&] {
    return Fields{.following = following_.load(std::memory_order_relaxed),
                  .clock = clock_.load(std::memory_order_relaxed),
                  .tid = tid_.load(std::memory_order_relaxed),
                  .clock_at_start_ns = clock_at_start_ns_.load(std::memory_order_relaxed),
                  .wait_at_start_ns = wait_at_start_ns_.load(std::memory_order_relaxed),
                  .carried_ns = carried_ns_.load(std::memory_order_relaxed),
                  .carried_wait_ns = carried_wait_ns_.load(std::memory_order_relaxed)};
  });
}

void ThreadCpuClock::write_fields(const Fields& f) {
  lock_.begin_write();
  following_.store(f.following, std::memory_order_relaxed);
  clock_.store(f.clock, std::memory_order_relaxed);
  tid_.store(f.tid, std::memory_order_relaxed);
  clock_at_start_ns_.store(f.clock_at_start_ns, std::memory_order_relaxed);
  wait_at_start_ns_.store(f.wait_at_start_ns, std::memory_order_relaxed);
  carried_ns_.store(f.carried_ns, std::memory_order_relaxed);
  carried_wait_ns_.store(f.carried_wait_ns, std::memory_order_relaxed);
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
  if (f.following) {  // another thread ran it last (run_once)
    f.carried_ns = total_ns_of(f);
    f.carried_wait_ns = run_queue_wait_ns_of(f);
  }
  const int64_t now = Read(clock);
  if (now < 0) return;
  const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  write_fields({.following = true,
                .clock = clock,
                .tid = tid,
                .clock_at_start_ns = now,
                .wait_at_start_ns = ReadRunQueueWait(tid),
                .carried_ns = f.carried_ns,
                .carried_wait_ns = f.carried_wait_ns});
}

void ThreadCpuClock::stop_following() {
  if (!following_.load(std::memory_order_relaxed)) return;
  Fields f = read_fields();
  write_fields({.following = false, .carried_ns = total_ns_of(f), .carried_wait_ns = run_queue_wait_ns_of(f)});
}

int64_t ThreadCpuClock::total_ns() const { return total_ns_of(read_fields()); }

int64_t ThreadCpuClock::run_queue_wait_ns() const { return run_queue_wait_ns_of(read_fields()); }

int64_t ThreadCpuClock::total_ns_of(const Fields& f) const {
  int64_t total = f.carried_ns;
  if (f.following) {
    const int64_t now = Read(f.clock);
    // A thread that has ended (its clock no longer reads): what was last seen stands.
    if (now >= 0) total += std::max<int64_t>(0, now - f.clock_at_start_ns);
  }
  return last_total_ns_.give(total);
}

int64_t ThreadCpuClock::run_queue_wait_ns_of(const Fields& f) const {
  int64_t total = f.carried_wait_ns;
  if (f.following && f.wait_at_start_ns >= 0) {
    const int64_t now = ReadRunQueueWait(f.tid);
    // A thread that has ended (its file is gone): what was last seen stands.
    if (now >= 0) total += std::max<int64_t>(0, now - f.wait_at_start_ns);
  }
  return last_wait_ns_.give(total);
}

}  // namespace brrr
