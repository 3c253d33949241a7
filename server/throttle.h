// throttle.h: the echo server's live throttles: bytes per second per connection and in total,
// accepts per second, the connection limit, and pausing accepting. The admin plane changes
// them while the server runs; the loops read them on their hot path without locks.
//
//   ThrottleChange change;
//   change.bytes_per_second_per_connection = 10'000;
//   absl::Status ok = throttle.Apply(change);   // InvalidArgument (saying what is allowed) or OK
//   ok = Throttle::Check(change);                // the same answer, nothing applied
//   ThrottleSettings now = throttle.settings();
//
// Rates are charged where bytes are read (the server echoes what it reads, so the read rate
// bounds the echo rate): a connection that runs ahead stops reading until it is back within
// its rate (see Connection). Rates of 0 mean unlimited.
//
// Threads: any. Settings are single atomics; a reader may see one change before another
// that was applied in the same call.
#ifndef BRRR_SERVER_THROTTLE_H_
#define BRRR_SERVER_THROTTLE_H_

#include <atomic>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "server/rate_limiter.h"

namespace brrr::server {

struct ThrottleSettings {
  uint64_t bytes_per_second_per_connection = 0;  // 0: unlimited
  uint64_t bytes_per_second_total = 0;           // 0: unlimited
  uint64_t accepts_per_second = 0;               // 0: unlimited
  uint64_t max_connections = 0;
  bool accepting_paused = false;
};

// What to change; unset members stay as they are.
struct ThrottleChange {
  std::optional<uint64_t> bytes_per_second_per_connection;
  std::optional<uint64_t> bytes_per_second_total;
  std::optional<uint64_t> accepts_per_second;
  std::optional<uint64_t> max_connections;
  std::optional<bool> accepting_paused;
};

class Throttle {
 public:
  // The allowed ranges (besides 0 = unlimited for the rates).
  static constexpr uint64_t kMinBytesPerSecond = 1'000;
  static constexpr uint64_t kMaxBytesPerSecond = 100'000'000'000;
  static constexpr uint64_t kMaxAcceptsPerSecond = 1'000'000;
  static constexpr uint64_t kMaxConnectionsLimit = 10'000'000;

  explicit Throttle(uint64_t max_connections);

  // OK if every member `change` sets is in its range, else InvalidArgument saying what is
  // allowed. A pure function: what Apply checks, for a caller that checks before it asks.
  static absl::Status Check(const ThrottleChange& change);
  // Checks every member first, then applies them all, or none.
  absl::Status Apply(const ThrottleChange& change);
  ThrottleSettings settings() const;

  // Hot-path reads.
  uint64_t bytes_per_second_per_connection() const { return per_connection_.load(std::memory_order_relaxed); }
  uint64_t bytes_per_second_total() const { return total_.load(std::memory_order_relaxed); }
  uint64_t accepts_per_second() const { return accepts_.load(std::memory_order_relaxed); }
  uint64_t max_connections() const { return max_connections_.load(std::memory_order_relaxed); }
  bool accepting_paused() const { return paused_.load(std::memory_order_relaxed); }

  // Shared budgets: bytes read by all connections, connections accepted by all loops.
  SharedRateLimiter& total_bytes() { return total_bytes_; }
  SharedRateLimiter& accepted() { return accepted_; }

 private:
  std::atomic<uint64_t> per_connection_{0};
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> accepts_{0};
  std::atomic<uint64_t> max_connections_;
  std::atomic<bool> paused_{false};
  SharedRateLimiter total_bytes_;
  SharedRateLimiter accepted_;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_THROTTLE_H_
