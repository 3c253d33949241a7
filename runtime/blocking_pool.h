// blocking_pool.h: threads for work that would block an event loop (asyncio's executor).
//
// A fixed-size pool; threads start on demand, up to the limit. Jobs run first in, first out.
// Shutting down (shut_down(), or destruction) lets jobs already running finish (a thread
// cannot be interrupted) and drops the ones still queued. A job is destroyed (after running, or
// dropped) outside the pool's lock, so its captures' destructors may use the pool; what they
// submit once it is shutting down is dropped, as is anything submitted to it after.
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
  // Once the pool is shutting down, the job is dropped unrun (destroyed before this returns)
  // and the result is OK, as for the queued jobs shutting down drops: no caller is left to act.
  absl::Status submit(std::function<void()> job);

  // Refuses jobs from now on, drops the queued ones and waits for the running ones to finish;
  // the pool then has no thread and never starts one. Idempotent; the destructor does it. Not
  // from one of the pool's jobs (it would wait for itself). An owner that shuts its pool down
  // before destroying it (EventLoop's destructor) keeps a pool that refuses for whatever still
  // reaches it, instead of a null pointer that would make a new one.
  void shut_down();

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
