#include "runtime/blocking_pool.h"

#include <algorithm>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "runtime/stack_sampler.h"

namespace brrr {

BlockingPool::BlockingPool(size_t max_threads) : max_threads_(std::max<size_t>(1, max_threads)) {}

BlockingPool::~BlockingPool() { shut_down(); }

void BlockingPool::shut_down() {
  std::vector<std::thread> threads;
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(jobs_);
    threads.swap(threads_);
  }
  work_ready_.notify_all();
  // Outside the lock, as a worker releases a finished job's: a capture's destructor may use
  // the pool (what it submits now is dropped). Before the joins: one may let a running job end.
  dropped.clear();
  for (std::thread& t : threads) t.join();
}

absl::Status BlockingPool::submit(std::function<void()> job) {
  std::function<void()> refused;  // destroyed after the lock is released, as the destructor's
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::OkStatus();  // dropped, as the queued jobs are
    jobs_.push_back(std::move(job));
    if (jobs_.size() > idle_ && threads_.size() < max_threads_) {
      StackSampler::SignalBlockedScope not_for_the_pool;  // submit() runs on a loop thread
      try {
        threads_.emplace_back([this] { worker(); });
      } catch (const std::system_error& e) {
        // A busy thread takes the job in its turn; with none, nothing ever would.
        if (threads_.empty()) {
          refused = std::move(jobs_.back());
          jobs_.pop_back();
          return absl::UnavailableError(
              absl::StrCat("the blocking pool cannot start a thread (", e.what(), ") and has none to run the job"));
        }
      }
    }
  }
  work_ready_.notify_one();
  return absl::OkStatus();
}

void BlockingPool::worker() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    work_ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (stopping_) return;
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    job();
    job = nullptr;  // release captures outside the lock
    lock.lock();
    --running_;
  }
}

size_t BlockingPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

size_t BlockingPool::unfinished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size() + running_;
}

size_t BlockingPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

}  // namespace brrr
