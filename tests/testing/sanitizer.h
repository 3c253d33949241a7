// sanitizer.h: which sanitizers the test runs under, for the few tests whose promise a
// sanitizer's own runtime changes (a memory bound its shadow memory inflates, a probe that
// needs a free descriptor).
//
// .bazelrc's sanitizer configs set $BRRR_SANITIZER to the sanitizers they build with,
// comma-separated: "asan", "ubsan", "tsan", or "asan,ubsan" (--config=asan_ubsan, one build
// with both, as CI runs them). Unset in plain and -c opt builds.
//
//   if (testing::UnderSanitizer("ubsan")) GTEST_SKIP() << "...";
#ifndef BRRR_TESTS_TESTING_SANITIZER_H_
#define BRRR_TESTS_TESTING_SANITIZER_H_

#include <string_view>

namespace brrr::testing {

// Whether $BRRR_SANITIZER names `name` ("asan", "ubsan", "tsan").
bool UnderSanitizer(std::string_view name);

// Whether a process's resident memory measures what it holds, so that a test can bound it:
// not under ASan or TSan, whose quarantine, redzones and shadow memory add megabytes to what
// a server holds (2 to 19 MB for brrr-echo's paused connections, against at most 1 MB in a
// plain build, measured). Plain, -c opt and --config=ubsan builds check such bounds.
bool ResidentMemoryMeasuresHoldings();

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_SANITIZER_H_
