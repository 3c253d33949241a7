#include "tests/testing/threads.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace brrr::testing {

pid_t CurrentThreadId() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

bool BlockedInWait(pid_t tid) {
  std::string task = "/proc/self/task/" + std::to_string(tid);
  // State: the field after the parenthesized command name; 'S' is an interruptible sleep.
  std::ifstream stat_file(task + "/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'S') return false;
  // The system call it sleeps in: the first field, or "running".
  std::ifstream syscall_file(task + "/syscall");
  long number = -1;
  if (!(syscall_file >> number)) return false;
  switch (number) {
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
    case SYS_ppoll:
    case SYS_pselect6:
    case SYS_poll:
    case SYS_select:
    case SYS_io_uring_enter:
      return true;
    default:
      return false;
  }
}

bool WaitUntilBlockedInWait(pid_t tid, std::chrono::nanoseconds timeout) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    if (BlockedInWait(tid)) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
}

int64_t SpinOwnCpu(int64_t ns) {
  auto own_cpu_ns = [] {
    timespec ts;
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  };
  const int64_t start = own_cpu_ns();
  int64_t now = start;
  while (now - start < ns) now = own_cpu_ns();
  return now - start;
}

SharedCpu::SharedCpu() {
  pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
  spinner_ = std::thread([this, one] {
    pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
    while (!stop_.load(std::memory_order_relaxed)) {
    }
  });
}

SharedCpu::~SharedCpu() {
  stop_ = true;
  spinner_.join();
  pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
}

}  // namespace brrr::testing
