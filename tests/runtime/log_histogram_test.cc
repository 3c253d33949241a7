#include "runtime/log_histogram.h"

#include <thread>

#include "gtest/gtest.h"

namespace brrr {
namespace {

TEST(LogHistogramTest, BucketsAreOrderedAndContiguous) {
  int64_t previous_upper = -1;
  for (int b = 0; b < LogHistogram::kBuckets - 1; ++b) {
    int64_t upper = LogHistogram::upper_bound(b);
    EXPECT_GT(upper, previous_upper);
    EXPECT_EQ(LogHistogram::bucket_of(upper), b) << "upper bound of bucket " << b;
    EXPECT_EQ(LogHistogram::bucket_of(upper + 1), b + 1) << "value after bucket " << b;
    previous_upper = upper;
  }
}

TEST(LogHistogramTest, PercentileIsWithinAQuarterOctave) {
  LogHistogram h;
  for (int i = 1; i <= 1000; ++i) h.record(i * 1000);  // 1 us .. 1 ms
  LogHistogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.total, 1000u);
  EXPECT_EQ(s.max_ns, 1'000'000);
  int64_t p50 = s.percentile(0.5);
  EXPECT_GE(p50, 500'000);
  EXPECT_LE(p50, 500'000 * 5 / 4);
  int64_t p99 = s.percentile(0.99);
  EXPECT_GE(p99, 990'000);
  EXPECT_LE(p99, 1'000'000);  // never above the max
  EXPECT_EQ(s.mean(), 500'500);
}

TEST(LogHistogramTest, EmptyAndTinyValues) {
  LogHistogram h;
  EXPECT_EQ(h.snapshot().percentile(0.99), 0);
  h.record(-5);  // clock skew never produces a negative bucket
  h.record(0);
  EXPECT_EQ(h.snapshot().counts[0], 2u);
}

// A writer that counts its samples itself records only the sum and the samples past bucket
// 0; the snapshot puts the rest of its count in bucket 0.
TEST(LogHistogramTest, CountedElsewhereFillsBucketZeroFromTheWritersCount) {
  LogHistogram h;
  SingleWriter<uint64_t> count;
  for (int64_t ns : {0, 500, 1023, 1024, 5'000'000, -7}) {
    h.record_counted_elsewhere(ns);
    count.add(1);
  }
  LogHistogram::Snapshot s = h.snapshot_counted_elsewhere(count, 5'000'000);
  EXPECT_EQ(s.total, 6u);
  EXPECT_EQ(s.counts[0], 4u) << "0, 500, 1023 and the negative sample";
  EXPECT_EQ(s.counts[LogHistogram::bucket_of(1024)], 1u);
  EXPECT_EQ(s.counts[LogHistogram::bucket_of(5'000'000)], 1u);
  EXPECT_EQ(s.sum_ns, 500 + 1023 + 1024 + 5'000'000) << "a negative sample adds 0: the sum never goes down";
  EXPECT_EQ(s.max_ns, 5'000'000);
  EXPECT_EQ(s.percentile(0.5), LogHistogram::upper_bound(0));
}

TEST(LogHistogramTest, HugeValuesLandInTheLastBucket) {
  LogHistogram h;
  h.record(INT64_MAX);
  EXPECT_EQ(h.snapshot().counts[LogHistogram::kBuckets - 1], 1u);
}

TEST(LogHistogramTest, ReadersSeeWholeCountsWhileTheWriterRecords) {
  LogHistogram h;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      uint64_t total = h.snapshot().total;
      EXPECT_GE(total, last);
      last = total;
    }
  });
  for (int i = 0; i < 200000; ++i) h.record(i);
  done = true;
  reader.join();
  EXPECT_EQ(h.snapshot().total, 200000u);
}

}  // namespace
}  // namespace brrr
