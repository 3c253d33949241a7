// prefixed_lines.h: the reference that --reply_prefix's LinePrefixer is held against (its unit
// test and its fuzz target): the whole stream at once, one byte at a time, with `prefix`
// before every byte that starts a line.
//
//   EXPECT_EQ(output, brrr::testing::PrefixedLines("> ", "a\nb"));   // "> a\n> b"
//
// Threads: a pure function.
#ifndef BRRR_TESTS_TESTING_PREFIXED_LINES_H_
#define BRRR_TESTS_TESTING_PREFIXED_LINES_H_

#include <string>
#include <string_view>

namespace brrr::testing {

inline std::string PrefixedLines(std::string_view prefix, std::string_view input) {
  std::string out;
  bool at_start = true;
  for (char c : input) {
    if (at_start) out += prefix;
    out += c;
    at_start = c == '\n';
  }
  return out;
}

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_PREFIXED_LINES_H_
