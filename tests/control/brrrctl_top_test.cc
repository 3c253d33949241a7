// `brrrctl top` against a real brrr-echo under load from loopback clients: in a real terminal
// (tmux runs it; the test reads the screen back with capture-pane) it shows the loops and
// their rates, the stall an injected BLOCKING_SPIN causes with the frame it spun in, redraws
// at a new width when the window is resized, exits 0 on `q`, says "unreachable" when the
// server is killed and picks up the one started again on the same admin port; on a terminal
// ncurses cannot draw on (TERM=no-such-terminal, TERM=dumb) it prints the plain lines. Piped,
// it prints plain lines, a block per tick, for --count ticks, names a server that stops
// answering with the deadline top gave it, and exits 3 when the server answered none of them.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "brrr/admin/v1/admin.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/top_test_parts.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/skips.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::top::Brrrctl;
using testing::top::FindTmux;
using testing::top::Lines;
using testing::top::Load;
using testing::top::LongestLine;
using testing::top::Row;
using testing::top::ShowsBusyLoops;
using testing::top::Tmux;

class BrrrctlTopTest : public testing::AdminFixture {
 protected:
  void SetUp() override {
    tmux_path_ = FindTmux();
  }

  // `brrrctl top` in the pane, writing its exit code to exit_file() when it ends.
  std::string TopCommand(const std::string& dir, const std::string& flags) {
    exit_file_ = dir + "/exit";
    return "'" + Brrrctl() + "' --target=" + AdminAddress() + " top " + flags + "; echo $? > '" + exit_file_ + "'";
  }

  // The exit code top wrote (polled, bounded: 30 s), or nullopt.
  std::optional<int> TopExitCode() {
    for (int i = 0; i < 300; ++i) {
      std::ifstream in(exit_file_);
      int code = -1;
      if (in >> code) return code;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return std::nullopt;
  }

  std::string tmux_path_;
  std::string exit_file_;
};

#define REQUIRE_TMUX()                                                                              \
  do {                                                                                              \
    if (tmux_path_.empty()) BRRR_SKIP_OR_FAIL("tmux", "tmux is not installed (tools/bootstrap.sh installs it)"); \
  } while (0)

TEST_F(BrrrctlTopTest, ShowsTheLoopsAStallWithItsFrameRedrawsWhenResizedAndQuitsWithQ) {
  REQUIRE_TMUX();
  Start({"--loops=2"});
  Load load(port_);
  Tmux tmux(tmux_path_);
  ASSERT_FALSE(tmux.dir().empty());
  ASSERT_TRUE(tmux.Start(120, 40, TopCommand(tmux.dir(), "--interval=200ms")));

  std::string pane = tmux.WaitForPane(ShowsBusyLoops, "loops 0 and 1 with traffic");
  EXPECT_TRUE(absl::StrContains(pane, "brrrctl top  " + AdminAddress())) << pane;
  EXPECT_TRUE(absl::StrContains(pane, "SOCKETS by bytes queued")) << pane;
  EXPECT_TRUE(absl::StrContains(pane, "connection")) << pane;  // the load's sockets
  EXPECT_TRUE(absl::StrContains(pane, "INJECTIONS: none")) << pane;
  EXPECT_LE(LongestLine(pane), 120u) << pane;

  admin::InjectTaskRequest inject;
  inject.set_kind(admin::BLOCKING_SPIN);
  inject.set_duration_ms(400);
  inject.set_count(1);
  inject.add_loops(0);
  admin::Injection injection;
  grpc::Status status = stub_->InjectTask(Context().get(), inject, &injection);
  ASSERT_TRUE(status.ok()) << status.error_message();
  pane = tmux.WaitForPane(
      [](const std::string& p) {
        return absl::StrContains(p, "loop 0 stall #") && absl::StrContains(p, "InjectedBlockingSpin");
      },
      "loop 0's stall with the spinning function among its frames");
  EXPECT_TRUE(absl::StrContains(pane, "LATEST STALLS")) << pane;
  // Loop 0's row names where it was stuck; loop 1 ran no injection, so its row never names the
  // spin (under a sanitizer on a loaded machine a task of its own may have been a stall).
  std::vector<std::string> loop0 = Row(pane, "0");
  ASSERT_FALSE(loop0.empty()) << pane;
  EXPECT_TRUE(absl::StrContains(loop0.back(), "InjectedBlockingSpin")) << pane;
  std::vector<std::string> loop1 = Row(pane, "1");
  ASSERT_FALSE(loop1.empty()) << pane;
  EXPECT_FALSE(absl::StrContains(loop1.back(), "InjectedBlockingSpin")) << pane;
  for (absl::string_view line : absl::StrSplit(pane, '\n')) {
    if (absl::StrContains(line, "loop 1 stall #")) {
      EXPECT_FALSE(absl::StrContains(line, "inject:")) << pane;
    }
  }

  ASSERT_EQ(tmux.Run({"resize-window", "-t", "top", "-x", "170", "-y", "40"}), 0);
  pane = tmux.WaitForPane([](const std::string& p) { return LongestLine(p) > 150 && ShowsBusyLoops(p); },
                          "a line wider than 150 columns after the resize to 170");

  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "q"}), 0);
  std::optional<int> code = TopExitCode();
  ASSERT_TRUE(code.has_value()) << "top did not exit after q; the pane:\n" << tmux.Capture();
  EXPECT_EQ(*code, 0);
}

TEST_F(BrrrctlTopTest, KeysSortPauseAndSwitchLoopsAndCtrlCEndsIt) {
  REQUIRE_TMUX();
  Start({"--loops=3"});
  Load load(port_);
  Tmux tmux(tmux_path_);
  ASSERT_TRUE(tmux.Start(120, 40, TopCommand(tmux.dir(), "--interval=200ms")));
  tmux.WaitForPane([](const std::string& p) { return !Row(p, "2").empty() && absl::StrContains(p, "sort: LOOP"); },
                   "three loops, sorted by loop");

  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "s"}), 0);
  tmux.WaitForPane([](const std::string& p) { return absl::StrContains(p, "sort: UTIL"); }, "sort: UTIL after s");

  // Loop 1 alone: its row, and no row for loops 0 and 2.
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "1"}), 0);
  std::string pane = tmux.WaitForPane(
      [](const std::string& p) {
        return absl::StrContains(p, "loops: 1") && !Row(p, "1").empty() && Row(p, "0").empty() && Row(p, "2").empty();
      },
      "loop 1 alone after 1");
  // One loop: every figure of the lists too, counters as rates.
  EXPECT_TRUE(absl::StrContains(pane, "FIGURES of loop 1")) << pane;
  EXPECT_TRUE(absl::StrContains(pane, "ready_queue_depth")) << pane;
  EXPECT_TRUE(absl::StrContains(pane, "tasks_run/s")) << pane;
  // A name cut to its cell keeps the "/s" of a rate (30 characters and "/s" in a cell of 30).
  EXPECT_TRUE(absl::StrContains(pane, "connections_closed_drain_cle/s")) << pane;
  // Right steps to the next loop, right again past the last back to all of them.
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "Right"}), 0);
  tmux.WaitForPane([](const std::string& p) { return absl::StrContains(p, "loops: 2") && Row(p, "1").empty(); },
                   "loop 2 after Right");
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "Right"}), 0);
  tmux.WaitForPane([](const std::string& p) { return absl::StrContains(p, "loops: all") && !Row(p, "0").empty(); },
                   "every loop after Right past the last");

  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "p"}), 0);
  tmux.WaitForPane([](const std::string& p) { return absl::StrContains(p, "PAUSED"); }, "PAUSED after p");
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "p"}), 0);
  tmux.WaitForPane([](const std::string& p) { return !absl::StrContains(p, "PAUSED"); }, "no PAUSED after p again");

  // Ctrl-C ends it as q does (the terminal is put back, exit 0).
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "C-c"}), 0);
  std::optional<int> code = TopExitCode();
  ASSERT_TRUE(code.has_value()) << tmux.Capture();
  EXPECT_EQ(*code, 0);
}

// README: left steps back through the loops (from all to the last, wrapping), `a` shows all of
// them, and space pauses as p does.
TEST_F(BrrrctlTopTest, LeftStepsBackThroughTheLoopsAShowsThemAllAndSpacePauses) {
  REQUIRE_TMUX();
  Start({"--loops=3"});
  Load load(port_);
  Tmux tmux(tmux_path_);
  ASSERT_TRUE(tmux.Start(120, 40, TopCommand(tmux.dir(), "--interval=200ms")));
  tmux.WaitForPane([](const std::string& p) { return absl::StrContains(p, "loops: all") && !Row(p, "2").empty(); },
                   "three loops");

  // Only `loop` of 0, 1 and 2 has a row, and the title names it.
  auto alone = [](const std::string& loop) {
    return [loop](const std::string& p) {
      if (!absl::StrContains(p, "loops: " + loop)) return false;
      for (const std::string other : {"0", "1", "2"}) {
        if (Row(p, other).empty() != (other != loop)) return false;
      }
      return true;
    };
  };
  // From all, left wraps to the last loop, then steps down to 0 and back to all.
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "Left"}), 0);
  tmux.WaitForPane(alone("2"), "loop 2 alone after Left from all");
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "Left"}), 0);
  tmux.WaitForPane(alone("1"), "loop 1 alone after Left");
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "Left"}), 0);
  tmux.WaitForPane(alone("0"), "loop 0 alone after Left");
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "Left"}), 0);
  auto every_loop = [](const std::string& p) {
    return absl::StrContains(p, "loops: all") && !Row(p, "0").empty() && !Row(p, "1").empty() &&
           !Row(p, "2").empty() && !Row(p, "all").empty();
  };
  tmux.WaitForPane(every_loop, "every loop after Left from loop 0");

  // `a` from one loop shows all of them.
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "1"}), 0);
  tmux.WaitForPane(alone("1"), "loop 1 alone after 1");
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "a"}), 0);
  tmux.WaitForPane(every_loop, "every loop after a");

  // Space pauses: no poll, so nothing on the screen changes (the uptime in the title, the
  // rates under the load) while it says PAUSED; space again resumes.
  // (The first capture is one that held still after PAUSED shows, so that the redraw is complete.)
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "Space"}), 0);
  tmux.WaitForPane([](const std::string& p) { return absl::StrContains(p, "PAUSED"); }, "PAUSED after space");
  const std::string paused = tmux.SettledPane(milliseconds(300));
  std::this_thread::sleep_for(milliseconds(1500));  // several intervals, past a second of uptime
  EXPECT_EQ(tmux.Capture(), paused);
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "Space"}), 0);
  tmux.WaitForPane([](const std::string& p) { return !absl::StrContains(p, "PAUSED"); }, "no PAUSED after space again");

  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "q"}), 0);
  std::optional<int> code = TopExitCode();
  ASSERT_TRUE(code.has_value()) << tmux.Capture();
  EXPECT_EQ(*code, 0);
}

TEST_F(BrrrctlTopTest, SaysUnreachableWhenTheServerDiesAndReconnectsWhenItIsBack) {
  REQUIRE_TMUX();
  Start({"--loops=2"});
  Tmux tmux(tmux_path_);
  ASSERT_TRUE(tmux.Start(120, 40, TopCommand(tmux.dir(), "--interval=200ms")));
  tmux.WaitForPane([](const std::string& p) { return !Row(p, "all").empty(); }, "the loops");
  const pid_t first = server_->pid();

  server_->Signal(SIGKILL);
  ASSERT_TRUE(server_->Wait(seconds(30)).has_value());
  std::string pane =
      tmux.WaitForPane([](const std::string& p) { return absl::StrContains(p, "unreachable: "); }, "unreachable");
  // The last figures stay on show under the message.
  EXPECT_FALSE(Row(pane, "all").empty()) << pane;

  // A new server on the same admin port (three loops this time, so the screen shows it is
  // the new one).
  server_ = std::make_unique<testing::Process>(testing::Runfile("server/brrr-echo/brrr-echo"),
                                               std::vector<std::string>{"--port=0", "--loops=3",
                                                                        "--admin_port=" + std::to_string(admin_port_)});
  ASSERT_TRUE(server_->WaitForOutput("admin plane on " + AdminAddress())) << server_->err();
  ASSERT_NE(server_->pid(), first);
  tmux.WaitForPane(
      [](const std::string& p) {
        return !absl::StrContains(p, "unreachable") && absl::StrContains(p, " 3 loops") && !Row(p, "2").empty();
      },
      "the new server's three loops, without \"unreachable\"");

  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "q"}), 0);
  std::optional<int> code = TopExitCode();
  ASSERT_TRUE(code.has_value()) << tmux.Capture();
  EXPECT_EQ(*code, 0);
}

// Piped (standard output is not a terminal): plain lines, one block per tick.
TEST_F(BrrrctlTopTest, PipedItPrintsPlainLinesForCountTicks) {
  Start({"--loops=2"});
  Load load(port_);
  // Each call's deadline: a tick's calls answer late on a loaded machine, not never.
  testing::Process top(Brrrctl(),
                       {"--target=" + AdminAddress(), "top", "--count=3", "--interval=100ms", "--timeout=10s"});
  std::optional<int> code = top.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  ASSERT_EQ(*code, 0) << top.err();
  std::vector<std::string> lines = Lines(top.out());
  int blocks = 0;
  int all_rows = 0;
  bool rate_seen = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (absl::StartsWith(lines[i], "top target=" + AdminAddress() + " uptime=")) {
      ++blocks;
      EXPECT_TRUE(absl::StrContains(lines[i], " loops=2 ")) << lines[i];
      ASSERT_LT(i + 3, lines.size());
      EXPECT_TRUE(absl::StartsWith(lines[i + 1], "loop=0 util=")) << lines[i + 1];
      EXPECT_TRUE(absl::StartsWith(lines[i + 2], "loop=1 util=")) << lines[i + 2];
      EXPECT_TRUE(absl::StartsWith(lines[i + 3], "loop=all util=")) << lines[i + 3];
      EXPECT_TRUE(absl::StrContains(lines[i + 3], " cpu=")) << lines[i + 3];
    }
    if (absl::StartsWith(lines[i], "loop=all ")) {
      ++all_rows;
      rate_seen |= !absl::StrContains(lines[i], " msg_per_s=- ") && !absl::StrContains(lines[i], " msg_per_s=0 ");
    }
  }
  EXPECT_EQ(blocks, 3) << top.out();
  EXPECT_EQ(all_rows, 3) << top.out();
  EXPECT_TRUE(rate_seen) << top.out();
  EXPECT_TRUE(absl::StrContains(top.out(), "\nsocket fd=")) << top.out();
  EXPECT_TRUE(absl::StrContains(top.out(), " kind=connection ")) << top.out();
  EXPECT_TRUE(absl::StrContains(top.out(), "\nthrottle summary=\"conn_rate ")) << top.out();
  // Each block ends with an empty line.
  EXPECT_TRUE(absl::EndsWith(top.out(), "\n\n")) << top.out();

  // Until interrupted: SIGTERM ends it with exit 0.
  testing::Process endless(Brrrctl(), {"--target=" + AdminAddress(), "top", "--interval=100ms"});
  ASSERT_TRUE(endless.WaitForOutput("loop=all")) << endless.err();
  endless.Signal(SIGTERM);
  code = endless.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << endless.err();
}

// A loop stuck in a task cannot list its sockets (ListSockets asks each loop), but its figures
// are read without it: top shows them, the task that runs and its stall, and says why the
// sockets are missing. It showed only the error, and a script's top --count=N exited 1.
TEST_F(BrrrctlTopTest, PipedItShowsALoopStuckInATaskAndSaysWhyItsSocketsAreMissing) {
  Start({"--loops=2", "--admin_max_block=60s", "--stall_threshold=50ms"});
  admin::InjectTaskRequest request;
  request.set_kind(admin::BLOCKING_SPIN);
  request.set_duration_ms(30000);
  request.add_loops(0);
  admin::Injection injection;
  ASSERT_TRUE(stub_->InjectTask(Context().get(), request, &injection).ok());
  // The spin has begun, so that ListSockets (which asks each loop) finds loop 0 stuck from the first
  // tick; it lasts past both ticks (two waits of 5 s).
  StatsWhen([](const admin::Stats& s) {
    return s.loops(0).current_task() == "inject:blocking_spin" && s.loops(0).current_task_running_ms() > 1500;
  });

  // A deadline long enough for an answer from a loaded machine: ListSockets then waits 5 s for
  // loop 0 each tick, and says it is stuck.
  testing::Process top(Brrrctl(),
                       {"--target=" + AdminAddress(), "top", "--count=2", "--interval=100ms", "--timeout=10s"});
  std::optional<int> code = top.Wait(seconds(60));
  admin::CancelInjectionRequest cancel;
  cancel.set_id(injection.id());
  admin::Injection cancelled;
  EXPECT_TRUE(stub_->CancelInjection(Context().get(), cancel, &cancelled).ok());
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << top.err();
  int blocks = 0;
  int stuck_rows = 0;
  int sockets_errors = 0;
  int stalls_running = 0;
  for (const std::string& line : Lines(top.out())) {
    if (absl::StartsWith(line, "top target=")) {
      ++blocks;
      EXPECT_TRUE(absl::StrContains(line, " loops=2 ")) << line;
    }
    if (absl::StartsWith(line, "loop=0 ") && absl::StrContains(line, " task=inject:blocking_spin")) ++stuck_rows;
    if (absl::StartsWith(line, "sockets error=") && absl::StrContains(line, "loop 0")) ++sockets_errors;
    if (absl::StartsWith(line, "stall loop=0 ") && absl::StrContains(line, " in_progress=yes") &&
        absl::StrContains(line, " task=inject:blocking_spin")) {
      ++stalls_running;
    }
  }
  EXPECT_EQ(blocks, 2) << top.out();
  EXPECT_EQ(stuck_rows, 2) << top.out();
  EXPECT_EQ(sockets_errors, 2) << top.out();
  EXPECT_GE(stalls_running, 1) << top.out();
}

// A server that stops answering (SIGSTOP: its connection stays open) costs a tick one deadline,
// and the message says where that deadline came from: top's interval, or --timeout when given
// (AdminClientOptions::timeout_source).
TEST_F(BrrrctlTopTest, PipedAServerThatStopsAnsweringIsNamedWithTheDeadlineTopGaveIt) {
  Start({"--loops=2"});
  struct Case {
    std::vector<std::string> flags;
    std::string says;
  };
  // A 5 s interval (and so a 5 s deadline, the longest top gives itself, for a loaded machine's
  // first tick): the second tick comes well after the first block is read and the server stopped.
  for (const Case& c : {Case{{}, "(no answer within 5s, top's interval, 1s to 5s; --timeout sets it)"},
                        Case{{"--timeout=4s"}, "(no answer within 4s, --timeout)"}}) {
    SCOPED_TRACE(c.says);
    std::vector<std::string> args = {"--target=" + AdminAddress(), "top", "--count=2", "--interval=5s"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    testing::Process top(Brrrctl(), args);
    ASSERT_TRUE(top.WaitForOutput("loop=all")) << top.err();
    server_->Signal(SIGSTOP);
    std::optional<int> code = top.Wait(seconds(60));
    server_->Signal(SIGCONT);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << top.err();  // it answered a tick (none answered: exit 3, below)
    std::string error_line;
    for (const std::string& line : Lines(top.out())) {
      if (absl::StartsWith(line, "top target=" + AdminAddress() + " error=")) error_line = line;
    }
    EXPECT_TRUE(absl::StrContains(error_line, "error=\"DEADLINE_EXCEEDED")) << top.out();
    EXPECT_TRUE(absl::StrContains(error_line, c.says)) << top.out();
  }
}

// A script sees the failure: a server that answered none of the polls ends top with exit 3,
// as the other commands end for a server they cannot reach.
TEST_F(BrrrctlTopTest, PipedWithoutAServerItSaysUnreachableEachTickAndExitsThree) {
  const std::string target = "127.0.0.1:" + std::to_string(testing::PickFreePort());
  testing::Process top(Brrrctl(), {"--target=" + target, "top", "--count=2", "--interval=100ms"});
  std::optional<int> code = top.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3) << top.err();
  EXPECT_TRUE(absl::StartsWith(top.err(), "brrrctl: cannot reach the admin plane at " + target + ": ")) << top.err();
  std::vector<std::string> lines = Lines(top.out());
  ASSERT_EQ(lines.size(), 5u) << top.out();  // two blocks of a line and an empty one, then ""
  for (int i : {0, 2}) {
    EXPECT_TRUE(absl::StartsWith(lines[i], "top target=" + target + " unreachable=\"cannot reach the admin plane at "))
        << lines[i];
  }
}

// A terminal that ncurses cannot draw on, an unknown type or one that cannot move the cursor,
// still gets a view: the plain lines, with a line on stderr that says why; Ctrl-C ends it with
// exit 0 as usual.
TEST_F(BrrrctlTopTest, OnATerminalNcursesCannotDrawOnItPrintsPlainLines) {
  REQUIRE_TMUX();
  Start({"--loops=2"});
  for (const std::string term : {"no-such-terminal", "dumb"}) {
    SCOPED_TRACE("TERM=" + term);
    Tmux tmux(tmux_path_);
    ASSERT_FALSE(tmux.dir().empty());
    const std::string err_file = tmux.dir() + "/err";
    const std::string flags = "--interval=200ms 2>'" + err_file + "'";
    ASSERT_TRUE(tmux.Start(120, 40, "TERM=" + term + " " + TopCommand(tmux.dir(), flags)));
    auto ended = [this] { return std::filesystem::exists(exit_file_); };
    std::string pane = tmux.WaitForPane(
        [&](const std::string& p) { return absl::StrContains(p, "\nloop=all util=") || ended(); }, "plain lines");
    std::stringstream err;
    err << std::ifstream(err_file).rdbuf();
    ASSERT_FALSE(ended()) << "top ended (exit " << TopExitCode().value_or(-1) << "); stderr:\n" << err.str();
    EXPECT_TRUE(absl::StrContains(pane, "top target=" + AdminAddress() + " uptime=")) << pane;
    EXPECT_TRUE(absl::StartsWith(err.str(), "brrrctl: top: cannot draw on this terminal (TERM=" + term + "): "))
        << err.str();
    EXPECT_TRUE(absl::StrContains(err.str(), "; plain lines instead")) << err.str();

    ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "C-c"}), 0);
    std::optional<int> code = TopExitCode();
    ASSERT_TRUE(code.has_value()) << tmux.Capture();
    EXPECT_EQ(*code, 0);
  }
}

TEST_F(BrrrctlTopTest, RefusesIntervalsOutOfRangeAndJson) {
  const std::string target = "--target=127.0.0.1:1";
  for (const std::vector<std::string>& args : {std::vector<std::string>{target, "top", "--interval=10ms"},
                                               std::vector<std::string>{target, "top", "--interval=2h"},
                                               std::vector<std::string>{target, "--json", "top"}}) {
    testing::Process top(Brrrctl(), args);
    std::optional<int> code = top.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2) << top.err();
    EXPECT_TRUE(absl::StrContains(top.err(), "brrrctl: ")) << top.err();
  }
  testing::Process help(Brrrctl(), {"help", "top"});
  ASSERT_EQ(help.Wait(seconds(30)).value_or(-1), 0);
  EXPECT_TRUE(absl::StrContains(help.out(), "Keys: q quit;")) << help.out();
  EXPECT_TRUE(absl::StrContains(help.out(), "Exit 0, unless a target answered\nnone of the polls: then 3"))
      << help.out();
  EXPECT_TRUE(absl::StrContains(help.out(), "--interval=DURATION")) << help.out();
}

// The other brrrctl views of issue 12's figures: `brrrctl stats` has the task duration
// histogram's rows (p50 and p99, from LoopStats through the message's fields), and the general
// help lists top. The admin plane may answer before the loop's first task has ended, so stats
// is asked again (every 50 ms, up to 30 s) until the histogram counts a task.
TEST_F(BrrrctlTopTest, StatsShowsTaskDurationPercentilesAndHelpListsTop) {
  Start();
  std::string out;
  for (int attempt = 0; attempt < 600; ++attempt) {
    testing::Process stats(Brrrctl(), {"--target=" + AdminAddress(), "stats"});
    ASSERT_EQ(stats.Wait(seconds(30)).value_or(-1), 0) << stats.err();
    out = stats.out();
    std::vector<std::string> count = Row(out, "task_duration.count");
    ASSERT_EQ(count.size(), 3u) << out;  // the name, loop 0, the total
    if (count[2] != "0") break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_NE(Row(out, "task_duration.count")[2], "0") << "no task ended in 30 s\n" << out;
  for (const std::string row : {"task_duration.p50_us", "task_duration.p99_us"}) {
    std::vector<std::string> words = Row(out, row);
    ASSERT_EQ(words.size(), 3u) << row << "\n" << out;
    EXPECT_NE(words[2], "0") << row << "\n" << out;
  }
  testing::Process help(Brrrctl(), {"--help"});
  ASSERT_EQ(help.Wait(seconds(30)).value_or(-1), 0);
  EXPECT_TRUE(absl::StrContains(help.out(), "\n  top ")) << help.out();
}

}  // namespace
}  // namespace brrr
