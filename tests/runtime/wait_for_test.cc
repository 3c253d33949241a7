// wait_for: a time limit that cancels the task and reports DeadlineExceeded.
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/runtime/coroutine_test_util.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using WaitForTest = testing::CoroutineTest;

TEST_F(WaitForTest, FinishesInTime) {
  auto quick = []() -> Task<int> {
    co_await sleep(milliseconds(1));
    co_return 3;
  };
  auto run = [&]() -> Task<absl::StatusOr<int>> { co_return co_await wait_for(quick(), seconds(60)); };
  absl::StatusOr<int> r = Run(run());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 3);
  EXPECT_EQ(loop().stats().pending_timers, 0u) << "the time limit's timer is cancelled";
}

// A limit past the clock's range is no limit (now + Duration::max() would overflow into the
// past and fire at once).
TEST_F(WaitForTest, ALimitOfDurationMaxNeverFires) {
  auto quick = []() -> Task<int> {
    co_await sleep(milliseconds(1));
    co_return 3;
  };
  auto run = [&]() -> Task<absl::StatusOr<int>> { co_return co_await wait_for(quick(), Duration::max()); };
  absl::StatusOr<int> r = Run(run());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 3);
}

TEST_F(WaitForTest, TimesOutCancelsTheTaskAndWaitsForIt) {
  bool cleaned_up = false;
  auto slow = [&]() -> Task<int> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      cleaned_up = true;
      throw;
    }
    co_return 1;
  };
  auto run = [&]() -> Task<absl::StatusOr<int>> { co_return co_await wait_for(slow(), milliseconds(5)); };
  TimePoint start = loop().now();
  absl::StatusOr<int> r = Run(run());
  EXPECT_EQ(loop().now() - start, milliseconds(5)) << "virtual time: the limit, exactly";
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("did not finish within 5 ms"), absl::string_view::npos)
      << r.status();
  EXPECT_TRUE(cleaned_up) << "the task was cancelled and finished before wait_for returned";
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

TEST_F(WaitForTest, VoidTaskAndException) {
  auto failing = []() -> Task<> {
    throw std::out_of_range("x");
    co_return;
  };
  auto run = [&]() -> Task<absl::Status> { co_return co_await wait_for(failing(), seconds(60)); };
  EXPECT_THROW(Run(run()), std::out_of_range) << "the task's own exception is rethrown";
  auto ok = []() -> Task<> { co_return; };
  auto run_ok = [&]() -> Task<absl::Status> { co_return co_await wait_for(ok(), seconds(60)); };
  EXPECT_TRUE(Run(run_ok()).ok());
}

// A task that returns a Status or a StatusOr has its result in that same type, and so has the
// time limit: one level to look at. (As StatusOr<absl::Status>, the limit's DeadlineExceeded
// was the value of an OK StatusOr.)
TEST_F(WaitForTest, ATaskThatReturnsAStatusHasTheLimitInThatStatus) {
  auto slow_status = []() -> Task<absl::Status> {
    co_await sleep(seconds(3600));
    co_return absl::OkStatus();
  };
  auto slow_value = []() -> Task<absl::StatusOr<int>> {
    co_await sleep(seconds(3600));
    co_return 1;
  };
  auto failing = []() -> Task<absl::StatusOr<int>> { co_return absl::NotFoundError("its own"); };
  auto run = [&]() -> Task<> {
    absl::Status timed_out = co_await wait_for(slow_status(), milliseconds(5));
    EXPECT_TRUE(absl::IsDeadlineExceeded(timed_out)) << timed_out;
    absl::StatusOr<int> value_timed_out = co_await wait_for(slow_value(), milliseconds(5));
    EXPECT_TRUE(absl::IsDeadlineExceeded(value_timed_out.status())) << value_timed_out.status();
    absl::StatusOr<int> own = co_await wait_for(failing(), seconds(60));
    EXPECT_TRUE(absl::IsNotFound(own.status())) << own.status();
  };
  static_assert(std::is_same_v<WaitResult<absl::Status>, absl::Status>);
  static_assert(std::is_same_v<WaitResult<absl::StatusOr<int>>, absl::StatusOr<int>>);
  static_assert(std::is_same_v<WaitResult<int>, absl::StatusOr<int>>);
  Run(run());
}

// The task's result and the time limit come due in the same timer phase (virtual time: both
// timers 5 ms from the same instant; the promise's was scheduled first, so it runs first). The
// task has its value by the time the limit fires: it keeps it.
TEST_F(WaitForTest, ATaskThatFinishesAsTheLimitFiresKeepsItsResult) {
  Promise<int> promise(loop());
  auto waits_for_the_promise = [&]() -> Task<int> { co_return co_await promise.get_future(); };
  auto run = [&]() -> Task<absl::StatusOr<int>> {
    loop().call_later(milliseconds(5), [&] { promise.set_result(7); });
    co_return co_await wait_for(waits_for_the_promise(), milliseconds(5));
  };
  TimePoint start = loop().now();
  absl::StatusOr<int> r = Run(run());
  EXPECT_EQ(loop().now() - start, milliseconds(5)) << "virtual time: both timers came due at once";
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 7);
}

TEST_F(WaitForTest, ATaskThatIgnoresCancellationKeepsItsResult) {
  // The timer fires, the task catches the cancellation and still produces a value:
  // nothing it produced is thrown away.
  auto stubborn = []() -> Task<int> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
    }
    co_return 11;
  };
  auto run = [&]() -> Task<absl::StatusOr<int>> { co_return co_await wait_for(stubborn(), milliseconds(2)); };
  absl::StatusOr<int> r = Run(run());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 11);
}

// The limit (two hours) is longer than the task (one hour): the task is cancelled by
// wait_for's own cancellation, not by the time limit, and its cleanup (which takes 1 ms)
// finishes before wait_for throws.
TEST_F(WaitForTest, CancellingWaitForCancelsTheTaskWaitsForItAndThrows) {
  std::vector<std::string> log;
  auto slow = [&]() -> Task<int> {
    try {
      co_await sleep(std::chrono::hours(1));
    } catch (const CancelledError&) {
      log.push_back("task cancelled");
    }
    co_await sleep(milliseconds(1));
    log.push_back("task cleaned up");
    co_return 1;
  };
  auto limited = [&]() -> Task<> {
    try {
      co_await wait_for(slow(), std::chrono::hours(2));
    } catch (const CancelledError&) {
      log.push_back("wait_for threw CancelledError");
      throw;
    }
    log.push_back("wait_for returned");
  };
  auto run = [&]() -> Task<bool> {
    Future<> f = create_task(limited());
    co_await sleep(milliseconds(1));
    f.cancel();
    co_await f.wait();
    co_return f.cancelled();
  };
  EXPECT_TRUE(Run(run()));
  EXPECT_EQ(log, (std::vector<std::string>{"task cancelled", "task cleaned up", "wait_for threw CancelledError"}));
  EXPECT_EQ(loop().stats().live_tasks, 0u);
  EXPECT_EQ(loop().stats().pending_timers, 0u) << "the time limit's timer is cancelled";
}

// wait_for's caller is cancelled and, in the same instant, the limit fires (virtual time: both
// timers 5 ms from the same instant, the caller's scheduled first): both cancel the task before
// it resumes. It has one cancellation to handle, and its cleanup runs to the end before
// wait_for throws.
TEST_F(WaitForTest, ALimitAndACancelInTheSameInstantInterruptTheTaskOnce) {
  std::vector<std::string> log;
  auto slow = [&]() -> Task<> {
    try {
      co_await sleep(std::chrono::hours(1));
    } catch (const CancelledError&) {
      log.push_back("task cancelled");
    }
    co_await sleep(milliseconds(1));
    log.push_back("task cleaned up");
  };
  auto limited = [&]() -> Task<> {
    absl::Status status = co_await wait_for(slow(), milliseconds(5));
    log.push_back("wait_for returned " + status.ToString());
  };
  auto run = [&]() -> Task<bool> {
    Future<> f = create_task(limited());
    loop().call_later(milliseconds(5), [f]() mutable { f.cancel(); });
    co_await f.wait();
    co_return f.cancelled();
  };
  EXPECT_TRUE(Run(run()));
  EXPECT_EQ(log, (std::vector<std::string>{"task cancelled", "task cleaned up"}));
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

}  // namespace
}  // namespace brrr
