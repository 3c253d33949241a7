// The admin plane's actions on a real brrr-echo over a real gRPC channel: injected tasks and
// what they do to echoes and stall counters, throttles, the read and write sets, closing
// connections, pausing, draining, stall thresholds and streams, bearer tokens, and the error
// code of each kind of bad request.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
namespace health = grpc::health::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

using AdminActionsTest = testing::AdminFixture;

double MillisSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

// "127.0.0.1:PORT" of a client socket: the peer the server sees.
std::string LocalAddress(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

const admin::SocketInfo* FindPeer(const admin::ListSocketsResponse& list, const std::string& peer) {
  for (const admin::SocketInfo& s : list.sockets()) {
    if (s.peer() == peer) return &s;
  }
  return nullptr;
}

// Echo one small message and return the round trip in ms (-1 if the echo did not come back).
double EchoRoundTripMs(testing::BlockingClient& client) {
  SteadyClock::time_point start = SteadyClock::now();
  if (!client.send_all("ping")) return -1;
  if (client.recv_exact(4) != "ping") return -1;
  return MillisSince(start);
}

class InjectionTest : public AdminActionsTest {
 protected:
  admin::Injection Inject(admin::InjectionKind kind, uint32_t duration_ms, uint32_t count = 1) {
    admin::InjectTaskRequest request;
    request.set_kind(kind);
    request.set_duration_ms(duration_ms);
    request.set_count(count);
    admin::Injection injection;
    grpc::Status s = stub_->InjectTask(Context().get(), request, &injection);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return injection;
  }

  admin::Injection Find(uint64_t id) {
    admin::ListInjectionsResponse list;
    grpc::Status s = stub_->ListInjections(Context().get(), admin::ListInjectionsRequest(), &list);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const admin::Injection& i : list.injections()) {
      if (i.id() == id) return i;
    }
    ADD_FAILURE() << "injection " << id << " not listed: " << list.DebugString();
    return admin::Injection();
  }
};

// The admin plane runs on its own threads and reads published figures: a blocked loop does
// not block it, and it shows how long the blocking task has been running.
TEST_F(InjectionTest, StatsAnswerDuringATwoSecondBlockAndShowTheStallInProgress) {
  Start();
  admin::Injection injection = Inject(admin::BLOCKING_SPIN, 2000);
  admin::Stats during = StatsWhen([](const admin::Stats& s) {
    return s.loops(0).current_task() == "inject:blocking_spin" && s.loops(0).current_task_running_ms() > 200;
  });
  ASSERT_EQ(during.loops(0).current_task(), "inject:blocking_spin") << during.DebugString();
  double first = during.loops(0).current_task_running_ms();
  // Several calls while the loop is still blocked: each answers, and the stall grows.
  SteadyClock::time_point start = SteadyClock::now();
  admin::Stats later = Stats();
  double call_ms = MillisSince(start);
  if (later.loops(0).current_task() == "inject:blocking_spin") {
    EXPECT_GT(later.loops(0).current_task_running_ms(), first);
    EXPECT_EQ(later.loops(0).injections_running(), 1u);
    ASSERT_EQ(later.injections_size(), 1);
    EXPECT_EQ(later.injections(0).id(), injection.id());
    EXPECT_EQ(later.injections(0).state(), admin::Injection::ACTIVE);
  }
  std::printf("GetStats during a 2 s block answered in %.1f ms; the block had run %.0f ms\n", call_ms, first);
  admin::Stats after = StatsWhen([](const admin::Stats& s) { return s.total().stalls() >= 1; });
  EXPECT_EQ(after.total().stalls(), 1u);
  EXPECT_GE(after.loops(0).longest_task_ms(), 2000.0);
  EXPECT_EQ(after.loops(0).longest_task(), "inject:blocking_spin");
  EXPECT_EQ(Find(injection.id()).state(), admin::Injection::FINISHED);
}

TEST_F(InjectionTest, ABlockingTaskDelaysEchoesAndCountsAsAStallANonBlockingSleepDoesNot) {
  Start();
  testing::BlockingClient client(port_);
  ASSERT_GE(EchoRoundTripMs(client), 0);
  uint64_t stalls_before = Stats().total().stalls();

  admin::Injection blocking = Inject(admin::BLOCKING_SLEEP, 300);
  StatsWhen([](const admin::Stats& s) { return s.loops(0).current_task() == "inject:blocking_sleep"; });
  double blocked_rtt = EchoRoundTripMs(client);
  ASSERT_GE(blocked_rtt, 0);
  // The loop could not echo until the blocking run ended: by the time the echo is back, the
  // injection has finished.
  EXPECT_EQ(Find(blocking.id()).runs_finished(), 1u);
  admin::Stats after_block = StatsWhen([&](const admin::Stats& s) { return s.total().stalls() > stalls_before; });
  EXPECT_EQ(after_block.total().stalls(), stalls_before + 1);

  // The same kind of wait as a coroutine sleep: the echo comes back while it still sleeps.
  admin::Injection sleeping = Inject(admin::NONBLOCKING_SLEEP, 3000);
  StatsWhen([](const admin::Stats& s) { return s.loops(0).injections_running() == 1; });
  double sleeping_rtt = EchoRoundTripMs(client);
  ASSERT_GE(sleeping_rtt, 0);
  admin::Injection still = Find(sleeping.id());
  EXPECT_EQ(still.runs_started(), 1u);
  EXPECT_EQ(still.runs_finished(), 0u);
  EXPECT_EQ(still.state(), admin::Injection::ACTIVE);
  EXPECT_EQ(Stats().total().stalls(), stalls_before + 1);
  std::printf("echo round trip: %.1f ms during a 300 ms BLOCKING_SLEEP, %.1f ms during a NONBLOCKING_SLEEP\n",
              blocked_rtt, sleeping_rtt);

  // Cancelling the sleeping one finishes it at once.
  admin::CancelInjectionRequest cancel;
  cancel.set_id(sleeping.id());
  admin::Injection cancelled;
  ASSERT_TRUE(stub_->CancelInjection(Context().get(), cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), admin::Injection::CANCELLED);
  admin::Stats settled = StatsWhen([](const admin::Stats& s) { return s.loops(0).injections_running() == 0; });
  EXPECT_EQ(settled.loops(0).injections_running(), 0u);
}

TEST_F(InjectionTest, CancellingALongBlockEndsItEarly) {
  Start({"--admin_max_block=60s"});
  testing::BlockingClient client(port_);
  admin::Injection injection = Inject(admin::BLOCKING_SLEEP, 30000);
  StatsWhen([](const admin::Stats& s) { return s.loops(0).current_task() == "inject:blocking_sleep"; });
  admin::CancelInjectionRequest cancel;
  cancel.set_id(injection.id());
  admin::Injection cancelled;
  ASSERT_TRUE(stub_->CancelInjection(Context().get(), cancel, &cancelled).ok());
  // The echo comes back long before the 30 s the block would have lasted (the client gives up
  // after 30 s, so a block that was not ended fails this).
  ASSERT_GE(EchoRoundTripMs(client), 0);
  EXPECT_EQ(Find(injection.id()).state(), admin::Injection::CANCELLED);
  grpc::Status again = stub_->CancelInjection(Context().get(), cancel, &cancelled);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << again.error_message();
}

// While a block lasts, WatchStalls with include_in_progress streams where the loop is stuck:
// the loop's watchdog samples its thread's stack, which names the injected run's own
// function; the stall's end carries the samples too. The blocks would last 30 s; each is
// cancelled once the stream has named it (the stream's 10 s deadline bounds the wait).
TEST_F(InjectionTest, WatchStallsShowsWhereABlockedLoopIsStuckWhileItIs) {
  Start({"--admin_max_block=60s", "--stall_threshold=50ms"});
  auto names = [](const admin::Stall& stall, const std::string& function) {
    if (stall.samples().empty()) return false;
    for (const std::string& frame : stall.samples(stall.samples_size() - 1).frames()) {
      if (frame.find(function) != std::string::npos) return true;
    }
    return false;
  };
  const std::pair<admin::InjectionKind, std::string> kinds[] = {{admin::BLOCKING_SPIN, "InjectedBlockingSpin"},
                                                                {admin::BLOCKING_SLEEP, "InjectedBlockingSleep"}};
  for (const auto& [kind, function] : kinds) {
    SCOPED_TRACE(function);
    auto context = Context();
    admin::WatchStallsRequest request;
    request.set_include_in_progress(true);
    auto stream = stub_->WatchStalls(context.get(), request);
    admin::Injection injection = Inject(kind, 30000);
    admin::Stall stall;
    bool named = false;
    while (!named && stream->Read(&stall)) named = stall.in_progress() && names(stall, function);
    admin::CancelInjectionRequest cancel;
    cancel.set_id(injection.id());
    admin::Injection cancelled;
    ASSERT_TRUE(stub_->CancelInjection(Context().get(), cancel, &cancelled).ok());
    ASSERT_TRUE(named) << stall.DebugString();
    EXPECT_EQ(stall.task(), kind == admin::BLOCKING_SPIN ? "inject:blocking_spin" : "inject:blocking_sleep");
    EXPECT_GE(stall.duration_ms(), 50.0);

    bool ended = false;
    while (!ended && stream->Read(&stall)) ended = !stall.in_progress();
    ASSERT_TRUE(ended);
    EXPECT_EQ(stall.task(), kind == admin::BLOCKING_SPIN ? "inject:blocking_spin" : "inject:blocking_sleep");
    ASSERT_GE(stall.samples_size(), 1);
    EXPECT_TRUE(names(stall, function)) << stall.DebugString();
    context->TryCancel();
    stream->Finish();
  }
}

TEST_F(InjectionTest, RepeatedRunsOnEveryLoop) {
  Start({"--loops=2"});
  admin::InjectTaskRequest request;
  request.set_kind(admin::BLOCKING_SPIN);
  request.set_duration_ms(5);
  request.set_count(3);
  request.set_interval_ms(20);
  admin::Injection injection;
  ASSERT_TRUE(stub_->InjectTask(Context().get(), request, &injection).ok());
  EXPECT_EQ(injection.loops_size(), 2);
  admin::Injection done;
  for (int i = 0; i < 500 && done.state() != admin::Injection::FINISHED; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    done = Find(injection.id());
  }
  EXPECT_EQ(done.state(), admin::Injection::FINISHED);
  EXPECT_EQ(done.runs_started(), 6u);
  EXPECT_EQ(done.runs_finished(), 6u);
}

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

// Offers 100 kB/s (1,000 bytes every 10 ms) for `span` and counts the bytes echoed meanwhile.
// A paced client keeps little in flight, so what comes back shows the rate the server allows.
size_t EchoedWhileOffering100kBs(testing::BlockingClient& client, milliseconds span) {
  SteadyClock::time_point end = SteadyClock::now() + span;
  std::thread writer([&] {
    std::string piece(1000, 't');
    while (SteadyClock::now() < end && client.send_all(piece)) std::this_thread::sleep_for(milliseconds(10));
  });
  size_t echoed = 0;
  char buffer[65536];
  while (SteadyClock::now() < end) {
    pollfd p{client.fd(), POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    ssize_t n = ::recv(client.fd(), buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) echoed += static_cast<size_t>(n);
  }
  writer.join();
  return echoed;
}

TEST_F(AdminActionsTest, APerConnectionThrottleBoundsTheEchoRateAndLiftingItRestoresIt) {
  Start();
  testing::BlockingClient client(port_, false, 60000);
  size_t free_bytes = EchoedWhileOffering100kBs(client, milliseconds(3000));
  EXPECT_GE(free_bytes, 200000u);  // of about 300 kB offered

  admin::SetThrottleRequest set;
  set.set_bytes_per_second_per_connection(10000);
  admin::Throttle throttle;
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  EXPECT_EQ(throttle.bytes_per_second_per_connection(), 10000u);
  size_t throttled_bytes = EchoedWhileOffering100kBs(client, milliseconds(3000));
  // 10 kB/s for 3 s is 30 kB; the burst allowance is 50 ms of the rate, and what was already
  // read when the throttle came in is echoed too: well under the 300 kB offered.
  EXPECT_LE(throttled_bytes, 60000u);
  EXPECT_GT(Stats().total().reads_throttled(), 0u);

  set.set_bytes_per_second_per_connection(0);
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  size_t lifted_bytes = EchoedWhileOffering100kBs(client, milliseconds(3000));
  EXPECT_GE(lifted_bytes, 200000u);
  std::printf("echoed in 3 s of 100 kB/s offered: %zu B free, %zu B at 10 kB/s per connection, %zu B lifted\n",
              free_bytes, throttled_bytes, lifted_bytes);
}

TEST_F(AdminActionsTest, ATotalThrottleIsSharedByConnections) {
  Start({"--loops=2"});
  admin::SetThrottleRequest set;
  set.set_bytes_per_second_total(20000);
  admin::Throttle throttle;
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  testing::BlockingClient a(port_, false, 60000);
  testing::BlockingClient b(port_, false, 60000);
  SteadyClock::time_point start = SteadyClock::now();
  double a_ms = 0;
  std::thread other([&] { a_ms = EchoBulkMs(a, 30000); });
  double b_ms = EchoBulkMs(b, 30000);
  other.join();
  ASSERT_GE(a_ms, 0);
  ASSERT_GE(b_ms, 0);
  // 60 kB together at 20 kB/s: about 3 s for both.
  EXPECT_GE(MillisSince(start), 2000.0);
}

TEST_F(AdminActionsTest, IdleClientsAreInTheReadSetAClientThatNeverReadsInTheWriteSet) {
  Start({"--high_water=65536", "--low_water=16384"});
  testing::BlockingClient idle(port_);
  testing::BlockingClient stuck(port_);
  stuck.set_receive_buffer(4096);
  auto list = [&](admin::ListSocketsRequest::SetFilter set) {
    admin::ListSocketsRequest request;
    request.set_set(set);
    admin::ListSocketsResponse response;
    grpc::Status s = stub_->ListSockets(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  };
  // Send without reading until our sends block and the server lists the socket in its write
  // set and no longer in its read set (it drains its queue into the kernel's buffers and reads
  // again, in bounded single receives, until those are full too; then it stops for good);
  // bounded: 64 MiB or 500 rounds of 10 ms.
  int flags = fcntl(stuck.fd(), F_GETFL);
  fcntl(stuck.fd(), F_SETFL, flags | O_NONBLOCK);
  std::string block(65536, 'x');
  size_t sent = 0;
  admin::ListSocketsResponse writing;
  const admin::SocketInfo* s = nullptr;
  for (int round = 0; round < 500 && (s == nullptr || s->in_read_set()) && sent < (64u << 20); ++round) {
    ssize_t n = ::send(stuck.fd(), block.data(), block.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    std::this_thread::sleep_for(milliseconds(10));
    writing = list(admin::ListSocketsRequest::WRITE_SET);
    s = FindPeer(writing, LocalAddress(stuck.fd()));
  }
  ASSERT_LT(sent, 64u << 20) << "the server kept reading from a client that never reads";
  ASSERT_NE(s, nullptr) << "sent " << sent << " bytes; write set: " << writing.DebugString();
  EXPECT_TRUE(s->in_write_set());
  EXPECT_FALSE(s->in_read_set());  // stopped reading at its high-water mark
  EXPECT_GT(s->bytes_queued(), 0u);
  EXPECT_EQ(s->kind(), "connection");
  EXPECT_EQ(FindPeer(writing, LocalAddress(idle.fd())), nullptr);

  // The server may still take a little more of the stuck client's data as its kernel send
  // buffer grows (reading again in bounded single receives), and with nothing more to read it
  // would rightly wait in the read set: so keep the client sending until its own sends block
  // while the server lists the socket out of its read set. Bounded: 64 MiB or 500 rounds.
  admin::ListSocketsResponse reading;
  for (int round = 0; round < 500 && sent < (64u << 20); ++round) {
    bool blocked = false;
    while (!blocked && sent < (64u << 20)) {
      ssize_t n = ::send(stuck.fd(), block.data(), block.size(), MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else {
        blocked = true;
      }
    }
    reading = list(admin::ListSocketsRequest::READ_SET);
    if (FindPeer(reading, LocalAddress(stuck.fd())) == nullptr) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  const admin::SocketInfo* r = FindPeer(reading, LocalAddress(idle.fd()));
  ASSERT_NE(r, nullptr) << reading.DebugString();
  EXPECT_TRUE(r->in_read_set());
  EXPECT_FALSE(r->in_write_set());
  EXPECT_EQ(r->bytes_queued(), 0u);
  EXPECT_EQ(FindPeer(reading, LocalAddress(stuck.fd())), nullptr);
  bool listener = false;
  for (const admin::SocketInfo& i : reading.sockets()) listener |= i.kind() == "listener";
  EXPECT_TRUE(listener);

  admin::ListSocketsResponse all = list(admin::ListSocketsRequest::ALL);
  EXPECT_EQ(all.matched(), 3u);  // the listener and two connections
  admin::Stats stats = StatsWhen([](const admin::Stats& st) { return st.total().read_set_size() == 2; });
  EXPECT_EQ(stats.total().write_set_size(), 1u);
  EXPECT_EQ(stats.total().read_set_size(), 2u);  // the listener and the idle client
}

TEST_F(AdminActionsTest, CloseConnectionClosesThatClientOnly) {
  Start();
  testing::BlockingClient victim(port_);
  testing::BlockingClient bystander(port_);
  ASSERT_GE(EchoRoundTripMs(victim), 0);
  ASSERT_GE(EchoRoundTripMs(bystander), 0);
  admin::ListSocketsResponse all;
  ASSERT_TRUE(stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &all).ok());
  const admin::SocketInfo* s = FindPeer(all, LocalAddress(victim.fd()));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->bytes_in(), 4u);
  EXPECT_EQ(s->bytes_out(), 4u);

  admin::CloseConnectionRequest close;
  close.set_fd(s->fd());
  admin::CloseConnectionResponse closed;
  grpc::Status st = stub_->CloseConnection(Context().get(), close, &closed);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(closed.closed().peer(), LocalAddress(victim.fd()));
  EXPECT_EQ(victim.recv_until_eof(), "");  // end of stream
  EXPECT_GE(EchoRoundTripMs(bystander), 0);
  admin::Stats stats = StatsWhen([](const admin::Stats& s) { return s.total().connections_active() == 1; });
  EXPECT_EQ(stats.total().connections_closed_by_admin(), 1u);

  // The listener is not a connection; a closed descriptor is not found.
  for (const admin::SocketInfo& i : all.sockets()) {
    if (i.kind() != "listener") continue;
    close.set_fd(i.fd());
    EXPECT_EQ(stub_->CloseConnection(Context().get(), close, &closed).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  close.set_fd(s->fd());
  EXPECT_EQ(stub_->CloseConnection(Context().get(), close, &closed).error_code(), grpc::StatusCode::NOT_FOUND);
}

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

TEST_F(AdminActionsTest, WatchStatsSendsAtTheIntervalAndStopsAtTheCount) {
  Start();
  admin::WatchStatsRequest request;
  request.set_interval_ms(50);
  request.set_count(4);
  auto context = Context();
  auto stream = stub_->WatchStats(context.get(), request);
  admin::Stats stats;
  std::vector<double> uptimes;
  while (stream->Read(&stats)) uptimes.push_back(stats.uptime_seconds());
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(uptimes.size(), 4u);
  // Ticks keep to a fixed schedule that starts when the first sample is collected, so one late
  // sample shortens the gap after it. What must hold: samples in order, and the stream as a
  // whole no faster than the interval (less the time the first sample took to collect).
  for (size_t i = 1; i < uptimes.size(); ++i) EXPECT_GT(uptimes[i], uptimes[i - 1]);
  EXPECT_GE(uptimes.back() - uptimes.front(), 3 * 0.050 - 0.010);
}

TEST_F(AdminActionsTest, StallThresholdIsLiveAndWatchStallsStreamsEachStall) {
  Start();
  admin::SetStallThresholdRequest set;
  set.set_threshold_ms(20);
  admin::StallThresholds thresholds;
  ASSERT_TRUE(stub_->SetStallThreshold(Context().get(), set, &thresholds).ok());
  ASSERT_EQ(thresholds.loops_size(), 1);
  EXPECT_DOUBLE_EQ(thresholds.loops(0).threshold_ms(), 20.0);
  EXPECT_DOUBLE_EQ(Stats().loops(0).stall_threshold_ms(), 20.0);

  auto context = Context();
  // With the recent stalls first: a stall that happens before the server has subscribed the
  // stream (it gets the call a moment after this returns) still arrives.
  admin::WatchStallsRequest watch;
  watch.set_include_recent(true);
  auto stream = stub_->WatchStalls(context.get(), watch);
  // A 40 ms block is a stall now (it was not at the 100 ms default).
  admin::InjectTaskRequest inject;
  inject.set_kind(admin::BLOCKING_SPIN);
  inject.set_duration_ms(40);
  admin::Injection injection;
  // The stream is subscribed once the server has the call; inject until a stall arrives.
  // Other stalls may come first (under ASan, a 20 ms threshold catches the server's own
  // start-up tasks, such as echo:map_buffers): the first injected one is the one looked at.
  admin::Stall stall;
  std::atomic<bool> injected_seen{false};
  std::thread injector([&] {
    for (int i = 0; i < 50 && !injected_seen.load(); ++i) {
      EXPECT_TRUE(stub_->InjectTask(Context().get(), inject, &injection).ok());
      std::this_thread::sleep_for(milliseconds(100));
    }
  });
  bool got = false;
  while (!got && stream->Read(&stall)) got = stall.task() == "inject:blocking_spin";
  injected_seen.store(true);
  injector.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(stall.loop(), 0u);
  EXPECT_EQ(stall.task(), "inject:blocking_spin");
  EXPECT_GE(stall.duration_ms(), 40.0);
  EXPECT_GE(stall.sequence(), 1u);
  context->TryCancel();
  stream->Finish();
}

TEST_F(AdminActionsTest, DrainStopsAcceptingFlushesAndExits) {
  Start();
  testing::BlockingClient client(port_);
  ASSERT_GE(EchoRoundTripMs(client), 0);  // accepted (a client still in the backlog is not served)
  ASSERT_TRUE(client.send_all("last words"));
  admin::DrainResponse response;
  ASSERT_TRUE(stub_->Drain(Context().get(), admin::DrainRequest(), &response).ok());
  EXPECT_FALSE(response.already_draining());
  EXPECT_EQ(response.connections_open(), 1u);
  auto health_stub = health::Health::NewStub(channel_);
  health::HealthCheckResponse h;
  grpc::Status hs = health_stub->Check(Context().get(), health::HealthCheckRequest(), &h);
  if (hs.ok()) {
    EXPECT_EQ(h.status(), health::HealthCheckResponse::NOT_SERVING);
  }
  EXPECT_EQ(client.recv_exact(10), "last words");
  client.shutdown_write();
  EXPECT_EQ(client.recv_until_eof(), "");
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server_->err();
  EXPECT_NE(server_->out().find("Drain from the admin plane"), std::string::npos) << server_->out();
}

TEST_F(AdminActionsTest, EveryCallNeedsTheBearerTokenWhenOneIsSet) {
  SetToken("s3cret-token");
  Start();
  auto health_stub = health::Health::NewStub(channel_);
  auto call_with = [&](const std::string& authorization) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(10));
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    admin::Stats stats;
    return stub_->GetStats(&context, admin::GetStatsRequest(), &stats);
  };
  auto health_with = [&](const std::string& authorization) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(10));
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    health::HealthCheckResponse response;
    return health_stub->Check(&context, health::HealthCheckRequest(), &response);
  };
  EXPECT_EQ(call_with("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call_with("Bearer wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call_with("Basic s3cret-token").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(call_with("Bearer s3cret-token").ok());
  EXPECT_EQ(health_with("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(health_with("Bearer wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(health_with("Bearer s3cret-token").ok());
  // An action without the token does nothing.
  grpc::ClientContext context;
  admin::DrainResponse drained;
  EXPECT_EQ(stub_->Drain(&context, admin::DrainRequest(), &drained).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(Stats().draining());
}

TEST(AdminTokenFlagTest, AMissingOrEmptyTokenFileIsAnErrorAtStart) {
  std::string dir = std::getenv("TEST_TMPDIR");
  testing::Process missing(testing::Runfile("server/brrr-echo/brrr-echo"),
                           {"--port=0", "--admin_port=" + std::to_string(testing::PickFreePort()),
                            "--admin_token_file=" + dir + "/no-such-file"});
  EXPECT_EQ(missing.Wait(seconds(30)), 2);
  EXPECT_NE(missing.err().find("no-such-file: No such file or directory"), std::string::npos) << missing.err();
  std::ofstream(dir + "/empty.token") << "  \n";
  testing::Process empty(testing::Runfile("server/brrr-echo/brrr-echo"),
                         {"--port=0", "--admin_port=" + std::to_string(testing::PickFreePort()),
                          "--admin_token_file=" + dir + "/empty.token"});
  EXPECT_EQ(empty.Wait(seconds(30)), 2);
  EXPECT_NE(empty.err().find("holds no token"), std::string::npos) << empty.err();
}

// Each kind of bad request gets its own code and a message that says what is allowed.
TEST_F(AdminActionsTest, BadRequestsGetTheirErrorCodes) {
  Start({"--loops=2", "--admin_max_block=1s"});
  struct Case {
    std::string name;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    std::string says;
  };
  auto inject = [&](admin::InjectionKind kind, uint32_t duration_ms, uint32_t count, std::vector<uint32_t> loops) {
    admin::InjectTaskRequest r;
    r.set_kind(kind);
    r.set_duration_ms(duration_ms);
    r.set_count(count);
    for (uint32_t l : loops) r.add_loops(l);
    admin::Injection out;
    return stub_->InjectTask(Context().get(), r, &out);
  };
  auto throttle = [&](std::function<void(admin::SetThrottleRequest&)> fill) {
    admin::SetThrottleRequest r;
    fill(r);
    admin::Throttle out;
    return stub_->SetThrottle(Context().get(), r, &out);
  };
  std::vector<Case> cases = {
      {"block longer than the maximum", [&] { return inject(admin::BLOCKING_SPIN, 1500, 1, {}); },
       grpc::StatusCode::INVALID_ARGUMENT, "1 to 1000 ms (the server's --admin_max_block)"},
      {"no kind", [&] { return inject(admin::INJECTION_KIND_UNSPECIFIED, 10, 1, {}); },
       grpc::StatusCode::INVALID_ARGUMENT, "BLOCKING_SPIN, BLOCKING_SLEEP or NONBLOCKING_SLEEP"},
      {"zero duration", [&] { return inject(admin::NONBLOCKING_SLEEP, 0, 1, {}); },
       grpc::StatusCode::INVALID_ARGUMENT, "duration_ms=0"},
      {"too many runs", [&] { return inject(admin::NONBLOCKING_SLEEP, 10, 2000000, {}); },
       grpc::StatusCode::INVALID_ARGUMENT, "allowed 1 to 1000000"},
      {"unknown loop", [&] { return inject(admin::BLOCKING_SPIN, 10, 1, {5}); }, grpc::StatusCode::NOT_FOUND,
       "loops 0 to 1"},
      {"rate too low",
       [&] { return throttle([](auto& r) { r.set_bytes_per_second_per_connection(10); }); },
       grpc::StatusCode::INVALID_ARGUMENT, "0 (unlimited) or 1000 to"},
      {"no connections allowed", [&] { return throttle([](auto& r) { r.set_max_connections(0); }); },
       grpc::StatusCode::INVALID_ARGUMENT, "max_connections=0"},
      {"watch too often",
       [&] {
         admin::WatchStatsRequest r;
         r.set_interval_ms(10);
         auto context = Context();
         auto stream = stub_->WatchStats(context.get(), r);
         admin::Stats s;
         while (stream->Read(&s)) {
         }
         return stream->Finish();
       },
       grpc::StatusCode::INVALID_ARGUMENT, "allowed 50 to"},
      {"unknown injection",
       [&] {
         admin::CancelInjectionRequest r;
         r.set_id(999);
         admin::Injection out;
         return stub_->CancelInjection(Context().get(), r, &out);
       },
       grpc::StatusCode::NOT_FOUND, "no injection 999"},
      {"no injection id",
       [&] {
         admin::Injection out;
         return stub_->CancelInjection(Context().get(), admin::CancelInjectionRequest(), &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "id is required"},
      {"negative fd",
       [&] {
         admin::CloseConnectionRequest r;
         r.set_fd(-1);
         admin::CloseConnectionResponse out;
         return stub_->CloseConnection(Context().get(), r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "fd=-1"},
      {"unknown socket",
       [&] {
         admin::CloseConnectionRequest r;
         r.set_fd(100000);
         admin::CloseConnectionResponse out;
         return stub_->CloseConnection(Context().get(), r, &out);
       },
       grpc::StatusCode::NOT_FOUND, "no connection with fd 100000"},
      {"sockets of an unknown loop",
       [&] {
         admin::ListSocketsRequest r;
         r.set_loop(9);
         admin::ListSocketsResponse out;
         return stub_->ListSockets(Context().get(), r, &out);
       },
       grpc::StatusCode::NOT_FOUND, "no loop 9"},
      {"too many sockets",
       [&] {
         admin::ListSocketsRequest r;
         r.set_limit(1000000);
         admin::ListSocketsResponse out;
         return stub_->ListSockets(Context().get(), r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "allowed 1 to 100000"},
      {"stall threshold zero",
       [&] {
         admin::SetStallThresholdRequest r;
         admin::StallThresholds out;
         return stub_->SetStallThreshold(Context().get(), r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "allowed 1 to 60000"},
  };
  for (const Case& c : cases) {
    grpc::Status s = c.call();
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.says), std::string::npos) << c.name << ": " << s.error_message();
  }
  // Nothing was changed by the rejected requests.
  admin::Stats stats = Stats();
  EXPECT_EQ(stats.injections_size(), 0);
  EXPECT_EQ(stats.throttle().bytes_per_second_per_connection(), 0u);
  EXPECT_EQ(stats.throttle().max_connections(), 100000u);
  EXPECT_DOUBLE_EQ(stats.loops(0).stall_threshold_ms(), 100.0);
}

}  // namespace
}  // namespace brrr
