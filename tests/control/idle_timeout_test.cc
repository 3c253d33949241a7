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
  // The slow reader takes kSlowStep every 100 ms (1.25 MiB/s); its kernel opens its window, and
  // acknowledges more, once the free room is about a loopback segment (64 KiB) after overhead:
  // every step or two. The server's send buffer,
  // which the kernel grows to megabytes for such a connection, lets the server send again only
  // once about a third of it has drained: seconds at that pace, in which the server sends
  // nothing. The echo is longer than what the buffers between them hold, the client's receive
  // buffer fixed at 208 KiB (Linux's default net.core.rmem_max; the kernel doubles it).
  static constexpr uint64_t kEcho = 12 << 20;
  static constexpr int kClientReceiveBuffer = 208 << 10;
  static constexpr size_t kSlowStep = 128 << 10;

  // brrr-echo with --idle_timeout=500ms on the backend under test, and `client` connected to it.
  void StartAndConnect(std::unique_ptr<testing::BlockingClient>* client) {
    Start({"--backend=" + GetParam(), "--idle_timeout=500ms"});
    ASSERT_NE(server_, nullptr);
    *client = std::make_unique<testing::BlockingClient>(port_, false, 60000);
    (*client)->set_receive_buffer(kClientReceiveBuffer);
  }
};

TEST_P(IdleTimeoutTest, ASlowReaderOfALongEchoIsNotIdleAndGetsEveryByte) {
  std::unique_ptr<testing::BlockingClient> client;
  ASSERT_NO_FATAL_FAILURE(StartAndConnect(&client));
  const std::string data = testing::RandomBytes(kEcho, 21);
  std::thread sending([&] { EXPECT_TRUE(client->send_all(data)); });
  // kSlowStep every 100 ms for 3 s: the server sends nothing for spells longer than the timeout.
  std::string echoed;
  for (int i = 0; i < 30; ++i) {
    std::string got = client->recv_exact(kSlowStep);
    echoed += got;
    if (got.size() != kSlowStep) break;  // closed: the comparison below says where
    std::this_thread::sleep_for(milliseconds(100));
  }
  // Then the rest at once.
  if (echoed.size() == 30 * kSlowStep) echoed += client->recv_exact(data.size() - echoed.size());
  sending.join();
  ASSERT_EQ(echoed.size(), data.size()) << "the echo was cut short; " << Stats().total().ShortDebugString();
  EXPECT_TRUE(echoed == data);
  EXPECT_EQ(Stats().total().connections_closed_idle(), 0u);
}

TEST_P(IdleTimeoutTest, AClientThatReadsNoneOfItsEchoIsClosedAsIdle) {
  std::unique_ptr<testing::BlockingClient> client;
  ASSERT_NO_FATAL_FAILURE(StartAndConnect(&client));
  // Sends 1 MiB (as far as the buffers between it and the server take it, bounded: 30 s), and
  // reads nothing.
  const std::string data = testing::RandomBytes(1 << 20, 22);
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

INSTANTIATE_TEST_SUITE_P(Backends, IdleTimeoutTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
