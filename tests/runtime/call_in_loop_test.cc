// CallInLoop, the admin plane's way into a loop: the function runs on the loop's thread and its
// value comes back; many threads at once lose nothing; a loop that is blocked or not running
// gives UNAVAILABLE saying why, and the function then never runs (an action either happened
// and was answered, or did not happen). CallInLoops asks several loops at once: a blocked one
// costs one wait and keeps no answer of the others back, and the first answer that is enough
// ends the wait. Runs under ThreadSanitizer too.
#include "runtime/call_in_loop.h"

#include <array>
#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Starts `call` on a thread of its own; null if it has not returned within 5 s. A call that
// hangs is left running and its future leaked (its destructor would wait for it), so that the
// test fails instead of hanging.
template <typename F>
std::unique_ptr<std::future<std::invoke_result_t<F&>>> WithinFiveSeconds(F call) {
  auto f = std::make_unique<std::future<std::invoke_result_t<F&>>>(std::async(std::launch::async, std::move(call)));
  if (f->wait_for(seconds(5)) == std::future_status::ready) return f;
  (void)f.release();
  return nullptr;
}

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

// Holds `loop` with a task until `release`; returns once the task runs.
void Hold(EventLoop& loop, std::atomic<bool>& release) {
  auto holding = std::make_shared<std::atomic<bool>>(false);
  loop.call_soon_threadsafe(
      [holding, &release] {
        *holding = true;
        TimePoint give_up = Clock::now() + seconds(30);
        // Sleeps, not spins: the other loops' threads must get a core meanwhile.
        while (!release.load() && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(1));
      },
      "test:holder");
  while (!holding->load()) std::this_thread::yield();
}

// A task holds the loop until the test lets it go: the call gets UNAVAILABLE naming that task
// (however short its time limit: the loop cannot run it before the release), and the function
// never runs, not even once the loop is free.
TEST_F(CallInLoopTest, ABlockedLoopGivesUnavailableAndTheFunctionNeverRuns) {
  RunOnAThread();
  std::atomic<bool> release{false};
  Hold(*loop_, release);
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
  // The next call, queued after the abandoned one, runs after it would have.
  absl::StatusOr<int> after = CallInLoop(*loop_, [ran] { return ran->load(); }, seconds(30), "test:after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 0) << "a call its caller gave up on ran anyway";
}

// A limit past the clock's range is no limit, as for the loop's timers: the call is answered.
TEST_F(CallInLoopTest, ALimitOfDurationMaxWaitsForTheAnswer) {
  RunOnAThread();
  auto call = WithinFiveSeconds([this] {
    return CallInLoop(
        *loop_, [] { return 5; }, Duration::max(), "test:max");
  });
  ASSERT_NE(call, nullptr) << "the call did not return";
  absl::StatusOr<int> answer = call->get();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(*answer, 5);
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
  // Once it runs, the abandoned call does not.
  RunOnAThread();
  absl::StatusOr<int> after = CallInLoop(*loop_, [ran] { return ran->load(); }, seconds(30), "test:after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 0);
}

// The function's exception comes back to the caller, who would otherwise wait for its answer
// for ever; the loop goes on.
TEST_F(CallInLoopTest, AFunctionThatThrowsRethrowsInTheCaller) {
  RunOnAThread();
  auto call = WithinFiveSeconds([this] {
    return CallInLoop(*loop_, []() -> int { throw std::runtime_error("boom"); }, seconds(30), "test:throws");
  });
  ASSERT_NE(call, nullptr) << "CallInLoop did not return within 5 s of a function that threw";
  try {
    (void)call->get();
    ADD_FAILURE() << "expected the function's exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  absl::StatusOr<int> after = CallInLoop(*loop_, [] { return 1; }, seconds(30), "test:after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 1);
}

// Three loops, each on a thread of its own.
class CallInLoopsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      owned_.push_back(testing::NewLoop("epoll"));
      ASSERT_NE(owned_.back(), nullptr);
      loops_.push_back(owned_.back().get());
      threads_.emplace_back([loop = loops_.back()] { loop->run_forever(); });
    }
  }
  void TearDown() override {
    for (EventLoop* loop : loops_) loop->stop();
    for (std::thread& t : threads_) t.join();
  }
  static bool Never(int) { return false; }

  std::vector<std::unique_ptr<EventLoop>> owned_;
  std::vector<EventLoop*> loops_;
  std::vector<std::thread> threads_;
};

TEST_F(CallInLoopsTest, EveryLoopAnswersOnItsOwnThread) {
  std::vector<std::optional<std::thread::id>> where = CallInLoops(
      loops_, [](size_t) { return std::this_thread::get_id(); }, [](const std::thread::id&) { return false; },
      seconds(30), "test:where");
  ASSERT_EQ(where.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(where[i].has_value()) << i;
    EXPECT_EQ(*where[i], threads_[i].get_id()) << i;
  }
}

// Loop 1 is held: the others answer, loop 1's answer is missing after one wait, and its call
// never runs.
TEST_F(CallInLoopsTest, ABlockedLoopMissesOnlyItsOwnAnswerAndItsCallNeverRuns) {
  std::atomic<bool> release{false};
  Hold(*loops_[1], release);
  auto ran = std::make_shared<std::array<std::atomic<int>, 3>>();
  std::vector<std::optional<int>> answers = CallInLoops(
      loops_,
      [ran](size_t i) {
        ++(*ran)[i];
        return static_cast<int>(i) * 10;
      },
      Never, seconds(5), "test:some");  // the free loops answer at once; the wait is the held one's
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0], std::optional<int>(0));
  EXPECT_FALSE(answers[1].has_value());
  EXPECT_EQ(answers[2], std::optional<int>(20));
  release = true;
  absl::StatusOr<int> after = CallInLoop(*loops_[1], [ran] { return (*ran)[1].load(); }, seconds(30), "test:after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 0) << "the call the caller gave up on ran anyway";
}

// The answer that is enough ends the wait at once, though another loop is held for 30 s; the
// held loop's call never runs.
TEST_F(CallInLoopsTest, AnAnswerThatIsEnoughEndsTheWait) {
  std::atomic<bool> release{false};
  Hold(*loops_[0], release);
  auto ran = std::make_shared<std::array<std::atomic<int>, 3>>();
  std::vector<std::optional<int>> answers = CallInLoops(
      loops_,
      [ran](size_t i) {
        ++(*ran)[i];
        return static_cast<int>(i);
      },
      [](int answer) { return answer == 2; }, seconds(30), "test:enough");
  EXPECT_FALSE(answers[0].has_value());
  EXPECT_EQ(answers[2], std::optional<int>(2));
  EXPECT_FALSE(release.load()) << "the held loop was waited for";
  release = true;
  absl::StatusOr<int> after = CallInLoop(*loops_[0], [ran] { return (*ran)[0].load(); }, seconds(30), "test:after");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 0);
}

// Loop 1's function throws: the caller gets the exception (once every call that began has
// ended). The same when `enough` throws.
TEST_F(CallInLoopsTest, AFunctionOrEnoughThatThrowsRethrowsInTheCaller) {
  auto ran = std::make_shared<std::array<std::atomic<int>, 3>>();
  auto fn_throws = WithinFiveSeconds([this, ran] {
    return CallInLoops(
        loops_,
        [ran](size_t i) {
          ++(*ran)[i];
          if (i == 1) throw std::runtime_error("loop 1 failed");
          return static_cast<int>(i);
        },
        Never, seconds(30), "test:throws");
  });
  ASSERT_NE(fn_throws, nullptr) << "CallInLoops did not return within 5 s of a function that threw";
  EXPECT_THROW((void)fn_throws->get(), std::runtime_error);
  EXPECT_EQ((*ran)[1].load(), 1);

  auto enough_throws = WithinFiveSeconds([this] {
    return CallInLoops(
        loops_, [](size_t i) { return static_cast<int>(i); },
        [](int answer) -> bool {
          if (answer == 2) throw std::logic_error("cannot judge 2");
          return false;
        },
        seconds(30), "test:enough_throws");
  });
  ASSERT_NE(enough_throws, nullptr) << "CallInLoops did not return within 5 s of an `enough` that threw";
  EXPECT_THROW((void)enough_throws->get(), std::logic_error);
}

}  // namespace
}  // namespace brrr
