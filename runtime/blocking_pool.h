// blocking_pool.h: threads for work that would block an event loop (asyncio's executor).
//
// A fixed-size pool; threads start on demand, up to the limit. Jobs run first in, first out.
// Destruction lets jobs already running finish (a thread cannot be interrupted) and drops
// the ones still queued. A job is destroyed (after running, or dropped) outside the pool's
// lock, so its captures' destructors may use the pool; what they submit while it is being
// destroyed is dropped.
//
//   BlockingPool pool(4);
//   absl::Status queued = pool.submit([] { std::this_thread::sleep_for(1s); });
//
// When the system refuses a thread (EAGAIN: a thread or memory limit), a job waits for a
// thread the pool has; when it has none, submit() refuses the job and says why.
//
// Threads: submit() and the accessors are thread-safe. Jobs run on the pool's threads.
#ifndef BRRR_RUNTIME_BLOCKING_POOL_H_
#define BRRR_RUNTIME_BLOCKING_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace brrr {

class BlockingPool {
 public:
  explicit BlockingPool(size_t max_threads);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues `job`, starting a thread for it if every thread is busy and the limit allows.
  // UNAVAILABLE, with the job dropped unrun, when the pool has no thread and cannot start one.
  absl::Status submit(std::function<void()> job);

  size_t queued() const;
  // Jobs queued or running, in one look: a job on its way from the queue to a thread is counted.
  size_t unfinished() const;
  size_t threads() const;

 private:
  void worker();

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  std::vector<std::thread> threads_;        // guarded by mu_
  size_t idle_ = 0;                         // guarded by mu_
  size_t running_ = 0;                      // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_BLOCKING_POOL_H_
