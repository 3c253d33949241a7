#include "runtime/buffer_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/hot_path.h"

namespace brrr {
namespace {

constexpr size_t kHugePage = 2 << 20;

// `bytes` of zeroed memory, faulted in, on huge pages where the kernel gives them: aligned to
// 2 MiB and madvise(MADV_HUGEPAGE)d (transparent huge pages in their default "madvise"
// mode). Receives and sends touch buffers all over the pool (io_uring's provided-buffer ring
// hands them out in FIFO order), and on 4 KiB pages a 16 MiB pool is 4,096 TLB entries:
// more than a core's TLB holds. nullptr (errno set) if it cannot be mapped.
void* MapHugeAligned(size_t bytes) {
  if (bytes < kHugePage) {
    void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return base == MAP_FAILED ? nullptr : base;
  }
  // Over-map by a huge page, then trim both ends to a 2 MiB boundary.
  size_t mapped = bytes + kHugePage;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t end = start + mapped;
  if (end > aligned + bytes) munmap(reinterpret_cast<void*>(aligned + bytes), end - (aligned + bytes));
  void* base = reinterpret_cast<void*>(aligned);
  madvise(base, bytes, MADV_HUGEPAGE);  // advice: without THP the pages are simply small
  // Fault it in now (as MAP_POPULATE would): a fixed cost of the loop, not of its first receives.
  for (size_t offset = 0; offset < bytes; offset += 4096) static_cast<volatile char*>(base)[offset] = 0;
  return base;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BufferPool>> BufferPool::Create(Reactor& reactor, uint32_t size, uint32_t count) {
  if (size == 0 || count == 0) {
    return absl::InvalidArgumentError("a buffer pool needs a buffer size and a count above 0");
  }
  size_t bytes = static_cast<size_t>(size) * count;
  void* base = MapHugeAligned(bytes);
  if (base == nullptr) {
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

BRRR_HOT_PATH void Chunk::release_memory() {
  if (pool_ != nullptr) {
    pool_->recycle(id_);
  } else {
    ::operator delete(data_);
  }
  pool_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  capacity_ = 0;
}

}  // namespace brrr
