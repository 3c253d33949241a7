#include "control/admin/stream_waits.h"

#include <algorithm>

namespace brrr::control {

StreamWaits::Woken StreamWaits::Wait(const grpc::ServerContext& context, Clock::time_point until,
                                     absl::FunctionRef<bool()> ready) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (shutting_down_) return Woken::kShutDown;
    if (ready()) return Woken::kReady;
    if (context.IsCancelled()) return Woken::kCancelled;
    const Clock::time_point now = Clock::now();
    if (now >= until) return Woken::kTime;
    // `until` may be time_point::max(): nothing is added to it.
    changed_.wait_until(lock, std::min(until, now + kCancelCheck));
  }
}

void StreamWaits::Notify() {
  // Taken so that a wait between its look at `ready` and its sleep cannot miss the wake-up.
  { std::lock_guard<std::mutex> lock(mu_); }
  changed_.notify_all();
}

void StreamWaits::ShutDown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
  }
  changed_.notify_all();
}

bool StreamWaits::shutting_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutting_down_;
}

}  // namespace brrr::control
