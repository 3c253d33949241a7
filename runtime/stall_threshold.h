// stall_threshold.h: the stall thresholds a user may set (the admin plane's
// SetStallThreshold, brrr-echo's --stall_threshold), declared once for both. Below 1 ms every
// task is a stall; past a minute a hung loop goes unseen. A header of its own, without the
// detector's, so that code that only checks a request (and the fuzzers, built with clang)
// does not take in the loop's task labels.
#ifndef BRRR_RUNTIME_STALL_THRESHOLD_H_
#define BRRR_RUNTIME_STALL_THRESHOLD_H_

#include <cstdint>

namespace brrr {

inline constexpr int64_t kMinStallThresholdNs = 1'000'000;
inline constexpr int64_t kMaxStallThresholdNs = 60'000'000'000;

}  // namespace brrr

#endif  // BRRR_RUNTIME_STALL_THRESHOLD_H_
