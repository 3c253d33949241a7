// The admin plane's injected tasks on a real brrr-echo over a real gRPC channel: what a
// blocking task does to echoes, stall counters and the figures read during it, what a
// non-blocking sleep does not, cancelling, WatchStalls' stacks of a stuck loop, a stall
// reported into a pipe nobody reads, and repeated runs on every loop.
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/admin_probes.h"
#include "tests/testing/net.h"
#include "tests/testing/pipe.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;
using testing::EchoRoundTripMs;
using testing::MillisSince;

using AdminActionsTest = testing::AdminFixture;

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
// (Under a sanitizer on a loaded machine a task the loop ran before the block may be a stall of
// its own, so the figures are taken against what the first call during the block shows, and the
// block lasts past the longest task before it.)
TEST_F(InjectionTest, StatsAnswerDuringABlockAndShowTheStallInProgress) {
  Start({"--admin_max_block=60s", "--stall_threshold=1s"});  // no other task on a loaded machine stalls that long
  admin::Injection injection = Inject(admin::BLOCKING_SPIN, 60000);
  admin::Stats during = StatsWhen([](const admin::Stats& s) {
    return s.loops(0).current_task() == "inject:blocking_spin" && s.loops(0).current_task_running_ms() > 0;
  });
  double first = during.loops(0).current_task_running_ms();
  uint64_t stalls_before = during.total().stalls();
  double longest_before = during.loops(0).longest_task_ms();
  // More calls while the loop is still blocked: they answer, and the stall grows past the
  // threshold while it lasts.
  SteadyClock::time_point start = SteadyClock::now();
  admin::Stats later = StatsWhen([&](const admin::Stats& s) {
    return s.loops(0).current_task_running_ms() > std::max({first, s.loops(0).stall_threshold_ms(), longest_before});
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
  admin::Stats after = StatsWhen(
      [&](const admin::Stats& s) { return s.total().stalls() > stalls_before && s.loops(0).current_task().empty(); });
  EXPECT_EQ(after.total().stalls(), stalls_before + 1);
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
  Start({"--admin_max_block=60s", "--stall_threshold=1s"});  // no other task on a loaded machine stalls that long
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
    auto context = Context(std::chrono::seconds(60));
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
    // How the loop thread spent it since the first sample, the parts adding up to the span
    // (the thread's times come from the kernel's schedstat).
    if (struct stat info{}; ::stat("/proc/thread-self/schedstat", &info) == 0) {
      ASSERT_TRUE(stall.has_since_first_sample()) << stall.DebugString();
      const admin::StallTimeSplit& split = stall.since_first_sample();
      EXPECT_NEAR(split.span_ms(), stall.duration_ms() - stall.samples(0).running_ms(), 1e-3);
      EXPECT_NEAR(split.on_core_ms() + split.waiting_for_core_ms() + split.asleep_or_blocked_ms(), split.span_ms(),
                  1e-3);
    }
    context->TryCancel();
    stream->Finish();
  }
}

// What the server prints goes to a pipe nobody reads (a supervisor that stopped reading it,
// `brrr-echo | less` scrolled back): the loop that reports a stall there goes on serving, the
// report comes out once the pipe is read, and with the pipe full again SIGTERM still drains
// the server and it exits. Before, the loop waited in the report's write() for as long as
// nobody read: the stall is counted before it is printed, so the echo below found it stuck.
TEST_F(InjectionTest, AStallReportToAPipeNobodyReadsHoldsUpNeitherTheLoopNorTheDrain) {
  testing::TestPipe output;
  output.Fill();
  testing::ProcessOptions options;
  options.output_fd = output.write_end();
  Start({"--stall_threshold=50ms"}, options);
  const uint64_t stalls_before = Stats().total().stalls();
  Inject(admin::BLOCKING_SPIN, 300);
  StatsWhen([&](const admin::Stats& s) {
    return s.total().stalls() > stalls_before && s.loops(0).current_task() != "inject:blocking_spin";
  });
  {
    testing::BlockingClient client(port_);
    ASSERT_TRUE(client.send_all("still serving"));
    EXPECT_EQ(client.recv_exact(13), "still serving") << "the loop is stuck writing to the full pipe";
  }

  // Read: what it printed meanwhile comes out, in order.
  const std::string report = "brrr: loop 0: executing <inject:blocking_spin> took";
  std::string printed;
  for (int i = 0; i < 3000 && printed.find(report) == std::string::npos; ++i) {
    printed += output.ReadAvailable();
    std::this_thread::sleep_for(milliseconds(10));
  }
  const size_t listening = printed.find("brrr-echo: listening on");
  const size_t stall = printed.find(report);
  ASSERT_NE(listening, std::string::npos) << printed;
  ASSERT_NE(stall, std::string::npos) << printed;
  EXPECT_LT(listening, stall) << printed;

  // Full again: the drain is not held up by its notices, and the exit waits for them only a
  // moment (LineOutput::kExitPatience).
  output.ReadAvailable();
  output.Fill();
  server_->Signal(SIGTERM);
  EXPECT_EQ(server_->Wait(std::chrono::seconds(30)), std::optional<int>(0))
      << "with its output full the server did not drain and exit";
}

// gRPC's own log lines go through the same queue. Here every gRPC API call is traced
// (GRPC_VERBOSITY=DEBUG, GRPC_TRACE=api: some KB per admin call) with the output on a pipe
// nobody reads, and every admin call still answers. Before, gRPC's threads wrote those lines to
// stderr themselves, waited on the full pipe, and the admin plane stopped answering.
TEST_F(InjectionTest, GrpcsOwnLogLinesToAPipeNobodyReadsHoldUpNoCall) {
  testing::TestPipe output;
  testing::ProcessOptions options;
  options.output_fd = output.write_end();
  options.env = {"GRPC_VERBOSITY=DEBUG", "GRPC_TRACE=api"};
  output.Fill();
  Start({}, options);
  for (int i = 0; i < 30; ++i) {
    admin::Stats stats;
    grpc::Status status = stub_->GetStats(Context().get(), admin::GetStatsRequest(), &stats);
    ASSERT_TRUE(status.ok()) << "call " << i << ": " << status.error_message();
  }
  // Read: gRPC's lines come out, in gRPC's own form.
  std::string printed;
  for (int i = 0; i < 3000 && printed.find("] grpc_call_start_batch(") == std::string::npos; ++i) {
    printed += output.ReadAvailable();
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_NE(printed.find("] grpc_call_start_batch("), std::string::npos) << printed.substr(0, 2000);
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

// The total's injections_running is the sum of the loops': a sleep injected on both of two
// loops is two runs in progress in the total, as in GetStats' other totals.
TEST_F(InjectionTest, TheTotalCountsTheRunsInProgressOnEveryLoop) {
  Start({"--loops=2"});
  admin::Injection sleeping = Inject(admin::NONBLOCKING_SLEEP, 60000);  // until cancelled below
  EXPECT_EQ(sleeping.loops_size(), 2);
  admin::Stats during = StatsWhen([](const admin::Stats& s) {
    return s.loops_size() == 2 && s.loops(0).injections_running() == 1 && s.loops(1).injections_running() == 1;
  });
  EXPECT_EQ(during.total().injections_running(), 2u) << during.ShortDebugString();

  admin::CancelInjectionRequest cancel;
  cancel.set_id(sleeping.id());
  admin::Injection cancelled;
  ASSERT_TRUE(stub_->CancelInjection(Context().get(), cancel, &cancelled).ok());
  admin::Stats after = StatsWhen([](const admin::Stats& s) {
    return s.loops(0).injections_running() == 0 && s.loops(1).injections_running() == 0;
  });
  EXPECT_EQ(after.total().injections_running(), 0u);
}

}  // namespace
}  // namespace brrr
