// DescriptorPlan::Measure against this process: the echo side's budget is RLIMIT_NOFILE less
// the descriptors open now (counted here the same way, from /proc/self/fd) less the reserve,
// and a limit that leaves none is refused, down to the last descriptor.
#include "server/descriptor_budget.h"

#include <dirent.h>
#include <sys/resource.h>

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace brrr::server {
namespace {

// Descriptors open in this process, not counting the one the listing itself holds.
uint64_t OpenNow() {
  DIR* dir = ::opendir("/proc/self/fd");
  EXPECT_NE(dir, nullptr);
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;
}

TEST(DescriptorPlanTest, TheBudgetIsTheLimitLessWhatIsOpenAndTheReserve) {
  rlimit nofile{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
  if (nofile.rlim_cur == RLIM_INFINITY) GTEST_SKIP() << "no descriptor limit";
  const uint64_t limit = nofile.rlim_cur;
  const uint64_t open = OpenNow();
  ASSERT_GT(limit, open + 8);
  absl::StatusOr<DescriptorPlan> plan = DescriptorPlan::Measure(8);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->limit, limit);
  EXPECT_EQ(plan->open_at_start, open) << "the listing's own descriptor is not one the process holds";
  EXPECT_EQ(plan->reserved, 8u);
  EXPECT_EQ(plan->for_connections, limit - open - 8);
}

// A reserve that leaves one descriptor gives a budget of one; one that leaves none is refused,
// saying the numbers, rather than giving a budget of 0 that would never accept.
TEST(DescriptorPlanTest, ALimitThatLeavesNoDescriptorIsRefusedAndOneThatLeavesOneIsNot) {
  rlimit nofile{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
  if (nofile.rlim_cur == RLIM_INFINITY) GTEST_SKIP() << "no descriptor limit";
  const uint64_t limit = nofile.rlim_cur;
  const uint64_t open = OpenNow();
  ASSERT_GT(limit, open + 1);
  absl::StatusOr<DescriptorPlan> one_left = DescriptorPlan::Measure(limit - open - 1);
  ASSERT_TRUE(one_left.ok()) << one_left.status();
  EXPECT_EQ(one_left->for_connections, 1u);
  absl::StatusOr<DescriptorPlan> none_left = DescriptorPlan::Measure(limit - open);
  ASSERT_FALSE(none_left.ok()) << "a budget of " << none_left->for_connections;
  EXPECT_TRUE(absl::IsFailedPrecondition(none_left.status())) << none_left.status();
  EXPECT_NE(none_left.status().message().find("none is left for echo connections"), std::string::npos)
      << none_left.status();
}

// A backend that watches descriptors up to a limit (select: 1023) caps the limit the budget is
// made from when it is below RLIMIT_NOFILE, and says so; above it, it changes nothing.
TEST(DescriptorPlanTest, ABackendsHighestWatchableDescriptorCapsTheLimit) {
  rlimit nofile{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
  if (nofile.rlim_cur == RLIM_INFINITY) GTEST_SKIP() << "no descriptor limit";
  const uint64_t limit = nofile.rlim_cur;
  const uint64_t open = OpenNow();
  ASSERT_GT(limit, open + 30);
  absl::StatusOr<DescriptorPlan> capped = DescriptorPlan::Measure(8, static_cast<int>(open + 20));
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_EQ(capped->limit, open + 21) << "descriptors 0 to max_watchable_fd";
  EXPECT_TRUE(capped->backend_limit);
  EXPECT_EQ(capped->for_connections, 13u);
  absl::StatusOr<DescriptorPlan> above = DescriptorPlan::Measure(8, static_cast<int>(limit));
  ASSERT_TRUE(above.ok()) << above.status();
  EXPECT_EQ(above->limit, limit);
  EXPECT_FALSE(above->backend_limit);
  absl::StatusOr<DescriptorPlan> any = DescriptorPlan::Measure(8, -1);
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_EQ(any->limit, limit);
  absl::StatusOr<DescriptorPlan> none_left = DescriptorPlan::Measure(8, static_cast<int>(open + 7));
  ASSERT_FALSE(none_left.ok()) << "a budget of " << none_left->for_connections;
  EXPECT_NE(
      none_left.status().message().find("the backend watches descriptors below " + std::to_string(open + 8) + " only"),
      std::string::npos)
      << none_left.status();
}

}  // namespace
}  // namespace brrr::server
