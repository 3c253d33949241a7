// dropped_work.h: for tests of work that is dropped unrun (a pool's queue, a loop's
// destruction) and of what runs on other threads meanwhile.
#ifndef BRRR_TESTS_RUNTIME_DROPPED_WORK_H_
#define BRRR_TESTS_RUNTIME_DROPPED_WORK_H_

#include <chrono>
#include <functional>
#include <thread>
#include <utility>

namespace brrr::testing {

// Runs `fn` when destroyed: captured by work that is dropped, it acts as that work is destroyed.
class RunsOnDestruction {
 public:
  explicit RunsOnDestruction(std::function<void()> fn) : fn_(std::move(fn)) {}
  RunsOnDestruction(const RunsOnDestruction&) = delete;
  RunsOnDestruction& operator=(const RunsOnDestruction&) = delete;
  ~RunsOnDestruction() { fn_(); }

 private:
  std::function<void()> fn_;
};

// Polls until `done`; false after 30 s, so that a broken pool or loop fails a test instead of
// hanging it.
inline bool WaitUntil(const std::function<bool()>& done) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

}  // namespace brrr::testing

#endif  // BRRR_TESTS_RUNTIME_DROPPED_WORK_H_
