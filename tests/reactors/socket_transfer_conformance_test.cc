// Async sockets, the same tests on every backend: moving bytes: an echo of every size and byte
// value, partial writes under a tiny send buffer, a peer's reset mid-send, half-close, bytes
// behind TCP urgent data, and timers that keep their turns beside a socket busy all the time
// (in virtual time).
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/manual_clock.h"
#include "runtime/socket.h"
#include "tests/reactors/socket_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::BlockingClient;
using testing::EchoThroughBlockingClient;
using testing::ServeEcho;
using testing::SocketTest;
using testing::WaitUntil;

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

// TCP urgent data mid-stream: a receive stops short at the urgent mark, the bytes behind it
// already queued, and no new readiness comes for them (an edge-triggered backend that took the
// short read for a drained queue waited for ever). Every byte is in the server's queue before
// its first receive (the client's kernel has them acknowledged); the client sends nothing more
// until the server has them all. Without SO_OOBINLINE the urgent byte itself is out of band:
// the stream is the other six.
TEST_P(SocketTest, BytesQueuedBehindUrgentDataAreReceivedWithoutMoreArriving) {
  Socket listener = Listen();
  uint16_t port = PortOf(listener);
  std::atomic<bool> all_queued{false};
  std::string reply;
  std::thread client([&] {
    BlockingClient c(port);
    EXPECT_TRUE(c.send_all("abc"));
    EXPECT_EQ(::send(c.fd(), "X", 1, MSG_OOB), 1) << std::strerror(errno);
    EXPECT_TRUE(c.send_all("def"));
    EXPECT_EQ(testing::WaitUntilAcknowledged(c.fd(), seconds(10)), 0)
        << "the server's kernel did not take all 7 bytes in 10 s";
    all_queued = true;
    reply = c.recv_until_eof();
  });
  std::string heard;
  absl::Status last = absl::OkStatus();
  auto server = [&]() -> Task<> {
    absl::StatusOr<Socket> conn = co_await listener.accept();
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) co_return;
    co_await WaitUntil(all_queued);
    char buf[64];
    auto receive = [&]() -> Task<absl::StatusOr<size_t>> { co_return co_await conn->recv(buf, sizeof buf); };
    while (heard.size() < 6) {
      absl::StatusOr<size_t> n = co_await wait_for(receive(), seconds(10));
      if (!n.ok() || *n == 0) {
        last = n.ok() ? absl::OutOfRangeError("end of stream") : n.status();
        break;
      }
      heard.append(buf, *n);
    }
    EXPECT_TRUE((co_await conn->send_all(heard.data(), heard.size())).ok());
  };
  Run(server());
  client.join();
  EXPECT_EQ(heard, "abcdef") << "after " << last;
  EXPECT_EQ(reply, heard);
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

INSTANTIATE_TEST_SUITE_P(Backends, SocketTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, SocketTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
