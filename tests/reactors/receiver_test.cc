// Receiver: continuous receive with flow control, on every backend.
#include "runtime/receiver.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/internal/loop_internals.h"
#include "runtime/socket.h"
#include "tests/testing/backends.h"
#include "tests/testing/listener_fixture.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::BlockingClient;

// Collects chunks; optionally keeps them (holding pool buffers) instead of copying them out.
struct Collector : Receiver::Handler {
  void on_data(Chunk chunk) override {
    data.append(chunk.data(), chunk.size());
    ++chunks;
    if (chunk.from_pool()) ++pool_chunks;
    if (hold) held.push_back(std::move(chunk));
  }
  void on_end(absl::Status s) override {
    ended = true;
    status = s;
  }
  std::string data;
  int chunks = 0;
  int pool_chunks = 0;
  bool hold = false;
  std::vector<Chunk> held;
  bool ended = false;
  absl::Status status;
};

class ReceiverTest : public testing::ListenerFixture {
 protected:
  EventLoopOptions LoopOptions() const override {
    EventLoopOptions options;
    options.receive_buffer_size = 4096;
    options.receive_buffer_count = pool_count_;
    return options;
  }

  static constexpr uint32_t pool_count_ = 64;
};

TEST_P(ReceiverTest, ReceivesEverythingIntoPoolBuffersUntilEndOfStream) {
  BlockingClient client(port());
  Socket conn = Accept();
  Collector got;
  Receiver receiver(conn, got, LoopInternals::receive_buffers(*loop_));
  receiver.start();
  const std::string payload = testing::RandomBytes(1 << 20, 3);
  std::thread writer([&] {
    EXPECT_TRUE(client.send_all(payload));
    client.shutdown_write();
  });
  RunUntil([&] { return got.ended; });
  writer.join();
  EXPECT_TRUE(got.status.ok()) << got.status;
  EXPECT_TRUE(got.data == payload);
  EXPECT_EQ(got.pool_chunks, got.chunks) << "every chunk came from the pool";
  EXPECT_EQ(LoopInternals::receive_buffers(*loop_)->in_use(), 0u) << "every buffer went back";
}

TEST_P(ReceiverTest, AReadLimitCapsEveryChunkAndLosesNothing) {
  BlockingClient client(port());
  Socket conn = Accept();
  struct Sizes : Collector {
    void on_data(Chunk chunk) override {
      largest = std::max(largest, chunk.size());
      Collector::on_data(std::move(chunk));
    }
    size_t largest = 0;
  } got;
  Receiver receiver(conn, got, LoopInternals::receive_buffers(*loop_));
  receiver.set_read_limit(1000);
  receiver.start();
  const std::string payload = testing::RandomBytes(200000, 5);
  std::thread writer([&] {
    EXPECT_TRUE(client.send_all(payload));
    client.shutdown_write();
  });
  RunUntil([&] { return got.ended; });
  writer.join();
  EXPECT_TRUE(got.data == payload);
  EXPECT_LE(got.largest, 1000u);
  EXPECT_GE(got.chunks, 200);
}

TEST_P(ReceiverTest, AnIdleConnectionHoldsNoBuffer) {
  BlockingClient client(port());
  Socket conn = Accept();
  Collector got;
  Receiver receiver(conn, got, LoopInternals::receive_buffers(*loop_));
  receiver.start();
  RunFor(milliseconds(20));
  EXPECT_EQ(LoopInternals::receive_buffers(*loop_)->in_use(), 0u);
  EXPECT_EQ(loop_->stats().read_set_size, 1u) << "it is waiting for data all the same";
  ASSERT_TRUE(client.send_all("ping"));
  RunUntil([&] { return got.data == "ping"; });
}

TEST_P(ReceiverTest, StopHoldsDataBackAndStartResumes) {
  BlockingClient client(port());
  Socket conn = Accept();
  Collector got;
  Receiver receiver(conn, got, LoopInternals::receive_buffers(*loop_));
  receiver.start();
  ASSERT_TRUE(client.send_all("first"));
  RunUntil([&] { return got.data == "first"; });
  receiver.stop();
  RunFor(milliseconds(10));  // the cancellation completes
  EXPECT_EQ(loop_->stats().read_set_size, 0u) << "stopped: not in the read set";
  ASSERT_TRUE(client.send_all("second"));
  RunFor(milliseconds(30));
  EXPECT_EQ(got.data, "first") << "nothing is received while stopped";
  receiver.start();
  RunUntil([&] { return got.data == "firstsecond"; });
}

TEST_P(ReceiverTest, ARunDryPoolFallsBackToHeapBlocksAndLosesNothing) {
  BlockingClient client(port());
  Socket conn = Accept();
  Collector got;
  got.hold = true;  // keep every pool buffer: the pool (64 x 4 KiB) runs dry
  Receiver receiver(conn, got, LoopInternals::receive_buffers(*loop_));
  receiver.start();
  const std::string payload = testing::RandomBytes(1 << 20, 4);
  std::thread writer([&] {
    EXPECT_TRUE(client.send_all(payload));
    client.shutdown_write();
  });
  RunUntil([&] { return got.ended; });
  writer.join();
  EXPECT_TRUE(got.data == payload);
  EXPECT_GT(got.chunks, got.pool_chunks) << "some chunks came from the heap";
  EXPECT_EQ(LoopInternals::receive_buffers(*loop_)->in_use(), static_cast<uint32_t>(got.pool_chunks));
  got.held.clear();
  EXPECT_EQ(LoopInternals::receive_buffers(*loop_)->in_use(), 0u);
}

TEST_P(ReceiverTest, WithoutAPoolEveryChunkIsAHeapBlock) {
  BlockingClient client(port());
  Socket conn = Accept();
  Collector got;
  Receiver receiver(conn, got, /*pool=*/nullptr, 1000);
  receiver.start();
  ASSERT_TRUE(client.send_all(std::string(5000, 'h')));
  client.shutdown_write();
  RunUntil([&] { return got.ended; });
  EXPECT_EQ(got.data, std::string(5000, 'h'));
  EXPECT_EQ(got.pool_chunks, 0);
  EXPECT_GE(got.chunks, 5) << "chunks are at most 1000 bytes";
}

TEST_P(ReceiverTest, DestroyingAnArmedReceiverIsSafe) {
  BlockingClient client(port());
  Socket conn = Accept();
  {
    Collector got;
    Receiver receiver(conn, got, /*pool=*/nullptr, 1000);  // a heap block is in the backend's hands
    receiver.start();
  }
  ASSERT_TRUE(client.send_all("late"));
  RunFor(milliseconds(20));
  conn.close();
}

INSTANTIATE_TEST_SUITE_P(Backends, ReceiverTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
