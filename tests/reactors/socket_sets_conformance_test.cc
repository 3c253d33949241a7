// Async sockets, the same tests on every backend: what a loop tracks about its sockets:
// cancelling a pending receive, a wake-up from another thread while the loop waits on sockets,
// a counted descriptor leaving its count only once it is really closed, and the read and write
// sets.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/socket.h"
#include "tests/reactors/socket_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/threads.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::BlockingClient;
using testing::Eventually;
using testing::SocketTest;

TEST_P(SocketTest, CancellingAPendingRecvReleasesItAndLosesNothing) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  BlockingClient client(port);
  auto main_task = [&]() -> Task<> {
    absl::StatusOr<Socket> accepted = co_await listener.accept();
    EXPECT_TRUE(accepted.ok());
    if (!accepted.ok()) co_return;
    Socket conn = *std::move(accepted);
    bool cancelled = false;
    char buf[64];
    auto reader = [&]() -> Task<> {
      try {
        (void)co_await conn.recv(buf, sizeof buf);
      } catch (const CancelledError&) {
        cancelled = true;
        throw;
      }
    };
    Future<> f = create_task(reader());
    EXPECT_TRUE(co_await Eventually([&] { return loop_->stats().read_set_size == 1; }))
        << "the pending recv puts the socket in the read set";
    f.cancel();
    co_await f.wait();
    EXPECT_TRUE(cancelled);
    EXPECT_EQ(loop_->stats().read_set_size, 0u);
    // The socket works on: a new recv (no -EBUSY) gets what the client sends now.
    EXPECT_TRUE(client.send_all("after cancel"));
    std::string got;
    while (got.size() < 12) {
      absl::StatusOr<size_t> n = co_await conn.recv(buf, sizeof buf);
      EXPECT_TRUE(n.ok()) << n.status();
      if (!n.ok() || *n == 0) break;
      got.append(buf, *n);
    }
    EXPECT_EQ(got, "after cancel");
  };
  Run(main_task());
}

// A gather of two tasks each waiting in a recv, cancelled: gather cancels both (each recv is
// cancelled in the backend: the read set empties), waits for both, and throws CancelledError;
// both sockets then receive what their clients send next, nothing lost to the cancelled recvs.
TEST_P(SocketTest, CancellingAGatherOfPendingRecvsCancelsEachAndLosesNothing) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  BlockingClient client_a(port);
  BlockingClient client_b(port);
  auto main_task = [&]() -> Task<> {
    absl::StatusOr<Socket> a = co_await listener.accept();
    absl::StatusOr<Socket> b = co_await listener.accept();
    EXPECT_TRUE(a.ok() && b.ok());
    if (!a.ok() || !b.ok()) co_return;
    int cancelled = 0;
    char buf_a[64];
    char buf_b[64];
    auto reader = [&](Socket& conn, char* buf) -> Task<> {
      try {
        (void)co_await conn.recv(buf, 64);
      } catch (const CancelledError&) {
        ++cancelled;
        throw;
      }
    };
    bool gather_cancelled = false;
    auto both = [&]() -> Task<> {
      try {
        co_await gather(reader(*a, buf_a), reader(*b, buf_b));
      } catch (const CancelledError&) {
        gather_cancelled = true;
        throw;
      }
    };
    Future<> f = create_task(both());
    EXPECT_TRUE(co_await Eventually([&] { return loop_->stats().read_set_size == 2; }))
        << "both pending recvs put their sockets in the read set";
    f.cancel();
    co_await f.wait();
    EXPECT_TRUE(f.cancelled());
    EXPECT_TRUE(gather_cancelled);
    EXPECT_EQ(cancelled, 2);
    EXPECT_EQ(loop_->stats().read_set_size, 0u);
    EXPECT_TRUE(client_a.send_all("to a"));
    EXPECT_TRUE(client_b.send_all("to b"));
    for (auto [conn, want] : {std::pair<Socket*, std::string>{&*a, "to a"}, {&*b, "to b"}}) {
      std::string got;
      while (got.size() < want.size()) {
        absl::StatusOr<size_t> n = co_await conn->recv(buf_a, sizeof buf_a);
        EXPECT_TRUE(n.ok()) << n.status();
        if (!n.ok() || *n == 0) break;
        got.append(buf_a, *n);
      }
      EXPECT_EQ(got, want);
    }
  };
  Run(main_task());
}

// A task that owns its socket and waits in a recv when the loop is destroyed (socket.h: a
// socket a task owns need not be closed first): the task is destroyed unfinished, its future
// cancelled, its recv never returns, and its socket is closed (the descriptor leaves its count,
// the client reads the end of the stream).
TEST_P(SocketTest, ATaskWaitingInARecvIsDestroyedWithTheLoopAndItsSocketClosed) {
  std::atomic<int64_t> open{0};
  bool recv_returned = false;
  auto owner = [&](Socket listener) -> Task<> {
    absl::StatusOr<Socket> conn = co_await listener.accept();
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) co_return;
    listener.close();
    open.fetch_add(1);
    conn->count_descriptor_in(&open);
    char buf[64];
    (void)co_await conn->recv(buf, sizeof buf);
    recv_returned = true;
  };
  Socket listener = Listen();
  BlockingClient client(PortOf(listener));
  Future<> f = create_task(*loop_, owner(std::move(listener)));
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((open.load() != 1 || loop_->stats().read_set_size != 1) && std::chrono::steady_clock::now() < give_up) {
    loop_->run_once(milliseconds(10));
  }
  ASSERT_EQ(open.load(), 1);
  ASSERT_EQ(loop_->stats().read_set_size, 1u) << "the recv is pending";
  loop_.reset();
  EXPECT_TRUE(f.cancelled());
  EXPECT_FALSE(recv_returned);
  EXPECT_EQ(open.load(), 0) << "the task's socket was closed with the loop";
  EXPECT_EQ(client.recv_until_eof(), "");
}

// A send_all cancelled once its send was submitted: the readiness backends sent every byte at
// submit, and io_uring sends it when it enters the kernel, before it looks at the cancel. The
// bytes went out, so send_all says so (OK, not CancelledError, as a recv that completed
// anyway keeps its result), and the cancellation waits for the task's next await. (The faulty
// copies may send only some at submit, or none: the cancel then cuts send_all short, and it
// throws CancelledError. Either way it never says cancelled of bytes that all went out.)
TEST_P(SocketTest, ACancelledSendAllThatSentEverythingKeepsItsResult) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  BlockingClient client(port);
  const std::string payload = testing::RandomBytes(100, 7);
  bool cancelled_at_next_await = false;
  auto main_task = [&]() -> Task<absl::Status> {
    absl::StatusOr<Socket> accepted = co_await listener.accept();
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    if (!accepted.ok()) co_return accepted.status();
    Socket conn = *std::move(accepted);
    auto sender = [&]() -> Task<absl::Status> {
      absl::Status sent = co_await conn.send_all(payload.data(), payload.size());
      try {
        co_await sleep(Duration::zero());
      } catch (const CancelledError&) {
        cancelled_at_next_await = true;
      }
      co_return sent;
    };
    Future<absl::Status> f = create_task(sender());
    co_await sleep(Duration::zero());  // the sender starts, and submits its send, just before this resumes
    EXPECT_TRUE(f.cancel());
    co_await f.wait();
    // Judged below, where a faulty backend may have cut the send short.
    if (f.cancelled()) co_return absl::CancelledError("send_all threw CancelledError");
    co_return f.result();
  };
  absl::Status sent = Run(main_task());  // closes the connection
  std::string got = client.recv_until_eof();
  if (sent.ok()) {
    EXPECT_EQ(got, payload);
    EXPECT_TRUE(cancelled_at_next_await) << "the cancel request was lost";
  } else {
    EXPECT_EQ(sent.code(), absl::StatusCode::kCancelled) << sent;
    EXPECT_LT(got.size(), payload.size()) << "every byte went out, yet send_all threw CancelledError";
  }
  if (!testing::IsFaulty(GetParam())) {
    EXPECT_TRUE(sent.ok()) << sent;
  }
}

// The post reaches a loop asleep in its backend's wait with an accept pending (the poster
// waits until /proc shows the loop thread blocked in the wait system call).
TEST_P(SocketTest, AnotherThreadWakesALoopWaitingOnSockets) {
  Socket listener = Listen();
  pid_t loop_thread = testing::CurrentThreadId();
  std::atomic<bool> posted{false};
  std::thread poster([&] {
    EXPECT_TRUE(testing::WaitUntilBlockedInWait(loop_thread)) << "the loop never blocked in its backend";
    posted = true;
    loop_->call_soon_threadsafe([&] { listener.close(); });  // cancels the pending accept
  });
  auto main_task = [&]() -> Task<> {
    absl::StatusOr<Socket> conn = co_await listener.accept();  // nothing ever connects
    EXPECT_TRUE(posted.load()) << "the accept ended before the post";
    EXPECT_FALSE(conn.ok());
    EXPECT_EQ(conn.status().code(), absl::StatusCode::kCancelled) << conn.status();
  };
  Run(main_task());
  poster.join();
}

// The descriptor budget of the echo server counts what is really open: a socket counted in
// a counter leaves it when its descriptor is closed, not before (a backend may hold it past
// close() while a receive is being cancelled) and not never.
TEST_P(SocketTest, ACountedDescriptorLeavesTheCountWhenItIsClosed) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  BlockingClient idle_client(port);
  BlockingClient reading_client(port);
  std::atomic<int64_t> count{0};
  auto is_open = [](int fd) { return ::fcntl(fd, F_GETFD) != -1; };
  auto main_task = [&]() -> Task<> {
    // Closed with nothing in flight: the descriptor goes at once.
    absl::StatusOr<Socket> idle = co_await listener.accept();
    EXPECT_TRUE(idle.ok()) << idle.status();
    if (!idle.ok()) co_return;
    int idle_fd = idle->fd();
    count.fetch_add(1);
    idle->count_descriptor_in(&count);
    idle->close();
    EXPECT_FALSE(is_open(idle_fd));
    EXPECT_EQ(count.load(), 0);

    // Closed with a receive pending: open and counted until the backend lets go of it.
    absl::StatusOr<Socket> accepted = co_await listener.accept();
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    if (!accepted.ok()) co_return;
    Socket reading = *std::move(accepted);
    int fd = reading.fd();
    count.fetch_add(1);
    reading.count_descriptor_in(&count);
    char buf[64];
    auto reader = [&]() -> Task<> { (void)co_await reading.recv(buf, sizeof buf); };
    Future<> f = create_task(reader());
    EXPECT_TRUE(co_await Eventually([&] { return loop_->stats().read_set_size == 1; })) << "the receive is pending";
    EXPECT_EQ(count.load(), 1);
    reading.close();
    EXPECT_EQ(count.load() == 1, is_open(fd));
    for (int i = 0; i < 5000 && count.load() != 0; ++i) {
      EXPECT_EQ(count.load() == 1, is_open(fd));
      co_await sleep(milliseconds(1));
    }
    EXPECT_EQ(count.load(), 0);
    EXPECT_FALSE(is_open(fd));
    co_await f.wait();
  };
  Run(main_task());
}

// A socket closed with a receive pending closes for good only when the backend lets go of it.
// stop_once_sockets_closed waits for that (a server's drained loop stops so), so the client
// has its end of stream when the loop has stopped, not only once the loop is destroyed.
TEST_P(SocketTest, StopOnceSocketsClosedLetsAClosingSocketFinishFirst) {
  Socket listener = Listen();
  BlockingClient client(PortOf(listener));
  Socket conn;
  char buf[64];
  Future<> reader;
  auto start_reading = [&]() -> Task<> {
    absl::StatusOr<Socket> accepted = co_await listener.accept();
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    if (!accepted.ok()) co_return;
    conn = *std::move(accepted);
    reader = create_task([](Socket& s, char* into) -> Task<> { (void)co_await s.recv(into, 64); }(conn, buf));
    EXPECT_TRUE(co_await Eventually([&] { return loop_->stats().read_set_size == 1; })) << "the receive is pending";
  };
  Run(start_reading());
  ASSERT_TRUE(conn.valid());
  int fd = conn.fd();
  loop_->call_soon([&] {
    conn.close();
    // Not the default limit (1 s), which a slow machine could reach before the backend lets go.
    loop_->stop_once_sockets_closed(std::chrono::seconds(30));
  });
  loop_->run_forever();
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "the descriptor is still open after the loop stopped";
  // The end of stream is on its way (its delivery is the kernel's, bounded here: 10 s).
  pollfd readable{client.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&readable, 1, 10000), 1) << "no end of stream within 10 s";
  char c = 0;
  EXPECT_EQ(::recv(client.fd(), &c, 1, MSG_DONTWAIT), 0) << "no end of stream yet: " << std::strerror(errno);
  EXPECT_TRUE(reader.done());
}

// The read set is the sockets with a receive pending; the write set those with a send in
// flight or bytes their owner has queued (set_queued_bytes), each counted once.
TEST_P(SocketTest, ReadAndWriteSetsAreTracked) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  BlockingClient client(port);
  client.set_receive_buffer(4096);
  auto main_task = [&]() -> Task<> {
    absl::StatusOr<Socket> accepted = co_await listener.accept();
    if (!accepted.ok()) co_return;
    Socket conn = *std::move(accepted);
    auto info = [&]() {
      for (const SocketInfo& i : loop_->socket_infos()) {
        if (i.fd == conn.fd()) return i;
      }
      ADD_FAILURE() << "fd " << conn.fd() << " is not in the socket table";
      return SocketInfo();
    };
    EXPECT_EQ(loop_->stats().read_set_size, 0u);
    EXPECT_EQ(loop_->stats().write_set_size, 0u);
    // Bytes queued by the owner, with no send in flight, put the socket in the write set, and
    // emptying the queue takes it out.
    conn.set_queued_bytes(100);
    EXPECT_EQ(loop_->stats().write_set_size, 1u);
    EXPECT_TRUE(info().in_write_set);
    EXPECT_FALSE(info().in_read_set);
    conn.set_queued_bytes(0);
    EXPECT_EQ(loop_->stats().write_set_size, 0u);
    EXPECT_FALSE(info().in_write_set);
    char buf[16];
    // Named: a coroutine lambda's captures live in its closure, which must outlive the task.
    auto read_once = [&]() -> Task<size_t> { co_return (co_await conn.recv(buf, sizeof buf)).value_or(0); };
    Future<size_t> reading = create_task(read_once());
    EXPECT_TRUE(co_await Eventually([&] { return loop_->stats().read_set_size == 1; }));
    EXPECT_TRUE(info().in_read_set);
    // A send the client never reads stays in flight: the socket is in the write set, once,
    // whether or not its owner also has bytes queued.
    std::string big(32 << 20, 'w');
    auto write_all = [&]() -> Task<absl::Status> { co_return co_await conn.send_all(big.data(), big.size()); };
    Future<absl::Status> writing = create_task(write_all());
    EXPECT_TRUE(co_await Eventually([&] { return loop_->stats().write_set_size == 1; }));
    conn.set_queued_bytes(100);
    EXPECT_EQ(loop_->stats().write_set_size, 1u);
    conn.set_queued_bytes(0);
    EXPECT_EQ(loop_->stats().write_set_size, 1u) << "the send is still in flight";
    SocketInfo both = info();
    EXPECT_TRUE(both.in_read_set);
    EXPECT_TRUE(both.in_write_set);
    EXPECT_EQ(both.kind, "connection");
    EXPECT_GT(both.bytes_out, 0u);
    EXPECT_LT(both.bytes_out, big.size());
    EXPECT_EQ(loop_->stats().read_set_size, 1u);
    conn.close();  // cancels both operations
    co_await reading.wait();
    co_await writing.wait();
    EXPECT_EQ(loop_->stats().read_set_size, 0u);
    EXPECT_EQ(loop_->stats().write_set_size, 0u);
  };
  Run(main_task());
}

INSTANTIATE_TEST_SUITE_P(Backends, SocketTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, SocketTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
