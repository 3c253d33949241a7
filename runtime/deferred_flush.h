// deferred_flush.h: work put off until the loop's current batch of I/O completions has been
// handed out (or, when a task asks, until just before the loop next waits), so that what one
// batch queued for a socket leaves in one system call instead of one per completion.
//
//   class Sender : public DeferredFlush {
//     void push(Chunk&& c) { queue(std::move(c)); loop.defer_flush(*this); }  // once per batch
//     void flush() override { send everything queued in one gathered send }
//   };
//
// A DeferredFlush is pending at most once; one that goes away while pending must cancel
// (EventLoop::cancel_flush). The list runs what was added while it runs, in the same pass,
// itself included: a Sender whose send went at once tells its handler in the flush, and a
// handler that queues more then is flushed again (until the socket is full and a send
// operation waits for room), so a flush must not add itself again unless it made progress.
//
// Threads: loop thread. Ownership: the list borrows its entries.
#ifndef BRRR_RUNTIME_DEFERRED_FLUSH_H_
#define BRRR_RUNTIME_DEFERRED_FLUSH_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace brrr {

class DeferredFlush {
 public:
  virtual void flush() = 0;
  bool flush_pending() const { return index_ != kNotPending; }

 protected:
  ~DeferredFlush() = default;

 private:
  friend class DeferredFlushList;
  static constexpr size_t kNotPending = SIZE_MAX;
  size_t index_ = kNotPending;  // its place in the list while pending
};

class DeferredFlushList {
 public:
  // Adds it unless it is pending already.
  void add(DeferredFlush& f) {
    if (f.flush_pending()) return;
    f.index_ = pending_.size();
    pending_.push_back(&f);
  }
  // It will not run (it is going away).
  void remove(DeferredFlush& f) {
    if (!f.flush_pending()) return;
    pending_[f.index_] = nullptr;
    f.index_ = DeferredFlush::kNotPending;
  }
  // Runs every pending entry, those added meanwhile included, then empties the list.
  void run() {
    for (size_t i = 0; i < pending_.size(); ++i) {
      DeferredFlush* f = pending_[i];
      if (f == nullptr) continue;
      f->index_ = DeferredFlush::kNotPending;
      f->flush();
    }
    pending_.clear();
  }

 private:
  std::vector<DeferredFlush*> pending_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_DEFERRED_FLUSH_H_
