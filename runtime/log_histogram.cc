#include "runtime/log_histogram.h"

#include <algorithm>
#include <bit>

namespace brrr {

int LogHistogram::bucket_of(int64_t ns) {
  if (ns < (int64_t{1} << kFirstOctave)) return 0;
  uint64_t v = static_cast<uint64_t>(ns);
  int octave = std::bit_width(v) - 1;  // floor(log2(v)) >= kFirstOctave
  int sub = static_cast<int>((v >> (octave - 2)) & (kSubBuckets - 1));
  int bucket = 1 + (octave - kFirstOctave) * kSubBuckets + sub;
  return std::min(bucket, kBuckets - 1);
}

int64_t LogHistogram::upper_bound(int bucket) {
  if (bucket <= 0) return (int64_t{1} << kFirstOctave) - 1;
  int octave = kFirstOctave + (bucket - 1) / kSubBuckets;
  int sub = (bucket - 1) % kSubBuckets;
  int64_t base = int64_t{1} << octave;
  return base + (base / kSubBuckets) * (sub + 1) - 1;
}

void LogHistogram::record(int64_t ns) {
  if (ns < 0) ns = 0;
  counts_[bucket_of(ns)].add(1);
  total_.add(1);
  sum_ns_.add(ns);
  if (ns > max_ns_.load()) max_ns_.store(ns);
}

LogHistogram::Snapshot LogHistogram::snapshot() const {
  Snapshot s;
  for (int i = 0; i < kBuckets; ++i) {
    s.counts[i] = counts_[i].load();
    s.total += s.counts[i];
  }
  s.max_ns = max_ns_.load();
  s.sum_ns = sum_ns_.load();
  return s;
}

int64_t LogHistogram::Snapshot::percentile(double q) const {
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

}  // namespace brrr
