// echo_server.h: brrr's TCP echo server: N event loops (threads) on one port.
//
//   auto server = EchoServer::Create(options);   // binds: errors come back here
//   absl::Status started = (*server)->Start();   // one thread per loop
//   ...
//   (*server)->Drain();                          // any thread: not ready; after the grace, stop
//                                                // accepting and let clients finish
//   (*server)->Wait();                           // returns once every loop has drained
//
// Each loop has its own backend instance and its own listening socket on the same address
// (SO_REUSEPORT): the kernel spreads connections across them, and no lock is shared on the
// hot path. With options.adopted_listeners the sockets are those another brrr-echo handed
// over (server/take_over.h) instead of new ones. Statistics are read from any thread without locks.
//
// Threads: Create, Start and Wait from one thread; Drain, stats and accessors from any.
#ifndef BRRR_SERVER_ECHO_SERVER_H_
#define BRRR_SERVER_ECHO_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "runtime/event_loop.h"
#include "runtime/socket_address.h"
#include "runtime/unique_fd.h"
#include "server/descriptor_budget.h"
#include "server/drain_progress.h"
#include "server/drain_watchers.h"
#include "server/server_options.h"
#include "server/server_stats.h"
#include "server/shard.h"
#include "server/throttle.h"

namespace brrr::server {

class EchoServer {
 public:
  static absl::StatusOr<std::unique_ptr<EchoServer>> Create(EchoServerOptions options);
  ~EchoServer();
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  // Measures the descriptor budget (with options().reserved_descriptors, and the backend's
  // highest watchable descriptor: select's; FailedPrecondition if none is left for
  // connections, and nothing starts) and starts the loops. Start it after
  // whatever else the process opens at start (the admin plane), which the budget leaves alone.
  // Returns once every loop has run its start-up tasks (its receive pool mapped and faulted in
  // before them, as the loop first ran: tens of ms to a few hundred under load), so that a
  // process taking over from another lets the old one go only once its loops accept at full
  // speed; a loop that has not done so within 10 s is named on stderr and the others serve
  // meanwhile.
  absl::Status Start();
  // Starts the drain: drain_started_at_ns() turns non-zero at once (readiness reads it), the
  // loops accept for options().drain_grace more, then stop accepting; connections close as
  // their clients finish, the rest at the drain deadline (server/shard.h). Idempotent. Any
  // thread. Returns whether this call started it (false: a drain had started). `announce`
  // runs only when it does, once readiness has turned and before the drain's own lines: the
  // caller's line saying why, so that two callers at once cannot both say they started it.
  bool Drain(absl::FunctionRef<void()> announce = [] {});
  // After a take-over's commit (the old process has let go): every loop that had no handed-over
  // listener (options.adopted_listeners has fewer than options.loops) starts listening on the
  // sibling it bound, and accepting. Until then those loops accept nothing. Any thread; does
  // not wait for the loops.
  void JoinPortGroup();
  // Drains without the grace: another process holds the listening sockets now (a hand-over,
  // server/handover_listener.h) and accepts on them, so there is nothing to wait for. Also
  // for a take-over that failed after this process started accepting: the old one still does.
  // `announce` runs once readiness has turned (drain_started_at_ns() is set) and before any
  // loop drains: what it says is already true for whoever reads it and asks.
  void DrainHandedOver(absl::FunctionRef<void()> announce = [] {});
  // Drains (if not yet), cutting the grace short, and closes every connection now, without
  // waiting. Any thread.
  void DrainNow();
  // Where the drain stands (server/drain_progress.h). Any thread.
  DrainPhase drain_phase() const { return progress_->phase(); }
  // Blocks until every loop has drained and stopped.
  void Wait();
  // When Drain() was first called (monotonic ns), or 0.
  int64_t drain_started_at_ns() const { return drain_started_at_ns_.load(); }
  // Runs `started` as the drain starts (any of the ways above), on the thread that starts it,
  // once drain_started_at_ns() is set; at once, on this thread, if it has started. It must be
  // short (server/drain_watchers.h). Returns the id for RemoveDrainWatcher, after which it is
  // not running and will not run. Any thread.
  uint64_t AddDrainWatcher(std::function<void()> started) { return drain_watchers_.Add(std::move(started)); }
  void RemoveDrainWatcher(uint64_t id) { drain_watchers_.Remove(id); }

  const EchoServerOptions& options() const { return options_; }
  // Every loop runs the same backend: with "auto", the first loop's choice is the others'.
  const std::string& backend() const { return backend_; }
  // With --backend=auto: why each better backend was passed over (EventLoop::backends_passed_over).
  const std::vector<std::string>& backends_passed_over() const { return backends_passed_over_; }
  const SocketAddress& address() const { return address_; }  // with the actual port
  // When Start() started the loops (monotonic ns), or 0 until they have all run their start-up
  // tasks (readiness: /readyz is 503 until then).
  int64_t started_at_ns() const { return started_at_ns_.load(); }
  size_t loop_count() const { return shards_.size(); }
  // The descriptor budget Start() measured; nullopt without options().reserved_descriptors
  // on a backend that watches any descriptor.
  const std::optional<DescriptorPlan>& descriptor_plan() const { return descriptor_plan_; }
  Shard& shard(size_t i) { return *shards_[i]; }

  // The live throttles (rates, connection limit, pausing); see server/throttle.h.
  ThrottleSettings throttle() const { return throttle_.settings(); }
  // Validates and applies a change (InvalidArgument saying what is allowed), then lets every
  // loop act on it: pause or resume accepting, re-evaluate throttled reads. Any thread.
  absl::Status SetThrottle(const ThrottleChange& change);

  ServerStats stats() const;             // all loops
  ServerStats stats(size_t loop) const;  // one loop
  std::vector<LoopStats> loop_stats() const;

  // Duplicates of every loop's listening sockets (close-on-exec), in loop order, for a
  // hand-over (server/handover_listener.h); each loop makes its own, so none is closed under
  // it. FailedPrecondition once draining (from Drain(), the grace included); Unavailable if a
  // loop does not answer in time.
  // Any thread but a loop's.
  absl::StatusOr<std::vector<UniqueFd>> DuplicateListeners();

 private:
  explicit EchoServer(EchoServerOptions options)
      : options_(std::move(options)),
        throttle_(options_.max_connections),
        progress_(std::make_unique<DrainProgress>(options_.loops)) {}
  // Drain and DrainHandedOver: tells every loop to drain after `grace`, doing `queued` with the
  // clients waiting in its listeners' backlogs.
  bool StartDrain(Duration grace, Shard::QueuedClients queued, absl::FunctionRef<void()> announce);
  // Start's wait for every loop to have run its start-up tasks (bounded: 10 s).
  void AwaitLoopsStarted();

  EchoServerOptions options_;
  std::string backend_;
  std::vector<std::string> backends_passed_over_;
  SocketAddress address_;
  std::atomic<int64_t> started_at_ns_{0};  // read by other threads (readiness)
  std::atomic<uint64_t> active_total_{0};
  Throttle throttle_;
  std::optional<DescriptorPlan> descriptor_plan_;
  DescriptorBudget descriptor_budget_;  // before shards_: their sockets give slots back to it
  std::unique_ptr<DrainProgress> progress_;  // before shards_, which report to it
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> drain_started_at_ns_{0};
  DrainWatchers drain_watchers_;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_ECHO_SERVER_H_
