#include "runtime/buffer_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace brrr {

absl::StatusOr<std::unique_ptr<BufferPool>> BufferPool::Create(Reactor& reactor, uint32_t size, uint32_t count) {
  if (size == 0 || count == 0) {
    return absl::InvalidArgumentError("a buffer pool needs a buffer size and a count above 0");
  }
  size_t bytes = static_cast<size_t>(size) * count;
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map ", count, " receive buffers of ", size, " bytes: ", std::strerror(errno)));
  }
  absl::Status provided = reactor.provide_buffers(base, size, count);
  if (!provided.ok()) {
    munmap(base, bytes);
    return provided;
  }
  return std::unique_ptr<BufferPool>(new BufferPool(reactor, static_cast<char*>(base), size, count));
}

BufferPool::~BufferPool() { munmap(base_, static_cast<size_t>(size_) * count_); }

void BufferPool::recycle(uint32_t id) {
  --in_use_;
  if (reactor_ != nullptr) reactor_->recycle_buffer(id);
}

Chunk Chunk::Heap(size_t capacity) {
  Chunk c;
  c.data_ = static_cast<char*>(::operator new(capacity));
  c.capacity_ = capacity;
  return c;
}

void Chunk::release() {
  if (pool_ != nullptr) {
    pool_->recycle(id_);
  } else if (data_ != nullptr) {
    ::operator delete(data_);
  }
  pool_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  capacity_ = 0;
}

}  // namespace brrr
