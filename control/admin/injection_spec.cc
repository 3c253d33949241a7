#include "control/admin/injection_spec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "control/admin/loop_range.h"

namespace brrr::control {
namespace {

int64_t Millis(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

}  // namespace

absl::StatusOr<InjectionSpec> CheckInjectionSpec(InjectionSpec spec, Duration max_block, size_t loop_count) {
  bool blocking = spec.kind != InjectionKind::kNonblockingSleep;
  Duration longest = blocking ? max_block : kMaxNonblockingDuration;
  if (spec.duration < std::chrono::milliseconds(1) || spec.duration > longest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "duration_ms=", Millis(spec.duration), " is out of range: ", blocking ? "a blocking" : "a non-blocking",
        " injection lasts 1 to ", Millis(longest), " ms",
        blocking ? " (the server's --admin_max_block)" : ""));
  }
  if (spec.count == 0) spec.count = 1;
  if (spec.count > kMaxInjectionCount) {
    return absl::InvalidArgumentError(absl::StrCat("count=", spec.count, " is out of range: allowed 1 to ",
                                                   kMaxInjectionCount, " (0 means 1)"));
  }
  if (spec.interval < Duration::zero() || spec.interval > kMaxInjectionInterval) {
    return absl::InvalidArgumentError(absl::StrCat("interval_ms=", Millis(spec.interval),
                                                   " is out of range: allowed 0 to ", Millis(kMaxInjectionInterval)));
  }
  if (spec.loops.empty()) {
    for (uint32_t i = 0; i < loop_count; ++i) spec.loops.push_back(i);
  }
  std::sort(spec.loops.begin(), spec.loops.end());
  spec.loops.erase(std::unique(spec.loops.begin(), spec.loops.end()), spec.loops.end());
  for (uint32_t loop : spec.loops) {
    if (loop >= loop_count) {
      return absl::NotFoundError(NoSuchLoop(loop, loop_count));
    }
  }
  return spec;
}

}  // namespace brrr::control
