// The figures brrrctl prints for people (control/brrrctl/message_text.h): FormatDecimal's
// decimals and FormatShort's suffixes, at the edges where rounding moves a figure up a place.
#include "control/brrrctl/message_text.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "brrr/admin/v1/admin.pb.h"
#include "gtest/gtest.h"

namespace brrr::control {
namespace {

TEST(FormatDecimalTest, AtMostThreeDecimalsWithoutTrailingZeros) {
  EXPECT_EQ(FormatDecimal(12.5), "12.5");
  EXPECT_EQ(FormatDecimal(3), "3");
  EXPECT_EQ(FormatDecimal(0.001), "0.001");
  EXPECT_EQ(FormatDecimal(0.0004), "0");
  EXPECT_EQ(FormatDecimal(-0.0004), "0") << "no minus zero";
  EXPECT_EQ(FormatDecimal(1.9996), "2");
  EXPECT_EQ(FormatDecimal(-2.25), "-2.25");
  EXPECT_EQ(FormatDecimal(1234567.125), "1234567.125");
}

TEST(FormatShortTest, ThreeDigitsOrSoWithTheSuffixOfTheRoundedFigure) {
  EXPECT_EQ(FormatShort(0), "0");
  EXPECT_EQ(FormatShort(950), "950");
  EXPECT_EQ(FormatShort(999.4), "999");
  EXPECT_EQ(FormatShort(999.6), "1.0K") << "not 1000";
  EXPECT_EQ(FormatShort(1000), "1.0K");
  EXPECT_EQ(FormatShort(12345), "12.3K");
  EXPECT_EQ(FormatShort(99940), "99.9K");
  EXPECT_EQ(FormatShort(99960), "100K") << "not 100.0K";
  EXPECT_EQ(FormatShort(450000), "450K");
  EXPECT_EQ(FormatShort(999600), "1.0M") << "not 1000K";
  EXPECT_EQ(FormatShort(4.5e6), "4.5M");
  EXPECT_EQ(FormatShort(1.2e9), "1.2G");
  EXPECT_EQ(FormatShort(3e12), "3.0T");
  EXPECT_EQ(FormatShort(5e15), "5000T") << "T is the last suffix";
  EXPECT_EQ(FormatShort(-5000), "-5000");
  EXPECT_EQ(FormatShort(std::nan("")), "nan");
}

namespace admin = brrr::admin::v1;

std::string RowOf(const std::vector<std::pair<std::string, std::string>>& rows, const std::string& name) {
  for (const auto& [field, text] : rows) {
    if (field == name) return text;
  }
  return "(no row)";
}

// The rows `brrrctl stats` and the fleet totals print: every field by its path, nested ones
// included, and a field with no text (an empty string or list) as "-", so that a column of
// them never has a hole.
TEST(FieldRowsTest, EmptyTextsAreADashAndNestedFieldsHaveTheirPath) {
  admin::LoopStats loop;
  loop.set_current_task("serve");
  loop.set_bytes_in(12);
  loop.mutable_timer_lateness()->set_count(3);
  std::vector<std::pair<std::string, std::string>> rows = FieldRows(loop);
  EXPECT_EQ(RowOf(rows, "current_task"), "serve");
  EXPECT_EQ(RowOf(rows, "longest_task"), "-");
  EXPECT_EQ(RowOf(rows, "bytes_in"), "12");
  EXPECT_EQ(RowOf(rows, "timer_lateness.count"), "3");

  admin::ServerInfo info;
  const auto* addresses = info.GetDescriptor()->FindFieldByName("listening_addresses");
  ASSERT_NE(addresses, nullptr);
  EXPECT_EQ(FieldText(info, addresses), "-");
  info.add_listening_addresses("127.0.0.1:7000");
  info.add_listening_addresses("[::1]:7000");
  EXPECT_EQ(FieldText(info, addresses), "127.0.0.1:7000,[::1]:7000");
}

}  // namespace
}  // namespace brrr::control
