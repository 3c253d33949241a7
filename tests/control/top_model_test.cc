// brrrctl top's model and words (control/brrrctl/top_model.h, top_text.h) on made-up polls:
// rates and utilization between two polls, the minute of history behind the sparklines, sort
// keys, loop filters, a server that restarts or cannot be reached, several targets, where a
// stall was stuck, and the plain lines.
#include "control/brrrctl/top_model.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "control/admin/admin_figures.h"
#include "control/brrrctl/top_text.h"
#include "gtest/gtest.h"
#include "runtime/loop_stats.h"
#include "server/server_stats.h"

namespace brrr::control::top {
namespace {

namespace admin = brrr::admin::v1;

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

struct LoopFigures {
  uint64_t messages = 0;  // in, and as many out
  uint64_t bytes = 0;     // in, and as many out
  double running = 0;
  double waiting = 0;
  double cpu = 0;  // seconds
  uint64_t ready = 0;
  uint64_t stalls = 0;
  double lag_p99_us = 0;
};

// A poll of `target` at `second` seconds of uptime, taken `second` seconds after kStart.
TargetSnapshot Poll(double second, const std::vector<LoopFigures>& loops, const std::string& target = "t:1") {
  TargetSnapshot s;
  s.target = target;
  s.taken = kStart + absl::Seconds(second);
  s.stats.set_uptime_seconds(second);
  admin::LoopStats* total = s.stats.mutable_total();
  for (size_t i = 0; i < loops.size(); ++i) {
    admin::LoopStats* l = s.stats.add_loops();
    l->set_loop(static_cast<uint32_t>(i));
    l->set_messages_in(loops[i].messages);
    l->set_messages_out(loops[i].messages);
    l->set_bytes_in(loops[i].bytes);
    l->set_bytes_out(loops[i].bytes);
    l->set_running_seconds(loops[i].running);
    l->set_waiting_seconds(loops[i].waiting);
    l->set_cpu_seconds(loops[i].cpu);
    l->set_ready_queue_depth(loops[i].ready);
    l->set_stalls(loops[i].stalls);
    l->set_tasks_run(static_cast<uint64_t>(second * 100));
    l->mutable_timer_lateness()->set_p99_us(loops[i].lag_p99_us);
    total->set_messages_in(total->messages_in() + loops[i].messages);
    total->set_messages_out(total->messages_out() + loops[i].messages);
    total->set_bytes_in(total->bytes_in() + loops[i].bytes);
    total->set_bytes_out(total->bytes_out() + loops[i].bytes);
    total->set_running_seconds(total->running_seconds() + loops[i].running);
    total->set_waiting_seconds(total->waiting_seconds() + loops[i].waiting);
    total->set_cpu_seconds(total->cpu_seconds() + loops[i].cpu);
    total->set_tasks_run(total->tasks_run() + l->tasks_run());
  }
  return s;
}

admin::Stall MakeStall(uint32_t loop, uint64_t sequence, double at, std::vector<std::string> frames) {
  admin::Stall stall;
  stall.set_loop(loop);
  stall.set_sequence(sequence);
  stall.set_detected_at_uptime_seconds(at);
  stall.set_duration_ms(300);
  stall.set_task("<inject:blocking_spin>");
  admin::StallSample* sample = stall.add_samples();
  for (std::string& f : frames) sample->add_frames(std::move(f));
  return stall;
}

const LoopRow& LoopOf(const TargetView& view, uint32_t loop) {
  for (const LoopRow& row : view.loops) {
    if (row.loop == loop) return row;
  }
  static const LoopRow none;
  ADD_FAILURE() << "no row for loop " << loop;
  return none;
}

TEST(TopModelTest, RatesAndUtilizationComeFromTwoPolls) {
  TopModel model;
  model.Add({Poll(10, {{.messages = 100, .bytes = 1000, .running = 0.2, .waiting = 0.8}})});
  std::vector<TargetView> views = model.View({});
  ASSERT_EQ(views.size(), 1u);
  // One poll: figures, but no rate yet.
  EXPECT_FALSE(LoopOf(views[0], 0).messages_per_second.has_value());
  EXPECT_FALSE(LoopOf(views[0], 0).utilization.has_value());

  // Two seconds of server time later: 400 messages in and out more, 4000 bytes each way.
  model.Add({Poll(12, {{.messages = 500, .bytes = 5000, .running = 0.7, .waiting = 2.3}})});
  views = model.View({});
  const LoopRow& row = LoopOf(views[0], 0);
  ASSERT_TRUE(row.messages_per_second.has_value());
  EXPECT_DOUBLE_EQ(*row.messages_per_second, 400.0);  // (400 in + 400 out) / 2 s
  EXPECT_DOUBLE_EQ(*row.bytes_per_second, 4000.0);
  ASSERT_TRUE(row.utilization.has_value());
  EXPECT_DOUBLE_EQ(*row.utilization, 0.25);  // 0.5 s running of 2 s
  EXPECT_EQ(row.messages_history.size(), 1u);
  // The row of all loops is the total's.
  EXPECT_DOUBLE_EQ(*views[0].all.messages_per_second, 400.0);
  EXPECT_FALSE(views[0].all.loop.has_value());
}

// A loop that used no CPU and moved nothing between two polls has rates of 0, known: an idle
// loop, not one without figures yet (which shows none).
TEST(TopModelTest, AnIdleLoopsRatesAreZeroNotUnknown) {
  TopModel model;
  model.Add({Poll(10, {{.messages = 7, .bytes = 70, .running = 0.2, .waiting = 0.8, .cpu = 0.5}})});
  model.Add({Poll(12, {{.messages = 7, .bytes = 70, .running = 0.2, .waiting = 2.8, .cpu = 0.5}})});
  std::vector<TargetView> views = model.View({});
  ASSERT_EQ(views.size(), 1u);
  for (const LoopRow* row : std::vector<const LoopRow*>{&LoopOf(views[0], 0), &views[0].all}) {
    ASSERT_TRUE(row->cpu.has_value());
    EXPECT_DOUBLE_EQ(*row->cpu, 0.0);
    ASSERT_TRUE(row->messages_per_second.has_value());
    EXPECT_DOUBLE_EQ(*row->messages_per_second, 0.0);
    ASSERT_TRUE(row->utilization.has_value());
    EXPECT_DOUBLE_EQ(*row->utilization, 0.0);
  }
}

TEST(TopModelTest, HistoryKeepsTheLastMinute) {
  TopModel model(absl::Minutes(1));
  for (int second = 0; second <= 90; ++second) {
    model.Add({Poll(second, {{.messages = static_cast<uint64_t>(second) * 10}})});
  }
  std::vector<TargetView> views = model.View({});
  const LoopRow& row = LoopOf(views[0], 0);
  // Samples from second 30 to 90: older ones fell out of the minute.
  ASSERT_EQ(row.messages_history.size(), 61u);
  EXPECT_EQ(row.messages_history.front().first, kStart + absl::Seconds(30));
  EXPECT_EQ(row.messages_history.back().first, kStart + absl::Seconds(90));
}

TEST(TopModelTest, SparkLevelsScaleToTheLargestAndPlaceByTime) {
  std::vector<std::pair<absl::Time, double>> history = {
      {kStart - absl::Seconds(90), 1000},  // older than the window: left out
      {kStart - absl::Seconds(59), 0},
      {kStart - absl::Seconds(30), 50},
      {kStart, 100},
  };
  std::vector<int> levels = SparkLevels(history, kStart, absl::Minutes(1), 6);
  // 10 s per column; the newest in the last one.
  EXPECT_EQ(levels, (std::vector<int>{0, -1, 4, -1, -1, 7}));
  EXPECT_EQ(Sparkline(levels, /*unicode=*/false), "_ =  #");
  EXPECT_EQ(Sparkline(levels, /*unicode=*/true), "\u2581 \u2585  \u2588");
  // Nothing but zeros: the lowest level, not an empty line.
  EXPECT_EQ(SparkLevels({{kStart, 0}}, kStart, absl::Minutes(1), 2), (std::vector<int>{-1, 0}));
}

TEST(TopModelTest, SortKeysCycleAndOrderTheRows) {
  SortKey key = SortKey::kLoop;
  std::vector<std::string> names;
  for (int i = 0; i < 8; ++i) {
    names.emplace_back(SortKeyName(key));
    key = NextSortKey(key);
  }
  EXPECT_EQ(key, SortKey::kLoop);
  EXPECT_EQ(names, (std::vector<std::string>{"LOOP", "UTIL", "CPU", "READY", "MSG/S", "BYTES/S", "STALLS", "LAG P99"}));

  TopModel model;
  model.Add({Poll(1, {{}, {}, {}})});
  model.Add({Poll(2, {{.messages = 10, .bytes = 900, .ready = 1, .stalls = 5, .lag_p99_us = 10},
                      {.messages = 30, .bytes = 100, .ready = 7, .stalls = 0, .lag_p99_us = 900},
                      {.messages = 20, .bytes = 500, .ready = 3, .stalls = 2, .lag_p99_us = 50}})});
  auto order = [&](SortKey sort) {
    std::vector<uint32_t> loops;
    std::vector<TargetView> views = model.View({.sort = sort});
    for (const LoopRow& row : views[0].loops) loops.push_back(*row.loop);
    return loops;
  };
  EXPECT_EQ(order(SortKey::kLoop), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(order(SortKey::kMessages), (std::vector<uint32_t>{1, 2, 0}));
  EXPECT_EQ(order(SortKey::kBytes), (std::vector<uint32_t>{0, 2, 1}));
  EXPECT_EQ(order(SortKey::kReady), (std::vector<uint32_t>{1, 2, 0}));
  EXPECT_EQ(order(SortKey::kStalls), (std::vector<uint32_t>{0, 2, 1}));
  EXPECT_EQ(order(SortKey::kLateness), (std::vector<uint32_t>{1, 2, 0}));
}

// UTIL sorts by the share of time running tasks and CPU by the cores used, each its own
// figure: loops that rank one way by utilization and the other way by CPU come out in
// opposite orders.
TEST(TopModelTest, UtilizationAndCpuSortByTheirOwnFigures) {
  TopModel model;
  model.Add({Poll(1, {{}, {}, {}})});
  // Over the second between the polls: loop 0 runs tasks 90% of the time on 0.1 core, loop 1
  // 10% of the time on 0.9 core, loop 2 half the time on half a core.
  model.Add({Poll(2, {{.running = 0.9, .waiting = 0.1, .cpu = 0.1},
                      {.running = 0.1, .waiting = 0.9, .cpu = 0.9},
                      {.running = 0.5, .waiting = 0.5, .cpu = 0.5}})});
  auto order = [&](SortKey sort) {
    std::vector<uint32_t> loops;
    std::vector<TargetView> views = model.View({.sort = sort});
    for (const LoopRow& row : views[0].loops) loops.push_back(*row.loop);
    return loops;
  };
  EXPECT_EQ(order(SortKey::kUtilization), (std::vector<uint32_t>{0, 2, 1}));
  EXPECT_EQ(order(SortKey::kCpu), (std::vector<uint32_t>{1, 2, 0}));
}

// Sockets with as many bytes queued rank by their traffic, bytes in plus bytes out, so that
// when max_sockets cuts the list the busiest ones stay, whichever way their bytes went.
TEST(TopModelTest, BusiestSocketsBreakQueuedTiesByTrafficAndKeepTheBusiest) {
  TargetSnapshot s = Poll(1, {{}});
  auto add_socket = [&s](int fd, uint64_t queued, uint64_t in, uint64_t out) {
    admin::SocketInfo* socket = &s.sockets.emplace_back();
    socket->set_fd(fd);
    socket->set_bytes_queued(queued);
    socket->set_bytes_in(in);
    socket->set_bytes_out(out);
  };
  add_socket(10, 5, 1, 1);    // little traffic, listed first
  add_socket(11, 5, 100, 0);  // the most traffic, all in
  add_socket(12, 5, 0, 50);   // less, all out
  add_socket(13, 9, 0, 0);    // the most queued, no traffic
  TopModel model;
  model.Add({s});

  TargetView view = model.View({.max_sockets = 3})[0];
  std::vector<int> fds;
  for (const admin::SocketInfo& socket : view.busiest_sockets) fds.push_back(socket.fd());
  EXPECT_EQ(fds, (std::vector<int>{13, 11, 12}));
}

TEST(TopModelTest, LoopFilterKeepsRowsSocketsAndStallsOfThoseLoops) {
  TargetSnapshot s = Poll(1, {{}, {}});
  for (int i = 0; i < 4; ++i) {
    admin::SocketInfo* socket = &s.sockets.emplace_back();
    socket->set_fd(10 + i);
    socket->set_loop(i % 2);
    socket->set_bytes_queued(i * 100);
    socket->set_in_write_set(i > 0);
  }
  s.latest_stalls[0] = MakeStall(0, 1, 5.0, {"f0 (brrr-echo+0x1)"});
  s.latest_stalls[1] = MakeStall(1, 2, 7.0, {"f1 (brrr-echo+0x2)"});
  TopModel model;
  model.Add({s});

  TargetView all = model.View({.max_sockets = 3})[0];
  ASSERT_EQ(all.busiest_sockets.size(), 3u);
  EXPECT_EQ(all.busiest_sockets[0].fd(), 13);  // most bytes queued first
  EXPECT_EQ(all.busiest_sockets[1].fd(), 12);
  ASSERT_EQ(all.stalls.size(), 2u);
  EXPECT_EQ(all.stalls[0].loop(), 1u);  // newest first
  ASSERT_TRUE(all.all.latest_stall.has_value());
  EXPECT_EQ(all.all.latest_stall->loop(), 1u);

  TargetView one = model.View({.loops = {0}})[0];
  ASSERT_EQ(one.loops.size(), 1u);
  EXPECT_EQ(one.loops[0].loop, 0u);
  ASSERT_EQ(one.busiest_sockets.size(), 2u);
  for (const admin::SocketInfo& socket : one.busiest_sockets) EXPECT_EQ(socket.loop(), 0u);
  ASSERT_EQ(one.stalls.size(), 1u);
  EXPECT_EQ(one.stalls[0].loop(), 0u);
  EXPECT_EQ(one.loops[0].latest_stall->sequence(), 1u);
}

TEST(TopModelTest, AnUnreachableTargetKeepsItsLastFiguresAndARestartStartsAfresh) {
  TopModel model;
  model.Add({Poll(10, {{.messages = 100}})});
  model.Add({Poll(11, {{.messages = 200}})});
  TargetSnapshot down;
  down.target = "t:1";
  down.taken = kStart + absl::Seconds(12);
  down.status = absl::UnavailableError("connection refused");
  model.Add({down});
  TargetView view = model.View({})[0];
  EXPECT_TRUE(absl::IsUnavailable(view.status));
  EXPECT_TRUE(view.ever_read);
  EXPECT_DOUBLE_EQ(*LoopOf(view, 0).messages_per_second, 200.0);
  EXPECT_EQ(StatusText(view.status), "unreachable: connection refused");

  // Back, restarted: uptime went back, so the figures before say nothing about rates now.
  model.Add({Poll(1, {{.messages = 5}})});
  view = model.View({})[0];
  EXPECT_TRUE(view.status.ok());
  EXPECT_FALSE(LoopOf(view, 0).messages_per_second.has_value());
  EXPECT_TRUE(LoopOf(view, 0).messages_history.empty());
  model.Add({Poll(2, {{.messages = 15}})});
  std::vector<TargetView> views = model.View({});
  EXPECT_DOUBLE_EQ(*LoopOf(views[0], 0).messages_per_second, 20.0);

  // A target never read shows its status only.
  TopModel fresh;
  fresh.Add({down});
  TargetView never = fresh.View({})[0];
  EXPECT_FALSE(never.ever_read);
  EXPECT_TRUE(never.loops.empty());
}

TEST(TopModelTest, SeveralTargetsKeepTheirOwnHistoryInTheOrderFirstAdded) {
  TopModel model;
  model.Add({Poll(1, {{.messages = 0}}, "b:2"), Poll(1, {{.messages = 0}}, "a:1")});
  model.Add({Poll(2, {{.messages = 10}}, "b:2"), Poll(2, {{.messages = 50}}, "a:1")});
  std::vector<TargetView> views = model.View({});
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].target, "b:2");
  EXPECT_EQ(views[1].target, "a:1");
  EXPECT_DOUBLE_EQ(*views[0].all.messages_per_second, 20.0);
  EXPECT_DOUBLE_EQ(*views[1].all.messages_per_second, 100.0);
}

TEST(TopModelTest, EveryFigureOfTheListsIsACellCountersAsRates) {
  TopModel model;
  TargetSnapshot first = Poll(10, {{.messages = 100, .ready = 2}});
  first.stats.mutable_loops(0)->set_iterations(1000);
  first.stats.mutable_loops(0)->set_accepting(true);
  model.Add({first});
  std::vector<TargetView> views = model.View({});
  std::vector<FigureCell> cells = LoopOf(views[0], 0).figures;
  ASSERT_EQ(cells.size(), std::size(kLoopFigures) + std::size(server::kEchoFigures) + std::size(kAdminFigures));
  EXPECT_EQ(cells.front().name, "ready_queue_depth");  // the loop's list first, in its order
  auto cell = [&cells](const std::string& name) -> std::optional<double> {
    for (const FigureCell& c : cells) {
      if (c.name == name) return c.value;
    }
    ADD_FAILURE() << "no cell " << name;
    return std::nullopt;
  };
  EXPECT_EQ(cell("ready_queue_depth"), 2.0);
  EXPECT_EQ(cell("accepting"), 1.0);
  EXPECT_FALSE(cell("iterations/s").has_value());  // one poll: no rate yet

  TargetSnapshot second = Poll(12, {{.messages = 300, .running = 0.5}});
  second.stats.mutable_loops(0)->set_iterations(1600);
  model.Add({second});
  views = model.View({});
  cells = LoopOf(views[0], 0).figures;
  EXPECT_EQ(cell("iterations/s"), 300.0);
  EXPECT_EQ(cell("messages_in/s"), 100.0);
  EXPECT_EQ(cell("running_seconds/s"), 0.25);
  EXPECT_EQ(cell("stall_threshold_ms"), 0.0);  // a setting: its value
  cells = views[0].all.figures;
  EXPECT_EQ(cell("messages_out/s"), 100.0);
}

TEST(TopModelTest, WhereIsTheFirstFrameInTheProgramsOwnCode) {
  admin::Stall stall = MakeStall(0, 1, 1.0,
                                 {"clock_gettime (linux-vdso.so.1+0xb46)",
                                  "std::chrono::_V2::steady_clock::now() (libstdc++.so.6+0xcb1c4)",
                                  "brrr::control::(anonymous namespace)::InjectedBlockingSpin() (brrr-echo+0x6697d)",
                                  "brrr::control::TaskInjector::StartRun() (brrr-echo+0x68d71)"});
  EXPECT_EQ(StallWhere(stall), "brrr::control::(anonymous namespace)::InjectedBlockingSpin() (brrr-echo+0x6697d)");
  EXPECT_EQ(FrameFunction(StallWhere(stall)), "brrr::control::InjectedBlockingSpin()");
  EXPECT_EQ(StallFrames(stall).size(), 4u);
  // The standard library's templates compiled into the program (an unoptimized build's
  // std::atomic<>::load()) are not the program's own code either.
  EXPECT_EQ(FrameFunction(StallWhere(MakeStall(0, 1, 1.0,
                                               {"std::atomic<>::load() (brrr-echo+0x3242d)",
                                                "__gnu_cxx::__ops::f() (brrr-echo+0x3242e)",
                                                "brrr::control::(anonymous namespace)::InjectedBlockingSpin() (brrr-echo+0x83550)"}))),
            "brrr::control::InjectedBlockingSpin()");
  // Nor are they when the symbolizer left their names mangled (seen in an unoptimized build:
  // std::chrono's operator<=>).
  EXPECT_EQ(FrameFunction(StallWhere(MakeStall(
                0, 1, 1.0,
                {"std::chrono::duration<>::count() (brrr-echo+0x3251d)",
                 "_ZNSt6chronossIlSt5ratioILl1ELl1000000000EElS2_EEDaRKNS_8durationIT_T0_EERKNS3_IT1_T2_EE (brrr-echo+0x68985)",
                 "_ZN9__gnu_cxx5__ops1fEv (brrr-echo+0x68986)",
                 "brrr::control::(anonymous namespace)::InjectedBlockingSpin() (brrr-echo+0x83540)"}))),
            "brrr::control::InjectedBlockingSpin()");
  // Nor is a frame the symbolizer could not name: a sample of the spin landed in the PLT stub
  // through which it calls steady_clock::now() (seen in brrrctl_top_test, fastbuild).
  EXPECT_EQ(FrameFunction(StallWhere(MakeStall(
                0, 1, 1.0,
                {"?? (brrr-echo+0x2d5f0)",
                 "brrr::control::(anonymous namespace)::InjectedBlockingSpin() (brrr-echo+0x837a3)",
                 "brrr::control::TaskInjector::StartRun() (brrr-echo+0x8534d)"}))),
            "brrr::control::InjectedBlockingSpin()");
  // Only library frames: the innermost. No stack: nothing.
  EXPECT_EQ(StallWhere(MakeStall(0, 1, 1.0, {"a (libc.so.6+0x1)", "b (libc.so.6+0x2)"})), "a (libc.so.6+0x1)");
  EXPECT_EQ(StallWhere(MakeStall(0, 1, 1.0, {})), "");
}

TEST(TopModelTest, TheTotalOfSeveralTargetsSumsThoseAnsweringAndKeepsItsOwnHistory) {
  TopModel model;
  // Target a: two loops; target b: one loop, up for 100 s longer; target c: never answers.
  TargetSnapshot down;
  down.target = "t:3";
  down.status = absl::UnavailableError("no server");
  auto b_poll = [](double second, const LoopFigures& loop) {
    TargetSnapshot s = Poll(second, {loop}, "t:2");
    s.stats.set_uptime_seconds(second + 100);
    return s;
  };
  TargetSnapshot a1 = Poll(10, {{.messages = 0, .running = 0, .waiting = 0}, {.messages = 0}});
  TargetSnapshot b1 = b_poll(10, {.messages = 0, .running = 0, .waiting = 0});
  down.taken = a1.taken;
  model.Add({a1, b1, down});
  FleetTotal total = model.Total();
  EXPECT_EQ(total.targets, 3u);
  EXPECT_EQ(total.answering, 2u);
  EXPECT_EQ(total.loop_count, 3u);
  EXPECT_FALSE(total.row.messages_per_second.has_value());  // one poll: no rates yet
  EXPECT_TRUE(total.row.messages_history.empty());

  TargetSnapshot a2 =
      Poll(12, {{.messages = 200, .bytes = 1000, .running = 1, .waiting = 1, .cpu = 0.5, .ready = 3, .lag_p99_us = 40},
                {.messages = 100, .running = 0, .waiting = 2, .cpu = 1.5, .ready = 1, .lag_p99_us = 90}});
  a2.stats.mutable_total()->set_ready_queue_depth(4);
  a2.stats.mutable_total()->set_connections_active(7);
  a2.stats.mutable_total()->set_stalls(2);
  a2.stats.mutable_total()->mutable_timer_lateness()->set_p99_us(90);
  // a's stall: 1.5 s before its poll (uptime 10.5 of 12); b's: 0.5 s before its poll (111.5
  // of 112): b's is the later on this process's clock, whatever the servers' uptimes.
  a2.latest_stalls[1] = MakeStall(1, 4, 10.5, {"a() (brrr-echo+0x1)"});
  TargetSnapshot b2 = b_poll(12, {.messages = 400, .bytes = 0, .running = 2, .waiting = 0, .cpu = 2});
  b2.stats.mutable_total()->set_ready_queue_depth(5);
  b2.stats.mutable_total()->set_connections_active(1);
  b2.stats.mutable_total()->set_stalls(1);
  b2.stats.mutable_total()->mutable_timer_lateness()->set_p99_us(30);
  b2.latest_stalls[0] = MakeStall(0, 9, 111.5, {"b() (brrr-echo+0x2)"});
  down.taken = a2.taken;
  model.Add({a2, b2, down});

  total = model.Total();
  EXPECT_EQ(total.answering, 2u);
  EXPECT_EQ(total.row.ready_queue_depth, 9u);
  EXPECT_EQ(total.row.connections, 8u);
  EXPECT_EQ(total.row.stalls, 3u);
  EXPECT_EQ(total.row.lateness_p99_us, 90);
  // Messages in and out over 2 s: a (300 + 300) / 2 = 300/s, b (400 + 400) / 2 = 400/s.
  ASSERT_TRUE(total.row.messages_per_second.has_value());
  EXPECT_DOUBLE_EQ(*total.row.messages_per_second, 700);
  EXPECT_DOUBLE_EQ(*total.row.bytes_per_second, 1000);
  // Utilization: a's loops ran 1 s of 4 (25%), b's one loop all the time (100%), weighted by
  // loops: (0.25 * 2 + 1 * 1) / 3.
  ASSERT_TRUE(total.row.utilization.has_value());
  EXPECT_DOUBLE_EQ(*total.row.utilization, 0.5);
  // CPU in cores, summed: a's two loops 2 s of CPU in 2 s (1 core), b's loop 2 s (1 core).
  ASSERT_TRUE(total.row.cpu.has_value());
  EXPECT_DOUBLE_EQ(*total.row.cpu, 2);
  ASSERT_TRUE(total.row.latest_stall.has_value());
  EXPECT_EQ(total.row.latest_stall->sequence(), 9u);
  EXPECT_EQ(total.latest_stall_target, "t:2");
  ASSERT_EQ(total.row.messages_history.size(), 1u);
  EXPECT_EQ(total.row.messages_history[0].first, a2.taken);
  EXPECT_DOUBLE_EQ(total.row.messages_history[0].second, 700);

  std::string text = PlainBlock(model.View({}), SortKey::kLoop, 0, &total);
  EXPECT_TRUE(absl::StrContains(text, "\ntop target=t:3 unreachable=\"no server\"\n")) << text;
  EXPECT_TRUE(absl::StrContains(text,
                                "\ntotal targets=3 answering=2 loops=3 util=0.5 cpu=2 ready=9 conns=8 msg_per_s=700 "
                                "bytes_per_s=1000 stalls=3 lag_p99_us=90 where=\"b() (brrr-echo+0x2)\" "
                                "stall_target=t:2\n\n"))
      << text;
  EXPECT_FALSE(absl::StrContains(PlainBlock(model.View({}), SortKey::kLoop, 0), "total ")) << text;

  // b goes away: the total is a's alone.
  TargetSnapshot b_down;
  b_down.target = "t:2";
  b_down.status = absl::UnavailableError("gone");
  TargetSnapshot a3 = Poll(13, {{.messages = 300, .bytes = 1000, .running = 1, .waiting = 2}, {.messages = 100}});
  a3.latest_stalls = a2.latest_stalls;
  model.Add({a3, b_down, down});
  total = model.Total();
  EXPECT_EQ(total.answering, 1u);
  EXPECT_EQ(total.loop_count, 2u);
  EXPECT_DOUBLE_EQ(*total.row.messages_per_second, 200);  // (100 + 100) / 1 s
  EXPECT_EQ(total.latest_stall_target, "t:1");
  ASSERT_EQ(total.row.messages_history.size(), 2u);
  EXPECT_DOUBLE_EQ(total.row.messages_history[1].second, 200);
}

// A stall the server split (since its first sample: on a core, waiting for one, asleep or
// blocked) shows the split in its title, as shares, and in its plain line, in ms.
TEST(TopModelTest, AStallsSplitIsInItsTitleAndItsPlainLine) {
  admin::Stall stall = MakeStall(1, 4, 2.5, {"spin() (brrr-echo+0x1)"});
  EXPECT_EQ(StallTitle(stall).find("since the first sample"), std::string::npos) << StallTitle(stall);
  admin::StallTimeSplit* split = stall.mutable_since_first_sample();
  split->set_span_ms(200);
  split->set_on_core_ms(100);
  split->set_waiting_for_core_ms(90);
  split->set_asleep_or_blocked_ms(10);
  EXPECT_TRUE(absl::EndsWith(
      StallTitle(stall), "; since the first sample 200ms: 50% on a core, 45% waiting for one, 5% asleep or blocked"))
      << StallTitle(stall);
  TopModel model;
  TargetSnapshot first = Poll(10, {{.messages = 0, .running = 0, .waiting = 1, .cpu = 0.25}, {}});
  model.Add({first});
  TargetSnapshot second = Poll(11, {{.messages = 50, .running = 0.5, .waiting = 1.5, .cpu = 1}, {}});
  second.latest_stalls[1] = stall;
  model.Add({second});
  std::string text = PlainBlock(model.View({}), SortKey::kLoop, 0);
  EXPECT_TRUE(absl::StrContains(text,
                                " since_first_sample_ms=200 on_core_ms=100 waiting_for_core_ms=90 "
                                "asleep_or_blocked_ms=10\n"))
      << text;
}

TEST(TopModelTest, PlainLinesAreOneBlockOfNameValueWords) {
  TopModel model;
  TargetSnapshot first = Poll(10, {{.messages = 0, .running = 0, .waiting = 1, .cpu = 0.25}});
  first.throttle = "conn_rate unlimited";
  model.Add({first});
  TargetSnapshot second = Poll(11, {{.messages = 50, .running = 0.5, .waiting = 1.5, .cpu = 1}});
  second.throttle = "conn_rate unlimited";
  second.latest_stalls[0] = MakeStall(0, 3, 10.5, {"spin() (brrr-echo+0x1)", "run() (brrr-echo+0x2)"});
  admin::SocketInfo* socket = &second.sockets.emplace_back();
  socket->set_fd(9);
  socket->set_kind("connection");
  socket->set_peer("127.0.0.1:4000");
  socket->set_bytes_queued(12);
  socket->set_in_read_set(true);
  socket->set_in_write_set(true);
  model.Add({second});
  std::string text = PlainBlock(model.View({}), SortKey::kLoop, 1);
  EXPECT_TRUE(absl::StartsWith(text, "top target=t:1 uptime=11 loops=1 sort=LOOP draining=no\n")) << text;
  EXPECT_TRUE(absl::StrContains(
      text,
      "loop=0 util=0.5 cpu=0.75 ready=0 conns=0 msg_per_s=100 bytes_per_s=0 stalls=0 lag_p99_us=0 task=- "
      "where=\"spin() (brrr-echo+0x1)\"\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "\nloop=all util=0.5 ")) << text;
  EXPECT_TRUE(absl::StrContains(
      text, "socket fd=9 loop=0 kind=connection peer=127.0.0.1:4000 queued=12 bytes_in=0 bytes_out=0 sets=read,write\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "throttle summary=\"conn_rate unlimited\"\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "stall loop=0 seq=3 duration_ms=300 in_progress=no task=<inject:blocking_spin>"))
      << text;
  EXPECT_TRUE(absl::StrContains(text,
                                " since_first_sample_ms=- on_core_ms=- waiting_for_core_ms=- "
                                "asleep_or_blocked_ms=-\n"))
      << "a stall without the split says so\n"
      << text;
  // --frames=1: one frame line.
  EXPECT_TRUE(absl::StrContains(text, "frame loop=0 n=0 at=\"spin() (brrr-echo+0x1)\"\n")) << text;
  EXPECT_FALSE(absl::StrContains(text, "n=1")) << text;
  EXPECT_TRUE(absl::EndsWith(text, "\n\n")) << text;

  TargetSnapshot down;
  down.target = "t:2";
  down.status = absl::UnavailableError("no \"server\"");
  TopModel other;
  other.Add({down});
  EXPECT_EQ(PlainBlock(other.View({}), SortKey::kLoop, 4), "top target=t:2 unreachable=\"no \\\"server\\\"\"\n\n");
  // Only a double quote, a backslash and what is not printable are escaped; an apostrophe (even
  // one after a backslash) stays as it is.
  down.status = absl::DeadlineExceededError("top's \\'deadline'\n");
  TopModel third;
  third.Add({down});
  EXPECT_EQ(PlainBlock(third.View({}), SortKey::kLoop, 4),
            "top target=t:2 error=\"top's \\\\'deadline'\\n\"\n\n");
}

}  // namespace
}  // namespace brrr::control::top
