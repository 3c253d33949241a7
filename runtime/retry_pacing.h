// retry_pacing.h: how a loop paces an attempt it must repeat, such as an accept that failed
// for want of descriptors: RetryBackoff is the pause before the next try (10 ms, doubling after
// each failure in a row, up to 1 s; 10 ms again after a success), and IsPowerOfTen says which
// occurrences of a recurring problem are worth a log line (the 1st, 10th, 100th...), so that a
// problem that lasts cannot flood the log. The echo server's and the metrics port's acceptors
// pause with RetryBackoff; they and the admin plane's listener report with IsPowerOfTen.
//
//   RetryBackoff backoff;
//   for (;;) {
//     absl::StatusOr<Socket> s = co_await listener.accept();
//     if (!s.ok()) {
//       if (IsPowerOfTen(++errors)) Report(s.status(), backoff.pause());
//       co_await sleep(backoff.pause());
//       backoff.failed();
//       continue;
//     }
//     backoff.succeeded();
//     ...
//
// Threading: RetryBackoff is a value for one coroutine (or thread); IsPowerOfTen is pure.
#ifndef BRRR_RUNTIME_RETRY_PACING_H_
#define BRRR_RUNTIME_RETRY_PACING_H_

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "runtime/clock.h"

namespace brrr {

class RetryBackoff {
 public:
  static constexpr Duration kFirst = std::chrono::milliseconds(10);
  static constexpr Duration kLongest = std::chrono::seconds(1);

  // How long to wait before the next try.
  Duration pause() const { return pause_; }
  // The try failed again: the next pause is twice as long (up to kLongest).
  void failed() { pause_ = std::min<Duration>(pause_ * 2, kLongest); }
  // The try succeeded: the next failure waits kFirst.
  void succeeded() { pause_ = kFirst; }

 private:
  Duration pause_ = kFirst;
};

// Whether n is 1, 10, 100, 1000... (false for 0).
inline bool IsPowerOfTen(uint64_t n) {
  while (n >= 10 && n % 10 == 0) n /= 10;
  return n == 1;
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_RETRY_PACING_H_
