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

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_SANITIZER_H_
