// DurationRange: the check, and the texts that state a range, from the same figures.
#include "runtime/duration_range.h"

#include <chrono>

#include "gtest/gtest.h"

namespace brrr {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(DurationRangeTest, HoldsItsEndsAndNothingPastThem) {
  constexpr DurationRange range{.min = milliseconds(1), .max = seconds(60)};
  EXPECT_TRUE(range.Contains(milliseconds(1)));
  EXPECT_TRUE(range.Contains(seconds(60)));
  EXPECT_FALSE(range.Contains(Duration(999'999)));
  EXPECT_FALSE(range.Contains(seconds(60) + Duration(1)));
  EXPECT_FALSE(range.Contains(Duration::max()));
  EXPECT_FALSE(range.Contains(Duration::min()));
}

TEST(DurationRangeTest, StatesItsRangeAsFlagsAreWritten) {
  constexpr DurationRange day{.min = Duration::zero(), .max = hours(24), .note = " (0: never)"};
  EXPECT_EQ(day.ToString(), "0 to 24h (0: never)");
  EXPECT_EQ(day.Refusal("--idle_timeout", hours(25)), "--idle_timeout=25h: must be from 0 to 24h (0: never)");
  EXPECT_EQ(day.Refusal("--idle_timeout", -seconds(1)), "--idle_timeout=-1s: must be from 0 to 24h (0: never)");
  // What an absl::Duration flag's "inf" and "-inf" become.
  EXPECT_EQ(day.Refusal("--drain_timeout", Duration::max()), "--drain_timeout=inf: must be from 0 to 24h (0: never)");
  EXPECT_EQ(FormatFlagDuration(Duration::min()), "-inf");
  EXPECT_EQ((DurationRange{.min = milliseconds(1), .max = std::chrono::minutes(10)}).ToString(), "1ms to 10m");
  EXPECT_EQ(FormatFlagDuration(std::chrono::microseconds(50)), "50us");
}

}  // namespace
}  // namespace brrr
