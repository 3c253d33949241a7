// RetryBackoff's pauses (10 ms, doubling after each failure in a row up to 1 s, 10 ms again
// after a success) and IsPowerOfTen, which failures the acceptors report.
#include "runtime/retry_pacing.h"

#include <chrono>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;

TEST(RetryBackoffTest, DoublesFromTenMillisecondsUpToOneSecond) {
  RetryBackoff backoff;
  std::vector<Duration> pauses;
  for (int i = 0; i < 10; ++i) {
    pauses.push_back(backoff.pause());
    backoff.failed();
  }
  const std::vector<Duration> expected = {milliseconds(10),  milliseconds(20),  milliseconds(40),  milliseconds(80),
                                          milliseconds(160), milliseconds(320), milliseconds(640), milliseconds(1000),
                                          milliseconds(1000), milliseconds(1000)};
  EXPECT_EQ(pauses, expected);
}

TEST(RetryBackoffTest, ASuccessStartsAgainAtTenMilliseconds) {
  RetryBackoff backoff;
  for (int i = 0; i < 20; ++i) backoff.failed();
  EXPECT_EQ(backoff.pause(), milliseconds(1000));
  backoff.succeeded();
  EXPECT_EQ(backoff.pause(), milliseconds(10));
  backoff.failed();
  EXPECT_EQ(backoff.pause(), milliseconds(20));
}

TEST(IsPowerOfTenTest, TheFirstTenthHundredthAndSoOn) {
  std::vector<uint64_t> reported;
  for (uint64_t n = 0; n <= 100000; ++n) {
    if (IsPowerOfTen(n)) reported.push_back(n);
  }
  EXPECT_EQ(reported, (std::vector<uint64_t>{1, 10, 100, 1000, 10000, 100000}));
  EXPECT_TRUE(IsPowerOfTen(10000000000000000000u));
  EXPECT_FALSE(IsPowerOfTen(2000000000000000000u));
  EXPECT_FALSE(IsPowerOfTen(UINT64_MAX));
}

}  // namespace
}  // namespace brrr
