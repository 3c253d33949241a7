// LinePrefixer: the bounded, streaming transform against a byte-by-byte reference, for every
// way an input can arrive in up to three pieces and every output limit, including limits that
// end the output inside a prefix, and with the longest prefix --reply_prefix allows.
#include "server/line_prefixer.h"

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "server/server_options.h"
#include "tests/testing/prefixed_lines.h"

namespace brrr::server {
namespace {

// Feeds `pieces` as they would arrive, calling apply() with limits taken in turn from
// `limits`. With `drain_each`, each piece is transformed completely before the next one
// arrives; without, one call per arrival leaves the rest pending (as a connection holds input
// it has no room for), and the pending input is transformed at the end. Checks every call's
// contract and returns the concatenated output.
std::string Drive(LinePrefixer& p, const std::vector<std::string>& pieces, const std::vector<size_t>& limits,
                  bool drain_each) {
  std::string out;
  std::string pending;
  size_t turn = 0;
  auto call = [&] {
    size_t limit = limits[turn++ % limits.size()];
    size_t used = 12345;
    Chunk c = p.apply(pending, limit, &used);
    EXPECT_LE(c.size(), limit);
    EXPECT_GT(c.size(), 0u) << "no progress with " << pending.size() << " bytes pending, limit " << limit;
    if (c.size() > 0) {
      EXPECT_EQ(c.capacity(), c.size()) << "the block must hold exactly its output";
    }
    EXPECT_LE(used, pending.size());
    out.append(c.data(), c.size());
    pending.erase(0, used);
    return c.size() > 0;
  };
  for (const std::string& piece : pieces) {
    pending += piece;
    if (drain_each) {
      while (!pending.empty() && call()) {
      }
    } else if (!pending.empty()) {
      call();
    }
  }
  while (!pending.empty() && call()) {
  }
  return out;
}

TEST(LinePrefixerTest, EverySplitAndEveryLimitMatchTheReference) {
  const std::vector<std::string> inputs = {
      "",           "\n",           "\n\n\n", "a", "abc\ndef\n\nx", std::string("bin\0\xff\n\xfe\n y", 10),
      "no newline", "ends\nwith\n",
  };
  const std::vector<std::string> prefixes = {"E", "Echo : ", std::string(37, 'p')};
  const std::vector<std::vector<size_t>> limit_sets = {{1}, {2}, {3}, {5}, {8}, {13}, {1 << 20}, {1, 7, 2, 100}};
  for (const std::string& prefix : prefixes) {
    for (const std::string& input : inputs) {
      const std::string want = testing::PrefixedLines(prefix, input);
      for (size_t i = 0; i <= input.size(); ++i) {
        for (size_t j = i; j <= input.size(); ++j) {
          std::vector<std::string> pieces = {input.substr(0, i), input.substr(i, j - i), input.substr(j)};
          for (const std::vector<size_t>& limits : limit_sets) {
            for (bool drain_each : {true, false}) {
              LinePrefixer p(prefix);
              std::string got = Drive(p, pieces, limits, drain_each);
              ASSERT_EQ(got, want) << "prefix \"" << prefix << "\", input split at " << i << " and " << j
                                   << ", first limit " << limits[0] << (drain_each ? ", drained" : ", held");
            }
          }
        }
      }
    }
  }
}

TEST(LinePrefixerTest, TheLongestPrefixIsCutAnywhereAndResumed) {
  const std::string prefix(kMaxReplyPrefixBytes, 'P');
  const std::string input = "\n\nab\nc";
  const std::string want = testing::PrefixedLines(prefix, input);
  for (size_t limit : {size_t{1}, size_t{511}, size_t{4096}, size_t{4097}, size_t{16384}, size_t{1} << 20}) {
    for (size_t i = 0; i <= input.size(); ++i) {
      LinePrefixer p(prefix);
      EXPECT_EQ(Drive(p, {input.substr(0, i), input.substr(i)}, {limit}, false), want)
          << "limit " << limit << ", split at " << i;
    }
  }
}

TEST(LinePrefixerTest, WritesNothingWithoutInputOrRoom) {
  LinePrefixer p("Echo : ");
  size_t used = 7;
  Chunk c = p.apply("", 100, &used);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(used, 0u);
  c = p.apply("abc\n", 0, &used);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(used, 0u);
  // A prefix is written only once the byte that starts its line is there.
  c = p.apply("abc\n", 100, &used);
  EXPECT_EQ(std::string(c.data(), c.size()), "Echo : abc\n");
  EXPECT_EQ(used, 4u);
  c = p.apply("", 100, &used);
  EXPECT_EQ(c.size(), 0u);
}

TEST(LinePrefixerTest, TheHeaderExample) {
  LinePrefixer p("Echo : ");
  size_t used = 0;
  Chunk out = p.apply("a\nb", 100, &used);
  EXPECT_EQ(std::string(out.data(), out.size()), "Echo : a\nEcho : b");
  EXPECT_EQ(used, 3u);
  out = p.apply("c\nd", 4, &used);
  EXPECT_EQ(std::string(out.data(), out.size()), "c\nEc");
  EXPECT_EQ(used, 2u);
  out = p.apply("d", 100, &used);
  EXPECT_EQ(std::string(out.data(), out.size()), "ho : d");
  EXPECT_EQ(used, 1u);
}

}  // namespace
}  // namespace brrr::server
