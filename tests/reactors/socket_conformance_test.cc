// Async sockets, the same tests on every backend: accept, echo of every size and byte value,
// partial writes, resets, half-close, cancellation, timers beside busy sockets, cross-thread
// wake-ups, a thousand sockets, refused connections, and no descriptor leaked by any test.
#include <fcntl.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/socket.h"
#include "tests/testing/backends.h"
#include "runtime/manual_clock.h"
#include "tests/testing/net.h"
#include "tests/testing/threads.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::BlockingClient;

class SocketTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    testing::RaiseFdLimit(8192);
    fds_before_ = testing::CountOpenFds();
    BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
    loop_ = testing::NewLoop(GetParam());
    ASSERT_NE(loop_, nullptr);
  }

  void TearDown() override {
    loop_.reset();
    if (!IsSkipped()) {
      EXPECT_EQ(testing::CountOpenFds(), fds_before_) << "descriptors leaked";
    }
  }

  // Runs `task` on the loop, failing the test (instead of hanging) after 60 s.
  template <typename T>
  T Run(Task<T> task) {
    auto bounded = run_until_complete(*loop_, wait_for(std::move(task), seconds(60)));
    if constexpr (std::is_void_v<T>) {
      EXPECT_TRUE(bounded.ok()) << bounded;
    } else {
      EXPECT_TRUE(bounded.ok()) << bounded.status();
      if (!bounded.ok()) return T{};
      return *std::move(bounded);
    }
  }

  Socket Listen(int family = AF_INET) {
    auto s = Socket::Listen(*loop_, SocketAddress::Loopback(0, family));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : Socket();
  }

  static uint16_t PortOf(const Socket& s) { return s.local_address()->port(); }

  ManualClock clock_;  // for tests in virtual time; declared first: it must outlive the loop
  std::unique_ptr<EventLoop> loop_;
  int fds_before_ = -1;
};

// Echoes until the peer closes its side, then closes.
Task<> EchoUntilEof(Socket s) {
  std::vector<char> buf(65536);
  for (;;) {
    absl::StatusOr<size_t> n = co_await s.recv(buf.data(), buf.size());
    if (!n.ok() || *n == 0) break;
    if (!(co_await s.send_all(buf.data(), *n)).ok()) break;
  }
}

// Accepts `count` connections and echoes on each.
Task<> ServeEcho(Socket& listener, int count) {
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<Socket> conn = co_await listener.accept();
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) co_return;
    create_task(EchoUntilEof(*std::move(conn)), "echo");
  }
}

// Keeps the loop serving until another thread raises `flag`.
Task<> WaitUntil(const std::atomic<bool>& flag) {
  while (!flag.load()) co_await sleep(milliseconds(1));
}

// Keeps the loop running until `holds` does (the event itself, not a guess at how long it
// takes); returns whether it did within 30,000 turns of at least 1 ms each.
Task<bool> Eventually(const std::function<bool()>& holds) {
  for (int i = 0; i < 30000 && !holds(); ++i) co_await sleep(milliseconds(1));
  co_return holds();
}

// Sends `payload` from one thread while reading the echo in another; returns what came back.
std::string EchoThroughBlockingClient(uint16_t port, const std::string& payload) {
  BlockingClient client(port);
  std::thread writer([&] {
    EXPECT_TRUE(client.send_all(payload));
    client.shutdown_write();
  });
  std::string echoed = client.recv_until_eof();
  writer.join();
  return echoed;
}

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

TEST_P(SocketTest, EchoesEverySizeAndEveryByteValue) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  const std::vector<size_t> sizes = {1, 2, 255, 256, 1000, 4096, 65535, 65536, 100000, 1 << 20, 4 << 20};
  std::vector<std::string> echoed(sizes.size());
  std::atomic<bool> done{false};
  std::thread clients([&] {
    for (size_t i = 0; i < sizes.size(); ++i) {
      echoed[i] = EchoThroughBlockingClient(port, testing::RandomBytes(sizes[i], static_cast<uint32_t>(i)));
    }
    done = true;
  });
  auto main_task = [&]() -> Task<> {
    co_await ServeEcho(listener, static_cast<int>(sizes.size()));
    co_await WaitUntil(done);
  };
  Run(main_task());
  clients.join();
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::string expected = testing::RandomBytes(sizes[i], static_cast<uint32_t>(i));
    EXPECT_EQ(echoed[i].size(), sizes[i]);
    EXPECT_TRUE(echoed[i] == expected) << "echo of " << sizes[i] << " bytes differs";
  }
  auto drain = [&]() -> Task<> {
    while (loop_->stats().sockets > 1) co_await sleep(milliseconds(1));
  };
  Run(drain());
}

TEST_P(SocketTest, PartialWritesUnderATinySendBuffer) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  const std::string payload = testing::RandomBytes(4 << 20, 7);
  std::string received;
  std::thread client([&] {
    BlockingClient c(port);
    received = c.recv_until_eof();
  });
  size_t first_send = 0;
  auto server = [&]() -> Task<> {
    absl::StatusOr<Socket> conn = co_await listener.accept();
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) co_return;
    SocketOptions tiny;
    tiny.reuse_address = false;
    tiny.send_buffer = 4096;
    EXPECT_TRUE(conn->apply(tiny).ok());
    absl::StatusOr<size_t> n = co_await conn->send(payload.data(), payload.size());
    EXPECT_TRUE(n.ok()) << n.status();
    first_send = n.ok() ? *n : 0;
    absl::Status rest = co_await conn->send_all(payload.data() + first_send, payload.size() - first_send);
    EXPECT_TRUE(rest.ok()) << rest;
  };
  Run(server());
  client.join();
  EXPECT_GT(first_send, 0u);
  EXPECT_LT(first_send, payload.size()) << "a 4 MiB send into a 4 KiB buffer is partial";
  EXPECT_EQ(received.size(), payload.size());
  EXPECT_TRUE(received == payload);
}

TEST_P(SocketTest, PeerResetMidSendIsAnErrorNotACrash) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  std::atomic<bool> reset{false};
  std::thread client([&] {
    BlockingClient c(port);
    c.set_receive_buffer(4096);
    EXPECT_EQ(c.recv_exact(1000).size(), 1000u);  // the send is under way
    c.set_linger_zero();
    c.close();  // RST
    reset = true;
  });
  absl::Status sent;
  auto server = [&]() -> Task<> {
    absl::StatusOr<Socket> conn = co_await listener.accept();
    if (!conn.ok()) co_return;
    std::string big(64 << 20, 'x');
    sent = co_await conn->send_all(big.data(), big.size());
  };
  Run(server());
  client.join();
  EXPECT_TRUE(reset.load());
  ASSERT_FALSE(sent.ok()) << "64 MiB cannot reach a peer that reset";
  EXPECT_NE(sent.message().find("send on fd"), absl::string_view::npos) << sent;
}

TEST_P(SocketTest, HalfCloseDeliversEndOfStreamAndTheReplyStillArrives) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  std::string reply;
  std::thread client([&] {
    BlockingClient c(port);
    EXPECT_TRUE(c.send_all("question"));
    c.shutdown_write();
    reply = c.recv_until_eof();
  });
  std::string heard;
  auto server = [&]() -> Task<> {
    absl::StatusOr<Socket> conn = co_await listener.accept();
    if (!conn.ok()) co_return;
    char buf[64];
    for (;;) {
      absl::StatusOr<size_t> n = co_await conn->recv(buf, sizeof buf);
      EXPECT_TRUE(n.ok()) << n.status();
      if (!n.ok() || *n == 0) break;
      heard.append(buf, *n);
    }
    std::string answer = "answer after end of stream";
    EXPECT_TRUE((co_await conn->send_all(answer.data(), answer.size())).ok());
  };
  Run(server());
  client.join();
  EXPECT_EQ(heard, "question");
  EXPECT_EQ(reply, "answer after end of stream");
}

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

// Timers fire while a socket is busy all the time, and the socket keeps going between ticks.
// In virtual time: another thread moves the loop's clock 2 ms forward once the ping-pong has
// made progress since the last tick, so each tick falls due while I/O is in flight. If I/O
// starved the timers, or timers the I/O, the clock would stop (that thread gives up after
// 30 s) and the ticks would not all happen.
TEST_P(SocketTest, TimersAndBusySocketsTakeTurns) {
  loop_ = testing::NewLoop(GetParam(), {.manual_clock = &clock_});
  ASSERT_NE(loop_, nullptr);
  constexpr int kTicks = 20;
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  std::atomic<int> ticks{0};
  std::atomic<int64_t> round_trips{0};
  std::atomic<int64_t> round_trips_at_last_tick{0};
  std::atomic<bool> gave_up{false};
  std::vector<int64_t> round_trips_at_tick;
  std::vector<int64_t> lateness_ns;
  std::thread time_keeper([&] {
    auto until = [&](const std::function<bool()>& holds) {
      TimePoint give_up = Clock::now() + seconds(30);
      while (!holds() && Clock::now() < give_up) std::this_thread::yield();
      return holds();
    };
    for (int tick = 0; tick < kTicks; ++tick) {
      if (!until([&] { return round_trips.load() > round_trips_at_last_tick.load(); })) break;
      clock_.advance(milliseconds(2));
      if (!until([&] { return ticks.load() > tick; })) break;
    }
    gave_up = ticks.load() < kTicks;
  });
  auto main_task = [&]() -> Task<> {
    create_task(ServeEcho(listener, 1), "serve");
    absl::StatusOr<Socket> c = co_await ConnectTo(*loop_, SocketAddress::Loopback(port));
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) {
      gave_up = true;
      co_return;
    }
    auto ticker = [&]() -> Task<> {
      while (ticks.load() < kTicks && !gave_up.load()) {
        TimePoint due = loop_->now() + milliseconds(2);
        co_await sleep(milliseconds(2));
        lateness_ns.push_back((loop_->now() - due).count());
        round_trips_at_tick.push_back(round_trips.load());
        round_trips_at_last_tick = round_trips.load();
        ++ticks;
      }
    };
    Future<> t = create_task(ticker());
    char byte = 'x';
    while (ticks.load() < kTicks && !gave_up.load()) {
      EXPECT_TRUE((co_await c->send_all(&byte, 1)).ok());
      absl::StatusOr<size_t> n = co_await c->recv(&byte, 1);
      EXPECT_TRUE(n.ok() && *n == 1);
      ++round_trips;
    }
    co_await t;
  };
  Run(main_task());
  time_keeper.join();
  EXPECT_FALSE(gave_up.load()) << ticks.load() << " ticks, " << round_trips.load() << " round trips";
  ASSERT_EQ(ticks.load(), kTicks);
  EXPECT_GT(round_trips_at_tick[0], 0) << "sockets ran before the first tick";
  for (int i = 1; i < kTicks; ++i) {
    EXPECT_GT(round_trips_at_tick[i], round_trips_at_tick[i - 1]) << "and kept running between ticks " << i;
  }
  for (int64_t late : lateness_ns) EXPECT_EQ(late, 0) << "due at the advance, run at it: never early, never late";
  EXPECT_EQ(loop_->stats().timer_lateness.total, static_cast<uint64_t>(kTicks));
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
