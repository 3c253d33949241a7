// log_histogram.h: a lock-free histogram of durations with logarithmic buckets.
//
// Bucket 0 holds durations under 1 us; above that each power of two is split into 4 buckets,
// so a percentile is reported within 19% of the true value, from 1 us up to ~39 hours, in
// 150 counters. The loop records timer lateness into one (a plain store per sample); other
// threads take snapshots and read percentiles from them.
//
//   LogHistogram lateness;
//   lateness.record(ns);                          // writer thread
//   LogHistogram::Snapshot s = lateness.snapshot();  // any thread
//   int64_t p99 = s.percentile(0.99);
//
// Threads: record() from one writer thread; snapshot() from any thread.
#ifndef BRRR_RUNTIME_LOG_HISTOGRAM_H_
#define BRRR_RUNTIME_LOG_HISTOGRAM_H_

#include <array>
#include <cstdint>

#include "runtime/single_writer.h"

namespace brrr {

class LogHistogram {
 public:
  static constexpr int kSubBuckets = 4;
  static constexpr int kFirstOctave = 10;  // 2^10 ns ~ 1 us
  static constexpr int kOctaves = 37;
  static constexpr int kBuckets = 1 + kOctaves * kSubBuckets;

  struct Snapshot {
    std::array<uint64_t, kBuckets> counts{};
    uint64_t total = 0;
    int64_t max_ns = 0;
    int64_t sum_ns = 0;

    // The upper bound of the bucket holding quantile q (0..1); 0 when empty. Never above max.
    int64_t percentile(double q) const;
    int64_t mean() const { return total ? sum_ns / static_cast<int64_t>(total) : 0; }
  };

  void record(int64_t ns);
  Snapshot snapshot() const;

  static int bucket_of(int64_t ns);
  // The largest value that falls in `bucket`.
  static int64_t upper_bound(int bucket);

 private:
  std::array<SingleWriter<uint64_t>, kBuckets> counts_;
  SingleWriter<uint64_t> total_;
  SingleWriter<int64_t> max_ns_;
  SingleWriter<int64_t> sum_ns_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_LOG_HISTOGRAM_H_
