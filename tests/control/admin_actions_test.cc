// The admin plane's actions on connections and streams, on a real brrr-echo over a real gRPC
// channel: the read and write sets ListSockets shows and its filter by loop, closing one
// connection, WatchStats' schedule, the live stall threshold and WatchStalls, and a drain from
// the admin plane.
// (Injections, throttles and refused requests have their own files beside this one.)
#include <fcntl.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/admin_probes.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
namespace health = grpc::health::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;
using testing::EchoRoundTripMs;
using testing::FindPeer;
using testing::LocalAddress;
using testing::MillisSince;

class AdminActionsTest : public testing::AdminFixture {
 protected:
  // Injects a 40 ms spin every `pause`, at most `attempts` times, until `stream` reads that
  // spin's stall (a server subscribes a WatchStalls stream only once it has the call, a moment
  // after the call returns here); the stall, or nothing. Another task may stall too on a loaded
  // machine (anything past the threshold): at most 100 stalls are read.
  std::optional<admin::Stall> InjectSpinsUntilOneIsRead(grpc::ClientReader<admin::Stall>& stream, milliseconds pause,
                                                        int attempts) {
    admin::InjectTaskRequest inject;
    inject.set_kind(admin::BLOCKING_SPIN);
    inject.set_duration_ms(40);
    std::atomic<bool> seen{false};
    std::thread injector([&] {
      for (int i = 0; i < attempts && !seen.load(); ++i) {
        admin::Injection injection;
        EXPECT_TRUE(stub_->InjectTask(Context().get(), inject, &injection).ok());
        std::this_thread::sleep_for(pause);
      }
    });
    std::optional<admin::Stall> got;
    admin::Stall stall;
    for (int i = 0; i < 100 && !got.has_value(); ++i) {
      if (!stream.Read(&stall)) break;
      if (stall.task() == "inject:blocking_spin") got = stall;
    }
    seen = true;
    injector.join();
    return got;
  }
};

TEST_F(AdminActionsTest, IdleClientsAreInTheReadSetAClientThatNeverReadsInTheWriteSet) {
  Start({"--high_water=65536", "--low_water=16384"});
  testing::BlockingClient idle(port_);
  testing::BlockingClient stuck(port_);
  stuck.set_receive_buffer(4096);
  // The most the server and this kernel's buffers can take from it (the bound: --high_water
  // plus the default --recv_buffer_size); reaching it means the server never stopped.
  const size_t max_sent = testing::MostANeverReaderCanSend(65536 + 16384, 4096);
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
  // bounded: max_sent or 30 s.
  const SteadyClock::time_point give_up = SteadyClock::now() + seconds(30);
  int flags = fcntl(stuck.fd(), F_GETFL);
  fcntl(stuck.fd(), F_SETFL, flags | O_NONBLOCK);
  std::string block(65536, 'x');
  size_t sent = 0;
  admin::ListSocketsResponse writing;
  const admin::SocketInfo* s = nullptr;
  while ((s == nullptr || s->in_read_set()) && sent < max_sent && SteadyClock::now() < give_up) {
    ssize_t n = ::send(stuck.fd(), block.data(), block.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    std::this_thread::sleep_for(milliseconds(10));
    writing = list(admin::ListSocketsRequest::WRITE_SET);
    s = FindPeer(writing, LocalAddress(stuck.fd()));
  }
  ASSERT_LT(sent, max_sent) << "the server kept reading from a client that never reads";
  ASSERT_NE(s, nullptr) << "sent " << sent << " bytes; write set: " << writing.DebugString();
  EXPECT_TRUE(s->in_write_set());
  EXPECT_FALSE(s->in_read_set());  // stopped reading at its high-water mark
  EXPECT_GT(s->bytes_queued(), 0u);
  EXPECT_EQ(s->kind(), "connection");
  EXPECT_EQ(FindPeer(writing, LocalAddress(idle.fd())), nullptr);

  // The server may still take a little more of the stuck client's data as its kernel send
  // buffer grows (reading again in bounded single receives), and with nothing more to read it
  // would rightly wait in the read set: so keep the client sending until its own sends block
  // while the server lists the socket out of its read set. Bounded: max_sent or 30 s more.
  admin::ListSocketsResponse reading;
  const SteadyClock::time_point give_up_reading = SteadyClock::now() + seconds(30);
  while (sent < max_sent && SteadyClock::now() < give_up_reading) {
    bool blocked = false;
    while (!blocked && sent < max_sent) {
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

// README: ListSockets filters by loop. With two loops (each with its own SO_REUSEPORT listener,
// so the kernel spreads clients by their address), clients are connected until both loops
// have one (bounded: 64 clients; all on one loop would take odds of 2^-63); then each loop's
// list holds that loop's sockets only, and the two lists together are the unfiltered one.
TEST_F(AdminActionsTest, ListSocketsOfOneLoopHoldsThatLoopsSocketsOnly) {
  Start({"--loops=2"});
  auto list = [&](std::optional<uint32_t> loop) {
    admin::ListSocketsRequest request;
    if (loop.has_value()) request.set_loop(*loop);
    admin::ListSocketsResponse response;
    grpc::Status s = stub_->ListSockets(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  };
  auto connections_on = [](const admin::ListSocketsResponse& r, uint32_t loop) {
    int n = 0;
    for (const admin::SocketInfo& s : r.sockets()) n += s.kind() == "connection" && s.loop() == loop;
    return n;
  };
  std::vector<std::unique_ptr<testing::BlockingClient>> clients;
  admin::ListSocketsResponse all;
  while (clients.size() < 64 && (connections_on(all, 0) == 0 || connections_on(all, 1) == 0)) {
    clients.push_back(std::make_unique<testing::BlockingClient>(port_));
    ASSERT_GE(EchoRoundTripMs(*clients.back()), 0);  // accepted, so listed
    all = list(std::nullopt);
  }
  ASSERT_GT(connections_on(all, 0), 0) << all.DebugString();
  ASSERT_GT(connections_on(all, 1), 0) << all.DebugString();
  EXPECT_EQ(all.matched(), clients.size() + 2) << all.DebugString();  // and a listener per loop

  std::set<int> fds_of_all;
  for (const admin::SocketInfo& s : all.sockets()) fds_of_all.insert(s.fd());
  std::set<int> fds_of_loops;
  for (uint32_t loop : {0u, 1u}) {
    admin::ListSocketsResponse one = list(loop);
    EXPECT_EQ(connections_on(one, loop), connections_on(all, loop)) << loop << ": " << one.DebugString();
    EXPECT_EQ(one.matched(), static_cast<uint64_t>(one.sockets_size())) << one.DebugString();
    for (const admin::SocketInfo& s : one.sockets()) {
      EXPECT_EQ(s.loop(), loop) << one.DebugString();
      EXPECT_TRUE(fds_of_loops.insert(s.fd()).second) << "fd " << s.fd() << " listed by both loops";
    }
  }
  EXPECT_EQ(fds_of_loops, fds_of_all);
}

// A socket's age_seconds is in seconds since it was accepted: more than 0, and no more than
// the test's own clock has run since before it connected (the 100 ms between makes a figure
// in another unit, milliseconds, come out 1000 times too large).
TEST_F(AdminActionsTest, ASocketsAgeIsTheSecondsSinceItWasAccepted) {
  Start();
  const SteadyClock::time_point before_connect = SteadyClock::now();
  testing::BlockingClient client(port_);
  ASSERT_GE(EchoRoundTripMs(client), 0);  // accepted and served
  std::this_thread::sleep_for(milliseconds(100));
  admin::ListSocketsResponse all;
  ASSERT_TRUE(stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &all).ok());
  const double since_connect = std::chrono::duration<double>(SteadyClock::now() - before_connect).count();
  const admin::SocketInfo* s = FindPeer(all, LocalAddress(client.fd()));
  ASSERT_NE(s, nullptr) << all.DebugString();
  EXPECT_GT(s->age_seconds(), 0);
  EXPECT_LE(s->age_seconds(), since_connect) << all.DebugString();
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

  // Named with another peer (the connection listed closed and its descriptor went to this one):
  // refused, and the connection that has the descriptor now is left open.
  admin::CloseConnectionRequest close;
  close.set_fd(s->fd());
  close.set_peer(LocalAddress(bystander.fd()));
  admin::CloseConnectionResponse closed;
  grpc::Status st = stub_->CloseConnection(Context().get(), close, &closed);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find("is the connection of " + LocalAddress(victim.fd()) + " now, not of " +
                                    LocalAddress(bystander.fd())),
            std::string::npos)
      << st.error_message();
  // The peer named here is open on another descriptor: the error tells how a number changes
  // hands, and does not say that the named one closed.
  EXPECT_NE(st.error_message().find("(a descriptor is given out again once its connection closes)"), std::string::npos)
      << st.error_message();
  ASSERT_GE(EchoRoundTripMs(victim), 0) << "closed though its peer was not the one named";
  // A peer no connection can have is the caller's mistake (INVALID_ARGUMENT, naming the form),
  // not a descriptor given out again (it was FAILED_PRECONDITION, "the connection of ... now").
  for (const std::string malformed : {"garbage", "127.0.0.1", "localhost:5"}) {
    close.set_peer(malformed);
    st = stub_->CloseConnection(Context().get(), close, &closed);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_EQ(st.error_message().rfind("peer: \"" + malformed + "\" is not", 0), 0u) << st.error_message();
    EXPECT_TRUE(st.error_message().find("expected HOST:PORT as ListSockets") != std::string::npos ||
                st.error_message().find("give 127.0.0.1:5") != std::string::npos)
        << st.error_message();
  }
  ASSERT_GE(EchoRoundTripMs(victim), 0) << "closed though its peer was malformed";
  close.set_peer(LocalAddress(victim.fd()));
  st = stub_->CloseConnection(Context().get(), close, &closed);
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

// CloseConnection without a loop asks every loop at once: a connection on a free loop is closed
// at once while another loop is blocked; one on the blocked loop is UNAVAILABLE, naming it, after
// the admin plane's wait (5 s), and is not closed, not even once the loop is free again.
TEST_F(AdminActionsTest, CloseConnectionReachesAFreeLoopWhileAnotherIsBlocked) {
  Start({"--loops=2", "--admin_max_block=60s"});
  std::vector<std::unique_ptr<testing::BlockingClient>> on_loop = OneClientOnEachLoop(2);
  ASSERT_EQ(on_loop.size(), 2u);
  admin::ListSocketsResponse all;
  ASSERT_TRUE(stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &all).ok());
  const admin::SocketInfo* on_blocked = FindPeer(all, LocalAddress(on_loop[0]->fd()));
  const admin::SocketInfo* on_free = FindPeer(all, LocalAddress(on_loop[1]->fd()));
  ASSERT_TRUE(on_blocked != nullptr && on_free != nullptr) << all.ShortDebugString();

  // Far longer than both calls below take, however slow the machine; cancelled after them.
  admin::Injection blocking = BlockLoop(0, 30000);

  admin::CloseConnectionRequest close;
  close.set_fd(on_free->fd());
  admin::CloseConnectionResponse closed;
  SteadyClock::time_point asked = SteadyClock::now();
  grpc::Status st = stub_->CloseConnection(Context().get(), close, &closed);
  double free_ms = MillisSince(asked);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(closed.closed().loop(), 1u);
  EXPECT_EQ(closed.closed().peer(), LocalAddress(on_loop[1]->fd()));
  EXPECT_EQ(on_loop[1]->recv_until_eof(), "");
  admin::Stats stats = Stats();
  EXPECT_EQ(stats.injections(0).runs_finished(), 0u) << "the block ended before the answer: the test proves nothing";

  close.set_fd(on_blocked->fd());
  st = stub_->CloseConnection(Context().get(), close, &closed);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("loop 0 did not answer"), std::string::npos) << st.error_message();
  std::printf("closed on the free loop in %.0f ms while loop 0 was blocked\n", free_ms);
  // Once the block is over, the connection on loop 0 is still open and served.
  Unblock(0, blocking);
  EXPECT_GE(EchoRoundTripMs(*on_loop[0]), 0) << "the close the admin plane gave up on ran anyway";
  EXPECT_EQ(Stats().total().connections_closed_by_admin(), 1u);
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

  auto context = Context(seconds(60));
  // With the recent stalls first: a stall that happens before the server has subscribed the
  // stream (it gets the call a moment after this returns) still arrives.
  admin::WatchStallsRequest watch;
  watch.set_include_recent(true);
  auto stream = stub_->WatchStalls(context.get(), watch);
  // A 40 ms block is a stall now (it was not at the 100 ms default).
  std::optional<admin::Stall> stall = InjectSpinsUntilOneIsRead(*stream, milliseconds(100), 50);
  ASSERT_TRUE(stall.has_value());
  EXPECT_EQ(stall->loop(), 0u);
  EXPECT_GE(stall->duration_ms(), 40.0);  // the spin's own length: a lower bound
  EXPECT_GE(stall->sequence(), 1u);
  context->TryCancel();
  stream->Finish();
}

// A stall recorded while WatchStalls sleeps reaches it: the stall wakes the stream as it is
// recorded (it used to look at its queue every 50 ms; how soon is not timed here). Without
// include_recent, only what comes after the stream subscribed arrives, so the spin is injected
// until one does (bounded).
TEST_F(AdminActionsTest, AStallRecordedWhileWatchStallsWaitsArrives) {
  Start();
  admin::SetStallThresholdRequest set;
  set.set_threshold_ms(20);
  admin::StallThresholds thresholds;
  ASSERT_TRUE(stub_->SetStallThreshold(Context().get(), set, &thresholds).ok());
  auto context = Context(seconds(60));
  auto stream = stub_->WatchStalls(context.get(), admin::WatchStallsRequest());
  EXPECT_TRUE(InjectSpinsUntilOneIsRead(*stream, milliseconds(200), 100).has_value())
      << "no injected stall reached the stream";
  context->TryCancel();
  stream->Finish();
}

// README: a server that shuts down ends its streams with UNAVAILABLE ("this brrr-echo is
// shutting down"), not OK, which would read as a stream that ran its course: here a WatchStats
// between two samples an hour apart, and a WatchStalls with no stall to send. (They used to
// notice within 50 ms; now the shutdown wakes them. How soon is not timed here.)
TEST_F(AdminActionsTest, AShutdownEndsWatchStatsAndWatchStallsWithUnavailable) {
  Start();
  auto stats_context = Context(seconds(60));
  admin::WatchStatsRequest hourly;
  hourly.set_interval_ms(3'600'000);
  auto stats = stub_->WatchStats(stats_context.get(), hourly);
  admin::Stats first;
  ASSERT_TRUE(stats->Read(&first)) << stats->Finish().error_message();
  // One stall for the stalls stream to send first: once it has, its handler is waiting.
  admin::SetStallThresholdRequest set;
  set.set_threshold_ms(20);
  admin::StallThresholds thresholds;
  ASSERT_TRUE(stub_->SetStallThreshold(Context().get(), set, &thresholds).ok());
  admin::InjectTaskRequest inject;
  inject.set_kind(admin::BLOCKING_SPIN);
  inject.set_duration_ms(40);
  admin::Injection injection;
  ASSERT_TRUE(stub_->InjectTask(Context().get(), inject, &injection).ok());
  for (int i = 0; i < 600 && Stats().loops(0).stalls() == 0; ++i) {  // 30 s at most
    std::this_thread::sleep_for(milliseconds(50));
  }
  auto stalls_context = Context(seconds(60));
  admin::WatchStallsRequest recent;
  recent.set_include_recent(true);
  auto stalls = stub_->WatchStalls(stalls_context.get(), recent);
  admin::Stall stall;
  ASSERT_TRUE(stalls->Read(&stall)) << stalls->Finish().error_message();
  server_->Signal(SIGTERM);
  admin::Stats more;
  EXPECT_FALSE(stats->Read(&more)) << "a sample an hour early";
  grpc::Status stats_end = stats->Finish();
  EXPECT_EQ(stats_end.error_code(), grpc::StatusCode::UNAVAILABLE) << stats_end.error_message();
  EXPECT_NE(stats_end.error_message().find("this brrr-echo is shutting down"), std::string::npos)
      << stats_end.error_message();
  while (stalls->Read(&stall)) {
  }  // another stall it remembers, on a loaded machine
  grpc::Status stalls_end = stalls->Finish();
  EXPECT_EQ(stalls_end.error_code(), grpc::StatusCode::UNAVAILABLE) << stalls_end.error_message();
  EXPECT_NE(stalls_end.error_message().find("this brrr-echo is shutting down"), std::string::npos)
      << stalls_end.error_message();
  EXPECT_EQ(server_->Wait(seconds(30)), 0) << server_->err();
}

// During a drain, a loop whose connections have all ended stops for good. The actions that ask
// every loop (ListSockets, SetThrottle, CloseConnection) answer from the loops still draining,
// where they failed after their wait with "loop 0 did not answer ...: it is not running": the
// operator sees, and can close, the connection that holds the drain up.
TEST_F(AdminActionsTest, ActionsOnEveryLoopAnswerOnceADrainedLoopHasStopped) {
  Start({"--loops=2", "--drain_timeout=60s"});
  std::vector<std::unique_ptr<testing::BlockingClient>> clients = OneClientOnEachLoop(2);
  ASSERT_EQ(clients.size(), 2u);
  clients[0].reset();  // loop 0 has nothing left to drain
  admin::DrainResponse drain;
  ASSERT_TRUE(stub_->Drain(Context().get(), admin::DrainRequest(), &drain).ok());
  // Loop 0's listener closed too, and loop 1's (its pending accept's cancel ends first).
  StatsWhen([](const admin::Stats& s) { return s.loops(0).sockets() == 0 && s.loops(1).sockets() == 1; });

  admin::ListSocketsResponse all;
  grpc::Status listed = stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &all);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  ASSERT_EQ(all.sockets_size(), 1) << all.DebugString();
  EXPECT_EQ(all.sockets(0).loop(), 1u);
  EXPECT_EQ(all.sockets(0).peer(), LocalAddress(clients[1]->fd()));

  admin::SetThrottleRequest throttle;
  throttle.set_max_connections(5000);
  admin::Throttle set;
  grpc::Status throttled = stub_->SetThrottle(Context().get(), throttle, &set);
  EXPECT_TRUE(throttled.ok()) << throttled.error_message();

  admin::CloseConnectionRequest close;
  close.set_fd(all.sockets(0).fd());
  admin::CloseConnectionResponse closed;
  grpc::Status closing = stub_->CloseConnection(Context().get(), close, &closed);
  ASSERT_TRUE(closing.ok()) << closing.error_message();
  EXPECT_EQ(clients[1]->recv_until_eof(), "");
  // Nothing holds the drain up any more.
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server_->err();
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
  // Named by the client's address, not by the relay's end of the connection (":0" before).
  EXPECT_NE(server_->out().find("Drain from the admin plane (127.0.0.1:"), std::string::npos) << server_->out();
}

// Occurrences of `text` in `all`.
size_t CountOf(const std::string& all, const std::string& text) {
  size_t n = 0;
  for (size_t at = all.find(text); at != std::string::npos; at = all.find(text, at + text.size())) ++n;
  return n;
}

TEST_F(AdminActionsTest, ADrainAndASignalAtOnceStartOneDrainAndSaySo) {
  Start({"--drain_timeout=60s"});
  testing::BlockingClient client(port_);  // holds the drain open until it closes
  ASSERT_GE(EchoRoundTripMs(client), 0);
  // Both at once, from two threads: whichever starts the drain says so, the other that one had.
  admin::DrainResponse response;
  grpc::Status drained;
  std::atomic<bool> go{false};
  std::thread admin_caller([&] {
    auto context = Context();
    while (!go.load()) {
    }
    drained = stub_->Drain(context.get(), admin::DrainRequest(), &response);
  });
  go.store(true);
  server_->Signal(SIGTERM);
  admin_caller.join();
  ASSERT_TRUE(drained.ok()) << drained.error_message();
  const char* signal_said = response.already_draining() ? "Terminated: draining" : "Terminated: already draining";
  ASSERT_TRUE(server_->WaitForOutput(signal_said)) << server_->out();
  client.shutdown_write();
  EXPECT_EQ(client.recv_until_eof(), "");
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server_->err();
  const std::string out = server_->out();
  EXPECT_EQ(CountOf(out, "Drain from the admin plane") + CountOf(out, "Terminated: draining"), 1u) << out;
  EXPECT_EQ(CountOf(out, "Drain from the admin plane"), response.already_draining() ? 0u : 1u) << out;
  EXPECT_EQ(CountOf(out, "already draining"), response.already_draining() ? 0u : 1u) << out;
}

}  // namespace
}  // namespace brrr
