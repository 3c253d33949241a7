// drain_progress.h: where a drain of the echo server stands, across all its loops, and the log
// line that marks each step.
//
// A drain goes through these phases (README "Draining"):
//   kServing    no drain asked for.
//   kGrace      drain asked for (SIGTERM, SIGINT, the admin Drain): /readyz answers 503 and
//               grpc.health NOT_SERVING, but every loop still accepts for --drain_grace, so
//               that a balancer's next health check takes the instance out before its
//               listeners close.
//   kFinishing  every loop has closed its listener; open connections go on until their
//               clients close them, for up to --drain_timeout.
//   kClosing    a loop reached its drain deadline: its connections stop reading, echo what
//               they have read, shut their write side and close (server/connection.h).
//
//   DrainProgress progress(loops);
//   progress.Started(grace, timeout);      // any thread, once
//   progress.LoopStoppedAccepting();       // each loop, once; the last one logs
//   progress.LoopPastDeadline(open);       // each loop that reaches its deadline, once
//   progress.LoopDrainedInTime();          // each loop whose connections all ended before it
//                                          // (the last of those two calls logs the deadline)
//   progress.phase();                      // any thread
//
// Threads: every method may be called from any thread; no locks (atomics only).
#ifndef BRRR_SERVER_DRAIN_PROGRESS_H_
#define BRRR_SERVER_DRAIN_PROGRESS_H_

#include <atomic>
#include <cstdint>

#include "runtime/clock.h"

namespace brrr::server {

enum class DrainPhase { kServing = 0, kGrace = 1, kFinishing = 2, kClosing = 3 };

// "serving", "grace", "finishing", "closing".
const char* DrainPhaseName(DrainPhase phase);

class DrainProgress {
 public:
  explicit DrainProgress(int loops) : loops_(loops) {}
  DrainProgress(const DrainProgress&) = delete;
  DrainProgress& operator=(const DrainProgress&) = delete;

  // The drain began; logs the grace (when there is one). Call once.
  void Started(Duration grace, Duration timeout);
  // One loop closed its listener; the last of them logs that accepting has ended.
  void LoopStoppedAccepting();
  // One loop reached its drain deadline with `open` connections. Once every loop has either
  // reached it or drained in time, the last one logs how many were left to close over all
  // loops (if any loop reached it).
  void LoopPastDeadline(uint64_t open);
  // One loop drained before its deadline (its deadline will not come).
  void LoopDrainedInTime();

  DrainPhase phase() const;

 private:
  // One more loop is past its deadline or drained in time; the last logs the deadline.
  void Settled();

  const int loops_;
  std::atomic<int64_t> timeout_ns_{0};
  std::atomic<bool> had_grace_{false};  // without one, brrr-echo's own drain line says it all
  std::atomic<bool> started_{false};
  std::atomic<int> stopped_accepting_{0};
  std::atomic<int> past_deadline_{0};
  std::atomic<int> settled_{0};  // loops past their deadline or drained in time
  std::atomic<uint64_t> open_at_deadline_{0};
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_DRAIN_PROGRESS_H_
