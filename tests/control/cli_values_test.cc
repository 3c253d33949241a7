// brrrctl's value syntax: rates and counts with decimal suffixes, loop lists, milliseconds.
#include "control/brrrctl/cli_values.h"

#include "gtest/gtest.h"

namespace brrr::control {
namespace {

TEST(ParseQuantityTest, TakesPlainNumbersAndDecimalSuffixes) {
  EXPECT_EQ(*ParseQuantity("0"), 0u);
  EXPECT_EQ(*ParseQuantity("1500"), 1500u);
  EXPECT_EQ(*ParseQuantity("10K"), 10000u);
  EXPECT_EQ(*ParseQuantity("10k"), 10000u);
  EXPECT_EQ(*ParseQuantity("10KB"), 10000u);
  EXPECT_EQ(*ParseQuantity("10KB/s"), 10000u);
  EXPECT_EQ(*ParseQuantity("500B"), 500u);
  EXPECT_EQ(*ParseQuantity("1.5M"), 1500000u);
  EXPECT_EQ(*ParseQuantity("2G"), 2000000000u);
  EXPECT_EQ(*ParseQuantity("0.001T"), 1000000000u);
  EXPECT_EQ(*ParseQuantity("unlimited"), 0u);
  EXPECT_EQ(*ParseQuantity("18446744073709551615"), 18446744073709551615u);
}

TEST(ParseQuantityTest, RefusesWhatItCannotReadExactly) {
  for (const char* bad : {"", "K", "ten", "10QB", "-5", "1.5", "1.0005K", "1e3", "10 K", "18446744073709551616",
                          "20000000T", "1..5K", ".5K"}) {
    EXPECT_FALSE(ParseQuantity(bad).ok()) << bad;
  }
  absl::StatusOr<uint64_t> binary = ParseQuantity("10KiB");
  ASSERT_FALSE(binary.ok());
  EXPECT_NE(binary.status().message().find("decimal"), absl::string_view::npos) << binary.status();
}

TEST(FormatQuantityTest, IsTheShortestExactForm) {
  EXPECT_EQ(FormatQuantity(0), "0");
  EXPECT_EQ(FormatQuantity(1500), "1500");
  EXPECT_EQ(FormatQuantity(10000), "10K");
  EXPECT_EQ(FormatQuantity(3000000), "3M");
  for (uint64_t v : {0ull, 999ull, 1000ull, 1500ull, 123000000ull, 5000000000000ull}) {
    EXPECT_EQ(*ParseQuantity(FormatQuantity(v)), v) << v;
  }
}

TEST(LoopListTest, ParsesCommaSeparatedIndexes) {
  LoopList list;
  std::string error;
  ASSERT_TRUE(AbslParseFlag("0,2,3", &list, &error)) << error;
  EXPECT_EQ(list.loops, (std::vector<uint32_t>{0, 2, 3}));
  EXPECT_EQ(AbslUnparseFlag(list), "0,2,3");
  ASSERT_TRUE(AbslParseFlag("", &list, &error)) << error;
  EXPECT_TRUE(list.loops.empty());
  EXPECT_FALSE(AbslParseFlag("0,x", &list, &error));
  EXPECT_NE(error.find("\"x\" is not a loop index"), std::string::npos) << error;
  EXPECT_FALSE(AbslParseFlag("-1", &list, &error));
  EXPECT_FALSE(AbslParseFlag("1,", &list, &error));
}

TEST(WholeMillisecondsTest, TakesWholeMillisecondsOnly) {
  EXPECT_EQ(*WholeMilliseconds(absl::Milliseconds(300)), 300u);
  EXPECT_EQ(*WholeMilliseconds(absl::Seconds(2)), 2000u);
  EXPECT_EQ(*WholeMilliseconds(absl::ZeroDuration()), 0u);
  EXPECT_FALSE(WholeMilliseconds(absl::Microseconds(1500)).ok());
  EXPECT_FALSE(WholeMilliseconds(absl::Milliseconds(-1)).ok());
  EXPECT_FALSE(WholeMilliseconds(absl::InfiniteDuration()).ok());
  EXPECT_FALSE(WholeMilliseconds(absl::Hours(24 * 50)).ok());  // past 2^32 ms
}

// --interval takes the server's WatchStats range, 50ms to 1h, both ends included: brrrctl must
// not refuse as a usage error an interval the server would take.
TEST(SampleIntervalMillisecondsTest, TakesTheServersRangeWithBothEnds) {
  EXPECT_EQ(SampleIntervalMilliseconds(absl::Milliseconds(50)).value_or(0), 50u);
  EXPECT_EQ(SampleIntervalMilliseconds(absl::Seconds(1)).value_or(0), 1000u);
  EXPECT_EQ(SampleIntervalMilliseconds(absl::Hours(1)).value_or(0), 3600000u);
  EXPECT_FALSE(SampleIntervalMilliseconds(absl::Milliseconds(49)).ok());
  EXPECT_FALSE(SampleIntervalMilliseconds(absl::Hours(1) + absl::Milliseconds(1)).ok());
  EXPECT_FALSE(SampleIntervalMilliseconds(absl::Microseconds(50500)).ok());  // not whole milliseconds
}

TEST(FormatMillisecondsTest, ReadsLikeADuration) {
  EXPECT_EQ(FormatMilliseconds(0), "0");
  EXPECT_EQ(FormatMilliseconds(250), "250ms");
  EXPECT_EQ(FormatMilliseconds(3723456), "1h2m3.456s");
  EXPECT_EQ(FormatMilliseconds(0.4), "0");
}

}  // namespace
}  // namespace brrr::control
