// The admin plane's throttles on a real brrr-echo over a real gRPC channel: a rate per
// connection and in total, checked as lower bounds on how long an echo takes, an accept rate
// (and its change waking the loops that wait for it), pausing and resuming accepts, and a lower
// connection limit.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/admin_probes.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using SteadyClock = std::chrono::steady_clock;
using testing::EchoRoundTripMs;
using testing::MillisSince;

using AdminActionsTest = testing::AdminFixture;

// Sends `size` bytes and reads the echo back, with a writer thread so that neither side waits
// for the other; returns the elapsed ms (-1 if the echo was not all there).
double EchoBulkMs(testing::BlockingClient& client, size_t size) {
  std::string payload = testing::RandomBytes(size, 11);
  SteadyClock::time_point start = SteadyClock::now();
  std::thread writer([&] { client.send_all(payload); });
  std::string echoed = client.recv_exact(size);
  writer.join();
  return echoed == payload ? MillisSince(start) : -1;
}

// How the throttles bound an echo, checked as lower bounds on how long it takes (load can only
// make an echo slower, never faster). Under a rate R a connection reads at most R/20 bytes
// (at least 512) at a time and stops once it runs more than 50 ms ahead of the rate, so n
// connections echo B bytes in no less than (B - n * R/20) / R - 50 ms.
TEST_F(AdminActionsTest, APerConnectionThrottleBoundsTheEchoRateAndLiftingItRestoresIt) {
  Start();
  testing::BlockingClient client(port_, false, 60000);
  ASSERT_GE(EchoBulkMs(client, 300000), 0);
  EXPECT_EQ(Stats().total().reads_throttled(), 0u) << "nothing is throttled without a throttle";

  admin::SetThrottleRequest set;
  set.set_bytes_per_second_per_connection(10000);
  admin::Throttle throttle;
  SteadyClock::time_point start = SteadyClock::now();
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  EXPECT_EQ(throttle.bytes_per_second_per_connection(), 10000u);
  ASSERT_GE(EchoBulkMs(client, 30000), 0);
  double throttled_ms = MillisSince(start);
  // (30,000 - 512) / 10,000 s - 50 ms = 2.9 s at the least.
  EXPECT_GE(throttled_ms, 2500.0) << "30 kB at 10 kB/s per connection";
  uint64_t throttled = Stats().total().reads_throttled();
  EXPECT_GT(throttled, 0u);

  set.set_bytes_per_second_per_connection(0);
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  double lifted_ms = EchoBulkMs(client, 1 << 20);
  ASSERT_GE(lifted_ms, 0);
  EXPECT_EQ(Stats().total().reads_throttled(), throttled) << "lifted: no read waits for a rate any more";
  std::printf("30 kB echoed in %.0f ms at 10 kB/s per connection; 1 MiB in %.0f ms once lifted\n", throttled_ms,
              lifted_ms);
}

// Another throttle set meanwhile (here the accept rate, every 50 ms) leaves a connection's
// byte rate as it was: before, every SetThrottle forgot what each connection had read under
// its rate, so each call gave it a fresh allowance and the echo went about twice as fast.
TEST_F(AdminActionsTest, SettingAnotherThrottleRenewsNoConnectionsByteAllowance) {
  Start();
  testing::BlockingClient client(port_, false, 60000);
  admin::SetThrottleRequest rate;
  rate.set_bytes_per_second_per_connection(10000);
  admin::Throttle throttle;
  SteadyClock::time_point start = SteadyClock::now();
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), rate, &throttle).ok());
  std::atomic<bool> echoed{false};
  std::thread other_settings([&] {
    admin::SetThrottleRequest accepts;
    for (int i = 0; !echoed.load() && i < 400; ++i) {
      accepts.set_accepts_per_second(1000 + i);
      admin::Throttle ignored;
      EXPECT_TRUE(stub_->SetThrottle(Context().get(), accepts, &ignored).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  double echo_ms = EchoBulkMs(client, 30000);
  echoed = true;
  other_settings.join();
  ASSERT_GE(echo_ms, 0);
  // As in APerConnectionThrottleBoundsTheEchoRate...: 2.9 s at the least.
  EXPECT_GE(MillisSince(start), 2500.0) << "30 kB at 10 kB/s per connection, the accept rate set 20 times a second";
}

TEST_F(AdminActionsTest, ATotalThrottleIsSharedByConnectionsOnDifferentLoops) {
  Start({"--loops=2"});
  // One client on each loop: a limit that each loop counted on its own would let the two
  // through at twice the rate.
  std::vector<std::unique_ptr<testing::BlockingClient>> on_loop = OneClientOnEachLoop(2);
  ASSERT_EQ(on_loop.size(), 2u);
  testing::BlockingClient& a = *on_loop[0];
  testing::BlockingClient& b = *on_loop[1];
  admin::SetThrottleRequest set;
  set.set_bytes_per_second_total(20000);
  admin::Throttle throttle;
  SteadyClock::time_point start = SteadyClock::now();
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  double a_ms = 0;
  std::thread other([&] { a_ms = EchoBulkMs(a, 30000); });
  double b_ms = EchoBulkMs(b, 30000);
  other.join();
  ASSERT_GE(a_ms, 0);
  ASSERT_GE(b_ms, 0);
  // 60 kB together at 20 kB/s, two connections: (60,000 - 2 * 1,000) / 20,000 s - 50 ms =
  // 2.85 s at the least (a limit counted per loop would let them through in half that).
  EXPECT_GE(MillisSince(start), 2500.0);
  EXPECT_GT(Stats().total().reads_throttled(), 0u);
}

// Accepts per second: after each accept a loop charges the shared budget and waits once it
// runs more than 50 ms ahead, so n clients are all served no sooner than (n - 1) / R - 50 ms
// after the rate was set. None is refused: the others wait in the backlog.
TEST_F(AdminActionsTest, AnAcceptRateSpacesOutNewConnections) {
  Start();
  admin::SetThrottleRequest set;
  set.set_accepts_per_second(5);
  admin::Throttle throttle;
  SteadyClock::time_point start = SteadyClock::now();
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  EXPECT_EQ(throttle.accepts_per_second(), 5u);
  constexpr int kClients = 11;
  std::vector<std::unique_ptr<testing::BlockingClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<testing::BlockingClient>(port_, false, 60000));
    ASSERT_TRUE(clients.back()->send_all("a" + std::to_string(i)));
  }
  for (int i = 0; i < kClients; ++i) {
    std::string expected = "a" + std::to_string(i);
    EXPECT_EQ(clients[i]->recv_exact(expected.size()), expected) << "client " << i;
  }
  // (11 - 1) / 5 s - 50 ms = 1.95 s at the least.
  EXPECT_GE(MillisSince(start), 1900.0);
  admin::Stats stats = Stats();
  EXPECT_EQ(stats.total().connections_accepted(), static_cast<uint64_t>(kClients));
  EXPECT_EQ(stats.total().connections_refused(), 0u);

  // Lifted (0): the next client is served too.
  set.set_accepts_per_second(0);
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  testing::BlockingClient late(port_);
  EXPECT_GE(EchoRoundTripMs(late), 0);
}

// The accept rate holds whatever the number of loops: each loop has an accept pending, so the
// kernel hands several loops a connection at once, and those past the rate's burst wait for
// their turn before they are served. At 1 per second (a burst of one) no more than 1 + t of 8
// clients are echoed t seconds after they started to connect. A drain serves the ones waiting.
TEST_F(AdminActionsTest, AnAcceptRateHoldsAcrossLoops) {
  constexpr int kLoops = 8;
  Start({"--loops=" + std::to_string(kLoops), "--backend=epoll", "--drain_timeout=60s"});
  admin::SetThrottleRequest set;
  set.set_accepts_per_second(1);
  admin::Throttle throttle;
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  SteadyClock::time_point start = SteadyClock::now();
  std::vector<std::unique_ptr<testing::BlockingClient>> clients;
  for (int i = 0; i < kLoops; ++i) {
    clients.push_back(std::make_unique<testing::BlockingClient>(port_, false, 60000));
    ASSERT_TRUE(clients.back()->send_all("b" + std::to_string(i)));
  }
  // Every 20 ms for 700 ms: how many have been echoed (a byte waits to be read).
  int most_echoed = 0;
  double most_allowed = 0;
  while (MillisSince(start) < 700) {
    const double allowed = 1 + MillisSince(start) / 1000.0 + 0.05;  // 1 + t, and the 50 ms burst
    int echoed = 0;
    for (auto& c : clients) {
      char byte;
      if (::recv(c->fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1) ++echoed;
    }
    EXPECT_LE(echoed, allowed) << "after " << MillisSince(start) << " ms at 1 accept per second over " << kLoops
                               << " loops";
    most_echoed = std::max(most_echoed, echoed);
    most_allowed = allowed;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_LE(most_echoed, static_cast<int>(most_allowed));
  EXPECT_EQ(Stats().total().connections_refused(), 0u);
  // Draining: the connections waiting for their turn are served, the backlog's too.
  admin::DrainResponse drained;
  ASSERT_TRUE(stub_->Drain(Context().get(), admin::DrainRequest(), &drained).ok());
  for (int i = 0; i < kLoops; ++i) {
    std::string expected = "b" + std::to_string(i);
    EXPECT_EQ(clients[i]->recv_exact(expected.size()), expected) << "client " << i;
    clients[i]->shutdown_write();
    EXPECT_EQ(clients[i]->recv_until_eof(), "") << "client " << i;
  }
  std::optional<int> code = server_->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server_->err();
}

// A loop that waits for the accept rate is woken when the rate changes: lifted or raised, the
// clients waiting in the backlogs are accepted at once, not once the old rate's wait is over.
// At 1 accept per second shared by 16 loops, the first loop to accept is served at once and the
// others, each with a connection accepted, wait up to 15 s for their turn, then wait again before
// their next accept; after the change every client is accepted within 8 s (in a few
// milliseconds when nothing else runs). On epoll:
// the accept loop is the same on every backend, and 16 io_uring rings could exceed the
// locked-memory limit that every ring of this user shares.
class AcceptRateChangeTest : public testing::AdminFixture, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(AcceptRateChangeTest, WakesTheLoopsWaitingForTheOldRate) {
  constexpr int kLoops = 16;
  constexpr int kClients = 256;  // about 16 per loop: each loop keeps clients in its backlog
  Start({"--loops=" + std::to_string(kLoops), "--backend=epoll", "--recv_buffers=64"});
  admin::SetThrottleRequest set;
  set.set_accepts_per_second(1);
  admin::Throttle throttle;
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  std::vector<std::unique_ptr<testing::BlockingClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<testing::BlockingClient>(port_, false, 60000));
    ASSERT_TRUE(clients.back()->send_all("c" + std::to_string(i)));
  }
  // One is served: the other loops now wait for their turns at the shared rate.
  StatsWhen([](const admin::Stats& s) { return s.total().connections_accepted() >= 1; });

  set.set_accepts_per_second(GetParam());
  SteadyClock::time_point changed = SteadyClock::now();
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  admin::Stats stats = Stats();
  while (stats.total().connections_accepted() < kClients && MillisSince(changed) < 8000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stats = Stats();
  }
  std::string per_loop;
  for (const admin::LoopStats& loop : stats.loops()) per_loop += " " + std::to_string(loop.connections_accepted());
  EXPECT_EQ(stats.total().connections_accepted(), static_cast<uint64_t>(kClients))
      << "8 s after the accept rate went from 1 to " << GetParam() << "; accepted per loop:" << per_loop;
  for (int i = 0; i < kClients; ++i) {
    std::string expected = "c" + std::to_string(i);
    EXPECT_EQ(clients[i]->recv_exact(expected.size()), expected) << "client " << i;
  }
  EXPECT_EQ(Stats().total().connections_refused(), 0u);
}

INSTANTIATE_TEST_SUITE_P(LiftedOrRaised, AcceptRateChangeTest, ::testing::Values(uint64_t{0}, uint64_t{1000}),
                         [](const ::testing::TestParamInfo<uint64_t>& info) {
                           return info.param == 0 ? std::string("Lifted") : "RaisedTo" + std::to_string(info.param);
                         });

TEST_F(AdminActionsTest, PausingAcceptingHoldsNewClientsInTheBacklogUntilResumed) {
  Start();
  admin::SetThrottleRequest pause;
  pause.set_accepting_paused(true);
  admin::Throttle throttle;
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), pause, &throttle).ok());
  EXPECT_TRUE(throttle.accepting_paused());
  admin::Stats paused = StatsWhen([](const admin::Stats& s) { return !s.loops(0).accepting(); });
  ASSERT_FALSE(paused.loops(0).accepting());

  testing::BlockingClient waiting(port_, false, 300);  // the kernel completes the handshake
  ASSERT_TRUE(waiting.send_all("held"));
  EXPECT_EQ(waiting.recv_exact(4), "");  // nobody accepted it: no echo within 300 ms
  EXPECT_EQ(Stats().total().connections_accepted(), 0u);

  pause.set_accepting_paused(false);
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), pause, &throttle).ok());
  testing::BlockingClient resumed(port_);
  EXPECT_GE(EchoRoundTripMs(resumed), 0);
  admin::Stats after = StatsWhen([](const admin::Stats& s) { return s.total().connections_accepted() == 2; });
  EXPECT_EQ(after.total().connections_accepted(), 2u);  // the held one too
  EXPECT_TRUE(after.loops(0).accepting());
}

TEST_F(AdminActionsTest, ALowerConnectionLimitRefusesNewConnections) {
  Start();
  admin::SetThrottleRequest limit;
  limit.set_max_connections(1);
  admin::Throttle throttle;
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), limit, &throttle).ok());
  testing::BlockingClient first(port_);
  ASSERT_GE(EchoRoundTripMs(first), 0);
  testing::BlockingClient second(port_);
  EXPECT_EQ(second.recv_until_eof(), "");  // accepted and closed at once
  admin::Stats stats = StatsWhen([](const admin::Stats& s) { return s.total().connections_refused() == 1; });
  EXPECT_EQ(stats.total().connections_refused(), 1u);
  EXPECT_EQ(stats.throttle().max_connections(), 1u);
}

// A throttle is a setting, not an action: set while a loop is blocked, it is set at once (and
// read back so), the call says which loop has not taken it in yet, and that loop applies it
// once it gets to its queue.
TEST_F(AdminActionsTest, AThrottleSetWhileALoopIsBlockedIsSetAndThatLoopTakesItInOnceFree) {
  Start({"--loops=1", "--admin_max_block=60s"});
  admin::Injection blocking = BlockLoop(0, 30000);  // far longer than the call; cancelled after it
  admin::SetThrottleRequest limit;
  limit.set_max_connections(1);
  admin::Throttle throttle;
  // Context()'s 10 s: the server waits its 5 s for the loop and answers with seconds to spare
  // (with a deadline of 2 s, only the 250 ms margin it keeps for its answer).
  grpc::Status set = stub_->SetThrottle(Context().get(), limit, &throttle);
  EXPECT_EQ(set.error_code(), grpc::StatusCode::UNAVAILABLE) << set.error_message();
  EXPECT_NE(set.error_message().find("the throttles are set, but loop 0"), std::string::npos) << set.error_message();
  EXPECT_NE(set.error_message().find("it applies them once it gets to them"), std::string::npos)
      << set.error_message();
  admin::Throttle now;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &now).ok());
  EXPECT_EQ(now.max_connections(), 1u);

  Unblock(0, blocking);
  testing::BlockingClient first(port_);
  ASSERT_GE(EchoRoundTripMs(first), 0);
  testing::BlockingClient second(port_);
  EXPECT_EQ(second.recv_until_eof(), "");  // the limit is in force on the loop that was blocked
  admin::Stats stats = StatsWhen([](const admin::Stats& s) { return s.total().connections_refused() == 1; });
  EXPECT_EQ(stats.total().connections_refused(), 1u);
}

}  // namespace
}  // namespace brrr
