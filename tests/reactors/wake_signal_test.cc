// How poll and select are woken from another thread (reactors/common/signal_wake.h): by a
// signal, with no eventfd in the set they scan on every wait, and by an eventfd after all when
// the signal is not theirs to take. Each case runs in a process of its own (a death test in
// the threadsafe style: a fresh exec), because the signal is claimed once per process.
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "runtime/plugin_loader.h"
#include "runtime/reactor.h"
#include "tests/reactors/reactor_fixture.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

int WakeSignal() { return SIGRTMIN + 4; }

// eventfds this process has open.
int CountEventfds() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) {
    std::string path = std::string("/proc/self/fd/") + entry->d_name;
    char target[64] = {};
    if (readlink(path.c_str(), target, sizeof target - 1) > 0 && std::string(target) == "anon_inode:[eventfd]") {
      ++count;
    }
  }
  closedir(dir);
  return count;
}

// In a death test's child: ends the process with a message when `ok` is false.
void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  std::exit(1);
}

// Creates a `backend` reactor; requires that it opened `eventfds` eventfds.
std::unique_ptr<Reactor> CreateExpecting(const std::string& backend, int eventfds) {
  int before = CountEventfds();
  ReactorConfig config;
  config.one_thread = true;
  auto reactor = PluginLoader::Default().CreateReactor(backend, config);
  Require(reactor.ok(), backend + ": " + std::string(reactor.status().message()));
  int opened = CountEventfds() - before;
  Require(opened == eventfds,
          backend + " opened " + std::to_string(opened) + " eventfds, not " + std::to_string(eventfds));
  return *std::move(reactor);
}

// Requires that a wake-up from another thread ends an unbounded wait that is asleep in the kernel.
void RequireWakeEndsABlockedWait(Reactor& reactor, const std::string& backend) {
  std::string wrong = testing::OnlyTheWakeEndsAnUnboundedWait(reactor, [](pid_t) {});
  Require(wrong.empty(), backend + ": " + wrong);
}

// Whether the wake signal has a handler installed.
bool SignalHasAHandler() {
  struct sigaction now {};
  sigaction(WakeSignal(), nullptr, &now);
  return (now.sa_flags & SA_SIGINFO) != 0 || (now.sa_handler != SIG_DFL && now.sa_handler != SIG_IGN);
}

class WakeSignalTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// The control: epoll keeps its eventfd (a watched descriptor costs its waits nothing), and the
// count above sees it.
TEST_F(WakeSignalTest, EpollKeepsItsEventfd) {
  std::unique_ptr<Reactor> reactor = CreateExpecting("epoll", 1);
  RequireWakeEndsABlockedWait(*reactor, "epoll");
}

TEST_F(WakeSignalTest, PollIsWokenBySignalWithoutAnEventfd) {
  EXPECT_EXIT(
      {
        std::unique_ptr<Reactor> reactor = CreateExpecting("poll", 0);
        Require(SignalHasAHandler(), "poll did not install the wake-up signal's handler");
        RequireWakeEndsABlockedWait(*reactor, "poll");
        // Destroyed and made again (the plugin stays loaded, its handler with it): still no eventfd.
        reactor.reset();
        reactor = CreateExpecting("poll", 0);
        RequireWakeEndsABlockedWait(*reactor, "poll again");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(WakeSignalTest, SelectIsWokenBySignalWithoutAnEventfd) {
  EXPECT_EXIT(
      {
        std::unique_ptr<Reactor> reactor = CreateExpecting("select", 0);
        Require(SignalHasAHandler(), "select did not install the wake-up signal's handler");
        RequireWakeEndsABlockedWait(*reactor, "select");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// The program has its own handler on the signal: brrr leaves it alone and uses an eventfd.
TEST_F(WakeSignalTest, ASignalThatIsTakenLeavesTheProgramsHandlerAndUsesAnEventfd) {
  EXPECT_EXIT(
      {
        static std::atomic<int> handled{0};
        struct sigaction mine {};
        mine.sa_handler = [](int) { handled.fetch_add(1); };
        sigemptyset(&mine.sa_mask);
        Require(sigaction(WakeSignal(), &mine, nullptr) == 0, "installing the program's handler");
        std::unique_ptr<Reactor> reactor = CreateExpecting("poll", 1);
        RequireWakeEndsABlockedWait(*reactor, "poll");
        struct sigaction now {};
        sigaction(WakeSignal(), nullptr, &now);
        Require(now.sa_handler == mine.sa_handler, "the program's handler was replaced");
        Require(handled.load() == 0, "the program's handler saw a wake-up");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// The program ignores the signal: brrr leaves it ignored (a wake-up sent with it would be
// lost anyway) and poll and select use an eventfd, which a cross-thread wake still reaches.
TEST_F(WakeSignalTest, AnIgnoredSignalStaysIgnoredAndPollAndSelectUseAnEventfd) {
  EXPECT_EXIT(
      {
        Require(signal(WakeSignal(), SIG_IGN) != SIG_ERR, "ignoring the signal");
        for (const std::string backend : {"poll", "select"}) {
          std::unique_ptr<Reactor> reactor = CreateExpecting(backend, 1);
          RequireWakeEndsABlockedWait(*reactor, backend);
          struct sigaction now {};
          sigaction(WakeSignal(), nullptr, &now);
          Require((now.sa_flags & SA_SIGINFO) == 0 && now.sa_handler == SIG_IGN,
                  backend + " changed the ignored signal's disposition");
        }
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// poll and select in one process: each plugin has its own copy of the handler, so the second
// finds the signal taken and uses an eventfd; both are woken.
TEST_F(WakeSignalTest, TheSecondOfPollAndSelectInOneProcessUsesAnEventfd) {
  EXPECT_EXIT(
      {
        std::unique_ptr<Reactor> poll = CreateExpecting("poll", 0);
        std::unique_ptr<Reactor> select = CreateExpecting("select", 1);
        RequireWakeEndsABlockedWait(*poll, "poll");
        RequireWakeEndsABlockedWait(*select, "select");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// A child forked from a thread that has waited (the plugin knows its thread id) makes a reactor
// of its own, and a wake from another thread ends its wait: the signal goes to the child's
// thread, not to the id of the thread it was forked from (which is not in the child).
TEST_F(WakeSignalTest, AChildForkedAfterAWaitIsWokenBySignal) {
  for (const std::string backend : {"poll", "select"}) {
    EXPECT_EXIT(
        {
          std::unique_ptr<Reactor> parents = CreateExpecting(backend, 0);
          Completion c[4];
          Require(parents->wait(c, 1'000'000).ok(), backend + ": the parent's wait");
          std::string child = testing::RunInForkedChild(
              [&backend] {
                std::unique_ptr<Reactor> own = CreateExpecting(backend, 0);
                RequireWakeEndsABlockedWait(*own, backend + " in a forked child");
                return 0;
              },
              std::chrono::seconds(20));  // a wait that is never woken ends the child there
          Require(child.empty(), backend + ": the forked child's wait was not woken: " + child);
          std::exit(0);
        },
        ::testing::ExitedWithCode(0), "")
        << backend;
  }
}

TEST_F(WakeSignalTest, BrrrWakeSignalZeroKeepsTheEventfd) {
  EXPECT_EXIT(
      {
        setenv("BRRR_WAKE_SIGNAL", "0", 1);
        std::unique_ptr<Reactor> reactor = CreateExpecting("poll", 1);
        Require(!SignalHasAHandler(), "a handler was installed although BRRR_WAKE_SIGNAL=0");
        RequireWakeEndsABlockedWait(*reactor, "poll");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace brrr
