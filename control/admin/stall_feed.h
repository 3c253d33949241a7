// stall_feed.h: the stalls of some loops as one queue a stream can wait on (WatchStalls).
//
//   StallFeed feed(loops, false, [&] { waits.Notify(); });  // subscribes to each loop's detector
//   std::vector<StallReport> recent = feed.Recent();        // what the loops remember, oldest first
//   std::optional<StallReport> s = feed.Next();             // the oldest stall queued, or none
//
// `arrived` runs each time a report is queued, so that whoever waits for the next one
// (StreamWaits) is woken as it is recorded rather than looking again and again. It runs only
// when a stall is reported, never on a loop's way through its tasks.
//
// A feed made with in_progress also passes on the reports of stalls still running (each
// stack sample of the loops' watchdogs, StallReport::in_progress), and Recent() ends with
// the stalls running now.
//
// Threads: the loops' threads and their watchdogs push (the detectors call the feed's
// subscriber, which copies the report and calls `arrived`); one consumer thread calls Next.
// Destroying the feed unsubscribes: `arrived` is not running then and will not run.
#ifndef BRRR_CONTROL_STALL_FEED_H_
#define BRRR_CONTROL_STALL_FEED_H_

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "runtime/event_loop.h"
#include "runtime/stall_detector.h"

namespace brrr::control {

class StallFeed {
 public:
  // At most this many stalls wait in the queue; older ones are dropped (and counted), and the
  // consumer sees the gap in their sequence numbers. A report holds up to
  // StallDetector::kSamplesKept stacks of up to StackSampler::kMaxFrames frames (tens of KiB),
  // so a stream whose client does not read holds a few MiB at most, not hundreds.
  static constexpr size_t kQueueLimit = 64;

  // `arrived`: called after each report queued, on the thread that reported it (a loop's or its
  // watchdog's, with the detector's lock held): it must be short (wake someone), and must not
  // call this feed's Recent.
  explicit StallFeed(std::vector<EventLoop*> loops, bool in_progress = false, std::function<void()> arrived = nullptr);
  ~StallFeed();
  StallFeed(const StallFeed&) = delete;
  StallFeed& operator=(const StallFeed&) = delete;

  std::vector<StallReport> Recent() const;
  // The oldest stall queued, taken off the queue; none if it is empty. Does not wait.
  std::optional<StallReport> Next();
  // Stalls dropped because the consumer fell kQueueLimit behind.
  uint64_t dropped() const;

 private:
  struct Queue {
    std::mutex mu;
    std::deque<StallReport> reports;
    uint64_t dropped = 0;
  };

  std::vector<EventLoop*> loops_;
  const bool in_progress_;
  std::vector<uint64_t> subscriptions_;  // one per loop
  std::shared_ptr<Queue> queue_;         // shared with the subscribers
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_STALL_FEED_H_
