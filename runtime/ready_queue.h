// ready_queue.h: the event loop's FIFO of work ready to run (the tutorial's deque).
//
// A growable ring buffer of {Callback, TaskLabel}: push at the back, pop at the front, both
// O(1), no allocation once warm. The loop publishes its depth for other threads; the queue
// itself is loop-thread only.
#ifndef BRRR_RUNTIME_READY_QUEUE_H_
#define BRRR_RUNTIME_READY_QUEUE_H_

#include <cstddef>
#include <utility>
#include <vector>

#include "runtime/callback.h"
#include "runtime/task_label.h"

namespace brrr {

struct ReadyTask {
  Callback fn;
  TaskLabel label;
};

class ReadyQueue {
 public:
  ReadyQueue() : slots_(kInitialCapacity) {}

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }

  void push(ReadyTask task) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(task);
    ++size_;
  }

  // Precondition: !empty().
  ReadyTask pop() {
    ReadyTask task = std::move(slots_[head_]);
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
    return task;
  }

  // Destroys every queued task without running it.
  void clear() {
    while (!empty()) pop();
  }

 private:
  static constexpr std::size_t kInitialCapacity = 256;  // a power of two

  void grow() {
    std::vector<ReadyTask> bigger(slots_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) {
      bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    }
    slots_.swap(bigger);
    head_ = 0;
  }

  std::vector<ReadyTask> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_READY_QUEUE_H_
