// The admin plane's actions on a real brrr-echo over a real gRPC channel: injected tasks and
// what they do to echoes and stall counters, throttles, the read and write sets, closing
// connections, pausing, draining, stall thresholds and streams, bearer tokens, and the error
// code of each kind of bad request.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <algorithm>
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
// not block it, and it shows how long the blocking task has been running. The block lasts
// until the test cancels it, so every call below is made during it, however slow the machine.
TEST_F(InjectionTest, StatsAnswerDuringABlockAndShowTheStallInProgress) {
  Start({"--admin_max_block=60s"});
  admin::Injection injection = Inject(admin::BLOCKING_SPIN, 60000);
  admin::Stats during = StatsWhen([](const admin::Stats& s) {
    return s.loops(0).current_task() == "inject:blocking_spin" && s.loops(0).current_task_running_ms() > 0;
  });
  double first = during.loops(0).current_task_running_ms();
  // More calls while the loop is still blocked: they answer, and the stall grows past the
  // threshold (100 ms) while it lasts.
  SteadyClock::time_point start = SteadyClock::now();
  admin::Stats later = StatsWhen([&](const admin::Stats& s) {
    return s.loops(0).current_task_running_ms() > std::max(first, s.loops(0).stall_threshold_ms());
  });
  double call_ms = MillisSince(start);
  ASSERT_EQ(later.loops(0).current_task(), "inject:blocking_spin") << later.DebugString();
  EXPECT_EQ(later.loops(0).injections_running(), 1u);
  ASSERT_EQ(later.injections_size(), 1);
  EXPECT_EQ(later.injections(0).id(), injection.id());
  EXPECT_EQ(later.injections(0).state(), admin::Injection::ACTIVE);
  std::printf("GetStats during a block answered within %.1f ms; the block had run %.0f ms\n", call_ms,
              later.loops(0).current_task_running_ms());

  admin::CancelInjectionRequest cancel;
  cancel.set_id(injection.id());
  admin::Injection cancelled;
  ASSERT_TRUE(stub_->CancelInjection(Context().get(), cancel, &cancelled).ok());
  // The stall is counted once it ends (the watchdog may report it while it runs): wait for the
  // loop to be free again as well.
  admin::Stats after =
      StatsWhen([](const admin::Stats& s) { return s.total().stalls() >= 1 && s.loops(0).current_task().empty(); });
  EXPECT_EQ(after.total().stalls(), 1u);
  EXPECT_EQ(after.loops(0).longest_task(), "inject:blocking_spin");
  // The stall, measured once it ended, is at least as long as it was seen running.
  EXPECT_GE(after.loops(0).longest_task_ms(), later.loops(0).current_task_running_ms());
  EXPECT_EQ(after.loops(0).current_task(), "");
  EXPECT_EQ(Find(injection.id()).state(), admin::Injection::CANCELLED);
}

// Bytes a client has received and not read (0 when nothing came back).
int BytesWaiting(const testing::BlockingClient& client) {
  int n = -1;
  return ::ioctl(client.fd(), FIONREAD, &n) == 0 ? n : -1;
}

// While a blocking task holds the loop, a client's message is not echoed; it is echoed once the
// block ends, and the block counts as a stall. A non-blocking sleep of the same kind lets the
// echo through while it still sleeps. Each injection lasts until the test cancels it, so the
// order of events, not their timing, is what is checked.
TEST_F(InjectionTest, ABlockingTaskDelaysEchoesAndCountsAsAStallANonBlockingSleepDoesNot) {
  Start({"--admin_max_block=60s"});
  testing::BlockingClient client(port_);
  ASSERT_GE(EchoRoundTripMs(client), 0);
  uint64_t stalls_before = Stats().total().stalls();

  admin::Injection blocking = Inject(admin::BLOCKING_SLEEP, 60000);
  StatsWhen([](const admin::Stats& s) { return s.loops(0).current_task() == "inject:blocking_sleep"; });
  SteadyClock::time_point sent_at = SteadyClock::now();
  ASSERT_TRUE(client.send_all("ping"));
  // The loop is still blocked (the block ends only when cancelled) and nothing came back.
  admin::Stats blocked = Stats();
  EXPECT_EQ(blocked.loops(0).current_task(), "inject:blocking_sleep");
  EXPECT_EQ(BytesWaiting(client), 0) << "echoed while the loop was blocked";
  // Held past the stall threshold before it is cancelled.
  admin::Stats stalling = StatsWhen([](const admin::Stats& s) {
    return s.loops(0).current_task_running_ms() > s.loops(0).stall_threshold_ms();
  });
  EXPECT_EQ(stalling.loops(0).current_task(), "inject:blocking_sleep");
  EXPECT_EQ(BytesWaiting(client), 0) << "echoed while the loop was blocked";
  SteadyClock::time_point cancel_at = SteadyClock::now();
  admin::CancelInjectionRequest cancel;
  cancel.set_id(blocking.id());
  admin::Injection cancelled;
  ASSERT_TRUE(stub_->CancelInjection(Context().get(), cancel, &cancelled).ok());
  ASSERT_EQ(client.recv_exact(4), "ping");
  double blocked_rtt = MillisSince(sent_at);
  double cancelled_after_ms = std::chrono::duration<double, std::milli>(cancel_at - sent_at).count();
  // The echo waited for the block: it came back after the cancel was asked for.
  EXPECT_GE(blocked_rtt, cancelled_after_ms);
  EXPECT_EQ(Find(blocking.id()).state(), admin::Injection::CANCELLED);
  admin::Stats after_block = StatsWhen([&](const admin::Stats& s) { return s.total().stalls() > stalls_before; });
  EXPECT_EQ(after_block.total().stalls(), stalls_before + 1);
  EXPECT_EQ(after_block.loops(0).longest_task(), "inject:blocking_sleep");

  // The same kind of wait as a coroutine sleep: the echo comes back while it still sleeps.
  admin::Injection sleeping = Inject(admin::NONBLOCKING_SLEEP, 60000);
  StatsWhen([](const admin::Stats& s) { return s.loops(0).injections_running() == 1; });
  double sleeping_rtt = EchoRoundTripMs(client);
  ASSERT_GE(sleeping_rtt, 0);
  admin::Injection still = Find(sleeping.id());
  EXPECT_EQ(still.runs_started(), 1u);
  EXPECT_EQ(still.runs_finished(), 0u);
  EXPECT_EQ(still.state(), admin::Injection::ACTIVE);
  EXPECT_EQ(Stats().total().stalls(), stalls_before + 1);
  std::printf("echo round trip: %.1f ms across a BLOCKING_SLEEP cancelled %.1f ms after the send, %.1f ms during a "
              "NONBLOCKING_SLEEP\n",
              blocked_rtt, cancelled_after_ms, sleeping_rtt);

  // Cancelling the sleeping one finishes it at once.
  cancel.set_id(sleeping.id());
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

TEST_F(AdminActionsTest, ATotalThrottleIsSharedByConnections) {
  Start({"--loops=2"});
  admin::SetThrottleRequest set;
  set.set_bytes_per_second_total(20000);
  admin::Throttle throttle;
  SteadyClock::time_point start = SteadyClock::now();
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &throttle).ok());
  testing::BlockingClient a(port_, false, 60000);
  testing::BlockingClient b(port_, false, 60000);
  double a_ms = 0;
  std::thread other([&] { a_ms = EchoBulkMs(a, 30000); });
  double b_ms = EchoBulkMs(b, 30000);
  other.join();
  ASSERT_GE(a_ms, 0);
  ASSERT_GE(b_ms, 0);
  // 60 kB together at 20 kB/s, two connections: (60,000 - 2 * 1,000) / 20,000 s - 50 ms =
  // 2.85 s at the least, whichever loops they are on.
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
  SteadyClock::time_point start = SteadyClock::now();
  auto stream = stub_->WatchStats(context.get(), request);
  admin::Stats stats;
  std::vector<double> uptimes;
  while (stream->Read(&stats)) uptimes.push_back(stats.uptime_seconds());
  double took_ms = MillisSince(start);
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(uptimes.size(), 4u);
  for (size_t i = 1; i < uptimes.size(); ++i) EXPECT_GT(uptimes[i], uptimes[i - 1]);
  // Ticks keep to a fixed schedule from the call's start: the fourth sample is not sent before
  // 3 intervals have passed (a lower bound; a slow machine only makes the stream longer).
  EXPECT_GE(took_ms, 3 * 50.0);
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
  // The stream is subscribed once the server has the call; inject until the spin's stall
  // arrives. Another task may stall too on a loaded machine (anything past 20 ms): the stream
  // is read until the injected one comes (bounded: 100 stalls or the call's deadline).
  admin::Stall stall;
  std::atomic<bool> seen{false};
  std::thread injector([&] {
    for (int i = 0; i < 50 && !seen.load(); ++i) {
      EXPECT_TRUE(stub_->InjectTask(Context().get(), inject, &injection).ok());
      std::this_thread::sleep_for(milliseconds(100));
    }
  });
  bool got = false;
  for (int i = 0; i < 100 && !got; ++i) {
    if (!stream->Read(&stall)) break;
    got = stall.task() == "inject:blocking_spin";
  }
  seen = true;
  injector.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(stall.loop(), 0u);
  EXPECT_GE(stall.duration_ms(), 40.0);  // the spin's own length: a lower bound
  EXPECT_GE(stall.sequence(), 1u);
  context->TryCancel();
  stream->Finish();
}

TEST_F(AdminActionsTest, DrainStopsAcceptingFlushesAndExits) {
  Start({"--drain_timeout=60s"});
  testing::BlockingClient client(port_);
  ASSERT_GE(EchoRoundTripMs(client), 0);  // accepted (a client still in the backlog is not served)
  ASSERT_TRUE(client.send_all("last words"));
  admin::DrainResponse response;
  ASSERT_TRUE(stub_->Drain(Context().get(), admin::DrainRequest(), &response).ok());
  EXPECT_FALSE(response.already_draining());
  EXPECT_EQ(response.connections_open(), 1u);
  // The client is still connected, so the drain (and the admin plane) goes on: health says so.
  auto health_stub = health::Health::NewStub(channel_);
  health::HealthCheckResponse h;
  grpc::Status hs = health_stub->Check(Context().get(), health::HealthCheckRequest(), &h);
  ASSERT_TRUE(hs.ok()) << hs.error_message();
  EXPECT_EQ(h.status(), health::HealthCheckResponse::NOT_SERVING);
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
