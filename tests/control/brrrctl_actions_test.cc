// brrrctl's commands that change a real brrr-echo, both as child processes: throttles (read
// back over gRPC), injections listed and cancelled, sockets listed and closed, a drain, and the
// token read from --token_file.
#include <chrono>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/control/brrrctl_run.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::BrrrctlTest;
using testing::Contains;
using testing::CtlRun;
using testing::FromJson;
using testing::Lines;
using testing::LocalPort;
using testing::WriteFile;

TEST_F(BrrrctlTest, ThrottleChangesWhatIsGivenAndShowsItAll) {
  Start();

  CtlRun set = Ctl({"throttle", "--conn_rate=10KB", "--json"});
  ASSERT_EQ(set.code, 0) << set;
  admin::Throttle after_set = FromJson<admin::Throttle>(Lines(set.out).at(0));
  EXPECT_EQ(after_set.bytes_per_second_per_connection(), 10000u);
  EXPECT_EQ(after_set.bytes_per_second_total(), 0u);

  CtlRun show = Ctl({"throttle", "--json"});
  ASSERT_EQ(show.code, 0) << show;
  EXPECT_EQ(FromJson<admin::Throttle>(Lines(show.out).at(0)).bytes_per_second_per_connection(), 10000u);
  admin::Throttle direct;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &direct).ok());
  EXPECT_EQ(direct.bytes_per_second_per_connection(), 10000u);

  CtlRun pause = Ctl({"throttle", "--pause", "--json"});
  ASSERT_EQ(pause.code, 0) << pause;
  admin::Throttle paused = FromJson<admin::Throttle>(Lines(pause.out).at(0));
  EXPECT_TRUE(paused.accepting_paused());
  EXPECT_EQ(paused.bytes_per_second_per_connection(), 10000u);  // the others stay
  CtlRun resume = Ctl({"throttle", "--resume"});
  ASSERT_EQ(resume.code, 0) << resume;
  EXPECT_TRUE(Contains(resume.out, "accepting        yes")) << resume;

  // Out of range (0, or 1,000 and up): a usage error before any call, in the server's words.
  CtlRun low = Ctl({"throttle", "--conn_rate=5"});
  EXPECT_EQ(low.code, 2) << low;
  EXPECT_TRUE(Contains(low.err, "brrrctl: throttle: --conn_rate=5 is out of range: allowed 0 (unlimited) or 1000 to"))
      << low;
}

// --accept_rate, --total_rate and --max_connections reach the server (read back over gRPC,
// not from brrrctl's own echo), the text form shows them, and the connection limit acts.
TEST_F(BrrrctlTest, AcceptRateTotalRateAndMaxConnectionsReachTheServer) {
  Start();
  CtlRun set = Ctl({"throttle", "--accept_rate=50", "--total_rate=20KB", "--max_connections=2", "--json"});
  ASSERT_EQ(set.code, 0) << set;
  admin::Throttle direct;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &direct).ok());
  EXPECT_EQ(direct.accepts_per_second(), 50u);
  EXPECT_EQ(direct.bytes_per_second_total(), 20000u);
  EXPECT_EQ(direct.max_connections(), 2u);
  EXPECT_EQ(direct.bytes_per_second_per_connection(), 0u) << "what was not given stays";
  CtlRun show = Ctl({"throttle"});
  ASSERT_EQ(show.code, 0) << show;
  for (const char* shown : {"total_rate       20KB/s\n", "accept_rate      50/s\n", "max_connections  2\n"}) {
    EXPECT_TRUE(Contains(show.out, shown)) << show;
  }

  // Two connections at once are served; a third is accepted and closed at once.
  testing::BlockingClient a(port_);
  testing::BlockingClient b(port_);
  ASSERT_TRUE(a.send_all("a"));
  ASSERT_EQ(a.recv_exact(1), "a");
  ASSERT_TRUE(b.send_all("b"));
  ASSERT_EQ(b.recv_exact(1), "b");
  testing::BlockingClient c(port_);
  EXPECT_EQ(c.recv_until_eof(), "");
  admin::Stats stats = StatsWhen([](const admin::Stats& s) { return s.total().connections_refused() == 1; });
  EXPECT_EQ(stats.total().connections_active(), 2u);

  // Out of range: brrrctl says what is allowed (a usage error), nothing changes.
  CtlRun bad = Ctl({"throttle", "--accept_rate=2000000", "--max_connections=5"});
  EXPECT_EQ(bad.code, 2) << bad;
  EXPECT_TRUE(Contains(bad.err, "--accept_rate=2000000 is out of range")) << bad;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &direct).ok());
  EXPECT_EQ(direct.max_connections(), 2u);
}

TEST_F(BrrrctlTest, InjectionIsListedAndCancelled) {
  Start();

  CtlRun inject = Ctl({"inject", "blocking-sleep", "--duration=100ms", "--json"});
  ASSERT_EQ(inject.code, 0) << inject;
  admin::Injection injection = FromJson<admin::Injection>(Lines(inject.out).at(0));
  EXPECT_GT(injection.id(), 0u);
  EXPECT_EQ(injection.kind(), admin::BLOCKING_SLEEP);
  EXPECT_EQ(injection.duration_ms(), 100u);

  CtlRun list = Ctl({"injections", "--json"});
  ASSERT_EQ(list.code, 0) << list;
  admin::ListInjectionsResponse response = FromJson<admin::ListInjectionsResponse>(Lines(list.out).at(0));
  bool found = false;
  for (const admin::Injection& i : response.injections()) found = found || i.id() == injection.id();
  EXPECT_TRUE(found) << list;
  CtlRun text = Ctl({"injections"});
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_TRUE(Contains(text.out, "blocking-sleep")) << text;

  CtlRun long_one = Ctl({"inject", "nonblocking-sleep", "--duration=10s", "--count=3", "--json"});
  ASSERT_EQ(long_one.code, 0) << long_one;
  uint64_t id = FromJson<admin::Injection>(Lines(long_one.out).at(0)).id();
  CtlRun cancel = Ctl({"cancel", std::to_string(id), "--json"});
  ASSERT_EQ(cancel.code, 0) << cancel;
  admin::Injection cancelled = FromJson<admin::Injection>(Lines(cancel.out).at(0));
  EXPECT_EQ(cancelled.id(), id);
  EXPECT_EQ(cancelled.state(), admin::Injection::CANCELLED);
  EXPECT_TRUE(Contains(cancel.out, "\"state\":\"CANCELLED\"")) << cancel;

  CtlRun unknown = Ctl({"cancel", "999999"});
  EXPECT_EQ(unknown.code, 1) << unknown;
  EXPECT_TRUE(Contains(unknown.err, "brrrctl: NOT_FOUND: ")) << unknown;
}

// inject --loop runs the injection on the loops listed and on no other: a blocking run meant
// for one loop must not block them all. The server answers with the loops it runs on.
TEST_F(BrrrctlTest, InjectRunsOnTheLoopsGivenOnly) {
  Start({"--loops=3"});
  CtlRun one = Ctl({"inject", "nonblocking-sleep", "--duration=10s", "--loop=1", "--json"});
  ASSERT_EQ(one.code, 0) << one;
  admin::Injection on_one = FromJson<admin::Injection>(Lines(one.out).at(0));
  EXPECT_EQ(std::vector<uint32_t>(on_one.loops().begin(), on_one.loops().end()), std::vector<uint32_t>{1}) << one;
  CtlRun two = Ctl({"inject", "nonblocking-sleep", "--duration=10s", "--loop=0,2"});
  ASSERT_EQ(two.code, 0) << two;
  CtlRun list = Ctl({"injections", "--json"});
  ASSERT_EQ(list.code, 0) << list;
  admin::ListInjectionsResponse response = FromJson<admin::ListInjectionsResponse>(Lines(list.out).at(0));
  ASSERT_EQ(response.injections_size(), 2) << list;
  for (const admin::Injection& i : response.injections()) {
    std::vector<uint32_t> loops(i.loops().begin(), i.loops().end());
    if (i.id() == on_one.id()) {
      EXPECT_EQ(loops, std::vector<uint32_t>{1}) << list;
    } else {
      EXPECT_EQ(loops, (std::vector<uint32_t>{0, 2})) << list;
    }
    CtlRun cancel = Ctl({"cancel", std::to_string(i.id())});
    EXPECT_EQ(cancel.code, 0) << cancel;
  }
}

TEST_F(BrrrctlTest, SocketsListAnIdleClientAndCloseClosesIt) {
  Start();
  testing::BlockingClient client(port_, false, 10000);
  ASSERT_TRUE(client.send_all("hello"));
  ASSERT_EQ(client.recv_exact(5), "hello");
  const std::string peer = "127.0.0.1:" + std::to_string(LocalPort(client.fd()));

  // The idle connection waits for bytes: it is in the read set, not in the write set.
  auto find = [&](const std::string& set) -> std::optional<admin::SocketInfo> {
    CtlRun r = Ctl({"sockets", "--set=" + set, "--json"});
    EXPECT_EQ(r.code, 0) << r;
    if (r.code != 0) return std::nullopt;
    admin::ListSocketsResponse response = FromJson<admin::ListSocketsResponse>(Lines(r.out).at(0));
    for (const admin::SocketInfo& s : response.sockets()) {
      if (s.peer() == peer) return s;
    }
    return std::nullopt;
  };
  std::optional<admin::SocketInfo> idle = find("read");
  ASSERT_TRUE(idle.has_value()) << peer;
  EXPECT_EQ(idle->kind(), "connection");
  EXPECT_TRUE(idle->in_read_set());
  EXPECT_EQ(idle->bytes_in(), 5u);
  EXPECT_FALSE(find("write").has_value());

  // --peer: another client's address is refused (exit 1), and nothing is closed.
  CtlRun other = Ctl({"close", std::to_string(idle->fd()), "--peer=127.0.0.1:1"});
  EXPECT_EQ(other.code, 1) << other;
  EXPECT_TRUE(Contains(other.err, "is the connection of " + peer + " now, not of 127.0.0.1:1")) << other;
  ASSERT_TRUE(find("read").has_value()) << "closed though --peer named another client";
  // A --peer that no connection can have, or an empty one (it meant any connection): a usage
  // error before any call, and nothing is closed.
  const std::string port = std::to_string(LocalPort(client.fd()));
  struct Case {
    std::string flag;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"--peer=garbage",
            "close --peer: \"garbage\" is not a peer address: expected HOST:PORT as ListSockets (brrrctl sockets) "
            "gives it"},
           {"--peer=127.0.0.1", "close --peer: \"127.0.0.1\" is not a peer address"},
           {"--peer=::1:5", "close --peer: \"::1:5\" is not a peer address"},
           {"--peer=localhost:" + port,
            "close --peer: \"localhost:" + port +
                "\" is not written as ListSockets writes a peer address (it is compared as text): give " + peer},
           {"--peer=", "close --peer is empty: give the connection's HOST:PORT as brrrctl sockets lists it"},
       }) {
    CtlRun refused = Ctl({"close", std::to_string(idle->fd()), c.flag});
    EXPECT_EQ(refused.code, 2) << c.flag << ": " << refused;
    EXPECT_TRUE(Contains(refused.err, "brrrctl: " + c.message)) << c.flag << ": " << refused;
  }
  ASSERT_TRUE(find("read").has_value()) << "closed though --peer was malformed";
  CtlRun close = Ctl({"close", std::to_string(idle->fd()), "--peer=" + peer, "--json"});
  ASSERT_EQ(close.code, 0) << close;
  admin::CloseConnectionResponse closed = FromJson<admin::CloseConnectionResponse>(Lines(close.out).at(0));
  EXPECT_EQ(closed.closed().fd(), idle->fd());
  EXPECT_EQ(closed.closed().peer(), peer);
  EXPECT_EQ(client.recv_until_eof(), "");  // the server closed it
}

// --set names the set the server filters by: an idle client (in the read set only) is listed by
// all and read, and by neither write nor neither.
TEST_F(BrrrctlTest, SocketsSetListsAClientOnlyUnderTheSetsItIsIn) {
  Start();
  testing::BlockingClient client(port_, false, 10000);
  ASSERT_TRUE(client.send_all("hello"));
  ASSERT_EQ(client.recv_exact(5), "hello");
  const std::string peer = "127.0.0.1:" + std::to_string(LocalPort(client.fd()));
  auto listed = [&](const std::string& set) {
    CtlRun r = Ctl({"sockets", "--set=" + set, "--json"});
    EXPECT_EQ(r.code, 0) << r;
    if (r.code != 0) return false;
    admin::ListSocketsResponse response = FromJson<admin::ListSocketsResponse>(Lines(r.out).at(0));
    for (const admin::SocketInfo& s : response.sockets()) {
      if (s.peer() == peer) return true;
    }
    return false;
  };
  EXPECT_TRUE(listed("all"));
  EXPECT_TRUE(listed("read"));
  EXPECT_FALSE(listed("write"));
  EXPECT_FALSE(listed("neither"));
}

// An action on a blocked loop, with brrrctl's default deadline (5 s, as long as the server's
// wait for a loop): the server answers before the deadline, so brrrctl shows which task holds
// the loop, not a bare DEADLINE_EXCEEDED.
TEST_F(BrrrctlTest, AnActionOnABlockedLoopSaysWhatBlocksItWithinTheDefaultTimeout) {
  Start({"--admin_max_block=60s"});
  for (const char* action : {"sockets", "close"}) {
    SCOPED_TRACE(action);
    // Blocked far longer than the call can wait, however slowly brrrctl starts here, from the
    // moment the run has started (InjectTask only schedules it: a call queued behind it would
    // be answered before the block began); cancelled once the call has answered.
    admin::Injection blocking = BlockLoop(0, 30000);
    std::vector<std::string> args = {action};
    if (std::string(action) == "close") args.push_back("12345");
    CtlRun r = Ctl(args);
    EXPECT_NE(r.code, 0) << r;
    EXPECT_NE(r.err.find("UNAVAILABLE"), std::string::npos) << r;
    EXPECT_NE(r.err.find("it has been running inject:blocking_sleep for"), std::string::npos) << r;
    Unblock(0, blocking);
  }
}

// A short deadline (--timeout under the server's 250 ms margin for its answer) still reaches
// free loops: the wait for a loop is cut to half of what is left, not to nothing, which made
// the loops of an idle server "busy" whenever the call got there before they did (UNAVAILABLE,
// and SetThrottle answered so after setting). Five calls each: that race lost now and then. On a
// loaded machine a call can miss a deadline this short, or a loop not get the CPU within the
// 100 ms it is waited for: such a call is tried again (the wait's arithmetic is loop_wait_test's).
TEST_F(BrrrctlTest, AShortDeadlineStillReachesFreeLoops) {
  Start({"--loops=2"});
  const std::vector<std::vector<std::string>> commands = {
      {"--timeout=200ms", "sockets", "--json"},
      {"--timeout=200ms", "throttle", "--conn_rate=10K", "--json"},
  };
  for (const std::vector<std::string>& args : commands) {
    for (int call = 0; call < 5; ++call) {
      SCOPED_TRACE(args[1] + " call " + std::to_string(call));
      CtlRun r = Ctl(args);
      for (int retry = 0;
           retry < 3 && r.code != 0 && (Contains(r.err, "DEADLINE_EXCEEDED") || Contains(r.err, "UNAVAILABLE"));
           ++retry) {
        r = Ctl(args);
      }
      EXPECT_EQ(r.code, 0) << r;
      EXPECT_FALSE(Contains(r.err, "UNAVAILABLE")) << r;
    }
  }
  admin::Throttle direct;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &direct).ok());
  EXPECT_EQ(direct.bytes_per_second_per_connection(), 10000u);
}

// The flags that narrow a command reach the server: sockets --loop and --limit, close --loop,
// inject --interval, stall-threshold --loop.
TEST_F(BrrrctlTest, FlagsThatNarrowACommandReachTheServer) {
  Start({"--loops=2"});
  std::vector<std::unique_ptr<testing::BlockingClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<testing::BlockingClient>(port_, false, 10000));
    ASSERT_TRUE(clients.back()->send_all("x"));
    ASSERT_EQ(clients.back()->recv_exact(1), "x");
  }
  CtlRun all = Ctl({"sockets", "--json"});
  ASSERT_EQ(all.code, 0) << all;
  admin::ListSocketsResponse every = FromJson<admin::ListSocketsResponse>(Lines(all.out).at(0));
  ASSERT_EQ(every.matched(), 10u) << all;  // 8 connections and a listener per loop
  for (uint32_t loop : {0u, 1u}) {
    CtlRun one = Ctl({"sockets", "--loop=" + std::to_string(loop), "--json"});
    ASSERT_EQ(one.code, 0) << one;
    admin::ListSocketsResponse listed = FromJson<admin::ListSocketsResponse>(Lines(one.out).at(0));
    EXPECT_GE(listed.sockets_size(), 1) << one;
    for (const admin::SocketInfo& socket : listed.sockets()) EXPECT_EQ(socket.loop(), loop) << one;
  }
  CtlRun limited = Ctl({"sockets", "--limit=3"});
  ASSERT_EQ(limited.code, 0) << limited;
  EXPECT_TRUE(Contains(limited.out, "3 of 10 matching sockets listed (--limit)")) << limited;

  // close --loop: the connection is not found on the other loop, and is closed on its own.
  const admin::SocketInfo* connection = nullptr;
  for (const admin::SocketInfo& socket : every.sockets()) {
    if (socket.kind() == "connection") connection = &socket;
  }
  ASSERT_NE(connection, nullptr) << all;
  const std::string fd = std::to_string(connection->fd());
  CtlRun elsewhere = Ctl({"close", fd, "--loop=" + std::to_string(1 - connection->loop())});
  EXPECT_EQ(elsewhere.code, 1) << elsewhere;
  EXPECT_TRUE(Contains(elsewhere.err, "NOT_FOUND")) << elsewhere;
  CtlRun closed = Ctl({"close", fd, "--loop=" + std::to_string(connection->loop()), "--json"});
  EXPECT_EQ(closed.code, 0) << closed;

  CtlRun inject = Ctl({"inject", "nonblocking-sleep", "--duration=10ms", "--count=3", "--interval=250ms", "--json"});
  ASSERT_EQ(inject.code, 0) << inject;
  admin::Injection injection = FromJson<admin::Injection>(Lines(inject.out).at(0));
  EXPECT_EQ(injection.interval_ms(), 250u) << inject;
  EXPECT_EQ(injection.count(), 3u) << inject;

  CtlRun threshold = Ctl({"stall-threshold", "50ms", "--loop=1", "--json"});
  ASSERT_EQ(threshold.code, 0) << threshold;
  CtlRun thresholds = Ctl({"stall-threshold", "--json"});
  ASSERT_EQ(thresholds.code, 0) << thresholds;
  admin::StallThresholds both = FromJson<admin::StallThresholds>(Lines(thresholds.out).at(0));
  ASSERT_EQ(both.loops_size(), 2) << thresholds;
  for (const admin::StallThresholds::LoopThreshold& t : both.loops()) {
    EXPECT_DOUBLE_EQ(t.threshold_ms(), t.loop() == 1 ? 50.0 : 100.0) << thresholds;
  }
  // The loops' thresholds differ now: the total has no one value (it was the last loop's), and
  // is 0 in JSON and text alike, as admin.proto has it; the text says why. (The text showed "-"
  // while the JSON said 0, and a fleet's total null.)
  CtlRun json = Ctl({"stats", "--json"});
  ASSERT_EQ(json.code, 0) << json;
  admin::Stats stats = FromJson<admin::Stats>(Lines(json.out).at(0));
  EXPECT_DOUBLE_EQ(stats.loops(1).stall_threshold_ms(), 50.0) << json;
  EXPECT_DOUBLE_EQ(stats.total().stall_threshold_ms(), 0.0) << json;
  EXPECT_TRUE(Contains(json.out, "\"stall_threshold_ms\":0,")) << json;
  CtlRun text = Ctl({"stats"});
  ASSERT_EQ(text.code, 0) << text;
  bool row_seen = false;
  for (const std::string& line : Lines(text.out)) {
    if (line.rfind("stall_threshold_ms ", 0) != 0) continue;
    row_seen = true;
    std::istringstream cells(line);
    std::vector<std::string> words{std::istream_iterator<std::string>(cells), std::istream_iterator<std::string>()};
    EXPECT_EQ(words, (std::vector<std::string>{"stall_threshold_ms", "100", "50", "0"})) << line;  // loops, total
  }
  EXPECT_TRUE(row_seen) << text;
  EXPECT_TRUE(Contains(text.out,
                       "\n0 in stall_threshold_ms: not the same in every loop (a setting's total is the value "
                       "all share, else 0)\n"))
      << text;
  // With one value again, the total has it and nothing is said.
  ASSERT_EQ(Ctl({"stall-threshold", "100ms", "--loop=1"}).code, 0);
  CtlRun shared = Ctl({"stats"});
  ASSERT_EQ(shared.code, 0) << shared;
  EXPECT_FALSE(Contains(shared.out, "not the same in every loop")) << shared;
}

TEST_F(BrrrctlTest, DrainMakesTheServerExitZero) {
  Start({"--drain_timeout=30s"});
  testing::BlockingClient client(port_, false, 10000);  // keeps the drain going until it leaves
  ASSERT_TRUE(client.send_all("x"));
  ASSERT_EQ(client.recv_exact(1), "x");
  CtlRun drain = Ctl({"drain", "--json"});
  ASSERT_EQ(drain.code, 0) << drain;
  admin::DrainResponse response = FromJson<admin::DrainResponse>(Lines(drain.out).at(0));
  EXPECT_EQ(response.connections_open(), 1u);
  EXPECT_FALSE(response.already_draining());

  // Draining: health says NOT_SERVING, and brrrctl exits 5.
  CtlRun health = Ctl({"health"});
  EXPECT_EQ(health.code, 5) << health;
  EXPECT_EQ(health.out, "NOT_SERVING\n");
  // The throttles say it accepts nothing, and accepting cannot resume (exit 1, the server's
  // refusal).
  CtlRun throttle = Ctl({"throttle"});
  ASSERT_EQ(throttle.code, 0) << throttle;
  EXPECT_NE(throttle.out.find("no (draining)"), std::string::npos) << throttle;
  CtlRun resume = Ctl({"throttle", "--resume"});
  EXPECT_EQ(resume.code, 1) << resume;
  EXPECT_NE(resume.err.find("a drain cannot be taken back"), std::string::npos) << resume;

  client.close();
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "the server did not exit after the drain";
  EXPECT_EQ(*code, 0) << server_->err();
}

// The text answer of drain says whether this call started the drain or found one going on: the
// first "draining: ...", the second "already draining: ..." (exit 0 both), each with the
// connections open.
TEST_F(BrrrctlTest, DrainSaysInTextWhetherItStartedTheDrain) {
  Start({"--drain_timeout=30s"});
  testing::BlockingClient client(port_, false, 10000);  // keeps the drain going until it leaves
  ASSERT_TRUE(client.send_all("x"));
  ASSERT_EQ(client.recv_exact(1), "x");
  CtlRun first = Ctl({"drain"});
  ASSERT_EQ(first.code, 0) << first;
  EXPECT_EQ(first.out.rfind("draining: 1 connections open, ", 0), 0u) << first;
  CtlRun second = Ctl({"drain"});
  ASSERT_EQ(second.code, 0) << second;
  EXPECT_EQ(second.out, "already draining: 1 connections open\n") << second;

  client.close();
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "the server did not exit after the drain";
  EXPECT_EQ(*code, 0) << server_->err();
}

TEST_F(BrrrctlTest, TokenIsSentFromTokenFile) {
  const std::string token_path = WriteFile("admin_token", "  s3cret-token \n");
  const std::string wrong_path = WriteFile("wrong_token", "not-it\n");
  admin_port_ = testing::PickFreePort();
  server_ = std::make_unique<testing::Process>(
      testing::Runfile("server/brrr-echo/brrr-echo"),
      std::vector<std::string>{"--port=0", "--admin_port=" + std::to_string(admin_port_),
                               "--admin_token_file=" + token_path});
  auto give_up = std::chrono::steady_clock::now() + seconds(30);
  while (!server_->WaitForOutput("admin plane on ", milliseconds(50))) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "brrr-echo did not start: " << server_->err();
    if (std::optional<int> code = server_->Wait(milliseconds(0)); code.has_value()) {
      std::string err = server_->err();
      server_.reset();
      FAIL() << "brrr-echo exited " << *code << ": " << err;
    }
  }
  CtlRun none = Ctl({"info"});
  EXPECT_EQ(none.code, 4) << none;
  EXPECT_TRUE(Contains(none.err, "brrrctl: UNAUTHENTICATED")) << none;
  EXPECT_TRUE(Contains(none.err, "--token_file")) << none;
  CtlRun wrong = Ctl({"--token_file=" + wrong_path, "info"});
  EXPECT_EQ(wrong.code, 4) << wrong;
  CtlRun right = Ctl({"--token_file=" + token_path, "info", "--json"});
  EXPECT_EQ(right.code, 0) << right;
  EXPECT_EQ(FromJson<admin::ServerInfo>(Lines(right.out).at(0)).pid(), static_cast<uint32_t>(server_->pid()));
  CtlRun health = Ctl({"--token_file=" + token_path, "health"});
  EXPECT_EQ(health.code, 0) << health;
}

}  // namespace
}  // namespace brrr
