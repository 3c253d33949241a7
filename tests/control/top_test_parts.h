// top_test_parts.h: what the tests of `brrrctl top` share: a tmux server of the test's own
// that runs top in a real terminal and reads the screen back (capture-pane), the words of a
// screen's rows, and echo traffic from loopback clients to show rates.
//
//   Tmux tmux(FindTmux());
//   tmux.Start(120, 40, "'brrrctl' --target=... top");
//   std::string pane = tmux.WaitForPane([](const std::string& p) { return !Row(p, "all").empty(); }, "the loops");
//
// Threads: each object is used by one test thread; Load runs a thread of its own, joined when
// it is destroyed.
#ifndef BRRR_TESTS_CONTROL_TOP_TEST_PARTS_H_
#define BRRR_TESTS_CONTROL_TOP_TEST_PARTS_H_

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr::testing::top {

using std::chrono::milliseconds;
using std::chrono::seconds;

inline std::string Brrrctl() { return Runfile("control/brrrctl/brrrctl"); }

// The tmux program on $PATH, or "".
inline std::string FindTmux() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = std::string(dir) + "/tmux";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

inline std::vector<std::string> Lines(const std::string& text) { return absl::StrSplit(text, '\n'); }

// A tmux server of the test's own (its socket in a fresh directory under /tmp: a socket's
// path must be short), with one session, "top", whose one pane runs a command.
class Tmux {
 public:
  explicit Tmux(std::string tmux) : tmux_(std::move(tmux)) {
    char dir[] = "/tmp/brrr-top-XXXXXX";
    dir_ = mkdtemp(dir) != nullptr ? dir : "";
  }
  ~Tmux() {
    Run({"kill-server"});
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  const std::string& dir() const { return dir_; }

  // Runs a tmux command against this server; its exit code (-1000 if it did not end).
  int Run(const std::vector<std::string>& args, std::string* out = nullptr) {
    std::vector<std::string> all = {"-S", dir_ + "/tmux.sock"};
    all.insert(all.end(), args.begin(), args.end());
    Process process(tmux_, all);
    std::optional<int> code = process.Wait(seconds(30));
    if (out != nullptr) *out = process.out();
    return code.value_or(-1000);
  }

  // Starts the session, `width` x `height`, running `command` (a shell command line).
  bool Start(int width, int height, const std::string& command) {
    return Run({"new-session", "-d", "-s", "top", "-x", std::to_string(width), "-y", std::to_string(height),
                command}) == 0;
  }

  std::string Capture() {
    std::string pane;
    Run({"capture-pane", "-p", "-t", "top"}, &pane);
    return pane;
  }

  // The pane once `ready` holds for it (polled, bounded: 30 s); the test fails if it never does.
  std::string WaitForPane(const std::function<bool(const std::string&)>& ready, const std::string& what) {
    std::string pane;
    for (int i = 0; i < 300; ++i) {
      pane = Capture();
      if (ready(pane)) return pane;
      std::this_thread::sleep_for(milliseconds(100));
    }
    ADD_FAILURE() << "the pane never showed " << what << " within 30 s; the last capture:\n" << pane;
    return pane;
  }

  // The pane once two captures `apart` from each other agree (bounded: 30 s): a redraw under
  // way has reached tmux. The test fails if the pane never holds still.
  std::string SettledPane(milliseconds apart) {
    std::string last = Capture();
    for (int i = 0; i < 30000 / apart.count(); ++i) {
      std::this_thread::sleep_for(apart);
      std::string pane = Capture();
      if (pane == last) return pane;
      last = std::move(pane);
    }
    ADD_FAILURE() << "the pane never held still for " << apart.count() << " ms within 30 s; the last capture:\n"
                  << last;
    return last;
  }

 private:
  std::string tmux_;
  std::string dir_;
};

// The words of the pane's line that starts with `first` (after spaces), or none.
inline std::vector<std::string> Row(const std::string& pane, const std::string& first) {
  for (const std::string& line : Lines(pane)) {
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (!words.empty() && words[0] == first) return words;
  }
  return {};
}

// The loops' table shows loop 0, loop 1 and all, with a message rate for all loops that is
// not zero and their CPU (columns: LOOP UTIL CPU READY CONNS MSG/S ...).
inline bool ShowsBusyLoops(const std::string& pane) {
  std::vector<std::string> all = Row(pane, "all");
  return absl::StrContains(pane, "LOOP  UTIL   CPU  READY  CONNS") && !Row(pane, "0").empty() &&
         !Row(pane, "1").empty() && all.size() > 5 && all[2] != "-" && all[5] != "-" && all[5] != "0";
}

inline size_t LongestLine(const std::string& pane) {
  size_t longest = 0;
  for (const std::string& line : Lines(pane)) longest = std::max(longest, line.size());
  return longest;
}

// Echo traffic from a few loopback clients until stopped (bounded: 60 s, 200,000 rounds). The
// constructor returns once every client has had two echoes back, so that the server's figures
// already show the traffic (a test failure if that takes 30 s).
class Load {
 public:
  explicit Load(uint16_t port) {
    thread_ = std::thread([this, port] {
      std::vector<std::unique_ptr<BlockingClient>> clients;
      for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<BlockingClient>(port));
      const std::string message(512, 'x');
      auto end = std::chrono::steady_clock::now() + seconds(60);
      for (int round = 0; round < 200000 && !stop_.load() && std::chrono::steady_clock::now() < end; ++round) {
        for (auto& client : clients) {
          if (!client->send_all(message) || client->recv_exact(message.size()).size() != message.size()) return;
        }
        rounds_.fetch_add(1);
        std::this_thread::sleep_for(milliseconds(1));
      }
    });
    auto give_up = std::chrono::steady_clock::now() + seconds(30);
    while (rounds_.load() < 2 && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(milliseconds(5));
    if (rounds_.load() < 2) ADD_FAILURE() << "the load's clients had no two echoes back in 30 s";
  }
  ~Load() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> rounds_{0};
  std::thread thread_;
};

}  // namespace brrr::testing::top

#endif  // BRRR_TESTS_CONTROL_TOP_TEST_PARTS_H_
