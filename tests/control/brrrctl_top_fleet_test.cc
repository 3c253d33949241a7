// `brrrctl top` on several targets (--target=A,B,C, --targets_file): two real brrr-echo under
// load from loopback clients and one address nobody listens on. Piped, each tick prints every
// target's block and the fleet's total line, whose sums are those of the targets' own lines,
// and a target that answered none of the polls ends top with exit 3;
// in a real terminal (tmux), a row per target and the total, `t` steps through each target's
// own view and back, and a target that dies is shown unreachable while the other goes on.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/control/top_test_parts.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/side_ports.h"
#include "tests/testing/skips.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::top::Brrrctl;
using testing::top::FindTmux;
using testing::top::Lines;
using testing::top::Load;
using testing::top::Row;
using testing::top::Tmux;

// brrr-echo with its admin plane on a free loopback port.
struct Instance {
  explicit Instance(int loops) {
    testing::SidePorts ports;
    process = testing::StartOnFreeSidePorts(
        testing::Runfile("server/brrr-echo/brrr-echo"),
        [&](const testing::SidePorts& p) {
          return std::vector<std::string>{"--port=0", "--loops=" + std::to_string(loops),
                                          "--admin_port=" + std::to_string(p.admin)};
        },
        &ports);
    admin_port = ports.admin;
    port = process->ListeningPort();
    EXPECT_NE(port, 0) << process->err();
    EXPECT_TRUE(process->WaitForOutput("admin plane on " + admin())) << process->err();
  }
  ~Instance() {
    if (!process->Wait(milliseconds(0)).has_value()) process->Signal(SIGTERM);
    EXPECT_TRUE(process->Wait(seconds(30)).has_value());
  }
  std::string admin() const { return "127.0.0.1:" + std::to_string(admin_port); }

  uint16_t admin_port = 0;
  uint16_t port = 0;
  std::unique_ptr<testing::Process> process;
};

// NAME=VALUE words of a plain line, after its kind.
std::map<std::string, std::string> Words(const std::string& line) {
  std::map<std::string, std::string> words;
  for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    size_t eq = word.find('=');
    if (eq != absl::string_view::npos) words[std::string(word.substr(0, eq))] = std::string(word.substr(eq + 1));
  }
  return words;
}

uint64_t Count(const std::map<std::string, std::string>& words, const std::string& name) {
  uint64_t value = 0;
  auto it = words.find(name);
  EXPECT_TRUE(it != words.end() && absl::SimpleAtoi(it->second, &value)) << name;
  return value;
}

TEST(BrrrctlTopFleetTest, PipedEachTickHasEveryTargetsBlockAndTheirTotal) {
  Instance a(2);
  Instance b(1);
  const std::string down = "127.0.0.1:" + std::to_string(testing::PickFreePort());
  Load load_a(a.port);
  Load load_b(b.port);
  testing::Process top(Brrrctl(), {"--target=" + a.admin() + "," + b.admin() + "," + down, "top", "--count=4",
                                   "--interval=200ms", "--timeout=20s"});
  std::optional<int> code = top.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  // The target that answered none of the polls fails the run, as with the other commands.
  EXPECT_EQ(*code, 3) << top.err();
  EXPECT_TRUE(absl::StrContains(top.err(), "brrrctl: 1 of 3 targets not ok: " + down + " (exit 3)")) << top.err();

  // Per block: the targets in the order given, then the total of the two that answer.
  int blocks = 0;
  bool rates_seen = false;
  std::map<std::string, std::map<std::string, std::string>> all;  // this block's loop=all line per target
  std::string target;
  for (const std::string& line : Lines(top.out())) {
    if (absl::StartsWith(line, "top target=")) {
      target = Words(line)["target"];
      const std::string want = target == down        ? " unreachable=\"cannot reach"
                               : target == a.admin() ? " loops=2 "
                                                     : " loops=1 ";
      // A live target seen as unreachable (once, under a loaded suite: "No such file or
      // directory" from gRPC's connect): the servers' stderr says whether they closed it.
      EXPECT_TRUE(absl::StrContains(line, want)) << line << "\nstderr of " << a.admin() << ":\n"
                                                 << a.process->err() << "stderr of " << b.admin() << ":\n"
                                                 << b.process->err();
    } else if (absl::StartsWith(line, "loop=all ")) {
      all[target] = Words(line);
    } else if (absl::StartsWith(line, "total ")) {
      ++blocks;
      std::map<std::string, std::string> total = Words(line);
      EXPECT_EQ(total["targets"], "3") << line;
      EXPECT_EQ(total["answering"], "2") << line;
      EXPECT_EQ(total["loops"], "3") << line;
      ASSERT_EQ(all.size(), 2u) << top.out();
      for (const char* name : {"conns", "ready", "stalls"}) {
        EXPECT_EQ(Count(total, name), Count(all[a.admin()], name) + Count(all[b.admin()], name)) << name << ": " << line;
      }
      if (total["msg_per_s"] != "-") {
        double sum = 0, ra = 0, rb = 0;
        ASSERT_TRUE(absl::SimpleAtod(total["msg_per_s"], &sum)) << line;
        if (absl::SimpleAtod(all[a.admin()]["msg_per_s"], &ra) && absl::SimpleAtod(all[b.admin()]["msg_per_s"], &rb)) {
          // Each figure is printed rounded: the sum to within a part in a thousand.
          EXPECT_NEAR(sum, ra + rb, 0.001 * sum + 1) << line;
          rates_seen |= ra > 0 && rb > 0;
        }
      }
      all.clear();
    }
  }
  EXPECT_EQ(blocks, 4) << top.out();
  EXPECT_TRUE(rates_seen) << top.out();

  // The same targets from a file, one per line.
  const std::string file = std::string(std::getenv("TEST_TMPDIR")) + "/fleet.txt";
  std::ofstream(file) << a.admin() << "\n" << b.admin() << "\n";
  testing::Process from_file(Brrrctl(), {"--targets_file=" + file, "top", "--count=1", "--interval=100ms"});
  ASSERT_EQ(from_file.Wait(seconds(30)).value_or(-1), 0) << from_file.err();
  EXPECT_TRUE(absl::StrContains(from_file.out(), "\ntotal targets=2 answering=2 loops=3 ")) << from_file.out();

  // --loop=1: instance b has no loop 1; top says which target lacks it.
  testing::Process no_loop(Brrrctl(), {"--target=" + a.admin() + "," + b.admin(), "top", "--loop=1", "--count=1"});
  ASSERT_EQ(no_loop.Wait(seconds(30)).value_or(-1), 1) << no_loop.err();
  EXPECT_TRUE(absl::StrContains(no_loop.err(), b.admin() + ": ")) << no_loop.err();
}

// A script sees the failure: with no target answering any poll, --count ends top with exit 3, as
// every command on several targets ends when none can be reached (the worst of the targets').
TEST(BrrrctlTopFleetTest, PipedWithNoTargetAnsweringItExitsThree) {
  const std::string down_a = "127.0.0.1:" + std::to_string(testing::PickFreePort());
  const std::string down_b = "127.0.0.1:" + std::to_string(testing::PickFreePort());
  testing::Process top(Brrrctl(), {"--target=" + down_a + "," + down_b, "top", "--count=2", "--interval=100ms"});
  std::optional<int> code = top.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3) << top.err();
  EXPECT_TRUE(absl::StrContains(top.err(), "brrrctl: 2 of 2 targets not ok: " + down_a + " (exit 3), " + down_b +
                                               " (exit 3)"))
      << top.err();
  int totals = 0;
  for (const std::string& line : Lines(top.out())) {
    if (absl::StartsWith(line, "total ")) {
      ++totals;
      EXPECT_TRUE(absl::StrContains(line, " answering=0 ")) << line;
    }
  }
  EXPECT_EQ(totals, 2) << top.out();
}

TEST(BrrrctlTopFleetTest, OnATerminalARowPerTargetTheTotalAndEachTargetAKeyAway) {
  const std::string tmux_path = FindTmux();
  if (tmux_path.empty()) BRRR_SKIP_OR_FAIL("tmux", "tmux is not installed (tools/bootstrap.sh installs it)");
  Instance a(2);
  auto b = std::make_unique<Instance>(1);
  const std::string b_admin = b->admin();
  Load load_a(a.port);
  Tmux tmux(tmux_path);
  ASSERT_FALSE(tmux.dir().empty());
  const std::string exit_file = tmux.dir() + "/exit";
  ASSERT_TRUE(tmux.Start(140, 40, "'" + Brrrctl() + "' --target=" + a.admin() + "," + b_admin +
                                      " top --interval=200ms; echo $? > '" + exit_file + "'"));

  std::string pane = tmux.WaitForPane(
      [&](const std::string& p) {
        std::vector<std::string> total = Row(p, "total");
        return absl::StrContains(p, "2 targets, 2 answering, 3 loops") && !Row(p, a.admin()).empty() &&
               !Row(p, b_admin).empty() && total.size() > 5 && total[5] != "-" && total[5] != "0";
      },
      "a row per target and a total with a message rate");
  EXPECT_TRUE(absl::StrContains(pane, "TARGET")) << pane;
  EXPECT_TRUE(absl::StrContains(pane, "t: one target")) << pane;

  // t: the first target's own view (its loops), then the second's, then all again.
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "t"}), 0);
  tmux.WaitForPane(
      [&](const std::string& p) {
        return absl::StrContains(p, "brrrctl top  " + a.admin() + "  up ") && !Row(p, "1").empty() &&
               !Row(p, "all").empty() && Row(p, "total").empty();
      },
      "the first target's loops after t");
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "t"}), 0);
  tmux.WaitForPane(
      [&](const std::string& p) {
        return absl::StrContains(p, "brrrctl top  " + b_admin + "  up ") && !Row(p, "0").empty() && Row(p, "1").empty();
      },
      "the second target's one loop after t again");
  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "t"}), 0);
  tmux.WaitForPane([&](const std::string& p) { return !Row(p, "total").empty(); }, "every target again after t");

  // The second dies: its row says why, the total counts the one answering.
  b->process->Signal(SIGKILL);
  b.reset();
  pane = tmux.WaitForPane(
      [&](const std::string& p) {
        std::vector<std::string> row = Row(p, b_admin);
        return absl::StrContains(p, "2 targets, 1 answering, 2 loops") && row.size() > 1 && row[1] == "unreachable:";
      },
      "the dead target unreachable, one answering");
  EXPECT_FALSE(Row(pane, a.admin()).empty()) << pane;

  ASSERT_EQ(tmux.Run({"send-keys", "-t", "top", "q"}), 0);
  // The exit code the shell wrote (polled, bounded: 30 s).
  std::optional<int> code;
  for (int i = 0; i < 300 && !code; ++i) {
    std::ifstream in(exit_file);
    if (int value = -1; in >> value) {
      code = value;
    } else {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  ASSERT_TRUE(code.has_value()) << tmux.Capture();
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace brrr
