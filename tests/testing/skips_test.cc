// BRRR_SKIP_OR_FAIL: a test that cannot run here skips, unless $BRRR_REQUIRE names the reason's
// kind (or "all"): then it fails, so CI cannot lose io_uring or IPv6 quietly.
#include "tests/testing/skips.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace brrr::testing {
namespace {

// Sets $BRRR_REQUIRE (or unsets it: nullopt) for one test, and puts back what it was: CI
// runs this test with BRRR_REQUIRE=all.
class RequireEnv {
 public:
  explicit RequireEnv(std::optional<std::string> value) {
    const char* before = std::getenv("BRRR_REQUIRE");
    if (before != nullptr) saved_ = before;
    if (value.has_value()) {
      ::setenv("BRRR_REQUIRE", value->c_str(), 1);
    } else {
      ::unsetenv("BRRR_REQUIRE");
    }
  }
  ~RequireEnv() {
    if (saved_.has_value()) {
      ::setenv("BRRR_REQUIRE", saved_->c_str(), 1);
    } else {
      ::unsetenv("BRRR_REQUIRE");
    }
  }

 private:
  std::optional<std::string> saved_;
};

void CannotRunHere(const std::string& kind) { BRRR_SKIP_OR_FAIL(kind, "io_uring: the kernel refused it"); }

// What one call of BRRR_SKIP_OR_FAIL records for the current test, caught before gtest sees it.
std::vector<::testing::TestPartResult> Outcome(const std::string& kind) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter catcher(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    CannotRunHere(kind);
  }
  std::vector<::testing::TestPartResult> out;
  for (int i = 0; i < results.size(); ++i) out.push_back(results.GetTestPartResult(i));
  return out;
}

void ExpectSkipped(const std::string& kind) {
  std::vector<::testing::TestPartResult> results = Outcome(kind);
  ASSERT_EQ(results.size(), 1u) << kind;
  EXPECT_TRUE(results[0].skipped()) << kind << ": " << results[0].message();
  EXPECT_NE(std::string(results[0].message()).find("[" + kind + "] io_uring: the kernel refused it"),
            std::string::npos)
      << results[0].message();
}

void ExpectFailed(const std::string& kind) {
  std::vector<::testing::TestPartResult> results = Outcome(kind);
  ASSERT_EQ(results.size(), 1u) << kind;
  EXPECT_TRUE(results[0].fatally_failed()) << kind << ": " << results[0].message();
  EXPECT_NE(std::string(results[0].message())
                .find("required by BRRR_REQUIRE (" + kind + ") but cannot run here: io_uring: the kernel refused it"),
            std::string::npos)
      << results[0].message();
}

TEST(SkipsTest, WithoutBrrrRequireATestThatCannotRunSkips) {
  RequireEnv env(std::nullopt);
  EXPECT_FALSE(Required("backends"));
  ExpectSkipped("backends");
  RequireEnv empty("");
  EXPECT_FALSE(Required("backends"));
  ExpectSkipped("ipv6");
}

TEST(SkipsTest, AllMakesEveryKindFail) {
  RequireEnv env("all");
  for (const char* kind : {"backends", "ipv6", "netns", "tmux"}) {
    EXPECT_TRUE(Required(kind)) << kind;
    ExpectFailed(kind);
  }
}

TEST(SkipsTest, AListFailsTheKindsItNamesAndSkipsTheOthers) {
  RequireEnv env("ipv6, backends");
  EXPECT_TRUE(Required("backends"));
  EXPECT_TRUE(Required("ipv6"));
  EXPECT_FALSE(Required("netns"));
  ExpectFailed("backends");
  ExpectFailed("ipv6");
  ExpectSkipped("tmux");
  // A kind is named whole: not by a prefix or a part of another name.
  RequireEnv partial("backend,ipv6x");
  EXPECT_FALSE(Required("backends"));
  EXPECT_FALSE(Required("ipv6"));
  ExpectSkipped("backends");
}

}  // namespace
}  // namespace brrr::testing
