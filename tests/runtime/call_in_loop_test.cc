// CallInLoop, the admin plane's way into a loop: the function runs on the loop's thread and its
// value comes back; many threads at once lose nothing; a loop that is blocked or not running
// gives UNAVAILABLE saying why, and the function still runs later without touching freed
// memory. Runs under ThreadSanitizer too.
#include "runtime/call_in_loop.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A loop running on its own thread until the test ends.
class CallInLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_ = testing::NewLoop("epoll");
    ASSERT_NE(loop_, nullptr);
  }
  void RunOnAThread() {
    thread_ = std::thread([this] {
      loop_thread_ = std::this_thread::get_id();
      started_ = true;
      loop_->run_forever();
    });
    while (!started_.load()) std::this_thread::yield();
  }
  void TearDown() override {
    if (thread_.joinable()) {
      loop_->stop();
      thread_.join();
    }
    loop_.reset();
  }

  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
  std::atomic<bool> started_{false};
  std::thread::id loop_thread_;
};

TEST_F(CallInLoopTest, RunsOnTheLoopThreadAndReturnsItsValue) {
  RunOnAThread();
  absl::StatusOr<std::thread::id> ran_on =
      CallInLoop(*loop_, [] { return std::this_thread::get_id(); }, seconds(30), "test:where");
  ASSERT_TRUE(ran_on.ok()) << ran_on.status();
  EXPECT_EQ(*ran_on, loop_thread_);
  absl::StatusOr<std::string> text = CallInLoop(*loop_, [] { return std::string(100000, 'v'); }, seconds(30), "test:big");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->size(), 100000u);
}

// Four threads, 500 calls each, every one answered with its own value; the loop's state is
// touched on its thread only (TSan checks the hand-offs).
TEST_F(CallInLoopTest, ManyThreadsAtOnceEachGetTheirOwnAnswer) {
  RunOnAThread();
  uint64_t on_loop = 0;  // the loop thread's only
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        int mine = t * 1000 + i;
        absl::StatusOr<int> got = CallInLoop(
            *loop_,
            [&on_loop, mine] {
              ++on_loop;
              return mine;
            },
            seconds(30), "test:many");
        if (!got.ok() || *got != mine) ++wrong;
      }
    });
  }
  for (std::thread& c : callers) c.join();
  EXPECT_EQ(wrong.load(), 0);
  absl::StatusOr<uint64_t> total = CallInLoop(*loop_, [&on_loop] { return on_loop; }, seconds(30), "test:total");
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(*total, 2000u);
}

// A task holds the loop until the test lets it go: the call gets UNAVAILABLE naming that task
// (however short its time limit: the loop cannot run it before the release), and the function
// runs once the loop is free, on state it shares, not on the caller's freed frame.
TEST_F(CallInLoopTest, ABlockedLoopGivesUnavailableAndTheFunctionRunsLater) {
  RunOnAThread();
  std::atomic<bool> holding{false};
  std::atomic<bool> release{false};
  loop_->call_soon_threadsafe(
      [&] {
        holding = true;
        TimePoint give_up = Clock::now() + seconds(30);
        while (!release.load() && Clock::now() < give_up) std::this_thread::yield();
      },
      "test:holder");
  while (!holding.load()) std::this_thread::yield();
  auto ran = std::make_shared<std::atomic<int>>(0);
  absl::StatusOr<int> answer = CallInLoop(
      *loop_,
      [ran] {
        ++*ran;
        return 1;
      },
      milliseconds(10), "test:late");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  std::string message(answer.status().message());
  EXPECT_NE(message.find("did not answer within 10 ms"), std::string::npos) << message;
  EXPECT_NE(message.find("it has been running test:holder for"), std::string::npos) << message;
  EXPECT_EQ(ran->load(), 0);
  release = true;
  // The late function runs once the holder is done: the next call (queued after it) sees it.
  absl::StatusOr<int> after = CallInLoop(*loop_, [ran] { return ran->load(); }, seconds(30), "test:after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 1);
}

TEST_F(CallInLoopTest, ALoopThatIsNotRunningGivesUnavailable) {
  auto ran = std::make_shared<std::atomic<int>>(0);
  absl::StatusOr<int> answer = CallInLoop(
      *loop_,
      [ran] {
        ++*ran;
        return 1;
      },
      milliseconds(10), "test:idle");
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(answer.status().message().find("it is not running"), absl::string_view::npos) << answer.status();
  // Once it runs, it runs the call.
  RunOnAThread();
  absl::StatusOr<int> after = CallInLoop(*loop_, [ran] { return ran->load(); }, seconds(30), "test:after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 1);
}

}  // namespace
}  // namespace brrr
