// stream_waits.h: where the admin plane's streams (WatchStats, WatchStalls, grpc.health Watch)
// sleep between two messages, and what wakes them: their own time (a sample interval), what
// they wait for (a stall recorded, the drain's start: Notify), and the admin plane's shutdown
// (ShutDown), which ends them all at once. One for the whole admin plane, so that one shutdown
// reaches every stream of every service.
//
//   StreamWaits waits;
//   // a stream's handler, on a gRPC thread:
//   StreamWaits::Woken w = waits.Wait(*context, next_sample, [&] { return feed.HasNext(); });
//   // elsewhere:
//   waits.Notify();    // what some stream waits for may have come (a stall, the drain)
//   waits.ShutDown();  // every wait returns kShutDown, now and from now on
//
// A client that goes away is seen within kCancelCheck: gRPC 1.51's synchronous API says a call
// was cancelled only when asked (ServerContext::IsCancelled; AsyncNotifyWhenDone is for the
// asynchronous API), so a wait with nothing to wake it looks that often, and a cancelled
// stream gives back its call slot (call_slots.h) that soon.
//
// Threads: any thread. `ready` runs with this class's lock held: it must be short, and must
// not call this class.
#ifndef BRRR_CONTROL_ADMIN_STREAM_WAITS_H_
#define BRRR_CONTROL_ADMIN_STREAM_WAITS_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "grpcpp/server_context.h"

namespace brrr::control {

class StreamWaits {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kCancelCheck{1};

  enum class Woken {
    kReady,      // `ready()` holds
    kTime,       // `until` has come
    kShutDown,   // ShutDown() was called
    kCancelled,  // the call was cancelled (its client went away, or its deadline passed)
  };

  StreamWaits() = default;
  StreamWaits(const StreamWaits&) = delete;
  StreamWaits& operator=(const StreamWaits&) = delete;

  // Sleeps until the first of: the shutdown, `ready()`, the call's cancellation, `until`
  // (looked at in that order, also before sleeping). `ready` is looked at again on each Notify.
  Woken Wait(const grpc::ServerContext& context, Clock::time_point until, absl::FunctionRef<bool()> ready);
  // Without a time of its own.
  Woken Wait(const grpc::ServerContext& context, absl::FunctionRef<bool()> ready) {
    return Wait(context, Clock::time_point::max(), ready);
  }

  // Wakes every wait to look at its `ready` again.
  void Notify();
  // Ends every wait, now and from now on. Idempotent.
  void ShutDown();
  bool shutting_down() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_STREAM_WAITS_H_
