// sequence_lock.h: a set of fields that one thread writes and any thread reads as one
// consistent set, without a lock the writer could wait on. The fields are atomics of their
// own (relaxed); the writer brackets its stores, and a reader retries a read that a write
// overlapped.
//
//   SequenceLock lock;
//   std::atomic<int64_t> a, b;
//   lock.begin_write(); a.store(1, relaxed); b.store(2, relaxed); lock.end_write();   // the writer
//   auto [x, y] = lock.read([&] { return std::pair{a.load(relaxed), b.load(relaxed)}; });   // any thread
//
// Threads: begin_write and end_write from one writer thread at a time; read from any. A write
// costs two stores and a compiler barrier on x86-64, so it may sit on a loop's hot path.
#ifndef BRRR_RUNTIME_SEQUENCE_LOCK_H_
#define BRRR_RUNTIME_SEQUENCE_LOCK_H_

#include <atomic>
#include <cstdint>
#include <thread>

namespace brrr {

class SequenceLock {
 public:
  // Writer: before its stores to the fields (readers of the set retry from now on).
  void begin_write() {
    sequence_.store(sequence_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  // Writer: after them.
  void end_write() { sequence_.store(sequence_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

  // Any thread: what `read` (loads of the fields) returned while no write was in progress.
  template <typename Read>
  auto read(Read&& read) const {
    for (;;) {
      const uint32_t before = sequence_.load(std::memory_order_acquire);
      auto value = read();
      std::atomic_thread_fence(std::memory_order_acquire);
      if ((before & 1) == 0 && sequence_.load(std::memory_order_relaxed) == before) return value;
      std::this_thread::yield();  // the writer is between its stores (or was preempted there)
    }
  }

 private:
  std::atomic<uint32_t> sequence_{0};  // odd while the writer changes the fields
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_SEQUENCE_LOCK_H_
