// administered.h: what the admin plane administers, and everything it may touch of it.
//
// The admin plane (AdminServer, AdminService, health) reaches the program it runs in only
// through this interface: what runs, its event loops (their statistics and stall detectors,
// and a thread to run actions and injected tasks on), the server's own figures per loop,
// closing a connection, the throttles, and the drain. A composition root implements it over
// its server (server/brrr-echo/echo_administered.h for brrr-echo), so control/ depends on no
// server class and the server on nothing of control/.
//
//   class MyServer final : public control::Administered { ... };
//   auto admin = AdminServer::Start(options, my_server, backends);
//
// Threads: every method may be called from any thread, except where it says otherwise.
#ifndef BRRR_CONTROL_ADMIN_ADMINISTERED_H_
#define BRRR_CONTROL_ADMIN_ADMINISTERED_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/event_loop.h"
#include "runtime/socket_table.h"
#include "server/drain_progress.h"
#include "server/server_stats.h"
#include "server/throttle.h"

namespace brrr::control {

class Administered {
 public:
  virtual ~Administered() = default;

  // ---- What runs. ----
  virtual std::string backend() const = 0;
  virtual std::vector<std::string> listening_addresses() const = 0;
  // When it started serving (monotonic clock), or 0 while it has not yet.
  virtual int64_t started_at_ns() const = 0;

  // ---- Its event loops, in loop order (index = loop id). They outlive the admin plane. ----
  virtual std::vector<EventLoop*> loops() const = 0;

  // ---- Figures (server/server_stats.h): one loop's, and the sum over loops. ----
  virtual server::ServerStats server_stats(size_t loop) const = 0;
  virtual server::ServerStats server_stats() const = 0;

  // ---- Sockets. Loop `loop`'s thread only. ----
  // Closes the connection with descriptor `fd` and returns what it was; NotFound if that loop
  // has none, FailedPrecondition for a socket that is not a connection, or (with `peer` not
  // empty) for a connection whose peer address is not `peer`: nothing is closed then.
  virtual absl::StatusOr<SocketInfo> CloseConnection(size_t loop, int fd, absl::string_view peer) = 0;

  // ---- Throttles (server/throttle.h). ----
  virtual server::ThrottleSettings throttle() const = 0;
  // Validates and applies a change (InvalidArgument saying what is allowed); every loop takes
  // it in through its queue of cross-thread calls.
  virtual absl::Status SetThrottle(const server::ThrottleChange& change) = 0;

  // ---- Drain. ----
  // Reports not-ready at once, stops accepting after its grace; the program exits once its
  // connections have finished (server/drain_progress.h). Idempotent: returns whether this call
  // started it; `announce` runs only then, before the drain's own lines (EchoServer::Drain).
  virtual bool Drain(absl::FunctionRef<void()> announce) = 0;
  // When Drain() was first called (monotonic ns), or 0.
  virtual int64_t drain_started_at_ns() const = 0;
  // Runs `started` as the drain starts, however it is started (Drain, a signal, a hand-over), on
  // the thread that starts it, once drain_started_at_ns() is non-zero; at once, on this thread,
  // if it has started. For whoever waits for the drain without asking over and over (grpc.health's
  // Watch). `started` must be short (wake a waiter) and must not call these two methods. Returns
  // the id for RemoveDrainWatcher, after which `started` is not running and will not run.
  virtual uint64_t AddDrainWatcher(std::function<void()> started) = 0;
  virtual void RemoveDrainWatcher(uint64_t id) = 0;
  // Where the drain stands. By default only "serving" or "finishing", from the drain time.
  virtual server::DrainPhase drain_phase() const {
    return drain_started_at_ns() == 0 ? server::DrainPhase::kServing : server::DrainPhase::kFinishing;
  }
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_ADMINISTERED_H_
