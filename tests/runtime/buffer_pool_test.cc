// BufferPool and Chunk on every backend: count x size bytes of distinct buffers lent to the
// backend, a buffer the runtime holds is not given out again until its Chunk is gone (then the
// backend fills it again), a pool whose reactor is gone recycles nothing, and heap chunks.
#include "runtime/buffer_pool.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/plugin_loader.h"
#include "tests/testing/backends.h"

namespace brrr {
namespace {

class BufferPoolTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
    auto r = PluginLoader::Default().CreateReactor(GetParam());
    ASSERT_TRUE(r.ok()) << r.status();
    reactor_ = *std::move(r);
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_), 0);
  }
  void TearDown() override {
    if (reactor_ != nullptr) reactor_->release_fd(fds_[0]);
    pool_.reset();
    reactor_.reset();
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }

  // Writes `data` into the peer, then receives once into a pool buffer; the final completion
  // (bounded: 30 s).
  Completion ReceiveOnce(const std::string& data) {
    EXPECT_EQ(::write(fds_[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
    uint64_t id = ++next_user_data_;
    EXPECT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kRecv, .flags = kOpBufferSelect, .fd = fds_[0]}),
              0);
    Completion batch[8];
    TimePoint give_up = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < give_up) {
      absl::StatusOr<int> n = reactor_->wait(batch, 10'000'000);
      EXPECT_TRUE(n.ok()) << n.status();
      for (int i = 0; n.ok() && i < *n; ++i) {
        if (batch[i].user_data == id && !batch[i].more()) return batch[i];
      }
    }
    ADD_FAILURE() << "no completion";
    return Completion{.result = -ETIMEDOUT};
  }

  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<BufferPool> pool_;
  int fds_[2] = {-1, -1};
  uint64_t next_user_data_ = 0;
};

TEST_P(BufferPoolTest, AnEmptyPoolIsRefused) {
  EXPECT_EQ(BufferPool::Create(*reactor_, 0, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BufferPool::Create(*reactor_, 4096, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(BufferPoolTest, BuffersAreDistinctAndWholeAndStartUnused) {
  auto pool = BufferPool::Create(*reactor_, 1000, 64);
  ASSERT_TRUE(pool.ok()) << pool.status();
  pool_ = *std::move(pool);
  EXPECT_EQ(pool_->count(), 64u);
  EXPECT_EQ(pool_->buffer_size(), 1000u);
  EXPECT_EQ(pool_->in_use(), 0u);
  // Every byte of every buffer is ours (ASan would see a write past the mapping), and no two
  // buffers share a byte.
  for (uint32_t id = 0; id < 64; ++id) std::memset(pool_->data(id), static_cast<int>(id), 1000);
  for (uint32_t id = 0; id < 64; ++id) {
    for (uint32_t at = 0; at < 1000; ++at) ASSERT_EQ(pool_->data(id)[at], static_cast<char>(id)) << id;
  }
}

// Two buffers: two receives take both; a third gets ENOBUFS while the runtime holds them; once
// a Chunk is destroyed its buffer goes back to the backend, which fills it again.
TEST_P(BufferPoolTest, AHeldBufferIsLentAgainOnlyOnceItsChunkIsGone) {
  auto pool = BufferPool::Create(*reactor_, 16, 2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  pool_ = *std::move(pool);
  std::optional<Chunk> held[2];
  std::set<uint32_t> ids;
  for (int i = 0; i < 2; ++i) {
    std::string data(16, static_cast<char>('a' + i));
    Completion c = ReceiveOnce(data);
    ASSERT_EQ(c.result, 16) << i;
    ASSERT_TRUE(c.has_buffer());
    pool_->taken();
    held[i].emplace(pool_.get(), c.buffer_id, static_cast<size_t>(c.result));
    EXPECT_EQ(std::string(held[i]->data(), held[i]->size()), data);
    EXPECT_TRUE(held[i]->from_pool());
    EXPECT_EQ(held[i]->capacity(), 16u);
    ids.insert(c.buffer_id);
  }
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(pool_->in_use(), 2u);
  Completion dry = ReceiveOnce("c");
  EXPECT_EQ(dry.result, -ENOBUFS) << "both buffers are the runtime's";

  uint32_t freed = held[0]->data() == pool_->data(*ids.begin()) ? *ids.begin() : *ids.rbegin();
  Chunk moved = std::move(*held[0]);  // moving hands the buffer on; the moved-from chunk holds nothing
  held[0].reset();
  EXPECT_EQ(pool_->in_use(), 2u);
  moved = Chunk();  // destroys the buffer's chunk: recycled
  EXPECT_EQ(pool_->in_use(), 1u);
  Completion again = ReceiveOnce("");  // "c" is still waiting in the socket
  ASSERT_EQ(again.result, 1);
  EXPECT_EQ(again.buffer_id, freed);
  EXPECT_EQ(pool_->data(again.buffer_id)[0], 'c');
  pool_->taken();
  Chunk third(pool_.get(), again.buffer_id, 1);
  held[1].reset();
  EXPECT_EQ(pool_->in_use(), 1u);
}

// reset() gives a pool buffer back at once, and the chunk is then empty as a default one is:
// no memory, no size, no capacity, not from the pool (so a later reset recycles nothing).
TEST_P(BufferPoolTest, AResetChunkGivesItsBufferBackAndIsEmptyAsADefaultOne) {
  auto pool = BufferPool::Create(*reactor_, 16, 1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  pool_ = *std::move(pool);
  Completion c = ReceiveOnce("abc");
  ASSERT_EQ(c.result, 3);
  ASSERT_TRUE(c.has_buffer());
  pool_->taken();
  Chunk chunk(pool_.get(), c.buffer_id, 3);
  chunk.reset();
  EXPECT_EQ(pool_->in_use(), 0u);
  EXPECT_EQ(chunk.data(), nullptr);
  EXPECT_EQ(chunk.size(), 0u);
  EXPECT_EQ(chunk.capacity(), 0u);
  EXPECT_FALSE(chunk.from_pool());
  chunk.reset();
  EXPECT_EQ(pool_->in_use(), 0u);
  Completion again = ReceiveOnce("d");  // the one buffer is the backend's again
  ASSERT_EQ(again.result, 1);
  EXPECT_EQ(again.buffer_id, c.buffer_id);
  pool_->taken();
  Chunk next(pool_.get(), again.buffer_id, 1);  // gives the buffer back as the test ends
}

// The mapping of /proc/self/smaps that holds `address`: its start, end and VmFlags.
struct Mapping {
  uintptr_t start = 0;
  uintptr_t end = 0;
  std::string flags;
};
std::optional<Mapping> MappingOf(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  uintptr_t at = reinterpret_cast<uintptr_t>(address);
  std::optional<Mapping> found;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2 && line.find(':') > line.find(' ')) {
      found.reset();
      if (start <= at && at < end) found = Mapping{.start = start, .end = end};
    } else if (found && line.rfind("VmFlags:", 0) == 0) {
      found->flags = line.substr(8) + " ";
      return found;
    }
  }
  return std::nullopt;
}

// A pool of whole huge pages (16 x 256 KiB = 4 MiB) starts on a 2 MiB boundary, in memory
// advised for transparent huge pages (smaps' "hg"), whole: a receive anywhere in it does not
// fault. (Whether the kernel then backs it with huge pages is its call, and memory's.)
TEST_P(BufferPoolTest, APoolOfWholeHugePagesIsAlignedAndAdvisedForThem) {
  constexpr uint32_t kSize = 256 * 1024, kCount = 16;
  auto pool = BufferPool::Create(*reactor_, kSize, kCount);
  ASSERT_TRUE(pool.ok()) << pool.status();
  pool_ = *std::move(pool);
  const char* base = pool_->data(0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % (2 << 20), 0u);
  std::optional<Mapping> m = MappingOf(base);
  ASSERT_TRUE(m.has_value());
  EXPECT_GE(m->end - reinterpret_cast<uintptr_t>(base), static_cast<uintptr_t>(kSize) * kCount);
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good()) {
    EXPECT_NE(m->flags.find(" hg "), std::string::npos) << "VmFlags:" << m->flags;
  }  // else a kernel built without transparent huge pages: madvise refuses the advice
  // Resident already, before anything here reads it: mincore sees every page in memory.
  const size_t pages = static_cast<size_t>(kSize) * kCount / 4096;
  std::vector<unsigned char> resident(pages);
  ASSERT_EQ(::mincore(const_cast<char*>(base), static_cast<size_t>(kSize) * kCount, resident.data()), 0);
  for (size_t i = 0; i < pages; ++i) ASSERT_TRUE(resident[i] & 1) << "page " << i;
  for (uint32_t id = 0; id < kCount; ++id) ASSERT_EQ(pool_->data(id)[kSize - 1], 0) << "zeroed, mapped";
}

// At shutdown the reactor goes first: a chunk that outlives it recycles into nothing.
TEST_P(BufferPoolTest, AChunkThatOutlivesTheReactorRecyclesNothing) {
  auto pool = BufferPool::Create(*reactor_, 16, 1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  pool_ = *std::move(pool);
  Completion c = ReceiveOnce("late");
  ASSERT_EQ(c.result, 4);
  pool_->taken();
  auto chunk = std::make_unique<Chunk>(pool_.get(), c.buffer_id, 4);
  pool_->detach_reactor();
  reactor_->release_fd(fds_[0]);
  reactor_.reset();
  chunk.reset();  // no call into the destroyed reactor (ASan would see it)
  EXPECT_EQ(pool_->in_use(), 0u);
}

TEST(ChunkTest, HeapChunksOwnTheirBlock) {
  Chunk c = Chunk::Heap(100);
  EXPECT_FALSE(c.from_pool());
  EXPECT_EQ(c.capacity(), 100u);
  EXPECT_EQ(c.size(), 0u);
  std::memset(c.data(), 'x', 100);
  c.set_size(100);
  Chunk d = std::move(c);
  EXPECT_EQ(c.data(), nullptr);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(d.size(), 100u);
  EXPECT_EQ(d.data()[99], 'x');
  d = Chunk::Heap(10);  // frees the first block (LeakSanitizer would see it leak)
  EXPECT_EQ(d.capacity(), 10u);
}

INSTANTIATE_TEST_SUITE_P(Backends, BufferPoolTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
