// brrrctl's reading commands against a real brrr-echo, both as child processes: what it prints
// (JSON that protobuf parses back into the admin API's messages, so the field names are the
// proto's), the figures it reports (the same as a direct gRPC call), streams that end cleanly
// on a signal, and the stalls it shows. (Commands that change the server: brrrctl_actions_test;
// usage and exit codes without a server: brrrctl_usage_test.)
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/control/brrrctl_run.h"
#include "tests/testing/net.h"
#include "tests/testing/pipe.h"
#include "tests/testing/process.h"
#include "tests/testing/side_ports.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
namespace health = grpc::health::v1;
using std::chrono::seconds;
using testing::BrrrctlTest;
using testing::Contains;
using testing::CtlRun;
using testing::FromJson;
using testing::Lines;

TEST_F(BrrrctlTest, InfoJsonIsTheServerInfoMessage) {
  Start({"--loops=2", "--backend=epoll"});
  // Flags before or after the command.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"info", "--json"}, std::vector<std::string>{"--json", "info"}}) {
    CtlRun r = Ctl(args);
    ASSERT_EQ(r.code, 0) << r;
    std::vector<std::string> lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 1u) << r;
    admin::ServerInfo info = FromJson<admin::ServerInfo>(lines[0]);
    EXPECT_EQ(info.backend(), "epoll");
    EXPECT_EQ(info.loops(), 2u);
    EXPECT_EQ(static_cast<pid_t>(info.pid()), server_->pid());
    ASSERT_EQ(info.listening_addresses_size(), 1);
    EXPECT_EQ(info.listening_addresses(0), "127.0.0.1:" + std::to_string(port_));
    EXPECT_FALSE(info.version().empty());
    // Numbers are JSON numbers, and every field of the message is there.
    EXPECT_TRUE(Contains(lines[0], "\"loops\":2,")) << lines[0];
    for (int i = 0; i < admin::ServerInfo::descriptor()->field_count(); ++i) {
      EXPECT_TRUE(Contains(lines[0], "\"" + admin::ServerInfo::descriptor()->field(i)->name() + "\":")) << lines[0];
    }
  }
  CtlRun text = Ctl({"info"});
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_TRUE(Contains(text.out, "backend    epoll")) << text;
  EXPECT_TRUE(Contains(text.out, "loops      2")) << text;
}

TEST_F(BrrrctlTest, StatsJsonCarriesTheFiguresOfGetStats) {
  Start({"--loops=2"});
  {
    testing::BlockingClient client(port_);
    std::string payload = testing::RandomBytes(100000, 7);
    ASSERT_TRUE(client.send_all(payload));
    ASSERT_EQ(client.recv_exact(payload.size()), payload);
  }
  // Once the connection is gone, the traffic figures stay put.
  admin::Stats direct = StatsWhen([](const admin::Stats& s) { return s.total().connections_active() == 0; });
  ASSERT_EQ(direct.total().connections_active(), 0u);
  ASSERT_EQ(direct.total().bytes_in(), 100000u);

  CtlRun r = Ctl({"stats", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r;
  admin::Stats cli = FromJson<admin::Stats>(lines[0]);
  ASSERT_EQ(cli.loops_size(), 2);
  EXPECT_EQ(cli.total().connections_accepted(), direct.total().connections_accepted());
  EXPECT_EQ(cli.total().connections_accepted(), 1u);
  EXPECT_EQ(cli.total().connections_active(), 0u);
  EXPECT_EQ(cli.total().bytes_in(), direct.total().bytes_in());
  EXPECT_EQ(cli.total().bytes_out(), direct.total().bytes_out());
  EXPECT_EQ(cli.total().messages_in(), direct.total().messages_in());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cli.loops(i).loop(), static_cast<uint32_t>(i));
    EXPECT_EQ(cli.loops(i).bytes_in(), direct.loops(i).bytes_in()) << i;
    EXPECT_EQ(cli.loops(i).connections_accepted(), direct.loops(i).connections_accepted()) << i;
  }
  EXPECT_EQ(cli.total().stall_threshold_ms(), direct.total().stall_threshold_ms());
  // 64-bit figures as numbers, zeros printed.
  EXPECT_TRUE(Contains(lines[0], "\"bytes_in\":100000,")) << lines[0];
  EXPECT_TRUE(Contains(lines[0], "\"connections_refused\":0,")) << lines[0];

  CtlRun one_loop = Ctl({"stats", "--json", "--loop=1"});
  ASSERT_EQ(one_loop.code, 0) << one_loop;
  admin::Stats only = FromJson<admin::Stats>(Lines(one_loop.out).at(0));
  ASSERT_EQ(only.loops_size(), 1);
  EXPECT_EQ(only.loops(0).loop(), 1u);
  EXPECT_EQ(only.total().bytes_in(), 100000u);

  // A loop the server does not run: the same error, "CODE: message" as every error the server
  // answers with, whether brrrctl finds it in the figures (stats, watch) or the server does
  // (sockets).
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"stats", "--loop=2"}, std::vector<std::string>{"stats", "--loop=0,2", "--json"},
        std::vector<std::string>{"watch", "--loop=2", "--count=1"}, std::vector<std::string>{"sockets", "--loop=2"}}) {
    CtlRun no_loop = Ctl(args);
    EXPECT_EQ(no_loop.code, 1) << no_loop;
    EXPECT_EQ(no_loop.err, "brrrctl: NOT_FOUND: no loop 2: the server runs loops 0 to 1\n") << no_loop;
    EXPECT_EQ(no_loop.out, "") << no_loop;
  }

  CtlRun text = Ctl({"stats"});
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_TRUE(Contains(text.out, "LOOP 0")) << text;
  EXPECT_TRUE(Contains(text.out, "TOTAL")) << text;
  EXPECT_TRUE(Contains(text.out, "100000")) << text;
}

TEST_F(BrrrctlTest, HealthExitsZeroWhenServing) {
  Start();
  CtlRun r = Ctl({"health"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "SERVING\n");
  CtlRun json = Ctl({"health", "--json"});
  ASSERT_EQ(json.code, 0) << json;
  EXPECT_EQ(FromJson<health::HealthCheckResponse>(Lines(json.out).at(0)).status(),
            health::HealthCheckResponse::SERVING);
  EXPECT_EQ(json.out, "{\"status\":\"SERVING\"}\n");
  // An error the server answers with: exit 1, the code and the message on stderr.
  CtlRun unknown = Ctl({"health", "--service=no.such.Service"});
  EXPECT_EQ(unknown.code, 1) << unknown;
  EXPECT_TRUE(Contains(unknown.err, "brrrctl: NOT_FOUND: ")) << unknown;
  EXPECT_TRUE(Contains(unknown.err, "no.such.Service")) << unknown;
}

TEST_F(BrrrctlTest, StallThresholdsShowWithoutAnArgument) {
  Start({"--loops=2", "--stall_threshold=75ms"});
  CtlRun r = Ctl({"stall-threshold", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  admin::StallThresholds thresholds = FromJson<admin::StallThresholds>(Lines(r.out).at(0));
  ASSERT_EQ(thresholds.loops_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(thresholds.loops(i).loop(), static_cast<uint32_t>(i));
    EXPECT_EQ(thresholds.loops(i).threshold_ms(), 75.0);
  }
}

TEST_F(BrrrctlTest, WatchPrintsOneLinePerSample) {
  Start();
  CtlRun r = Ctl({"watch", "--count=3", "--interval=50ms", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r;
  double previous_uptime = -1;
  for (const std::string& line : lines) {
    admin::Stats stats = FromJson<admin::Stats>(line);
    EXPECT_EQ(stats.loops_size(), 1);
    EXPECT_GT(stats.uptime_seconds(), previous_uptime);
    previous_uptime = stats.uptime_seconds();
  }
  CtlRun text = Ctl({"watch", "--count=2", "--interval=50ms"});
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_EQ(Lines(text.out).size(), 3u) << text;  // the header and two samples
  EXPECT_TRUE(Contains(text.out, "UPTIME")) << text;
}

// A watch on a server that sends nothing (SIGSTOP) says so on stderr after two intervals, at
// least 2 s, and again when samples come back; stdout carries the samples only.
TEST_F(BrrrctlTest, AWatchSaysWhenItsServerFallsSilentAndWhenItIsBack) {
  Start();
  testing::Process watch(testing::Runfile("control/brrrctl/brrrctl"),
                         {"--target=" + Address(), "watch", "--interval=100ms"});
  ASSERT_TRUE(watch.WaitForOutput("UPTIME")) << watch.err();
  ASSERT_TRUE(watch.WaitForOutput(" all ")) << watch.err();
  testing::Stopped frozen(*server_);
  EXPECT_TRUE(watch.WaitForError("brrrctl: watch: no sample from " + Address() + " for 2s (")) << watch.err();
  frozen.Resume();
  EXPECT_TRUE(watch.WaitForError("brrrctl: watch: samples from " + Address() + " again, after ")) << watch.err();
  watch.Signal(SIGTERM);
  EXPECT_EQ(watch.Wait(seconds(10)), 0) << watch.err();
  EXPECT_FALSE(Contains(watch.out(), "no sample")) << watch.out();
}

TEST_F(BrrrctlTest, StreamsEndCleanlyOnSigintAndSigterm) {
  Start();
  for (int sig : {SIGINT, SIGTERM}) {
    testing::Process watch(testing::Runfile("control/brrrctl/brrrctl"),
                           {"--target=" + Address(), "watch", "--interval=50ms", "--json"});
    // A line has come, so the stream is open.
    ASSERT_TRUE(watch.WaitForOutput("\"uptime_seconds\"")) << watch.err();
    watch.Signal(sig);
    std::optional<int> code = watch.Wait(seconds(10));
    ASSERT_TRUE(code.has_value()) << strsignal(sig);
    EXPECT_EQ(*code, 0) << strsignal(sig) << ": " << watch.err();
    for (const std::string& line : Lines(watch.out())) FromJson<admin::Stats>(line);
  }
  // A stray SIGUSR1 (brrrctl's signal thread wakes on it to end) is ignored: before, it ended
  // that thread and left SIGINT blocked in every thread, so Ctrl-C no longer stopped a watch.
  testing::Process watch(testing::Runfile("control/brrrctl/brrrctl"),
                         {"--target=" + Address(), "watch", "--interval=50ms", "--json"});
  ASSERT_TRUE(watch.WaitForOutput("\"uptime_seconds\"")) << watch.err();
  watch.Signal(SIGUSR1);
  ASSERT_TRUE(watch.WaitUntilTaken(SIGUSR1)) << "the SIGUSR1 stayed pending";
  EXPECT_FALSE(watch.Wait(std::chrono::milliseconds(300)).has_value()) << "SIGUSR1 ended it: " << watch.err();
  watch.Signal(SIGINT);
  std::optional<int> code = watch.Wait(seconds(10));
  ASSERT_TRUE(code.has_value()) << "SIGINT after a SIGUSR1 did not end the watch";
  EXPECT_EQ(*code, 0) << watch.err();
}

// A stream that a draining server ends says it reached the server: exit 1 and "the stream ...
// ended", not exit 3 and "cannot reach the admin plane".
TEST_F(BrrrctlTest, AStreamEndedByTheServersShutdownSaysSo) {
  Start();
  testing::Process watch(testing::Runfile("control/brrrctl/brrrctl"),
                         {"--target=" + Address(), "watch", "--interval=50ms"});
  ASSERT_TRUE(watch.WaitForOutput("UPTIME")) << watch.err();
  server_->Signal(SIGTERM);  // no connections: it drains and exits at once
  std::optional<int> code = watch.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << watch.err();
  EXPECT_EQ(*code, 1) << watch.err();
  EXPECT_TRUE(Contains(watch.err(), "brrrctl: the stream from " + Address() + " ended: UNAVAILABLE: ")) << watch.err();
  EXPECT_FALSE(Contains(watch.err(), "cannot reach")) << watch.err();
  ASSERT_TRUE(server_->Wait(seconds(30)).has_value());
}

// A watch whose output nobody takes (`brrrctl watch | less`, scrolled back) stops reading its
// stream once the pipe is full; the server ends that stream after --admin_unread_timeout and its
// call slot is free again. brrrctl's channel let gRPC grow its receive window to megabytes
// (bandwidth probing), so the server's writes never waited: the watch held its slot for as long
// as the pager stayed open (still holding it after 120 s, measured; now 10 to 20 s).
TEST_F(BrrrctlTest, AWatchWhoseOutputNobodyTakesIsEndedByTheServer) {
  Start({"--loops=4", "--admin_max_calls=1", "--admin_unread_timeout=1s"});
  testing::TestPipe output;
  testing::ProcessOptions into_the_pipe;
  into_the_pipe.output_fd = output.write_end();
  testing::Process watch(testing::Runfile("control/brrrctl/brrrctl"),
                         {"--target=" + Address(), "watch", "--interval=50ms", "--json"}, into_the_pipe);
  // Its stream holds the one call slot.
  admin::Stats stats;
  grpc::Status refused;
  for (int i = 0; i < 300; ++i) {  // 30 s at most
    refused = stub_->GetStats(Context().get(), admin::GetStatsRequest(), &stats);
    if (refused.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  // Nobody reads the pipe: once it and the stream's window are full, the server ends the stream.
  ASSERT_TRUE(server_->WaitForError("admin: ended WatchStats from 127.0.0.1:", seconds(90))) << server_->err();
  // The line comes as the stream is cancelled; its slot is free once its handler has returned,
  // a moment later (under ASan a call made at once still met it): bounded, 10 s.
  grpc::Status in;
  for (int i = 0; i < 100; ++i) {
    in = stub_->GetStats(Context().get(), admin::GetStatsRequest(), &stats);
    if (in.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(in.ok()) << in.error_message();
  // What it had been sent is still printed once its output is read, then that the stream ended.
  std::string printed;
  std::optional<int> code;
  for (int i = 0; i < 300 && !code.has_value(); ++i) {  // 30 s at most
    printed += output.ReadAvailable();
    code = watch.Wait(std::chrono::milliseconds(100));
  }
  printed += output.ReadAvailable();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << printed.substr(printed.size() - std::min<size_t>(printed.size(), 2000));
  EXPECT_GT(Lines(printed).size(), 10u);
  EXPECT_TRUE(Contains(printed, "brrrctl: the stream from " + Address() + " ended: CANCELLED"))
      << printed.substr(printed.size() - std::min<size_t>(printed.size(), 2000));
}

// The same when the stream ends before it has sent anything (stalls, on a server with no
// stall): the stream was open on a connection, so the server was reached. Before, brrrctl
// counted a stream as reached only once a message had come, and said exit 3, "cannot reach".
// With --admin_max_calls=1, the stream holds the only call slot once it is open: a direct call
// is refused from then on, and that is when the server is stopped.
TEST_F(BrrrctlTest, AStreamEndedBeforeItsFirstMessageSaysSo) {
  Start({"--admin_max_calls=1"});
  auto give_up = std::chrono::steady_clock::now() + seconds(30);
  std::unique_ptr<testing::Process> stalls;
  for (;;) {
    // A stream whose start met one of the calls below in the only slot was refused, and that
    // brrrctl has ended: start another.
    if (stalls == nullptr || stalls->Wait(std::chrono::milliseconds(0)).has_value()) {
      stalls = std::make_unique<testing::Process>(testing::Runfile("control/brrrctl/brrrctl"),
                                                  std::vector<std::string>{"--target=" + Address(), "stalls"});
    }
    admin::Stats stats;
    grpc::Status s = stub_->GetStats(Context().get(), admin::GetStatsRequest(), &stats);
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the stream never opened: " << stalls->err();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server_->Signal(SIGTERM);
  std::optional<int> code = stalls->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << stalls->err();
  EXPECT_EQ(*code, 1) << stalls->err();
  EXPECT_TRUE(Contains(stalls->err(), "brrrctl: the stream from " + Address() + " ended: UNAVAILABLE: "))
      << stalls->err();
  EXPECT_FALSE(Contains(stalls->err(), "cannot reach")) << stalls->err();
  EXPECT_EQ(stalls->out(), "");
  ASSERT_TRUE(server_->Wait(seconds(30)).has_value());
}

TEST_F(BrrrctlTest, StallsAreReportedOverTheThreshold) {
  Start({"--loops=2"});

  CtlRun set = Ctl({"stall-threshold", "50ms", "--json"});
  ASSERT_EQ(set.code, 0) << set;
  admin::StallThresholds after = FromJson<admin::StallThresholds>(Lines(set.out).at(0));
  ASSERT_EQ(after.loops_size(), 2);
  for (const auto& t : after.loops()) EXPECT_EQ(t.threshold_ms(), 50.0);
  CtlRun show = Ctl({"stall-threshold", "--json", "--loop=1"});
  ASSERT_EQ(show.code, 0) << show;
  admin::StallThresholds shown = FromJson<admin::StallThresholds>(Lines(show.out).at(0));
  ASSERT_EQ(shown.loops_size(), 1);
  EXPECT_EQ(shown.loops(0).threshold_ms(), 50.0);

  CtlRun inject = Ctl({"inject", "blocking-sleep", "--duration=100ms", "--loop=0"});
  ASSERT_EQ(inject.code, 0) << inject;
  // Once the injection has run and the loop has moved on, its stall is among the recent ones
  // the stream sends first. On a loaded machine another task may have stalled past 50 ms too,
  // so all the recent ones are asked for and the injected one is looked for among them.
  admin::Stats stalled = StatsWhen([](const admin::Stats& s) {
    return s.loops(0).stalls() >= 1 && s.injections_size() == 0 && s.loops(0).current_task() != "inject:blocking_sleep";
  });
  uint64_t count = stalled.loops(0).stalls();
  ASSERT_GE(count, 1u);
  CtlRun stalls = Ctl({"stalls", "--include_recent", "--loop=0", "--count=" + std::to_string(count), "--json"});
  ASSERT_EQ(stalls.code, 0) << stalls;
  std::vector<std::string> lines = Lines(stalls.out);
  ASSERT_EQ(lines.size(), count) << stalls;
  bool found = false;
  bool split = false;
  for (const std::string& line : lines) {
    admin::Stall stall = FromJson<admin::Stall>(line);
    EXPECT_EQ(stall.loop(), 0u);
    EXPECT_GE(stall.duration_ms(), 50.0) << "only tasks past the threshold are stalls";
    if (stall.task() == "inject:blocking_sleep") {
      found = true;
      EXPECT_GE(stall.duration_ms(), 100.0) << "the injection's own length: a lower bound";
      split = stall.has_since_first_sample();
    }
  }
  EXPECT_TRUE(found) << stalls;
  // As text, a stall the watchdog sampled says how the loop thread spent it since then.
  if (split) {
    CtlRun text = Ctl({"stalls", "--include_recent", "--loop=0", "--count=" + std::to_string(count)});
    ASSERT_EQ(text.code, 0) << text;
    std::vector<std::string> rows = Lines(text.out);
    auto row = std::find_if(rows.begin(), rows.end(),
                            [](const std::string& r) { return Contains(r, "inject:blocking_sleep"); });
    ASSERT_NE(row, rows.end()) << text;
    ASSERT_NE(row + 1, rows.end()) << text;
    EXPECT_TRUE(Contains(row[1], "      since the first sample ")) << text;
    EXPECT_TRUE(Contains(row[1], " on a core, ")) << text;
    EXPECT_TRUE(Contains(row[1], " asleep or blocked")) << text;
  }
}

// While a loop is blocked, `stalls --in_progress` shows the stall as it lasts, with the
// stack the loop's watchdog sampled: the injected run's own function is in it. The block
// would last 30 s; it is cancelled once the command has shown it.
TEST_F(BrrrctlTest, StallsShowWhereALoopIsStuckWhileItIs) {
  Start({"--admin_max_block=60s", "--stall_threshold=50ms"});
  CtlRun inject = Ctl({"inject", "blocking-spin", "--duration=30s", "--json"});
  ASSERT_EQ(inject.code, 0) << inject;
  admin::Injection injection = FromJson<admin::Injection>(Lines(inject.out).at(0));
  CtlRun stalls = Ctl({"stalls", "--in_progress", "--count=1", "--frames=40"});
  CtlRun cancel = Ctl({"cancel", std::to_string(injection.id())});
  EXPECT_EQ(cancel.code, 0) << cancel;
  ASSERT_EQ(stalls.code, 0) << stalls;
  std::vector<std::string> lines = Lines(stalls.out);
  ASSERT_GE(lines.size(), 4u) << stalls;
  EXPECT_TRUE(Contains(lines[0], "DURATION_MS  TASK")) << stalls;
  EXPECT_TRUE(Contains(lines[1], "inject:blocking_spin (still running)")) << stalls;
  // A sample after the stall's first (the stream may start late) says how the thread spent the
  // time since that one, before the stack.
  const size_t stack = Contains(lines[2], "      since the first sample ") ? 3 : 2;
  ASSERT_GE(lines.size(), stack + 2) << stalls;
  EXPECT_TRUE(Contains(lines[stack], "stack at ")) << stalls;
  EXPECT_TRUE(Contains(lines[stack + 1], "#0 ")) << stalls;
  EXPECT_TRUE(Contains(stalls.out, "InjectedBlockingSpin")) << stalls;
}

// A write to stdout that fails (a full disk: /dev/full) ends brrrctl with exit 6 and says why
// on stderr; a stream ends at the first message it could not write. Before, brrrctl exited 0,
// and a stream went on printing nowhere. A closed pipe still ends it by SIGPIPE (141 in a
// shell), as it does any filter.
TEST_F(BrrrctlTest, AFailedWriteToStdoutIsAnError) {
  Start();
  const std::string ctl = testing::Runfile("control/brrrctl/brrrctl");
  const std::string target = "--target=" + Address();
  // Two targets: this server, and one that cannot be reached (a target is given once at most).
  const std::string fleet = target + ",127.0.0.1:" + std::to_string(testing::PickFreePort());
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {target, "stats"},
           {target, "stats", "--json"},
           {target, "watch", "--interval=50ms", "--json"},
           {fleet, "watch", "--interval=50ms"},
           {fleet, "stats"},
           {"help"},
       }) {
    testing::Process run("/bin/sh", testing::StdoutOnAFullDisk(ctl, args));
    std::optional<int> code = run.Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << args.back() << ": still running, printing nowhere";
    EXPECT_EQ(*code, 6) << args.back() << ": " << run.err();
    EXPECT_TRUE(Contains(run.err(), "brrrctl: cannot write to standard output: No space left on device"))
        << args.back() << ": " << run.err();
  }
  testing::Process piped("/bin/bash", {"-c", "\"$0\" \"$@\" | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}", ctl, target,
                                       "watch", "--interval=50ms", "--json"});
  EXPECT_EQ(piped.Wait(seconds(30)), 128 + SIGPIPE) << piped.err();
}

// A target that is one of brrr-echo's other ports, the usual slip: exit 3 as for any target that
// is not an admin plane, and the message says what answered there (gRPC's own words, "Trying to
// connect an http1.x server" and "Failed parsing HTTP/2", named neither) and where the admin
// plane is. Unary calls and streams alike.
TEST_F(BrrrctlTest, ATargetThatIsAnotherPortOfBrrrEchoIsNamedForWhatItIs) {
  testing::SidePorts ports;
  server_ = testing::StartOnFreeSidePorts(
      testing::Runfile("server/brrr-echo/brrr-echo"),
      [](const testing::SidePorts& p) {
        return std::vector<std::string>{"--port=0", "--admin_port=" + std::to_string(p.admin),
                                        "--metrics_port=" + std::to_string(p.metrics)};
      },
      &ports);
  port_ = server_->ListeningPort();
  ASSERT_NE(port_, 0) << server_->out() << server_->err();
  ASSERT_TRUE(server_->WaitForOutput("metrics on 127.0.0.1:" + std::to_string(ports.metrics))) << server_->out();
  struct Case {
    uint16_t port;
    std::string what;
  };
  for (const Case& c : {Case{ports.metrics,
                             "(an HTTP/1.x server answers there, not gRPC: brrr-echo's --metrics_port? "
                             "The admin plane is its --admin_port)"},
                        Case{port_,
                             "(what answers there does not speak gRPC: brrr-echo's echo --port, which sends "
                             "back what it is sent? The admin plane is its --admin_port)"}}) {
    const std::string target = "127.0.0.1:" + std::to_string(c.port);
    for (const std::vector<std::string>& command :
         {std::vector<std::string>{"info"}, std::vector<std::string>{"watch", "--count=1"}}) {
      std::vector<std::string> args = {"--target=" + target, "--timeout=20s"};
      args.insert(args.end(), command.begin(), command.end());
      CtlRun r = testing::Brrrctl(args);
      EXPECT_EQ(r.code, 3) << r;
      EXPECT_TRUE(Contains(r.err, "brrrctl: cannot reach the admin plane at " + target)) << r;
      EXPECT_TRUE(Contains(r.err, c.what)) << r;
      EXPECT_EQ(r.out, "") << r;
    }
  }
  // The admin plane itself answers.
  admin_port_ = ports.admin;
  EXPECT_EQ(Ctl({"health"}).code, 0);
}

}  // namespace
}  // namespace brrr
