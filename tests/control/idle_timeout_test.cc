// --idle_timeout against real clients, on every backend: a slow reader of a long echo is not
// idle while it takes bytes from the kernel's send buffer, though the server, waiting for room
// in that buffer, sends nothing for seconds; a client that reads none of its echo is idle, and
// closed. The admin plane gives the count of connections closed as idle.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

class IdleTimeoutTest : public testing::AdminFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  // The slow reader takes kSlowStep every 200 ms (320 KiB/s); its kernel opens its window, and
  // acknowledges more, once the free room is about a loopback segment (64 KiB) after overhead:
  // every step to every third. The server's send buffer, which the kernel grows to megabytes for
  // such a connection, lets the server send again only once about a third of it has drained:
  // about 4 s at that pace, in which the server sends nothing (at 2 s, its --idle_timeout, such a
  // connection was closed before the sweep looked at the kernel's send queue). The echo is
  // longer than what the buffers between them hold, the client's receive buffer fixed at 208 KiB
  // (Linux's default net.core.rmem_max; the kernel doubles it). Between two acknowledgements
  // (600 ms apart at most) the reader, and the server's loop that looks at them, may be held up
  // over a second on a loaded machine and still not look idle: against a 1 s timeout, with
  // acknowledgements 300 ms apart, a run under ASan+UBSan whose loop ran its timers up to 550 ms
  // late closed it.
  static constexpr uint64_t kEcho = 12 << 20;
  static constexpr int kClientReceiveBuffer = 208 << 10;
  static constexpr size_t kSlowStep = 64 << 10;

  // brrr-echo with --idle_timeout=`idle_timeout` (and `flags`) on the backend under test, and
  // `client` connected to it. The timeout runs from the accept: a test builds what it sends
  // before (12 MiB of RandomBytes take 0.1 s on an idle machine, more than 0.5 s on a loaded one).
  void StartAndConnect(std::unique_ptr<testing::BlockingClient>* client, std::vector<std::string> flags = {},
                       const std::string& idle_timeout = "500ms") {
    flags.push_back("--backend=" + GetParam());
    flags.push_back("--idle_timeout=" + idle_timeout);
    Start(flags);
    ASSERT_NE(server_, nullptr);
    *client = std::make_unique<testing::BlockingClient>(port_, false, 60000);
    (*client)->set_receive_buffer(kClientReceiveBuffer);
  }
};

TEST_P(IdleTimeoutTest, ASlowReaderOfALongEchoIsNotIdleAndGetsEveryByte) {
  const std::string data = testing::RandomBytes(kEcho, 21);
  std::unique_ptr<testing::BlockingClient> client;
  ASSERT_NO_FATAL_FAILURE(StartAndConnect(&client, {}, "2s"));
  std::thread sending([&] { EXPECT_TRUE(client->send_all(data)); });
  // kSlowStep every 200 ms for 6 s: the server sends nothing for spells longer than the timeout.
  std::string echoed;
  for (int i = 0; i < 30; ++i) {
    std::string got = client->recv_exact(kSlowStep);
    echoed += got;
    if (got.size() != kSlowStep) break;  // closed: the comparison below says where
    std::this_thread::sleep_for(milliseconds(200));
  }
  // Then the rest at once.
  if (echoed.size() == 30 * kSlowStep) echoed += client->recv_exact(data.size() - echoed.size());
  sending.join();
  ASSERT_EQ(echoed.size(), data.size()) << "the echo was cut short; " << Stats().total().ShortDebugString();
  EXPECT_TRUE(echoed == data);
  EXPECT_EQ(Stats().total().connections_closed_idle(), 0u);
}

TEST_P(IdleTimeoutTest, AClientThatReadsNoneOfItsEchoIsClosedAsIdle) {
  const std::string data = testing::RandomBytes(1 << 20, 22);
  std::unique_ptr<testing::BlockingClient> client;
  ASSERT_NO_FATAL_FAILURE(StartAndConnect(&client));
  // Sends 1 MiB (as far as the buffers between it and the server take it, bounded: 30 s), and
  // reads nothing.
  uint64_t sent = 0;
  for (SteadyClock::time_point give_up = SteadyClock::now() + seconds(30);
       sent < data.size() && SteadyClock::now() < give_up;) {
    ssize_t n = ::send(client->fd(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<uint64_t>(n);
    } else if (n < 0 && errno != EAGAIN) {
      break;  // closed already
    } else {
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  admin::Stats closed = StatsWhen([](const admin::Stats& s) { return s.total().connections_closed_idle() == 1; });
  EXPECT_EQ(closed.total().connections_closed_idle(), 1u) << closed.ShortDebugString();
  EXPECT_EQ(closed.total().connections_active(), 0u);
}

// A client that keeps sending, a little at a time, is not idle though it reads none of its echo
// for seconds: each byte in counts. Its first 12 MiB fill the buffers toward it, and the server
// holds the rest of their echo (its --high_water above them), so it sends nothing and its send
// queue stands still: only what it reads says the client is there. Then the client reads it all.
// Against a 1 s timeout, a send every 100 ms: this thread may be held up most of a second on a
// loaded machine and the client still not look idle (at 500 ms, with the test's CPU shared by
// twelve spinners, it was closed as idle in 2 of 28 runs).
TEST_P(IdleTimeoutTest, AClientThatKeepsSendingIsNotIdleThoughItReadsNothingForAWhile) {
  std::string data = testing::RandomBytes(kEcho, 23);
  const std::string more = testing::RandomBytes(40 << 10, 24);
  std::unique_ptr<testing::BlockingClient> client;
  ASSERT_NO_FATAL_FAILURE(StartAndConnect(&client, {"--high_water=33554432"}, "1s"));
  ASSERT_TRUE(client->send_all(data));
  admin::Stats read_all = StatsWhen([](const admin::Stats& s) { return s.total().bytes_in() >= kEcho; });
  ASSERT_EQ(read_all.total().bytes_in(), kEcho) << read_all.ShortDebugString();
  ASSERT_LT(read_all.total().bytes_out(), kEcho) << "the buffers toward the client took the whole echo";
  // `more`, 1 KiB every 100 ms for 4 s: four times the timeout.
  for (size_t at = 0; at < more.size(); at += 1024) {
    std::this_thread::sleep_for(milliseconds(100));
    ASSERT_TRUE(client->send_all(more.substr(at, 1024))) << "closed after " << at << " bytes more";
  }
  data += more;
  EXPECT_EQ(Stats().total().connections_closed_idle(), 0u);
  std::string echoed = client->recv_exact(data.size());
  ASSERT_EQ(echoed.size(), data.size()) << "the echo was cut short; " << Stats().total().ShortDebugString();
  EXPECT_TRUE(echoed == data);
}

// A loop held up past the timeout (here by an injected blocking task) does not close a slow
// reader that took its echo all along: the first look at the kernel's send queue after it
// cannot tell what the client took before, so it closes nothing, and the next one sees the
// client take more. The server reads the whole input (--high_water above it) and holds the
// echo's rest; its send buffer is fixed at 256 KiB (the kernel doubles it), so that a read of
// 1 MiB makes it send (its last activity) and the block starts before a sweep has looked at the
// quiet connection; what the client takes during the block (144 KiB) leaves the server's
// buffer too full to make it send. (Before, the sweep that came as the block ended closed it,
// on 3 of the 4 backends in one run: on the fourth a sweep had looked before the block.)
TEST_P(IdleTimeoutTest, ASlowReaderWhoseLoopWasHeldUpPastTheTimeoutIsNotIdle) {
  const std::string data = testing::RandomBytes(kEcho, 25);
  std::unique_ptr<testing::BlockingClient> client;
  ASSERT_NO_FATAL_FAILURE(StartAndConnect(&client, {"--high_water=33554432", "--admin_max_block=10s"}, "1s"));
  ASSERT_EQ(SetServerSocketOption(*client, SOL_SOCKET, SO_SNDBUF, 256 << 10), "");
  ASSERT_TRUE(client->send_all(data));
  StatsWhen([](const admin::Stats& s) { return s.total().bytes_in() >= kEcho; });
  std::string echoed = client->recv_exact(1 << 20);
  const uint64_t out = Stats().total().bytes_out();
  ASSERT_LT(out, kEcho) << "the buffers toward the client took the whole echo";
  BlockLoop(0, 2000);
  const SteadyClock::time_point block_ends = SteadyClock::now() + milliseconds(2000);
  // During the block a little, then after it more, for a second; then the rest at once.
  while (SteadyClock::now() < block_ends && echoed.size() < (1 << 20) + 9 * (16 << 10)) {
    std::this_thread::sleep_for(milliseconds(200));
    echoed += client->recv_exact(16 << 10);
  }
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    echoed += client->recv_exact(kSlowStep);
  }
  if (echoed.size() < data.size()) echoed += client->recv_exact(data.size() - echoed.size());
  ASSERT_EQ(echoed.size(), data.size()) << "the echo was cut short; " << Stats().total().ShortDebugString();
  EXPECT_TRUE(echoed == data);
  EXPECT_EQ(Stats().total().connections_closed_idle(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, IdleTimeoutTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
