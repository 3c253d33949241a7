// Async sockets, the same tests on every backend: accepting and connecting: many clients, a
// thousand sockets at once, refused connections, IPv6, connect/close cycles that leak nothing,
// and select(2)'s refusal of descriptors past FD_SETSIZE. (Moving bytes:
// socket_transfer_conformance_test; cancellation, wake-ups and the read and write sets:
// socket_sets_conformance_test.)
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
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

Task<absl::Status> ConnectSocket(Socket& socket, SocketAddress address) { co_return co_await socket.connect(address); }

// A connect cancelled while the kernel still connects (the listener's accept queue is full, so
// its SYN waits for the retransmission, a second later), then a connect again on the same
// socket: it ends as that connection does, once the queue has room, on every backend. select,
// poll and epoll ended it at once with EALREADY ("Operation already in progress") while the
// kernel went on to connect the socket; io_uring waited.
TEST_P(SocketTest, AConnectAgainAfterACancelledOneEndsAsThatConnectionDoes) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), size), 0);
  ASSERT_EQ(::listen(listener, 0), 0);  // room for one connection in the accept queue
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size), 0);
  const uint16_t port = ntohs(address.sin_port);
  auto filler = std::make_unique<BlockingClient>(port);  // takes that room

  std::atomic<bool> first_cancelled{false};
  std::thread taker;
  auto main_task = [&]() -> Task<absl::Status> {
    absl::StatusOr<Socket> socket = Socket::Create(*loop_, AF_INET);
    if (!socket.ok()) co_return socket.status();
    const SocketAddress to = SocketAddress::Loopback(port);
    absl::Status first = co_await wait_for(ConnectSocket(*socket, to), milliseconds(300));
    if (!absl::IsDeadlineExceeded(first)) co_return absl::InternalError("the first connect ended: " + first.ToString());
    first_cancelled = true;
    taker = std::thread([&] { ::close(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)); });  // room again
    absl::Status again = co_await wait_for(ConnectSocket(*socket, to), std::chrono::seconds(30));
    if (!again.ok()) co_return again;
    absl::StatusOr<SocketAddress> peer = socket->peer_address();
    if (!peer.ok()) co_return peer.status();
    co_return peer->port() == port ? absl::OkStatus() : absl::InternalError("connected to " + peer->ToString());
  };
  absl::Status connected = Run(main_task());
  if (taker.joinable()) taker.join();
  EXPECT_TRUE(first_cancelled.load()) << "the first connect was not cut short";
  EXPECT_TRUE(connected.ok()) << connected;
  filler.reset();
  ::close(listener);
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

// Every operation on a closed socket fails at once with FailedPrecondition naming it, as
// accept_queued does.
TEST_P(SocketTest, OperationsOnAClosedSocketFailWithoutTouchingTheLoop) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  auto expect_closed = [](const absl::Status& s, const std::string& operation) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_EQ(s.message(), operation + " on a closed socket") << s;
  };
  auto main_task = [&]() -> Task<> {
    absl::StatusOr<Socket> client = co_await ConnectTo(*loop_, SocketAddress::Loopback(port));
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) co_return;
    absl::StatusOr<Socket> conn = co_await listener.accept();
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) co_return;
    conn->close();
    listener.close();
    absl::StatusOr<Socket> fresh = Socket::Create(*loop_, AF_INET);
    EXPECT_TRUE(fresh.ok()) << fresh.status();
    if (!fresh.ok()) co_return;
    fresh->close();
    char buf[16] = "closed";
    expect_closed((co_await listener.accept()).status(), "accept");
    expect_closed((co_await conn->recv(buf, sizeof buf)).status(), "recv");
    expect_closed((co_await conn->send(buf, sizeof buf)).status(), "send");
    expect_closed(co_await conn->send_all(buf, sizeof buf), "send");
    expect_closed(co_await fresh->connect(SocketAddress::Loopback(port)), "connect");
    Socket never_opened;
    expect_closed((co_await never_opened.recv(buf, sizeof buf)).status(), "recv");
  };
  Run(main_task());
}

// accept_queued takes what waits in the backlog at once, says when nothing does, and refuses
// while an accept is pending (the two would race for the same connections).
TEST_P(SocketTest, AcceptQueuedTakesTheBacklogWithoutWaiting) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  auto main_task = [&]() -> Task<> {
    absl::StatusOr<std::optional<Socket>> none = listener.accept_queued();
    EXPECT_TRUE(none.ok() && !none->has_value()) << "nothing is queued yet";
    // Loopback completes the handshake inside connect(): both wait in the backlog now.
    BlockingClient first(port);
    BlockingClient second(port);
    std::vector<Socket> taken;
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<std::optional<Socket>> queued = listener.accept_queued();
      EXPECT_TRUE(queued.ok()) << queued.status();
      if (queued.ok() && queued->has_value()) taken.push_back(std::move(**queued));
    }
    EXPECT_EQ(taken.size(), 2u);
    none = listener.accept_queued();
    EXPECT_TRUE(none.ok() && !none->has_value()) << "the backlog is empty again";
    // What was taken is a connection like any accepted one.
    if (taken.size() == 2) {
      EXPECT_TRUE(first.send_all("q"));
      char c = 0;
      absl::StatusOr<size_t> n = co_await taken[0].recv(&c, 1);
      EXPECT_TRUE(n.ok() && *n == 1 && c == 'q');
    }
    Future<absl::StatusOr<Socket>> pending = create_task(
        [](Socket& l) -> Task<absl::StatusOr<Socket>> { co_return co_await l.accept(); }(listener), "accept");
    // A yield, not a timer: the accept task, queued first, starts its accept before this task
    // resumes, however late the loop runs (a timer due by then would run before it).
    co_await sleep(Duration::zero());
    absl::StatusOr<std::optional<Socket>> refused = listener.accept_queued();
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
    pending.cancel();
    while (!pending.done()) co_await sleep(milliseconds(1));
  };
  Run(main_task());
}

// Two loops accept on one listener (as two processes do after a hand-over). A new connection
// arrives and, in the same turn of the first loop, that loop's accept is cancelled. io_uring
// wakes one waiting accept per connection, the one that waited longest: the first loop's,
// which the cancel then ends without accepting, and the second loop's accept sleeps on with the
// connection in the backlog. Ending the cancelled accept with accept_queued takes it, on every
// backend; without it the connection waits for the next one to arrive (here: for ever).
TEST_P(SocketTest, ACancelledAcceptStrandsNoConnectionWhenTheBacklogIsTakenAfter) {
  // Loops run by one thread each, as the echo server's are: io_uring then runs an accept's
  // completion work only inside that thread's next wait, not on its return from connect().
  EventLoopOptions one_thread;
  one_thread.reactor.one_thread = true;
  loop_ = testing::NewLoop(GetParam(), one_thread);
  ASSERT_NE(loop_, nullptr);
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  int shared = ::fcntl(listener.fd(), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(shared, 0);
  std::atomic<int> accepted_here{0};
  std::atomic<int> accepted_there{0};
  std::atomic<bool> there_started{false};
  std::atomic<bool> there_stop{false};
  std::thread there([&] {
    std::unique_ptr<EventLoop> loop = testing::NewLoop(GetParam(), one_thread);
    ASSERT_NE(loop, nullptr);
    Socket sibling = Socket::Adopt(*loop, shared, "listener");
    auto serve = [&]() -> Task<> {
      std::vector<Socket> held;
      Future<> acceptor = create_task(
          [](Socket& l, std::atomic<int>& count, std::vector<Socket>& keep) -> Task<> {
            for (;;) {
              absl::StatusOr<Socket> c = co_await l.accept();
              if (!c.ok()) co_return;
              ++count;
              keep.push_back(*std::move(c));
            }
          }(sibling, accepted_there, held),
          "there:accept");
      co_await sleep(milliseconds(20));  // its accept waits in the kernel, behind this loop's
      there_started = true;
      co_await WaitUntil(there_stop);
      acceptor.cancel();
      while (!acceptor.done()) co_await sleep(milliseconds(1));
    };
    run_until_complete(*loop, serve());
    sibling.close();
  });
  auto main_task = [&]() -> Task<> {
    std::vector<Socket> held;
    Future<> acceptor = create_task(
        [](Socket& l, std::atomic<int>& count, std::vector<Socket>& keep) -> Task<> {
          try {
            absl::StatusOr<Socket> c = co_await l.accept();
            if (c.ok()) {
              ++count;
              keep.push_back(*std::move(c));
            }
          } catch (const CancelledError&) {
          }
          for (;;) {
            absl::StatusOr<std::optional<Socket>> q = l.accept_queued();
            if (!q.ok() || !q->has_value()) break;
            ++count;
            keep.push_back(std::move(**q));
          }
        }(listener, accepted_here, held),
        "here:accept");
    co_await sleep(milliseconds(5));  // this loop's accept waits in the kernel first
    bool started = co_await testing::Eventually([&] { return there_started.load(); });
    EXPECT_TRUE(started);
    {
      BlockingClient client(port);  // its handshake completes (and wakes an accept) inside connect()
      acceptor.cancel();            // before this loop enters the kernel again
      bool taken = co_await testing::Eventually([&] { return accepted_here.load() + accepted_there.load() == 1; });
      EXPECT_TRUE(taken) << "the connection waits in the backlog with both loops' accepts asleep";
    }
    while (!acceptor.done()) co_await sleep(milliseconds(1));
    there_stop = true;
  };
  Run(main_task());
  there_stop = true;
  there.join();
  EXPECT_EQ(accepted_here.load() + accepted_there.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, SocketTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, SocketTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

// A connection made on a select loop once every free descriptor below `limit` is taken (by
// copies of stdin, closed again before it returns), so that its socket is `limit` or above: how
// it ended, and its descriptor if it was made.
struct SelectConnect {
  absl::Status status;
  int fd = -1;
};
SelectConnect ConnectOnSelectWithDescriptorsTakenBelow(int limit) {
  SelectConnect result;
  testing::RaiseFdLimit(4096);
  auto loop = testing::NewLoop("select");
  auto listener = loop != nullptr ? Socket::Listen(*loop, SocketAddress::Loopback(0))
                                  : absl::StatusOr<Socket>(absl::InternalError("no select loop"));
  if (!listener.ok()) {
    result.status = listener.status();
    return result;
  }
  std::vector<int> fillers;
  for (int fd; (fd = ::dup(0)) >= 0;) {
    if (fd >= limit) {
      ::close(fd);
      break;
    }
    fillers.push_back(fd);
  }
  uint16_t port = listener->local_address()->port();
  auto main_task = [&]() -> Task<> {
    absl::StatusOr<Socket> c = co_await ConnectTo(*loop, SocketAddress::Loopback(port));
    result.status = c.status();
    if (c.ok()) result.fd = c->fd();
  };
  run_until_complete(*loop, main_task());
  for (int fd : fillers) ::close(fd);
  return result;
}

// select(2) cannot watch a descriptor >= FD_SETSIZE: the backend refuses it with an error
// that says so (instead of corrupting memory).
TEST(SelectLimitTest, SelectRefusesDescriptorsPastFdSetsizeWithAClearError) {
  int fds_before = testing::CountOpenFds();
  absl::Status status = ConnectOnSelectWithDescriptorsTakenBelow(FD_SETSIZE).status;
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("FD_SETSIZE"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("use --backend=poll, epoll or io_uring"), absl::string_view::npos) << status;
  EXPECT_EQ(testing::CountOpenFds(), fds_before);
}

// And takes the last descriptor below it: a connection on FD_SETSIZE - 1 is served.
TEST(SelectLimitTest, SelectTakesTheLastDescriptorBelowFdSetsize) {
  int fds_before = testing::CountOpenFds();
  SelectConnect connected = ConnectOnSelectWithDescriptorsTakenBelow(FD_SETSIZE - 1);
  EXPECT_TRUE(connected.status.ok()) << connected.status;
  EXPECT_EQ(connected.fd, FD_SETSIZE - 1) << "the connection's descriptor";
  EXPECT_EQ(testing::CountOpenFds(), fds_before);
}

}  // namespace
}  // namespace brrr
