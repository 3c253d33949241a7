// loop_wait.h: how long an admin action waits for a loop, given what is left of its caller's
// deadline.
//
// The wait is the longest an action waits (AdminService::kLoopCallTimeout), or less when the
// caller's deadline comes sooner, so that the UNAVAILABLE naming what blocks the loop reaches the
// caller before its deadline does. The margin left for that answer is a tenth of what is left, at
// least 250 ms (an answer crosses gRPC in far less, also on a loaded machine), and at most half of
// what is left: a loop that is free answers within far less, and a wait of nothing would call
// every loop busy. Nothing is left: no wait.
#ifndef BRRR_CONTROL_ADMIN_LOOP_WAIT_H_
#define BRRR_CONTROL_ADMIN_LOOP_WAIT_H_

#include <algorithm>
#include <chrono>

#include "runtime/clock.h"

namespace brrr::control {

constexpr Duration kLeastAnswerMargin = std::chrono::milliseconds(250);

// The wait for a loop when `left` remains of the caller's deadline and the action waits at most
// `longest`.
constexpr Duration LoopWait(Duration left, Duration longest) {
  if (left <= Duration::zero()) return Duration::zero();
  const Duration margin = std::min(std::max(kLeastAnswerMargin, left / 10), left / 2);
  return std::min(longest, left - margin);
}

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_LOOP_WAIT_H_
