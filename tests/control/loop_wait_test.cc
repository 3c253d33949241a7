// How long an admin action waits for a loop, given what is left of its caller's deadline
// (control/admin/loop_wait.h).
#include "control/admin/loop_wait.h"

#include <chrono>

#include "gtest/gtest.h"

namespace brrr::control {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr Duration kLongest = seconds(5);

// A long deadline: the whole wait.
TEST(LoopWaitTest, ALongDeadlineWaitsTheLongest) {
  EXPECT_EQ(LoopWait(seconds(60), kLongest), kLongest);
  EXPECT_EQ(LoopWait(milliseconds(5600), kLongest), kLongest);
}

// brrrctl's default deadline is the longest wait itself: a tenth is kept for the answer.
TEST(LoopWaitTest, TheDefaultDeadlineKeepsATenthForTheAnswer) {
  EXPECT_EQ(LoopWait(seconds(5), kLongest), milliseconds(4500));
  EXPECT_EQ(LoopWait(seconds(2), kLongest), milliseconds(1750));  // at least 250 ms
}

// A short deadline still waits half of what is left, not nothing: a wait of nothing called the
// loops of an idle server busy whenever the call got there before they did.
TEST(LoopWaitTest, AShortDeadlineWaitsHalfOfWhatIsLeft) {
  EXPECT_EQ(LoopWait(milliseconds(200), kLongest), milliseconds(100));
  EXPECT_EQ(LoopWait(milliseconds(2), kLongest), milliseconds(1));
}

TEST(LoopWaitTest, NothingLeftWaitsNothing) {
  EXPECT_EQ(LoopWait(Duration::zero(), kLongest), Duration::zero());
  EXPECT_EQ(LoopWait(-milliseconds(3), kLongest), Duration::zero());
}

// The wait never falls as more is left: no deadline gets a shorter wait than a sooner one.
TEST(LoopWaitTest, TheWaitGrowsWithWhatIsLeft) {
  Duration before = Duration::zero();
  for (Duration left = Duration::zero(); left <= seconds(7); left += milliseconds(1)) {
    const Duration wait = LoopWait(left, kLongest);
    EXPECT_GE(wait, before) << "left " << left.count() << " ns";
    EXPECT_LE(wait, left);
    before = wait;
  }
}

}  // namespace
}  // namespace brrr::control
