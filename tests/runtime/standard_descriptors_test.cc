// OpenDevNullOnClosedStandardDescriptors, in forked children (closing the test's own stdin,
// stdout or stderr would cut its output): each closed one of descriptors 0, 1 and 2 comes back
// on /dev/null, one that is open is left as it was, and the next descriptor opened is above them.
#include "runtime/standard_descriptors.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

// What descriptor `fd` of this process is ("" if closed).
std::string Target(int fd) {
  char target[256] = {};
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  return ::readlink(link.c_str(), target, sizeof target - 1) > 0 ? target : "";
}

// Runs `checks` in a forked child whose descriptors in `closed` (a bit per descriptor 0, 1, 2)
// are closed first; "" when every check passed, else how the child ended ("exited N": the
// number of the first check that failed).
std::string InChild(unsigned closed, const std::function<int()>& checks) {
  return testing::RunInForkedChild(
      [&] {
        for (int fd = 0; fd <= 2; ++fd) {
          if ((closed & (1u << fd)) != 0) ::close(fd);
        }
        return checks();
      },
      std::chrono::seconds(10));
}

TEST(StandardDescriptorsTest, EachClosedOneIsOpenedOnDevNullTheOthersAreLeftAlone) {
  const std::string before[3] = {Target(0), Target(1), Target(2)};
  for (unsigned closed = 1; closed < 8; ++closed) {
    EXPECT_EQ(InChild(closed,
                      [&] {
                        int failed_fd = -1;
                        if (OpenDevNullOnClosedStandardDescriptors(&failed_fd) != 0) return 1;
                        for (int fd = 0; fd <= 2; ++fd) {
                          const bool was_closed = (closed & (1u << fd)) != 0;
                          if (Target(fd) != (was_closed ? "/dev/null" : before[fd])) return 2 + fd;
                        }
                        // The next descriptor opened is above them.
                        return ::open("/dev/null", O_RDONLY) > 2 ? 0 : 5;
                      }),
              "")
        << "closed: descriptors " << ((closed & 1) ? "0 " : "") << ((closed & 2) ? "1 " : "")
        << ((closed & 4) ? "2" : "");
  }
}

TEST(StandardDescriptorsTest, NothingChangesWhenAllAreOpen) {
  const std::string before[3] = {Target(0), Target(1), Target(2)};
  int failed_fd = -1;
  ASSERT_EQ(OpenDevNullOnClosedStandardDescriptors(&failed_fd), 0) << "failed on descriptor " << failed_fd;
  for (int fd = 0; fd <= 2; ++fd) EXPECT_EQ(Target(fd), before[fd]) << "descriptor " << fd;
}

// This test does not link the hook (only programs may): the result says so, rather than OK.
TEST(StandardDescriptorsTest, WithoutTheHookTheResultAtStartSaysSo) {
  absl::Status at_start = StandardDescriptorsAtStart();
  EXPECT_EQ(at_start.code(), absl::StatusCode::kFailedPrecondition) << at_start;
  EXPECT_NE(at_start.message().find("//runtime:standard_descriptors_at_start"), absl::string_view::npos) << at_start;
}

}  // namespace
}  // namespace brrr
