// Async sockets, the same tests on every backend: accepting and connecting: many clients, a
// thousand sockets at once, refused connections, IPv6, connect/close cycles that leak nothing,
// and select(2)'s refusal of descriptors past FD_SETSIZE. (Moving bytes:
// socket_transfer_conformance_test; cancellation, wake-ups and the read and write sets:
// socket_sets_conformance_test.)
#include <sys/socket.h>
#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/socket.h"
#include "tests/reactors/socket_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::BlockingClient;
using testing::ServeEcho;
using testing::SocketTest;
using testing::WaitUntil;

TEST_P(SocketTest, AcceptsManyClients) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  constexpr int kClients = 100;
  std::atomic<bool> done{false};
  std::thread clients([&] {
    std::vector<std::unique_ptr<BlockingClient>> all;
    for (int i = 0; i < kClients; ++i) all.push_back(std::make_unique<BlockingClient>(port));
    for (int i = 0; i < kClients; ++i) EXPECT_TRUE(all[i]->send_all("client " + std::to_string(i)));
    for (int i = 0; i < kClients; ++i) {
      std::string expected = "client " + std::to_string(i);
      EXPECT_EQ(all[i]->recv_exact(expected.size()), expected);
    }
    done = true;
  });
  auto main_task = [&]() -> Task<> {
    co_await ServeEcho(listener, kClients);
    co_await WaitUntil(done);
  };
  Run(main_task());
  clients.join();
  // The client sockets closed: the echo tasks see EOF and close theirs.
  auto drain = [&]() -> Task<> {
    while (loop_->stats().sockets > 1) co_await sleep(milliseconds(1));
  };
  Run(drain());
  EXPECT_EQ(loop_->stats().sockets, 1u);
}

TEST_P(SocketTest, AThousandConcurrentSockets) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  constexpr int kConnections = 500;  // 1,000 sockets: both ends live in this process
  int verified = 0;
  auto client = [&](int i) -> Task<> {
    absl::StatusOr<Socket> c = co_await ConnectTo(*loop_, SocketAddress::Loopback(port));
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) co_return;
    std::string msg = testing::RandomBytes(300, static_cast<uint32_t>(i));
    EXPECT_TRUE((co_await c->send_all(msg.data(), msg.size())).ok());
    std::string got(msg.size(), '\0');
    size_t have = 0;
    while (have < got.size()) {
      absl::StatusOr<size_t> n = co_await c->recv(got.data() + have, got.size() - have);
      if (!n.ok() || *n == 0) break;
      have += *n;
    }
    if (got == msg) ++verified;
  };
  auto main_task = [&]() -> Task<> {
    create_task(ServeEcho(listener, kConnections), "serve");
    std::vector<Task<>> clients;
    for (int i = 0; i < kConnections; ++i) clients.push_back(client(i));
    co_await gather(std::move(clients));
    EXPECT_GE(loop_->stats().sockets, 1u);
    while (loop_->stats().sockets > 1) co_await sleep(milliseconds(1));
  };
  Run(main_task());
  EXPECT_EQ(verified, kConnections);
}

TEST_P(SocketTest, ConnectToAClosedPortIsRefused) {
  uint16_t port;
  {
    Socket probe = Listen();
    port = PortOf(probe);
  }  // closed: nothing listens there now
  auto main_task = [&]() -> Task<absl::Status> {
    absl::StatusOr<Socket> c = co_await ConnectTo(*loop_, SocketAddress::Loopback(port));
    co_return c.status();
  };
  absl::Status s = Run(main_task());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Connection refused"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("connect on fd"), absl::string_view::npos) << s;
}

TEST_P(SocketTest, IPv6Echo) {
  auto listener = Socket::Listen(*loop_, SocketAddress::Loopback(0, AF_INET6));
  // Only a machine without IPv6 on loopback may skip (and CI requires it); any other listen
  // error is a bug.
  if (!listener.ok() && testing::NoIPv6Here(listener.status())) {
    BRRR_SKIP_OR_FAIL("ipv6", "no IPv6 loopback here: " + listener.status().ToString());
  }
  ASSERT_TRUE(listener.ok()) << listener.status();
  uint16_t port = PortOf(*listener);
  std::string echoed;
  std::atomic<bool> done{false};
  std::thread client([&] {
    BlockingClient c(port, /*ipv6=*/true);
    EXPECT_TRUE(c.send_all("over ::1"));
    c.shutdown_write();
    echoed = c.recv_until_eof();
    done = true;
  });
  auto main_task = [&]() -> Task<> {
    co_await ServeEcho(*listener, 1);
    co_await WaitUntil(done);
  };
  Run(main_task());
  client.join();
  EXPECT_EQ(echoed, "over ::1");
  auto drain = [&]() -> Task<> {
    while (loop_->stats().sockets > 1) co_await sleep(milliseconds(1));
  };
  Run(drain());
}

TEST_P(SocketTest, RepeatedConnectAndCloseLeaksNothing) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  auto main_task = [&]() -> Task<> {
    for (int i = 0; i < 300; ++i) {
      absl::StatusOr<Socket> c = co_await ConnectTo(*loop_, SocketAddress::Loopback(port));
      EXPECT_TRUE(c.ok());
      absl::StatusOr<Socket> s = co_await listener.accept();
      EXPECT_TRUE(s.ok());
      if (i % 2 == 0) {
        c->close();
      } else {
        s->close();
      }
    }
    EXPECT_EQ(loop_->stats().sockets, 1u);
  };
  Run(main_task());
}

INSTANTIATE_TEST_SUITE_P(Backends, SocketTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, SocketTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

// select(2) cannot watch a descriptor >= FD_SETSIZE: the backend refuses it with an error
// that says so (instead of corrupting memory).
TEST(SelectLimitTest, SelectRefusesDescriptorsPastFdSetsizeWithAClearError) {
  testing::RaiseFdLimit(4096);
  int fds_before = testing::CountOpenFds();
  {
    auto loop = testing::NewLoop("select");
    ASSERT_NE(loop, nullptr);
    auto listener = Socket::Listen(*loop, SocketAddress::Loopback(0));
    ASSERT_TRUE(listener.ok());
    // Fill the descriptor table up to FD_SETSIZE so the next sockets land above it.
    std::vector<int> fillers;
    for (;;) {
      int fd = ::dup(0);
      if (fd < 0) break;
      if (fd >= FD_SETSIZE) {
        ::close(fd);
        break;
      }
      fillers.push_back(fd);
    }
    uint16_t port = listener->local_address()->port();
    absl::Status status;
    auto main_task = [&]() -> Task<> {
      absl::StatusOr<Socket> c = co_await ConnectTo(*loop, SocketAddress::Loopback(port));
      status = c.status();
    };
    run_until_complete(*loop, main_task());
    for (int fd : fillers) ::close(fd);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
    EXPECT_NE(status.message().find("FD_SETSIZE"), absl::string_view::npos) << status;
    EXPECT_NE(status.message().find("use --backend=poll, epoll or io_uring"), absl::string_view::npos) << status;
  }
  EXPECT_EQ(testing::CountOpenFds(), fds_before);
}

}  // namespace
}  // namespace brrr
