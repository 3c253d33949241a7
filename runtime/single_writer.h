// single_writer.h: values one thread writes and any thread reads, without locks.
//
// The event loop publishes its statistics through these. The writer is always the loop
// thread, so an increment needs no read-modify-write instruction: a relaxed load and store
// compile to plain moves. Readers get each value whole (never torn), though two values read
// one after the other may come from slightly different moments.
//
// Threads: store/add from the one writer thread; load from any thread.
#ifndef BRRR_RUNTIME_SINGLE_WRITER_H_
#define BRRR_RUNTIME_SINGLE_WRITER_H_

#include <atomic>

namespace brrr {

template <typename T>
class SingleWriter {
  static_assert(std::atomic<T>::is_always_lock_free, "readers must never block the writer");

 public:
  constexpr SingleWriter() : value_(T{}) {}
  explicit constexpr SingleWriter(T initial) : value_(initial) {}

  T load() const { return value_.load(std::memory_order_relaxed); }
  void store(T v) { value_.store(v, std::memory_order_relaxed); }
  void add(T delta) { store(load() + delta); }

 private:
  std::atomic<T> value_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_SINGLE_WRITER_H_
