#include "server/shard.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "runtime/line_output.h"
#include "runtime/retry_pacing.h"

namespace brrr::server {

using std::chrono::milliseconds;

namespace {

// How often a shard at its descriptor budget looks again: clients wait in the backlog at
// most this long after a descriptor frees up, for one atomic read per look.
constexpr Duration kBudgetPoll = milliseconds(10);

// How long a draining loop's listener, refusing new handshakes, stays open for those already
// under way (a SYN answered just before the filter): a loopback or LAN round trip, with room
// for a loaded machine. A client whose SYN arrives meanwhile sends it again about 1 s later.
constexpr Duration kHandshakesUnderWay = milliseconds(5);

// The clients whose handshake the kernel has completed and who wait in the backlog of
// listening socket `fd` to be accepted (TCP_INFO of a listener: tcpi_unacked is its accept
// queue's length); 0 for a socket that does not listen.
uint32_t ClientsInBacklog(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || info.tcpi_state != TCP_LISTEN) return 0;
  return info.tcpi_unacked;
}

// The shard's intrusive lists of connections (Connection::prev and next).
void Link(Connection** head, Connection* c) {
  c->prev = nullptr;
  c->next = *head;
  if (*head != nullptr) (*head)->prev = c;
  *head = c;
}

void Unlink(Connection** head, Connection* c) {
  if (c->prev != nullptr) {
    c->prev->next = c->next;
  } else {
    *head = c->next;
  }
  if (c->next != nullptr) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

}  // namespace

Shard::Shard(const EchoServerOptions& options, std::unique_ptr<EventLoop> loop, std::vector<Socket> listeners,
             std::atomic<uint64_t>& active_total, Throttle& throttle, DescriptorBudget& descriptors,
             DrainProgress& progress)
    : loop_(std::move(loop)),
      throttle_changes_(*loop_),
      listeners_(std::move(listeners)),
      active_total_(active_total),
      throttle_(throttle),
      descriptors_(descriptors),
      progress_(progress),
      options_(options) {}

Shard::~Shard() {
  // Connections and the listener belong to the loop: close them while it still exists. The
  // closed ones too: a loop that stopped before it drained drops their queued deletions unrun
  // (a drained one has none: maybe_drained waits for them).
  for (Connection** list : {&connections_, &closed_}) {
    while (*list != nullptr) {
      Connection* c = *list;
      *list = c->next;
      delete c;
    }
  }
  for (Socket& listener : listeners_) listener.close();
  loop_.reset();
}

void Shard::watch_port(SocketAddress address, std::set<uint64_t> ours) {
  port_watch_.emplace(*loop_, std::move(address), std::move(ours), counters_.foreign_listeners);
}

void Shard::start() {
  // (The receive-buffer pool, a fixed cost of the loop, is mapped as the loop first runs,
  // before its first task: EventLoopOptions::receive_buffers_at_first_run.)
  if (port_watch_.has_value()) {
    // Its first look once the loop runs, unless a drain has stopped it by then.
    auto first_look = [this] {
      if (!draining_) port_watch_->start();
    };
    loop_->call_soon(first_look, "echo:port_watch");
  }
  update_accepting();
  if (options_.idle_timeout > Duration::zero()) {
    Duration every = std::max<Duration>(options_.idle_timeout / 4, milliseconds(10));
    idle_sweep_ = loop_->call_later(every, [this] { sweep_idle(); }, "echo:idle_sweep");
  }
}

absl::Status Shard::listen_now() {
  if (!listen_deferred_) return absl::OkStatus();
  listen_deferred_ = false;
  if (draining_) return absl::OkStatus();  // stop_accepting closed the listeners
  for (Socket& listener : listeners_) {
    if (absl::Status listening = listener.listen(options_.backlog); !listening.ok()) {
      return absl::Status(listening.code(), absl::StrCat("loop ", loop_->loop_id(), ": ", listening.message()));
    }
  }
  update_accepting();
  return absl::OkStatus();
}

void Shard::update_accepting() {
  bool wanted = !draining_ && !listen_deferred_ && !throttle_.accepting_paused();
  bool running = accepting();
  if (wanted && !running) {
    acceptors_.clear();
    for (Socket& listener : listeners_) acceptors_.push_back(create_task(*loop_, accept_loop(listener), "echo:accept"));
  } else if (!wanted && running && !draining_) {
    // Paused: cancel the pending accepts. Once the tasks have ended (the backend confirms the
    // cancels), look again: accepting may have been resumed meanwhile.
    for (Future<>& acceptor : acceptors_) {
      if (acceptor.cancel()) {
        acceptor.add_done_callback([this] { if (!accepting()) update_accepting(); }, "echo:accept_paused");
      }
    }
  }
}

bool Shard::accepting() const {
  for (const Future<>& acceptor : acceptors_) {
    if (acceptor.valid() && !acceptor.done()) return true;
  }
  return false;
}

absl::StatusOr<std::vector<UniqueFd>> Shard::duplicate_listeners() const {
  if (draining_) {
    return absl::FailedPreconditionError("this instance is draining: its listeners are closed");
  }
  if (listen_deferred_) {
    return absl::FailedPreconditionError(
        absl::StrCat("this instance is still taking over: loop ", loop_->loop_id(), " does not listen yet"));
  }
  std::vector<UniqueFd> fds;
  for (const Socket& listener : listeners_) {
    UniqueFd fd(::fcntl(listener.fd(), F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) {
      return absl::ErrnoToStatus(errno, absl::StrCat("duplicating loop ", loop_->loop_id(), "'s listener"));
    }
    fds.push_back(std::move(fd));
  }
  return fds;
}

Task<> Shard::accept_loop(Socket& listener) {
  // Published for the admin plane: true while this task runs, however it ends.
  struct Accepting {
    explicit Accepting(SingleWriter<uint64_t>& flag) : flag(flag) { flag.store(1); }
    ~Accepting() { flag.store(0); }
    SingleWriter<uint64_t>& flag;
  } accepting(counters_.accepting);
  RetryBackoff backoff;
  uint64_t errors_reported = 0;
  uint64_t budget_waits = 0;
  bool waiting_for_budget = false;
  // Pausing and draining cancel this task: it ends at its next wait (an accept, a backoff, a
  // budget or throttle pause).
  try {
    while (!draining_ && !throttle_.accepting_paused()) {
      std::optional<DescriptorBudget::Slot> slot = descriptors_.TryTake();
      if (!slot.has_value()) {
        // Reported at the 1st, 10th, 100th... time the budget is reached, as errors are.
        if (!waiting_for_budget && IsPowerOfTen(++budget_waits)) {
          PrintToStderr(
              "brrr-echo: loop %u: the echo side holds all %lld descriptors of its budget; new "
              "connections wait in the backlog (%llu waits so far)\n",
              loop_->loop_id(), static_cast<long long>(descriptors_.limit()),
              static_cast<unsigned long long>(budget_waits));
        }
        waiting_for_budget = true;
        co_await sleep(kBudgetPoll);
        continue;
      }
      waiting_for_budget = false;
      absl::StatusOr<Socket> conn = co_await listener.accept();
      if (!conn.ok()) {
        if (draining_ || absl::IsCancelled(conn.status())) break;
        counters_.accept_errors.add(1);
        // Out of descriptors (or memory): pause instead of spinning on a listener that stays
        // readable. Reported at 1, 10, 100... so the log cannot flood.
        uint64_t n = counters_.accept_errors.load();
        if (n >= errors_reported * 10 || errors_reported == 0) {
          errors_reported = n;
          PrintToStderr("brrr-echo: loop %u: %s (%llu accept errors so far); retrying in %lld ms\n", loop_->loop_id(),
                        std::string(conn.status().message()).c_str(), static_cast<unsigned long long>(n),
                        static_cast<long long>(std::chrono::duration_cast<milliseconds>(backoff.pause()).count()));
        }
        co_await sleep(backoff.pause());
        backoff.failed();
        continue;
      }
      backoff.succeeded();
      slot->HandTo(*conn);
      // Its turn at the accept rate, which the loops share. Each loop has an accept pending, so
      // the kernel can hand several loops a connection at the same moment: those past the rate's
      // burst wait here for their turn, accepted but not yet served, so that however many loops
      // there are the server takes on no more than the rate (and its burst).
      if (uint64_t rate = throttle_.accepts_per_second(); rate > 0) {
        if (int64_t turn = throttle_.accepted().charge_turn(1, rate, MonotonicNanos()); turn > 0) {
          try {
            co_await wait_for_accept_rate(turn);
          } catch (const CancelledError&) {
            // Paused or draining: it was accepted, so it is served; after a second signal
            // (close_all_now) it closes with the rest.
            if (!closing_all_) add_connection(*std::move(conn));
            throw;
          }
        }
      }
      add_connection(*std::move(conn));
      // The next accept waits while the rate is owed: clients wait in the kernel's backlog. (Not
      // once lifted: a charge racing the change to 0 may have left a debt behind the reset.)
      if (int64_t wait = throttle_.accepted().wait_ns(MonotonicNanos());
          wait > 0 && throttle_.accepts_per_second() > 0) {
        co_await wait_for_accept_rate(wait);
      }
    }
  } catch (const CancelledError&) {
  }
  if (draining_) co_await end_listener(listener, /*accept_was_pending=*/true);
}

Task<> Shard::end_listener(Socket& listener, bool accept_was_pending) {
  // Not after a second signal (close_all_now): that closes everything, these too. After the
  // drain deadline too (a --drain_timeout shorter than this loop's way here): they are taken
  // and finished at once, not reset.
  if (!closing_all_ && !listen_deferred_ && refuse_new_handshakes(listener)) {
    // A handshake the filter came too late for (its SYN had passed) completes a moment later:
    // wait that moment, whole. The drain's cancel may still be pending here, to end the first
    // sleep at once: when the last accept completed with a connection as the cancel came, the
    // accept kept its connection and the request stayed for the next await. Only a second
    // signal (close_all_now) ends the wait early.
    const int64_t until = MonotonicNanos() + kHandshakesUnderWay.count();
    for (int64_t left = kHandshakesUnderWay.count(); left > 0 && !closing_all_; left = until - MonotonicNanos()) {
      try {
        co_await sleep(Duration(left));
      } catch (const CancelledError&) {
      }
    }
  }
  // After a hand-over the queued clients are the new process's, except where an accept was
  // pending: the one the cancel ended may have been the one the kernel woke for a new
  // connection (Socket::accept_queued), which the new process may never see.
  if (!closing_all_ && (queued_at_drain_ == QueuedClients::kServe || accept_was_pending)) accept_queued(listener);
  close_listener(listener);  // only now: closing cancels no accept, so the descriptor is closed at once
}

Task<> Shard::wait_for_accept_rate(int64_t wait_ns) {
  const int64_t until = MonotonicNanos() + wait_ns;
  while (wait_ns > 0) {
    // DeadlineExceeded: the whole wait has passed.
    (void)co_await wait_for(next_throttle_change(), Duration(wait_ns));
    if (throttle_.accepts_per_second() == 0) co_return;
    // Unchanged, the rate still asks for the rest of the wait; a new one (Throttle::Apply
    // forgets the debt) for what is charged to it since.
    int64_t now = MonotonicNanos();
    wait_ns = std::min(until - now, throttle_.accepted().wait_ns(now));
  }
}

Task<> Shard::next_throttle_change() { co_await throttle_changes_.wait(); }

void Shard::accept_queued(Socket& listener) {
  // As many as the backlog holds (the kernel queues up to backlog + 1), so that a stream of new
  // connections cannot keep a draining loop accepting.
  for (int taken = 0; taken <= options_.backlog; ++taken) {
    std::optional<DescriptorBudget::Slot> slot = descriptors_.TryTake();
    if (!slot.has_value()) return;  // the rest wait for whoever shares the listener, or are reset
    absl::StatusOr<std::optional<Socket>> conn = listener.accept_queued();
    if (!conn.ok() || !conn->has_value()) return;
    slot->HandTo(**conn);
    add_connection(std::move(**conn));
  }
}

bool Shard::refuse_new_handshakes(Socket& listener) {
  // Not when the listener is the new process's now (a hand-over): the filter would stop it too.
  if (queued_at_drain_ != QueuedClients::kServe || !listener.valid()) return false;
  absl::Status refused = listener.refuse_new_handshakes();
  if (!refused.ok()) {
    // Said once per process: the same holds for every listener (some kernels want CAP_NET_ADMIN).
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
      PrintToStderr(
          "brrr-echo: %s: a client whose handshake completes just as a listener closes is reset, not refused\n",
          std::string(refused.message()).c_str());
    }
  }
  return refused.ok();
}

void Shard::close_listener(Socket& listener) {
  // Unless another process holds the listener now (a hand-over), the close resets the clients
  // still waiting in its backlog: count them, and say why they were left.
  if (queued_at_drain_ == QueuedClients::kServe && listener.valid()) {
    if (uint32_t left = ClientsInBacklog(listener.fd()); left > 0) {
      counters_.connections_reset_in_backlog.add(left);
      PrintToStderr("brrr-echo: loop %u: closing its listener reset %u clients waiting in its backlog: %s\n",
                    loop_->loop_id(), left,
                    closing_all_ ? "a second signal closes everything at once"
                                 : "no descriptor was free for them (the echo side's budget, or the process's limit)");
    }
  }
  listener.close();
}

void Shard::add_connection(Socket socket) {
  if (active_total_.fetch_add(1, std::memory_order_relaxed) >= throttle_.max_connections()) {
    active_total_.fetch_sub(1, std::memory_order_relaxed);
    counters_.connections_refused.add(1);
    socket.close();
    return;
  }
  if (!loop_->can_watch(socket.fd())) {
    active_total_.fetch_sub(1, std::memory_order_relaxed);
    close_unwatchable(std::move(socket));
    return;
  }
  counters_.connections_accepted.add(1);
  counters_.connections_active.add(1);
  auto* c = new Connection(*this, std::move(socket));
  Link(&connections_, c);
  c->start();
  // Taken from the backlog after the drain deadline: it is in the closing phase at once.
  if (deadline_passed_) c->finish_for_drain();
}

void Shard::close_unwatchable(Socket socket) {
  counters_.connections_closed_unwatchable.add(1);
  // Reported at 1, 10, 100... so the log cannot flood.
  uint64_t n = counters_.connections_closed_unwatchable.load();
  if (n >= unwatchable_reported_ * 10 || unwatchable_reported_ == 0) {
    unwatchable_reported_ = n;
    PrintToStderr(
        "brrr-echo: loop %u: closed a new connection on fd %d: the %s backend watches descriptors up to "
        "%d only (select's FD_SETSIZE); %llu so far; use --backend=poll, epoll or io_uring for more "
        "connections\n",
        loop_->loop_id(), socket.fd(), loop_->backend().c_str(), loop_->max_fd(), static_cast<unsigned long long>(n));
  }
  socket.close();
}

void Shard::connection_closed(Connection* c, CloseReason reason) {
  switch (reason) {
    case CloseReason::kIdle:
      counters_.connections_closed_idle.add(1);
      break;
    case CloseReason::kError:
      counters_.connections_closed_error.add(1);
      break;
    case CloseReason::kDrain:
      counters_.connections_closed_drain.add(1);
      counters_.connections_closed_drain_clean.add(1);
      break;
    case CloseReason::kDrainReset:
      counters_.connections_closed_drain.add(1);
      counters_.connections_closed_drain_reset.add(1);
      break;
    case CloseReason::kAdmin:
      counters_.connections_closed_by_admin.add(1);
      break;
    case CloseReason::kSignal:
      counters_.connections_closed_by_signal.add(1);
      break;
    case CloseReason::kFinished:
      break;
  }
  counters_.connections_active.store(counters_.connections_active.load() - 1);
  active_total_.fetch_sub(1, std::memory_order_relaxed);
  Unlink(&connections_, c);
  Link(&closed_, c);
  // Not here: this may be deep inside the connection's own callbacks.
  loop_->call_soon([this, c] {
    Unlink(&closed_, c);
    delete c;
    maybe_drained();
  }, "echo:close");
}

void Shard::throttle_changed(const ThrottleChange& change) {
  throttle_changes_.set();  // wakes every accept loop waiting for the accept rate
  throttle_changes_.clear();
  update_accepting();
  if (!change.bytes_per_second_per_connection.has_value() && !change.bytes_per_second_total.has_value()) return;
  const bool new_per_connection_rate = change.bytes_per_second_per_connection.has_value();
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;  // a receive that cannot be re-armed closes (unlinks) c
    c->byte_rates_changed(new_per_connection_rate);
    c = next;
  }
}

absl::StatusOr<SocketInfo> Shard::close_connection(int fd, absl::string_view peer) {
  for (Connection* c = connections_; c != nullptr; c = c->next) {
    if (c->fd() != fd) continue;
    SocketInfo info = c->info();
    if (!peer.empty() && info.peer != peer) {
      return absl::FailedPreconditionError(absl::StrCat("fd ", fd, " on loop ", loop_->loop_id(),
                                                        " is the connection of ", info.peer, " now, not of ", peer,
                                                        " (a descriptor is given out again once its connection closes): "
                                                        "nothing closed"));
    }
    c->close(CloseReason::kAdmin);
    return info;
  }
  for (const Socket& listener : listeners_) {
    if (!listener.valid() || listener.fd() != fd) continue;
    return absl::FailedPreconditionError(
        absl::StrCat("fd ", fd, " is loop ", loop_->loop_id(), "'s listener, not a connection; Drain stops accepting"));
  }
  return absl::NotFoundError(absl::StrCat("no connection with fd ", fd, " on loop ", loop_->loop_id()));
}

void Shard::sweep_idle() {
  const int64_t now = loop_->now_ns();
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;  // closing unlinks c
    c->close_if_idle(now, options_.idle_timeout.count());
    c = next;
  }
  Duration every = std::max<Duration>(options_.idle_timeout / 4, milliseconds(10));
  idle_sweep_ = loop_->call_later(every, [this] { sweep_idle(); }, "echo:idle_sweep");
}

void Shard::drain(Duration grace, QueuedClients queued, std::function<void()> on_drained) {
  if (drain_asked_) return;
  drain_asked_ = true;
  queued_at_drain_ = queued;
  on_drained_ = std::move(on_drained);
  if (grace > Duration::zero()) {
    // Not ready already (the admin plane reads the server's drain start); still accepting.
    grace_end_ = loop_->call_later(grace, [this] { stop_accepting(); }, "echo:drain_grace");
  } else {
    stop_accepting();
  }
}

void Shard::stop_accepting() {
  if (draining_) return;
  grace_end_.cancel();
  if (port_watch_.has_value()) port_watch_->stop();  // the listeners close now
  draining_ = true;
  drain_deadline_ = loop_->call_later(options_.drain_timeout, [this] { on_drain_deadline(); }, "echo:drain_deadline");
  acceptors_.resize(listeners_.size());  // none yet when listening was deferred
  for (size_t i = 0; i < listeners_.size(); ++i) {
    Future<>& acceptor = acceptors_[i];
    if (!acceptor.valid() || acceptor.done()) {
      // Paused (or never started): no accept is pending. The listener ends as an accept loop's
      // does (end_listener), in a task of its own: the wait for handshakes under way included.
      acceptor = create_task(*loop_, end_listener(listeners_[i], /*accept_was_pending=*/false), "echo:end_listener");
    } else {
      // The accept loop ends at its pending accept's final completion (an accept that completed
      // before the cancel is served too), then ends its listener.
      acceptor.cancel();
    }
    // Either way the shard is drained only once the task has ended. Then too every listener's
    // descriptor is closed: from then on a connect is refused (unless another process holds
    // the sockets after a hand-over), which is what the progress reports.
    ++acceptors_running_;
    acceptor.add_done_callback([this] { acceptor_ended(); }, "echo:acceptor_ended");
  }
  if (acceptors_running_ == 0) progress_.LoopStoppedAccepting();
  maybe_drained();
}

void Shard::acceptor_ended() {
  if (--acceptors_running_ == 0) progress_.LoopStoppedAccepting();
  maybe_drained();
}

void Shard::on_drain_deadline() {
  deadline_passed_ = true;
  uint64_t open = 0;
  for (Connection* c = connections_; c != nullptr; c = c->next) ++open;
  progress_.LoopPastDeadline(open);
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;  // finishing may close (unlink) c
    c->finish_for_drain();
    c = next;
  }
  // Whatever still cannot hand its last bytes to the kernel (a client that never reads) is
  // reset then; those lingering with their write side shut end on their own timers.
  drain_force_ = loop_->call_later(kDrainFlush, [this] { on_drain_flush_expired(); }, "echo:drain_flush");
}

void Shard::on_drain_flush_expired() {
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;
    c->drain_flush_expired();
    c = next;
  }
}

void Shard::close_all_now() {
  closing_all_ = true;  // first: stop_accepting takes no queued client only to close it
  deadline_passed_ = true;
  stop_accepting();
  force_close_all(CloseReason::kSignal);
}

void Shard::force_close_all(CloseReason reason) {
  for (Connection* c = connections_; c != nullptr;) {
    Connection* next = c->next;
    c->close(reason);
    c = next;
  }
}

void Shard::maybe_drained() {
  // Not while a closed connection's deletion is queued: its socket closes only then, and the
  // loop, stopping once drained, would leave it open (or, on io_uring, to the ring's teardown,
  // after the process has gone) and its client waiting for the end.
  if (!draining_ || accepting() || connections_ != nullptr || closed_ != nullptr || !on_drained_) return;
  if (!deadline_passed_) progress_.LoopDrainedInTime();
  idle_sweep_.cancel();
  grace_end_.cancel();
  drain_deadline_.cancel();
  drain_force_.cancel();
  auto done = std::move(on_drained_);
  on_drained_ = nullptr;
  done();
}

}  // namespace brrr::server
