// The README's example, built and run as a test so that it stays true.
#include <cstdio>

#include "runtime/async.h"

using namespace std::chrono_literals;

brrr::Task<int> slow_double(int x) {
  co_await brrr::sleep(10ms);
  co_return 2 * x;
}

brrr::Task<int> main_task() {
  auto [a, b] = co_await brrr::gather(slow_double(1), slow_double(2));  // concurrently
  co_return a + b;
}

int main() {
  auto loop = brrr::EventLoop::Create({.backend = "auto"});  // or "epoll", "poll", a path...
  if (!loop.ok()) {
    std::fprintf(stderr, "%s\n", loop.status().ToString().c_str());
    return 2;
  }
  return brrr::run_until_complete(**loop, main_task()) == 6 ? 0 : 1;
}
