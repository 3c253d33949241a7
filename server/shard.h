// shard.h: one event loop's share of the echo server: its listener (SO_REUSEPORT, so every
// shard accepts on the same port), its accept loop, its connections and its counters.
// A shard usually has one listener; after a hand-over from a process that ran more loops it
// accepts on several (server/take_over.h), each with an accept loop of its own.
//
// Accepting: one accept at a time. Past the connection limit (--max_connections, or the one the
// admin plane set; counted across all shards) a new connection is closed at once. The admin
// plane can pause accepting (the pending accept is cancelled; clients wait in the backlog) and
// limit accepts per second (shared by all shards, with a burst of 50 ms of the rate). A
// connection accepted past that, which with several shards each holding an accept can come at
// the same moment as another shard's, waits for its turn before it is served (a drain or a pause
// serves it at once); then the shard waits while the rate is owed before its next accept, and
// clients wait in the backlog. A shard waiting for that rate looks again when the throttles
// change, so a rate lifted or raised takes effect at once. With a
// descriptor budget (shared by all shards; server/descriptor_budget.h) the shard takes a slot
// before each accept; while the budget is used up it looks again every 10 ms, and clients
// wait in the backlog, so the rest of the process keeps descriptors to open. When descriptors
// run out anyway (EMFILE, ENFILE) accepting pauses with a growing backoff (10 ms doubling to
// 1 s) instead of spinning; the clients wait in the kernel's backlog and are accepted as soon
// as descriptors free up.
//
// Draining: for the grace (--drain_grace) the shard goes on accepting; then the listener
// refuses new handshakes, waits a moment for those under way, and closes, after the clients
// waiting in its backlog have been accepted (also where accepting was paused; within the
// descriptor budget: those it has no room for are reset, counted and logged), unless the drain
// follows a hand-over (the new process accepts them), and
// connections go on until their clients close them, for up to --drain_timeout.
// At that deadline the rest are closed cleanly (server/connection.h: stop reading, echo what
// was read, shut the write side, wait briefly for the client to close); those that cannot
// hand their echoes to the kernel within kDrainFlush (a client that never reads) are reset.
// When the last connection is gone (its socket closed) the shard calls `on_drained`. Each step
// is reported to the server's DrainProgress (server/drain_progress.h).
//
// Threads: everything runs on the shard's loop thread; counters() may be read from any thread.
#ifndef BRRR_SERVER_SHARD_H_
#define BRRR_SERVER_SHARD_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/string_view.h"
#include "runtime/async.h"
#include "runtime/socket.h"
#include "runtime/unique_fd.h"
#include "server/connection.h"
#include "server/descriptor_budget.h"
#include "server/drain_progress.h"
#include "server/port_watch.h"
#include "server/server_options.h"
#include "server/server_stats.h"
#include "server/throttle.h"

namespace brrr::server {

class Shard {
 public:
  // `active_total` counts connections across all shards (for the connection limit);
  // `throttle` and `descriptors` are shared by all shards. All three must outlive the shard.
  // `progress` too is shared by all shards and must outlive the shard.
  Shard(const EchoServerOptions& options, std::unique_ptr<EventLoop> loop, std::vector<Socket> listeners,
        std::atomic<uint64_t>& active_total, Throttle& throttle, DescriptorBudget& descriptors,
        DrainProgress& progress);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  EventLoop& loop() { return *loop_; }
  const EchoServerOptions& options() const { return options_; }
  Throttle& throttle() { return throttle_; }
  ShardCounters& counters() { return counters_; }
  const ShardCounters& counters() const { return counters_; }

  // Loop thread, before or while running: starts accepting.
  void start();
  // Before start(): this shard's listener is bound but not listening yet (Socket::Bind), so
  // that it joins the port's SO_REUSEPORT group, and gets connections, only at listen_now():
  // a take-over's new process whose loop has no handed-over socket listens once the old process
  // has let go, so that a take-over that fails leaves no connection queued on a socket about to
  // close (it would be reset).
  void defer_listening() { listen_deferred_ = true; }
  // Before start(): this shard watches `address` for listeners of other processes, `ours`
  // being all the server's listeners (server/port_watch.h), until it drains. One shard does.
  void watch_port(SocketAddress address, std::set<uint64_t> ours);
  // Loop thread: the deferred listener listens and the shard accepts on it (unless it drains:
  // the listener then closes with the others). Nothing if listening was not deferred.
  absl::Status listen_now();
  // What a draining shard does with the clients waiting in a listener's backlog when it stops
  // accepting: serve them (a plain drain: closing the listener would reset them), or leave them
  // to the process that holds the listeners now (a hand-over), which accepts them.
  enum class QueuedClients { kServe, kLeaveToNewProcess };
  // Loop thread: drains: accepts for `grace` more (options().drain_grace, or none when another
  // process has taken the listeners), then stops accepting; calls on_drained once no
  // connection is left and every connection's socket is closed.
  void drain(Duration grace, QueuedClients queued, std::function<void()> on_drained);
  bool draining_deadline_passed() const { return deadline_passed_; }
  // Loop thread, after drain(): stops accepting (cutting the grace short) and closes every
  // connection now (a second SIGTERM; counted as closed by signal).
  void close_all_now();

  // Called by a connection that closed.
  void connection_closed(Connection* c, CloseReason reason);

  // Loop thread: the throttles changed by `change` (Throttle::Apply); applies pausing and the
  // accept rate, and re-evaluates throttled reads if a byte rate was set (and only then: a
  // connection's allowance is not renewed by a change of the others).
  void throttle_changed(const ThrottleChange& change);
  // Loop thread: closes the connection with descriptor `fd` (the admin plane's
  // CloseConnection); returns what it was. NotFound if no connection of this shard has it,
  // FailedPrecondition for the listener, or (with `peer` not empty) for a connection whose
  // peer address is another: the descriptor was given out again since it was listed.
  absl::StatusOr<SocketInfo> close_connection(int fd, absl::string_view peer = {});
  // Loop thread: duplicates of this shard's listening descriptors (close-on-exec), for a
  // hand-over; FailedPrecondition once draining (they are closed).
  absl::StatusOr<std::vector<UniqueFd>> duplicate_listeners() const;

 private:
  Task<> accept_loop(Socket& listener);
  // A draining loop's end of `listener`, once no accept is pending on it (its accept loop has
  // ended, or accepting was paused: `accept_was_pending` says which): refuses new handshakes,
  // waits kHandshakesUnderWay for those under way (not after a hand-over or a second signal),
  // takes what the backlog holds, then closes it.
  Task<> end_listener(Socket& listener, bool accept_was_pending);
  // For an accepted connection's turn at the accept rate, or before the next accept while the
  // rate is owed: waits `wait_ns`, or less if the throttles change meanwhile and the rate no
  // longer asks for it (lifted, or a new rate that forgot the debt).
  Task<> wait_for_accept_rate(int64_t wait_ns);
  // Ends at the next throttle_changed().
  Task<> next_throttle_change();
  // Once a draining loop's accept has ended: accepts and serves the connections queued in
  // `listener`'s backlog (Socket::accept_queued says why some may wait there unseen), within
  // the descriptor budget.
  void accept_queued(Socket& listener);
  // Before accept_queued, when the listener will close for good (not after a hand-over): no new
  // handshake starts on it (Socket::refuse_new_handshakes), so none completes between the last
  // accept and the close, where the close would reset it. Whether the filter is on; a failure is
  // logged (once per process) and the close goes on without it.
  bool refuse_new_handshakes(Socket& listener);
  // Closes a draining loop's listener. The close resets the clients still waiting in its
  // backlog (those accept_queued had no descriptor for, or all after a second signal) unless the
  // drain follows a hand-over: they are counted (connections_reset_in_backlog) and logged.
  void close_listener(Socket& listener);
  // Starts or stops the accept loop as pausing and draining require.
  void update_accepting();
  void add_connection(Socket socket);
  // A connection the backend cannot watch (select: past FD_SETSIZE): counted, logged, closed.
  void close_unwatchable(Socket socket);
  void sweep_idle();
  // The grace is over (or cut short): ends the accept loops (each takes what its listener has
  // queued, then closes it) and starts the drain deadline.
  void stop_accepting();
  // One accept loop has ended (its listener closed); the last one tells the progress.
  void acceptor_ended();
  void on_drain_deadline();
  void on_drain_flush_expired();
  void force_close_all(CloseReason reason);
  void maybe_drained();
  // An accept loop task is running (it may be waiting for an accept, a backoff or a budget).
  bool accepting() const;

  std::unique_ptr<EventLoop> loop_;
  Event throttle_changes_;  // set (and cleared) by throttle_changed(): wakes the accept-rate waits
  std::vector<Socket> listeners_;
  bool listen_deferred_ = false;  // the listeners are bound, not listening (defer_listening)
  std::atomic<uint64_t>& active_total_;
  Throttle& throttle_;
  DescriptorBudget& descriptors_;
  DrainProgress& progress_;
  ShardCounters counters_;
  // A copy, beside the counters: a connection reads both per message (the water marks), and
  // the server's own copy sits on another page among its start-up allocations (hot_path.h).
  const EchoServerOptions options_;
  Connection* connections_ = nullptr;  // intrusive list
  Connection* closed_ = nullptr;       // closed, their deletion queued (connection_closed)
  std::vector<Future<>> acceptors_;  // one per listener: its accept loop, or once draining its end_listener
  size_t acceptors_running_ = 0;      // after stop_accepting: those tasks not yet ended
  std::optional<PortWatch> port_watch_;
  TimerHandle idle_sweep_;
  TimerHandle grace_end_;
  TimerHandle drain_deadline_;
  TimerHandle drain_force_;
  bool drain_asked_ = false;  // drain() was called (the grace may still run)
  QueuedClients queued_at_drain_ = QueuedClients::kServe;
  bool draining_ = false;     // stopped accepting (the listeners are closed or closing)
  bool deadline_passed_ = false;
  bool closing_all_ = false;  // close_all_now: every connection closes, none is taken any more
  uint64_t unwatchable_reported_ = 0;  // the count when last logged
  std::function<void()> on_drained_;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_SHARD_H_
