// Receiver::on_stopped, on every backend: after stop(), the handler learns when the receive
// that was in flight has ended, and no chunk arrives after that until start(). The drain
// deadline relies on it (server/connection.h): it shuts the write side only once nothing read
// can still arrive unechoed.
#include <sys/ioctl.h>

#include <string>

#include "gtest/gtest.h"
#include "runtime/internal/loop_internals.h"
#include "runtime/receiver.h"
#include "runtime/socket.h"
#include "tests/testing/backends.h"
#include "tests/testing/listener_fixture.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using testing::BlockingClient;

struct StopWatcher : Receiver::Handler {
  void on_data(Chunk chunk) override {
    data.append(chunk.data(), chunk.size());
    if (stopped > 0) ++chunks_after_stopped;
  }
  void on_end(absl::Status) override { ended = true; }
  void on_stopped() override { ++stopped; }
  std::string data;
  int stopped = 0;
  int chunks_after_stopped = 0;
  bool ended = false;
};

int BytesWaiting(int fd) {
  int n = -1;
  return ::ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

class ReceiverStopTest : public testing::ListenerFixture {};

TEST_P(ReceiverStopTest, StoppedIsCalledOnceTheReceiveInFlightHasEndedAndNothingFollows) {
  BlockingClient client(port());
  Socket conn = Accept();
  StopWatcher watcher;
  Receiver receiver(conn, watcher, LoopInternals::receive_buffers(*loop_));
  receiver.start();
  ASSERT_TRUE(client.send_all("first"));
  RunUntil([&] { return watcher.data == "first"; });
  ASSERT_TRUE(receiver.receiving()) << "a receive is armed for what comes next";

  receiver.stop();
  RunUntil([&] { return watcher.stopped > 0; });
  EXPECT_EQ(watcher.stopped, 1);
  EXPECT_FALSE(receiver.receiving());
  // Sent after the stop took effect: it stays in the kernel, unread, until start().
  ASSERT_TRUE(client.send_all("second"));
  RunUntil([&] { return BytesWaiting(conn.fd()) == 6; });
  EXPECT_EQ(watcher.data, "first");
  EXPECT_EQ(watcher.chunks_after_stopped, 0);

  receiver.start();
  RunUntil([&] { return watcher.data == "firstsecond"; });
  client.shutdown_write();
  RunUntil([&] { return watcher.ended; });
  EXPECT_EQ(watcher.stopped, 1) << "stopped only after a stop()";
}

TEST_P(ReceiverStopTest, AStopWithNothingInFlightCallsNothing) {
  BlockingClient client(port());
  Socket conn = Accept();
  StopWatcher watcher;
  Receiver receiver(conn, watcher, LoopInternals::receive_buffers(*loop_));
  EXPECT_FALSE(receiver.receiving());
  receiver.stop();
  ASSERT_TRUE(client.send_all("x"));
  RunUntil([&] { return BytesWaiting(conn.fd()) == 1; });
  EXPECT_EQ(watcher.stopped, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReceiverStopTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
INSTANTIATE_TEST_SUITE_P(Faults, ReceiverStopTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
