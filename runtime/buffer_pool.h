// buffer_pool.h: a loop's receive buffers, lent to its backend ("provided buffers").
//
// Multishot receives pick a buffer from this pool only when data arrives, so an idle
// connection holds no buffer at all. The data is handed to the runtime as a Chunk that owns
// the buffer until it is destroyed (typically after the bytes have been sent on), which
// returns the buffer to the backend.
//
// The memory is faulted in when the pool is created (MAP_POPULATE): it is a fixed cost of
// the loop (count x size bytes; brrr-echo --recv_buffers), visible in RSS from the
// start, and the receive path never takes a page fault. io_uring's buffer ring hands
// buffers out first-in first-out, so under traffic every page of the pool is touched anyway.
//
// Threads: loop thread only. Ownership: the pool owns the memory; the backend borrows it
// until the reactor is destroyed, so the pool must outlive the reactor (EventLoop keeps it so).
#ifndef BRRR_RUNTIME_BUFFER_POOL_H_
#define BRRR_RUNTIME_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "runtime/reactor.h"

namespace brrr {

class BufferPool {
 public:
  // Allocates count buffers of `size` bytes (mapped and faulted in now; from 2 MiB on, on a
  // 2 MiB boundary and advised for transparent huge pages) and provides them to `reactor`.
  static absl::StatusOr<std::unique_ptr<BufferPool>> Create(Reactor& reactor, uint32_t size, uint32_t count);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  char* data(uint32_t id) const { return base_ + static_cast<size_t>(id) * size_; }
  uint32_t buffer_size() const { return size_; }
  uint32_t count() const { return count_; }
  uint32_t in_use() const { return in_use_; }  // handed to the runtime, not yet recycled

  // A buffer the backend filled is now the runtime's.
  void taken() { ++in_use_; }
  // Gives a buffer back to the backend.
  void recycle(uint32_t id);
  // The reactor is gone (loop shutdown): recycling becomes a no-op.
  void detach_reactor() { reactor_ = nullptr; }

 private:
  BufferPool(Reactor& reactor, char* base, uint32_t size, uint32_t count)
      : reactor_(&reactor), base_(base), size_(size), count_(count) {}

  Reactor* reactor_;
  char* base_;
  uint32_t size_;
  uint32_t count_;
  uint32_t in_use_ = 0;
};

// Received bytes and the memory that holds them: a pool buffer (returned on destruction) or
// a heap block of its own.
class Chunk {
 public:
  Chunk() = default;
  // A pool buffer holding `size` bytes.
  Chunk(BufferPool* pool, uint32_t id, size_t size) : pool_(pool), id_(id), data_(pool->data(id)), size_(size) {}
  // A heap block of `capacity` bytes (empty).
  static Chunk Heap(size_t capacity);
  Chunk(Chunk&& o) noexcept { take(o); }
  Chunk& operator=(Chunk&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;
  ~Chunk() { release(); }

  // Gives the memory back now (a pool buffer to its pool); the chunk is then empty, as a
  // default one is.
  void reset() { release(); }

  char* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return pool_ != nullptr ? pool_->buffer_size() : capacity_; }
  void set_size(size_t size) { size_ = size; }
  bool from_pool() const { return pool_ != nullptr; }

 private:
  // Gives the memory back, if it holds any, and empties the chunk. Inline for the common case
  // of an empty chunk (moved from, or default): every move and destruction calls it.
  void release() {
    if (data_ != nullptr) release_memory();
  }
  void release_memory();
  void take(Chunk& o) {
    pool_ = std::exchange(o.pool_, nullptr);
    id_ = o.id_;
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
  }

  BufferPool* pool_ = nullptr;
  uint32_t id_ = 0;
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;  // heap blocks only
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_BUFFER_POOL_H_
