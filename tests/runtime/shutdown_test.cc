// Destroying a loop with coroutine tasks still suspended: frames are destroyed, their awaits
// release what they hold, futures of those tasks become cancelled, nothing leaks (ASan).
#include <memory>

#include "tests/runtime/coroutine_test_util.h"

namespace brrr {
namespace {

using std::chrono::seconds;

TEST(ShutdownTest, UnfinishedTasksAreDestroyedWithTheLoop) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  auto owned = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owned;
  Promise<int> never(**loop);
  auto sleeper = [](std::shared_ptr<int> keep) -> Task<> {
    co_await sleep(seconds(3600));
    (void)keep;
  };
  auto waiter = [&]() -> Task<int> { co_return co_await never.get_future(); };
  auto nested = [&]() -> Task<> { co_await waiter(); };
  Future<> a = create_task(**loop, sleeper(owned));
  Future<> b = create_task(**loop, nested());
  Future<> not_started = create_task(**loop, sleeper(owned));
  owned.reset();
  (*loop)->run_once(std::chrono::milliseconds(0));  // a and b start and suspend
  EXPECT_EQ((*loop)->stats().live_tasks, 3u);
  loop->reset();
  EXPECT_TRUE(watch.expired()) << "the frames (and what they captured) are gone";
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.cancelled());
  EXPECT_TRUE(not_started.cancelled());
}

}  // namespace
}  // namespace brrr
