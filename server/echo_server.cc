#include "server/echo_server.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/call_in_loop.h"
#include "runtime/clock.h"
#include "runtime/line_output.h"
#include "runtime/plugin_loader.h"
#include "server/port_claim.h"

namespace brrr::server {

namespace {

// Every byte a client sends is echoed, TCP urgent data too, in its place in the stream: its
// listeners set SO_OOBINLINE, which the connections they accept inherit.
constexpr SocketOptions kUrgentInlineOnly{.reuse_address = false, .no_delay = false, .urgent_inline = true};

// The adopted listeners' common address, checked against what the options ask for: the
// host must be the same, the port the same or 0 ("whatever the old process had").
absl::StatusOr<SocketAddress> AdoptedAddress(const std::vector<UniqueFd>& adopted, const SocketAddress& asked) {
  absl::StatusOr<SocketAddress> first = SocketAddress::LocalOf(adopted[0].get());
  if (!first.ok()) return first.status();
  for (const UniqueFd& fd : adopted) {
    absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(fd.get());
    if (!local.ok()) return local.status();
    if (local->ToString() != first->ToString()) {
      return absl::InvalidArgumentError(absl::StrCat("the handed-over listeners are on different addresses (",
                                                     first->ToString(), " and ", local->ToString(), ")"));
    }
  }
  if (first->family() != asked.family() || first->host() != asked.host() ||
      (asked.port() != 0 && asked.port() != first->port())) {
    return absl::InvalidArgumentError(absl::StrCat("address mismatch: the running instance listens on ",
                                                   first->ToString(), ", this one was asked for ", asked.ToString(),
                                                   " (--host, --port; port 0 takes the running one's)"));
  }
  return *first;
}

EventLoopOptions LoopOptions(const EchoServerOptions& o, int loop_id) {
  EventLoopOptions lo;
  lo.backend = o.backend;
  lo.plugin_dir = o.plugin_dir;
  lo.loop_id = static_cast<uint32_t>(loop_id);
  lo.stall_threshold = o.stall_threshold;
  lo.stall_watchdog = o.stall_watchdog;
  lo.idle_poll = o.idle_poll;
  lo.receive_buffer_size = o.receive_buffer_size;
  lo.receive_buffer_count = o.receive_buffer_count;
  // Mapped before the loop's first task (the first accept among them), not as a task: no stall.
  lo.receive_buffers_at_first_run = true;
  lo.reactor.one_thread = true;  // each loop runs on a thread of its own (Start)
  return lo;
}

// The server's loops, all on one backend: o.backend, or with "auto" the best backend that every
// loop starts. The first loop picks, and each other loop makes auto's choice again among the
// backends no better than that pick. One that cannot start the pick (a resource the kernel
// counts per user or per process runs out: io_uring's rings are charged to RLIMIT_MEMLOCK, so
// the first loops can get rings a later one cannot) has the pick passed over for every loop, with
// that loop's reason, and the loops start again on the next backend. So a server never runs
// loops on different backends, nor reports another backend than the one its loops run.
absl::StatusOr<std::vector<std::unique_ptr<EventLoop>>> CreateLoops(const EchoServerOptions& o) {
  const bool automatic = o.backend == "auto";
  PluginLoader::AutoSkip skip;
  for (;;) {
    std::vector<std::unique_ptr<EventLoop>> loops;
    EventLoopOptions lo = LoopOptions(o, 0);
    lo.auto_skip = skip;
    absl::StatusOr<std::unique_ptr<EventLoop>> first = EventLoop::Create(lo);
    if (!first.ok()) return first.status();
    const std::string pick = (*first)->backend();
    loops.push_back(*std::move(first));
    // The backends auto tries before the pick, passed over by the first loop already: each
    // later loop's backends_passed_over() starts with their reasons, one each, so the pick's
    // own reason (when a later loop passes it over) comes right after them.
    PluginLoader::AutoSkip before_pick = skip;
    for (absl::string_view name : PluginLoader::kAutoOrder) {
      if (name == pick) break;
      before_pick.emplace(std::string(name), "passed over by loop 0");
    }
    const size_t pick_rank =
        static_cast<size_t>(std::find(PluginLoader::kAutoOrder.begin(), PluginLoader::kAutoOrder.end(), pick) -
                            PluginLoader::kAutoOrder.begin());
    for (int i = 1; i < o.loops; ++i) {
      EventLoopOptions next = LoopOptions(o, i);
      if (automatic) next.auto_skip = before_pick;
      absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create(next);
      if (!loop.ok()) {
        return absl::Status(loop.status().code(),
                            absl::StrCat("loop ", i, " (loops 0 to ", i - 1, " started): ", loop.status().message()));
      }
      if ((*loop)->backend() == pick) {
        loops.push_back(*std::move(loop));
        continue;
      }
      const std::vector<std::string>& passed_over = (*loop)->backends_passed_over();
      skip.emplace(pick, absl::StrCat(pick, " (it started on loops 0 to ", i - 1, ", not on loop ", i,
                                      "): ", pick_rank < passed_over.size() ? passed_over[pick_rank] : "passed over"));
      break;
    }
    if (loops.size() == static_cast<size_t>(o.loops)) return loops;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<EchoServer>> EchoServer::Create(EchoServerOptions options) {
  // Owned from here, whatever happens: closed on every way out unless a shard adopts them.
  std::vector<UniqueFd> adopted;
  for (int fd : options.adopted_listeners) adopted.emplace_back(fd);
  options.adopted_listeners.clear();
  absl::Status valid = Validate(options);
  if (!valid.ok()) return valid;
  auto address = SocketAddress::Parse(options.host, options.port);
  if (!address.ok()) return address.status();
  std::unique_ptr<EchoServer> server(new EchoServer(std::move(options)));
  const EchoServerOptions& o = server->options_;
  SocketAddress bind_to = *address;
  const bool adopting = !adopted.empty();
  if (adopting) {
    // The port is already this server's: the process that handed it over is leaving.
    absl::StatusOr<SocketAddress> at = AdoptedAddress(adopted, bind_to);
    if (!at.ok()) return at.status();
    bind_to = *at;
  } else if (!o.share_port && bind_to.port() != 0) {
    // Not for port 0: a port its probe picked is free again once the probe closes, and any
    // connect() on the machine may take it as its own local port before the listeners bind
    // (seen in CI: "bind 127.0.0.1:38719: Address already in use"). The first listener's own
    // bind picks it instead, and CheckSoleListener below still checks the group is ours.
    absl::Status claimed = ClaimPort(bind_to);
    if (!claimed.ok()) {
      return absl::Status(claimed.code(),
                          absl::StrCat("cannot listen on ", bind_to.ToString(), ": ", claimed.message()));
    }
  }
  absl::StatusOr<std::vector<std::unique_ptr<EventLoop>>> loops = CreateLoops(o);
  if (!loops.ok()) return loops.status();
  server->backend_ = (*loops)[0]->backend();
  server->backends_passed_over_ = (*loops)[0]->backends_passed_over();
  std::vector<int> listener_fds;
  for (int i = 0; i < o.loops; ++i) {
    std::unique_ptr<EventLoop>& loop = (*loops)[static_cast<size_t>(i)];
    std::vector<Socket> listeners;
    // Every handed-over socket is accepted from (its queue holds clients): loop i takes
    // sockets i, i + loops, ... A loop without one binds a new sibling in the group.
    for (size_t j = static_cast<size_t>(i); j < adopted.size(); j += static_cast<size_t>(o.loops)) {
      listeners.push_back(Socket::Adopt(*loop, adopted[j].release(), "listener"));
      // Set again: the process that handed it over may be a version that did not set it.
      if (absl::Status inline_urgent = listeners.back().apply(kUrgentInlineOnly); !inline_urgent.ok()) {
        return inline_urgent;
      }
    }
    // Taking over, a loop without a handed-over socket binds a sibling that listens only once
    // the old process has let go (JoinPortGroup): one that listened now would take its share
    // of new connections, which a take-over that fails would reset.
    const bool listen_later = adopting && listeners.empty();
    if (listeners.empty()) {
      SocketOptions so;
      so.reuse_port = true;
      so.ipv6_only = bind_to.family() == AF_INET6;
      so.urgent_inline = true;
      auto listener = listen_later ? Socket::Bind(*loop, bind_to, so) : Socket::Listen(*loop, bind_to, so, o.backlog);
      if (!listener.ok()) {
        return absl::Status(listener.status().code(),
                            absl::StrCat("cannot listen on ", bind_to.ToString(), ": ", listener.status().message()));
      }
      listeners.push_back(*std::move(listener));
    }
    for (const Socket& l : listeners) listener_fds.push_back(l.fd());
    if (i == 0) {
      // With --port=0 (and --share_port) the first listener picks the port; the others share it.
      auto local = listeners[0].local_address();
      if (!local.ok()) return local.status();
      bind_to = *local;
      server->address_ = *local;
    }
    server->shards_.push_back(std::make_unique<Shard>(o, std::move(loop), std::move(listeners), server->active_total_,
                                                      server->throttle_, server->descriptor_budget_,
                                                      *server->progress_));
    if (listen_later) server->shards_.back()->defer_listening();
  }
  if (!adopting && !o.share_port) {
    if (absl::Status sole = CheckSoleListener(bind_to, listener_fds); !sole.ok()) {
      return absl::Status(sole.code(), absl::StrCat("cannot listen on ", bind_to.ToString(), ": ", sole.message()));
    }
  }
  // A process that joins the port later takes part of the connections too: said when it does.
  // (Taking over, the old process's listeners are the sockets this one adopted.)
  if (!o.share_port) server->shards_[0]->watch_port(bind_to, InodesOf(listener_fds));
  return server;
}

absl::StatusOr<std::vector<UniqueFd>> EchoServer::DuplicateListeners() {
  // From the drain's start, its grace included: the listeners are about to close, and a new
  // process would take sockets this one is leaving (README: a draining one does not hand over).
  if (draining_.load()) {
    return absl::FailedPreconditionError(
        "this instance is draining (it stops accepting when its --drain_grace ends); start the new one without "
        "--take_over once it has gone");
  }
  std::vector<UniqueFd> all;
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    // A shared_ptr: if the loop answers after the time limit, what it made is still freed.
    auto result = CallInLoop(
        s->loop(), [s] { return std::make_shared<absl::StatusOr<std::vector<UniqueFd>>>(s->duplicate_listeners()); },
        std::chrono::seconds(5), "echo:duplicate_listeners");
    if (!result.ok()) return result.status();
    if (!(*result)->ok()) return (*result)->status();
    for (UniqueFd& fd : ***result) all.push_back(std::move(fd));
  }
  return all;
}

EchoServer::~EchoServer() {
  if (!threads_.empty()) {
    Drain();
    Wait();
  }
}

absl::Status EchoServer::Start() {
  // A backend that watches descriptors up to a limit (select) caps the budget too: a client
  // past it waits in the backlog instead of being accepted and closed (Shard's unwatchable).
  int max_watchable_fd = -1;
  for (const auto& shard : shards_) {
    const int max_fd = shard->loop().max_fd();
    if (max_fd >= 0 && (max_watchable_fd < 0 || max_fd < max_watchable_fd)) max_watchable_fd = max_fd;
  }
  if (options_.reserved_descriptors > 0 || max_watchable_fd >= 0) {
    absl::StatusOr<DescriptorPlan> plan = DescriptorPlan::Measure(options_.reserved_descriptors, max_watchable_fd);
    if (!plan.ok()) return plan.status();
    descriptor_plan_ = *plan;
    descriptor_budget_.set_limit(static_cast<int64_t>(plan->for_connections));
  }
  int64_t started = MonotonicNanos();
  for (auto& shard : shards_) {
    shard->start();
    threads_.emplace_back([s = shard.get()] {
      s->loop().run_forever();
      // Drained: the admin plane's calls to this loop are answered here from now on, not waited
      // for (it has no sockets left to list or close, nothing to throttle).
      s->loop().finish();
    });
  }
  AwaitLoopsStarted();
  started_at_ns_.store(started);  // ready (readiness reads it) once the loops accept at full speed
  return absl::OkStatus();
}

void EchoServer::AwaitLoopsStarted() {
  // Each loop maps its receive pool before its first task, and its queue runs in order: its
  // start-up tasks (Shard::start) come before this call.
  std::vector<EventLoop*> loops;
  for (auto& shard : shards_) loops.push_back(&shard->loop());
  constexpr auto kStartUp = std::chrono::seconds(10);
  auto answers = CallInLoops(
      loops, [](size_t) { return absl::OkStatus(); }, [](const absl::Status&) { return false; }, kStartUp,
      "echo:started");
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i].has_value()) {
      PrintToStderr(
          "brrr-echo: loop %zu has not run its start-up tasks within %lld s; the other loops serve meanwhile\n", i,
          static_cast<long long>(kStartUp.count()));
    }
  }
}

bool EchoServer::Drain(absl::FunctionRef<void()> announce) {
  return StartDrain(options_.drain_grace, Shard::QueuedClients::kServe, announce);
}

void EchoServer::JoinPortGroup() {
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->loop().call_soon_threadsafe(
        [s] {
          if (absl::Status listening = s->listen_now(); !listening.ok()) {
            PrintToStderr("brrr-echo: %s; the other loops accept new connections\n",
                          std::string(listening.message()).c_str());
          }
        },
        "echo:join_port_group");
  }
}

void EchoServer::DrainHandedOver(absl::FunctionRef<void()> announce) {
  StartDrain(Duration::zero(), Shard::QueuedClients::kLeaveToNewProcess, announce);
}

bool EchoServer::StartDrain(Duration grace, Shard::QueuedClients queued, absl::FunctionRef<void()> announce) {
  if (draining_.exchange(true)) return false;
  drain_started_at_ns_.store(MonotonicNanos());  // readiness turns at once: before the log lines
  drain_watchers_.Started();                     // and health watchers hear of it now
  announce();
  progress_->Started(grace, options_.drain_timeout);
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->loop().call_soon_threadsafe(
        // Once drained, the loop stops when its last sockets have closed: a reset sent at the
        // drain's end goes out then, not when every sibling loop has drained too.
        [s, grace, queued] { s->drain(grace, queued, [s] { s->loop().stop_once_sockets_closed(); }); },
        "echo:drain");
  }
  return true;
}

void EchoServer::DrainNow() {
  Drain();
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->loop().call_soon_threadsafe([s] { s->close_all_now(); }, "echo:drain_now");
  }
}

absl::Status EchoServer::SetThrottle(const ThrottleChange& change) {
  if (absl::Status applied = throttle_.Apply(change); !applied.ok()) return applied;
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->loop().call_soon_threadsafe([s, change] { s->throttle_changed(change); }, "echo:throttle_changed");
  }
  return absl::OkStatus();
}

void EchoServer::Wait() {
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

ServerStats EchoServer::stats() const {
  ServerStats total;
  for (const auto& shard : shards_) total += shard->counters().snapshot();
  return total;
}

ServerStats EchoServer::stats(size_t loop) const { return shards_[loop]->counters().snapshot(); }

std::vector<LoopStats> EchoServer::loop_stats() const {
  std::vector<LoopStats> out;
  for (const auto& shard : shards_) out.push_back(shard->loop().stats());
  return out;
}

}  // namespace brrr::server
