// drain_last_close_test.cc: a connection closed in the loop iteration that ends its loop's
// drain, in this process, on every backend. The close queues the connection's deletion
// (Shard::connection_closed: it may be deep in the connection's own callbacks), and the drain
// that follows in the same iteration, finding no connection left, stops the loop before that
// deletion runs; the shard still frees the connection at shutdown, and closes its descriptor.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/call_in_loop.h"
#include "runtime/event_loop.h"
#include "server/echo_server.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

class DrainLastCloseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DrainLastCloseTest, AConnectionClosedAsTheDrainEndsIsFreedAtShutdown) {
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

  // No accept pending, so that the drain stops accepting at once, in its own task: paused, the
  // accept loop ends.
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

  // The close and the drain posted while the loop is held, so that one iteration runs both, in
  // that order (as an admin's CloseConnection and a signal's drain can).
  std::promise<void> held;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(loop.call_soon_threadsafe(
      [&held, released] {
        held.set_value();
        released.wait();
      },
      "test:hold"));
  held.get_future().wait();
  server::Shard* shard = &server->shard(0);
  ASSERT_TRUE(loop.call_soon_threadsafe([shard, fd] { EXPECT_TRUE(shard->close_connection(fd).ok()); },
                                        "test:close_connection"));
  ASSERT_TRUE(server->Drain());
  release.set_value();
  server->Wait();
  server.reset();
  EXPECT_EQ(client.recv_until_eof(), "") << "the connection's descriptor is still open";
}

INSTANTIATE_TEST_SUITE_P(Backends, DrainLastCloseTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
