#include "runtime/log_histogram.h"

#include <atomic>
#include <chrono>
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

// Snapshots of several loops add up to one (LoopStats::operator+=, the server's total): counts
// and sums add, and the largest sample is the largest of any part, whichever part came last.
TEST(LogHistogramTest, SnapshotsAddUpAndKeepTheLargestSampleOfAnyPart) {
  LogHistogram busy, quiet;
  busy.record(5'000'000);
  busy.record(2'000);
  quiet.record(3'000);
  LogHistogram::Snapshot total;
  total += busy.snapshot();
  total += quiet.snapshot();
  EXPECT_EQ(total.total, 3u);
  EXPECT_EQ(total.sum_ns, 5'005'000);
  EXPECT_EQ(total.max_ns, 5'000'000) << "the later part's smaller maximum took the total's place";
  EXPECT_EQ(total.counts[LogHistogram::bucket_of(5'000'000)], 1u);
  EXPECT_EQ(total.percentile(1.0), 5'000'000);
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

// A reader on another thread sees each count whole and true: between two snapshots the writer
// recorded a known sequence, so every bucket's count must lie between what the records
// finished before the snapshot put there and what the records started before it ended could
// have put there; every other bucket stays empty. (A torn or lost update, or a count read
// from the wrong bucket, falls outside those bounds.)
TEST(LogHistogramTest, ReadersSeeWholeCountsWhileTheWriterRecords) {
  constexpr int kValues = 6;
  constexpr int64_t kValue[kValues] = {0, 1500, 5000, 1 << 20, 3 << 20, int64_t{7} << 30};
  constexpr uint64_t kRecords = 300000;
  for (int i = 0; i < kValues; ++i) {
    for (int j = 0; j < i; ++j) ASSERT_NE(LogHistogram::bucket_of(kValue[i]), LogHistogram::bucket_of(kValue[j]));
  }
  // How many of the first n records hold kValue[i], and their sum.
  auto expected = [&](uint64_t n, int i) { return n / kValues + (static_cast<uint64_t>(i) < n % kValues ? 1 : 0); };
  auto expected_sum = [&](uint64_t n) {
    int64_t sum = 0;
    for (int i = 0; i < kValues; ++i) sum += static_cast<int64_t>(expected(n, i)) * kValue[i];
    return sum;
  };
  LogHistogram h;
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> finished{0};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> snapshots{0};
  std::thread reader([&] {
    while (!done.load()) {
      uint64_t low = finished.load(std::memory_order_acquire);
      LogHistogram::Snapshot s = h.snapshot();
      // Pairs with the writer's release fence: a count this snapshot saw from record n means
      // `started` had reached n before it.
      std::atomic_thread_fence(std::memory_order_acquire);
      uint64_t high = started.load(std::memory_order_relaxed);
      ++snapshots;
      for (int i = 0; i < kValues; ++i) {
        uint64_t count = s.counts[LogHistogram::bucket_of(kValue[i])];
        ASSERT_GE(count, expected(low, i)) << "bucket of " << kValue[i] << " between " << low << " and " << high;
        ASSERT_LE(count, expected(high, i)) << "bucket of " << kValue[i] << " between " << low << " and " << high;
      }
      uint64_t in_known_buckets = 0;
      for (int i = 0; i < kValues; ++i) in_known_buckets += s.counts[LogHistogram::bucket_of(kValue[i])];
      ASSERT_EQ(s.total, in_known_buckets) << "a count in a bucket nothing was recorded in";
      ASSERT_GE(s.sum_ns, expected_sum(low));
      ASSERT_LE(s.sum_ns, expected_sum(high));
    }
  });
  for (uint64_t n = 0; n < kRecords; ++n) {
    // Every 30,000 records the writer lets the reader take a snapshot, so reads overlap writes
    // however the two threads are scheduled (bounded: 30 s).
    if (n % 30000 == 0) {
      uint64_t seen = snapshots.load();
      auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (snapshots.load() == seen && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    }
    started.store(n + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    h.record(kValue[n % kValues]);
    finished.store(n + 1, std::memory_order_release);
  }
  done = true;
  reader.join();
  LogHistogram::Snapshot end = h.snapshot();
  EXPECT_EQ(end.total, kRecords);
  for (int i = 0; i < kValues; ++i) EXPECT_EQ(end.counts[LogHistogram::bucket_of(kValue[i])], expected(kRecords, i));
  EXPECT_EQ(end.sum_ns, expected_sum(kRecords));
  EXPECT_EQ(end.max_ns, kValue[kValues - 1]);
  EXPECT_GE(snapshots.load(), kRecords / 30000);
}

}  // namespace
}  // namespace brrr
