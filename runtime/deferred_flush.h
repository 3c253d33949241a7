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

#include <array>
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

// The entries live in the list itself up to kInline (in the event loop, beside the fields a
// busy loop reads per wait), past it in a vector: a loop pipelining on many sockets runs the
// list after every batch, and a vector's array alone would be one more page between two
// system calls (hot_path.h; bench/JOURNAL.md, nineteenth run).
class DeferredFlushList {
 public:
  // Adds it unless it is pending already.
  void add(DeferredFlush& f) {
    if (f.flush_pending()) return;
    f.index_ = size_;
    if (size_ < kInline) {
      inline_[size_] = &f;
    } else {
      overflow_.push_back(&f);
    }
    ++size_;
  }
  bool empty() const { return size_ == 0; }
  // It will not run (it is going away).
  void remove(DeferredFlush& f) {
    if (!f.flush_pending()) return;
    at(f.index_) = nullptr;
    f.index_ = DeferredFlush::kNotPending;
  }
  // Runs every pending entry, those added meanwhile included, then empties the list. An
  // exception that escapes a flush is handed to `escaped()`, called inside the catch block (it
  // may rethrow to look at it but must not let it out); the pass goes on with the next entry.
  template <typename Escaped>
  void run(Escaped&& escaped) {
    for (size_t i = 0; i < size_; ++i) {
      DeferredFlush* f = at(i);
      if (f == nullptr) continue;
      f->index_ = DeferredFlush::kNotPending;
      try {
        f->flush();
      } catch (...) {
        escaped();
      }
    }
    size_ = 0;
    overflow_.clear();  // keeps its capacity
  }

 private:
  static constexpr size_t kInline = 64;

  DeferredFlush*& at(size_t i) { return i < kInline ? inline_[i] : overflow_[i - kInline]; }

  size_t size_ = 0;
  std::array<DeferredFlush*, kInline> inline_;
  std::vector<DeferredFlush*> overflow_;  // entries kInline and on
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_DEFERRED_FLUSH_H_
