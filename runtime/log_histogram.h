// log_histogram.h: a lock-free histogram of durations with logarithmic buckets.
//
// Bucket 0 holds durations under 1 us; above that each power of two is split into
// 2^kSubBucketBits buckets, up to ~39 hours. LogHistogram (4 per octave) reports a percentile
// within 25% in 149 counters; the benchmarks use finer ones. A loop records timer lateness
// into one and every task's duration into another (a few plain stores per sample); other
// threads take snapshots and read percentiles.
//
//   LogHistogram lateness;
//   lateness.record(ns);                          // writer thread
//   LogHistogram::Snapshot s = lateness.snapshot();  // any thread
//   int64_t p99 = s.percentile(0.99);
//
// Threads: record() from one writer thread; snapshot() from any thread.
#ifndef BRRR_RUNTIME_LOG_HISTOGRAM_H_
#define BRRR_RUNTIME_LOG_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

#include "runtime/single_writer.h"

namespace brrr {

// 2^kSubBucketBits buckets per power of two: a percentile is reported within
// 100/2^kSubBucketBits % of the true value.
template <int kSubBucketBits>
class BasicLogHistogram {
 public:
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  static constexpr int kFirstOctave = 10;  // 2^10 ns ~ 1 us
  static constexpr int kOctaves = 37;
  static constexpr int kBuckets = 1 + kOctaves * kSubBuckets;

  struct Snapshot {
    std::array<uint64_t, kBuckets> counts{};
    uint64_t total = 0;
    int64_t max_ns = 0;
    int64_t sum_ns = 0;

    // The upper bound of the bucket holding quantile q (0..1); 0 when empty. Never above max.
    int64_t percentile(double q) const {
      if (total == 0) return 0;
      q = std::clamp(q, 0.0, 1.0);
      uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total));
      if (rank >= total) rank = total - 1;
      uint64_t seen = 0;
      for (int i = 0; i < kBuckets; ++i) {
        seen += counts[i];
        if (seen > rank) return std::min(upper_bound(i), max_ns);
      }
      return max_ns;
    }
    int64_t mean() const { return total ? sum_ns / static_cast<int64_t>(total) : 0; }
    Snapshot& operator+=(const Snapshot& o) {
      for (int i = 0; i < kBuckets; ++i) counts[i] += o.counts[i];
      total += o.total;
      max_ns = std::max(max_ns, o.max_ns);
      sum_ns += o.sum_ns;
      return *this;
    }
  };

  void record(int64_t ns) {
    if (ns < 0) ns = 0;
    // Three plain load/store pairs and a compare: the total is the sum of the counts, taken
    // by snapshot(), so the writer does not keep one.
    counts_[bucket_of(ns)].add(1);
    sum_ns_.add(ns);
    if (ns > max_ns_.load()) max_ns_.store(ns);
  }

  // For a writer that counts its samples anyway and keeps their maximum (the loop: tasks_run
  // and the longest task): adds the sample to the sum, and counts it only past bucket 0
  // (1 us); snapshot_counted_elsewhere() then puts the rest of the writer's count in bucket 0.
  // A loop's tasks mostly take under 1 us, so each saves a counter update and a compare:
  // a task costs 0.9 ns more than without the histogram instead of 1.9 ns with record()
  // (BM_CallSoonDispatch, bench/README.md).
  void record_counted_elsewhere(int64_t ns) {
    ns &= ~(ns >> 63);  // a negative sample (a clock step back) as 0, without a branch
    sum_ns_.add(ns);
    if (ns >= (int64_t{1} << kFirstOctave)) [[unlikely]] counts_[bucket_of(ns)].add(1);
  }

  // The snapshot of a histogram written with record_counted_elsewhere(): `count` is the
  // writer's count of every sample (read after the buckets, so it includes each one counted
  // there), `max_ns` the largest sample.
  Snapshot snapshot_counted_elsewhere(const SingleWriter<uint64_t>& count, int64_t max_ns) const {
    Snapshot s = snapshot();
    uint64_t all = count.load();
    s.counts[0] = all > s.total ? all - s.total : 0;
    s.total += s.counts[0];
    s.max_ns = max_ns;
    return s;
  }

  Snapshot snapshot() const {
    Snapshot s;
    for (int i = 0; i < kBuckets; ++i) {
      s.counts[i] = counts_[i].load();
      s.total += s.counts[i];
    }
    s.max_ns = max_ns_.load();
    s.sum_ns = sum_ns_.load();
    return s;
  }

  static int bucket_of(int64_t ns) {
    if (ns < (int64_t{1} << kFirstOctave)) return 0;
    uint64_t v = static_cast<uint64_t>(ns);
    int octave = std::bit_width(v) - 1;  // floor(log2(v)) >= kFirstOctave
    int sub = static_cast<int>((v >> (octave - kSubBucketBits)) & (kSubBuckets - 1));
    int bucket = 1 + (octave - kFirstOctave) * kSubBuckets + sub;
    return std::min(bucket, kBuckets - 1);
  }

  // The largest value that falls in `bucket`.
  static int64_t upper_bound(int bucket) {
    if (bucket <= 0) return (int64_t{1} << kFirstOctave) - 1;
    int octave = kFirstOctave + (bucket - 1) / kSubBuckets;
    int sub = (bucket - 1) % kSubBuckets;
    int64_t base = int64_t{1} << octave;
    return base + (base / kSubBuckets) * (sub + 1) - 1;
  }

 private:
  std::array<SingleWriter<uint64_t>, kBuckets> counts_;
  SingleWriter<int64_t> max_ns_;
  SingleWriter<int64_t> sum_ns_;
};

// The runtime's: 4 buckets per octave (within 25%), 149 counters. Timer lateness uses it.
using LogHistogram = BasicLogHistogram<2>;

}  // namespace brrr

#endif  // BRRR_RUNTIME_LOG_HISTOGRAM_H_
