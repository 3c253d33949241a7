// drain_last_close_test.cc: a connection closed in the loop iteration that ends its loop's
// drain, in this process, on every backend. The close queues the connection's deletion
// (Shard::connection_closed: it may be deep in the connection's own callbacks), which closes
// its socket; the drain waits for it, so that when the server's Wait() returns the client has
// its end of stream already. (A loop that stopped first left the socket open until the server
// was destroyed, or, on io_uring, to the ring's teardown after the process had gone.)
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/call_in_loop.h"
#include "runtime/event_loop.h"
#include "server/echo_server.h"
#include "tests/testing/backends.h"
#include "tests/testing/loop_hold.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

class DrainLastCloseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DrainLastCloseTest, AConnectionClosedAsTheDrainEndsIsClosedBeforeWaitReturns) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  server::EchoServerOptions options;
  options.backend = GetParam();
  options.port = 0;
  options.loops = 1;
  absl::StatusOr<std::unique_ptr<server::EchoServer>> made = server::EchoServer::Create(options);
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<server::EchoServer> server = *std::move(made);
  ASSERT_TRUE(server->Start().ok());
  testing::BlockingClient client(server->address().port(), /*ipv6=*/false, /*timeout_ms=*/5000);
  ASSERT_TRUE(client.send_all("hi"));
  ASSERT_EQ(client.recv_exact(2), "hi");

  // Paused, so that the drain ends the listener in a task of its own (Shard::end_listener),
  // whose done-callback ends the drain.
  ASSERT_TRUE(server->SetThrottle({.accepting_paused = true}).ok());
  for (int i = 0; i < 1000 && server->loop_stats()[0].live_tasks != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(server->loop_stats()[0].live_tasks, 0u) << "the accept loop did not end";
  EventLoop& loop = server->shard(0).loop();
  absl::StatusOr<std::vector<SocketInfo>> sockets =
      CallInLoop(loop, [&loop] { return loop.socket_infos(); }, std::chrono::seconds(5), "test:list_sockets");
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  int fd = -1;
  for (const SocketInfo& s : *sockets) {
    if (s.kind == "connection") fd = s.fd;
  }
  ASSERT_GE(fd, 0) << "the loop lists no connection";

  // A hand-over's drain (the listener ends at once, with no wait: its clients are another
  // process's), and an admin's close of the connection queued so that the loop runs it in the
  // iteration that ends the drain, right before the drain's end: the listener's task (queued by
  // the drain) ends in the iteration after the drain's and queues its done-callback, which ends
  // the drain in the next one, where the close, queued an iteration earlier than it, runs first.
  testing::LoopHold hold;
  ASSERT_TRUE(loop.call_soon_threadsafe(hold.task(), "test:hold"));
  hold.wait_until_held();
  server::Shard* shard = &server->shard(0);
  ASSERT_TRUE(loop.call_soon_threadsafe(
      [&loop, shard, fd] {
        loop.call_soon(
            [&loop, shard, fd] {
              loop.call_soon([shard, fd] { EXPECT_TRUE(shard->close_connection(fd).ok()); }, "test:close_connection");
            },
            "test:queue_close");
      },
      "test:queue_queue_close"));
  server->DrainHandedOver();
  hold.release();
  server->Wait();
  EXPECT_TRUE(testing::EndReadableNow(client.fd())) << "the loop stopped with the connection's socket still open";
  server.reset();
  EXPECT_EQ(client.recv_until_eof(), "");
}

INSTANTIATE_TEST_SUITE_P(Backends, DrainLastCloseTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
