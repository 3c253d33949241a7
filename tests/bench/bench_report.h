// bench_report.h: brrr-bench as the tests in tests/bench/ run it, and the one figure they read
// from its JSON report line.
//
//   Process bench(BenchBinary(), {"--port=" + port, "--connections=4", "--duration=1s"});
//   ...
//   EXPECT_EQ(JsonNumber(bench.out(), "mismatches"), 0);
#ifndef BRRR_TESTS_BENCH_BENCH_REPORT_H_
#define BRRR_TESTS_BENCH_BENCH_REPORT_H_

#include <regex>
#include <string>

#include "tests/testing/process.h"

namespace brrr::testing {

// The path of the brrr-bench binary among the test's runfiles.
inline std::string BenchBinary() { return Runfile("bench/brrr-bench"); }

// A non-negative number from brrr-bench's JSON line, e.g. JsonNumber(out, "messages"); -1 if
// the field is not there.
inline double JsonNumber(const std::string& out, const std::string& field) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("\"" + field + "\":([0-9.]+)"))) return -1;
  return std::stod(m[1]);
}

}  // namespace brrr::testing

#endif  // BRRR_TESTS_BENCH_BENCH_REPORT_H_
