// runtime/integer_flag.h and runtime/integer_range.h: every whole number absl's integer flags
// read is read, of any size and sign, and a range (one whose least value grows with another
// option's too) says what it holds and how it is written.
#include "runtime/integer_flag.h"

#include <cstdint>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "runtime/integer_range.h"

namespace brrr {
namespace {

constexpr IntegerRange kOneTo256{.min = 1, .max = 256};
constexpr IntegerRange kEveryUint64{.min = 0, .max = UINT64_MAX};

IntegerFlag Parsed(const std::string& text) {
  IntegerFlag flag;
  std::string error;
  EXPECT_TRUE(AbslParseFlag(text, &flag, &error)) << text << ": " << error;
  return flag;
}

TEST(IntegerFlagTest, ReadsWhatAbslIntegerFlagsRead) {
  EXPECT_EQ(Parsed("7").In(kOneTo256), 7u);
  EXPECT_EQ(Parsed(" 7\n").In(kOneTo256), 7u);
  EXPECT_EQ(Parsed(" 7\n").text(), "7");
  EXPECT_EQ(Parsed("+7").In(kOneTo256), 7u);
  EXPECT_EQ(Parsed("0x10").In(kOneTo256), 16u);
  EXPECT_EQ(Parsed("18446744073709551615").In(kEveryUint64), UINT64_MAX);
  EXPECT_EQ(Parsed("0").In(kEveryUint64), 0u);
}

TEST(IntegerFlagTest, NumbersNoRangeHoldsAreReadAndOutsideEveryRange) {
  for (const std::string text :
       {"-1", "-9223372036854775808", "-9223372036854775809", "18446744073709551616", "0x10000000000000000",
        "-99999999999999999999999999999999999999999999999999", "99999999999999999999999999999999999999999999999999"}) {
    IntegerFlag flag = Parsed(text);
    EXPECT_EQ(flag.In(kEveryUint64), std::nullopt) << text;
    EXPECT_EQ(flag.text(), text);
    EXPECT_EQ(AbslUnparseFlag(flag), text);
  }
  EXPECT_EQ(Parsed("0").In(kOneTo256), std::nullopt);
  EXPECT_EQ(Parsed("257").In(kOneTo256), std::nullopt);
}

TEST(IntegerFlagTest, WhatIsNotAWholeNumberIsRefused) {
  for (const std::string text : {"", " ", "banana", "1.5", "1e3", "--1", "0x", "-0x10", "12abc", "1 2"}) {
    IntegerFlag flag;
    std::string error;
    EXPECT_FALSE(AbslParseFlag(text, &flag, &error)) << "\"" << text << "\"";
    EXPECT_EQ(error, "expected a whole number") << "\"" << text << "\"";
  }
}

TEST(IntegerFlagTest, ADefaultReadsBack) {
  IntegerFlag flag(-42);
  EXPECT_EQ(AbslUnparseFlag(flag), "-42");
  EXPECT_EQ(Parsed(AbslUnparseFlag(IntegerFlag(65536))).In(kEveryUint64), 65536u);
}

TEST(IntegerRangeTest, SaysItsBoundsAsPeopleReadThem) {
  EXPECT_EQ(kOneTo256.ToString(), "1 to 256");
  EXPECT_EQ(kOneTo256.Refusal("--loops", "-1"), "--loops=-1: must be from 1 to 256");
  constexpr IntegerRange kBytes{.min = 1, .max = uint64_t{1} << 30, .unit = IntegerRange::Unit::kBytes};
  EXPECT_EQ(kBytes.ToString(), "1 byte to 1 GiB (1073741824 bytes)");
  constexpr IntegerRange kBuffer{.min = 512, .max = 3 << 20, .unit = IntegerRange::Unit::kBytes, .note = " (why)"};
  EXPECT_EQ(kBuffer.ToString(), "512 bytes to 3 MiB (3145728 bytes) (why)");
  EXPECT_EQ((IntegerRange{.min = 0, .max = 3072, .unit = IntegerRange::Unit::kBytes}).ToString(),
            "0 bytes to 3 KiB (3072 bytes)");
  EXPECT_EQ((IntegerRange{.min = 0, .max = 1023, .unit = IntegerRange::Unit::kBytes}).ToString(),
            "0 bytes to 1023 bytes");
}

TEST(IntegerRangeTest, HoldsWhatLiesBetweenItsBoundsOnly) {
  EXPECT_TRUE(kOneTo256.Contains(1));
  EXPECT_TRUE(kOneTo256.Contains(256));
  EXPECT_FALSE(kOneTo256.Contains(0));
  EXPECT_FALSE(kOneTo256.Contains(257));
  EXPECT_FALSE(kOneTo256.Contains(-1));
  EXPECT_TRUE(kEveryUint64.Contains(UINT64_MAX));
  EXPECT_FALSE(kEveryUint64.Contains(static_cast<__int128>(UINT64_MAX) + 1));
}

// A range whose least value grows with another option's states itself with that option's name,
// and holds, for a value of it, what lies between the least value it makes and the maximum.
TEST(ScaledMinimumRangeTest, StatesItsMinimumByTheOtherOptionAndChecksByItsValue) {
  constexpr ScaledMinimumRange kReserve{.per = 3, .of = "--admin_max_connections", .plus = 8, .max = 1'000'000};
  EXPECT_EQ(kReserve.ToString(), "3 x --admin_max_connections + 8 to 1000000");
  EXPECT_EQ(kReserve.Refusal("--admin_reserved_fds", "-1", 16),
            "--admin_reserved_fds=-1: must be from 3 x --admin_max_connections + 8 (56) to 1000000");
  IntegerRange for_16 = kReserve.For(16);
  EXPECT_EQ(for_16.min, 56u);
  EXPECT_EQ(for_16.max, 1'000'000u);
  EXPECT_FALSE(for_16.Contains(55));
  EXPECT_TRUE(for_16.Contains(56));
  EXPECT_TRUE(for_16.Contains(1'000'000));
  EXPECT_FALSE(for_16.Contains(1'000'001));
  EXPECT_EQ((ScaledMinimumRange{.of = "--n", .max = 9}).ToString(), "--n to 9");
  EXPECT_EQ((ScaledMinimumRange{.per = 2, .of = "--n", .max = 9}).ToString(), "2 x --n to 9");
  // A least value past 64 bits holds nothing below the 64-bit maximum.
  EXPECT_EQ((ScaledMinimumRange{.per = 2, .of = "--n", .max = UINT64_MAX}).For(UINT64_MAX).min, UINT64_MAX);
}

TEST(BelowOptionRangeTest, StatesItsMaximumByTheOtherOptionAndChecksByItsValue) {
  constexpr BelowOptionRange kLowWater{.min = 0, .below = "--high_water", .unit = IntegerRange::Unit::kBytes};
  EXPECT_EQ(kLowWater.ToString(), "0 bytes to --high_water - 1");
  EXPECT_EQ(kLowWater.Refusal("--low_water", "200", 100),
            "--low_water=200: must be from 0 bytes to --high_water - 1 (99 bytes)");
  EXPECT_EQ(kLowWater.Refusal("--low_water", "5", 2),
            "--low_water=5: must be from 0 bytes to --high_water - 1 (1 byte)");
  IntegerRange for_100 = kLowWater.For(100);
  EXPECT_TRUE(for_100.Contains(0));
  EXPECT_TRUE(for_100.Contains(99));
  EXPECT_FALSE(for_100.Contains(100));
  EXPECT_FALSE(for_100.Contains(-1));
  constexpr BelowOptionRange kCount{.min = 2, .below = "--n"};
  EXPECT_EQ(kCount.ToString(), "2 to --n - 1");
  EXPECT_EQ(kCount.Refusal("--m", "9", 5), "--m=9: must be from 2 to --n - 1 (4)");
  // The other option at the least value or below: nothing is in range.
  for (uint64_t below : {0, 1, 2}) {
    IntegerRange none = kCount.For(below);
    for (int v : {0, 1, 2, 3}) EXPECT_FALSE(none.Contains(v)) << below << " " << v;
  }
}

}  // namespace
}  // namespace brrr
