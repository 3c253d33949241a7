// DrainWatchers: each watcher runs once as the drain starts, at once when added after, never
// once removed; Remove waits for a watcher that is running on another thread.
#include "server/drain_watchers.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace brrr::server {
namespace {

TEST(DrainWatchersTest, EachRunsOnceAsTheDrainStarts) {
  DrainWatchers watchers;
  int a = 0, b = 0;
  watchers.Add([&] { ++a; });
  watchers.Add([&] { ++b; });
  EXPECT_EQ(a + b, 0);
  watchers.Started();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  watchers.Started();  // a drain starts once
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
}

TEST(DrainWatchersTest, OneAddedAfterTheStartRunsAtOnce) {
  DrainWatchers watchers;
  watchers.Started();
  int ran = 0;
  uint64_t id = watchers.Add([&] { ++ran; });
  EXPECT_EQ(ran, 1);
  watchers.Remove(id);  // ran already: nothing to do
  watchers.Started();
  EXPECT_EQ(ran, 1);
}

TEST(DrainWatchersTest, OneRemovedNeverRuns) {
  DrainWatchers watchers;
  int removed = 0, kept = 0;
  uint64_t id = watchers.Add([&] { ++removed; });
  watchers.Add([&] { ++kept; });
  watchers.Remove(id);
  watchers.Started();
  EXPECT_EQ(removed, 0);
  EXPECT_EQ(kept, 1);
}

// What the watcher touches may go once Remove returns: Remove waits for a watcher running on the
// thread that started the drain.
TEST(DrainWatchersTest, RemoveWaitsForAWatcherRunning) {
  DrainWatchers watchers;
  std::atomic<bool> running{false};
  std::atomic<bool> release{false};
  std::atomic<bool> done{false};
  uint64_t id = watchers.Add([&] {
    running.store(true);
    while (!release.load()) std::this_thread::yield();
    done.store(true);
  });
  std::thread drain([&] { watchers.Started(); });
  while (!running.load()) std::this_thread::yield();
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    watchers.Remove(id);
    removed.store(true);
    EXPECT_TRUE(done.load()) << "Remove returned while the watcher ran";
  });
  // A moment for the remover to reach Remove (without it, the test passes without showing the wait).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  release.store(true);
  remover.join();
  drain.join();
  EXPECT_TRUE(removed.load());
}

}  // namespace
}  // namespace brrr::server
