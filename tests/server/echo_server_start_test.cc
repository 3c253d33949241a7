// echo_server_start_test.cc: EchoServer::Start, in this process, on every backend: it returns
// once every loop has run its start-up tasks, so that a process taking over from another lets
// the old one go only when its own loops accept at full speed. The one start-up cost is mapping
// and faulting in the loop's receive pool (tens of ms to a few hundred under load), which each
// loop does as it first runs, before its first task.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/event_loop.h"
#include "runtime/loop_stats.h"
#include "server/echo_server.h"
#include "tests/testing/backends.h"

namespace brrr {
namespace {

class EchoServerStartTest : public ::testing::TestWithParam<std::string> {};

// The receive buffers a loop of `backend` has here once it has mapped its pool (every backend
// here takes one: io_uring's buffer ring, the readiness backends' own).
uint64_t PoolOfALoop(const std::string& backend, uint32_t count) {
  EventLoopOptions options;
  options.receive_buffer_count = count;
  std::unique_ptr<EventLoop> loop = testing::NewLoop(backend, options);
  if (loop == nullptr) return 0;
  loop->reserve_receive_buffers();
  return loop->stats().receive_buffers;
}

// An echo server of two loops on `backend`, each with a pool of `buffers`, not started yet.
absl::StatusOr<std::unique_ptr<server::EchoServer>> TwoLoopServer(const std::string& backend, uint32_t buffers) {
  server::EchoServerOptions options;
  options.backend = backend;
  options.port = 0;
  options.loops = 2;
  options.receive_buffer_count = buffers;
  return server::EchoServer::Create(options);
}

TEST_P(EchoServerStartTest, EveryLoopHasMappedItsReceivePoolOnceStartReturns) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  constexpr uint32_t kBuffers = 1024;  // 16 MiB a loop: milliseconds to fault in, at the least
  const uint64_t pool = PoolOfALoop(GetParam(), kBuffers);
  if (GetParam() != "io_uring") {  // io_uring's needs buffer rings (Linux 5.19)
    EXPECT_EQ(pool, kBuffers) << "a loop of this backend has no receive pool here";
  }
  absl::StatusOr<std::unique_ptr<server::EchoServer>> server = TwoLoopServer(GetParam(), kBuffers);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  std::vector<LoopStats> loops = (*server)->loop_stats();
  ASSERT_EQ(loops.size(), 2u);
  for (size_t i = 0; i < loops.size(); ++i) EXPECT_EQ(loops[i].receive_buffers, pool) << "loop " << i;
  (*server)->DrainNow();
  (*server)->Wait();
}

// The pool is mapped as each loop first runs, before its first task, not by a task of its own:
// so the mapping, hundreds of ms on a loaded machine, is no stall, and comes before anything
// the loop serves. A task queued before Start is the loop's first, and finds the pool there.
TEST_P(EchoServerStartTest, TheLoopsFirstTaskFindsItsReceivePoolMapped) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  constexpr uint32_t kBuffers = 1024;
  const uint64_t pool = PoolOfALoop(GetParam(), kBuffers);
  if (pool == 0) GTEST_SKIP() << "a loop of this backend has no receive pool here";
  absl::StatusOr<std::unique_ptr<server::EchoServer>> server = TwoLoopServer(GetParam(), kBuffers);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::atomic<uint64_t>> seen(2);
  for (size_t i = 0; i < 2; ++i) {
    seen[i].store(~uint64_t{0});
    EventLoop& loop = (*server)->shard(i).loop();
    // This thread made the loop, which has not run yet: its queue is this thread's to fill.
    loop.call_soon([&loop, &seen, i] { seen[i].store(loop.stats().receive_buffers); }, "test:first_task");
  }
  ASSERT_TRUE((*server)->Start().ok());
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(seen[i].load(), pool) << "loop " << i << "'s first task";
  (*server)->DrainNow();
  (*server)->Wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, EchoServerStartTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
