#include "server/echo_server.h"

#include "absl/strings/str_cat.h"
#include "runtime/clock.h"
#include "server/port_claim.h"

namespace brrr::server {

absl::StatusOr<std::unique_ptr<EchoServer>> EchoServer::Create(EchoServerOptions options) {
  absl::Status valid = Validate(options);
  if (!valid.ok()) return valid;
  auto address = SocketAddress::Parse(options.host, options.port);
  if (!address.ok()) return address.status();
  std::unique_ptr<EchoServer> server(new EchoServer(std::move(options)));
  const EchoServerOptions& o = server->options_;
  SocketAddress bind_to = *address;
  if (!o.share_port) {
    absl::StatusOr<SocketAddress> claimed = ClaimPort(bind_to);
    if (!claimed.ok()) {
      return absl::Status(claimed.status().code(),
                          absl::StrCat("cannot listen on ", bind_to.ToString(), ": ", claimed.status().message()));
    }
    bind_to = *claimed;
  }
  std::vector<int> listener_fds;
  for (int i = 0; i < o.loops; ++i) {
    EventLoopOptions lo;
    lo.backend = o.backend;
    lo.plugin_dir = o.plugin_dir;
    lo.loop_id = static_cast<uint32_t>(i);
    lo.stall_threshold = o.stall_threshold;
    lo.stall_watchdog = o.stall_watchdog;
    lo.receive_buffer_size = o.receive_buffer_size;
    lo.receive_buffer_count = o.receive_buffer_count;
    auto loop = EventLoop::Create(lo);
    if (!loop.ok()) return loop.status();
    SocketOptions so;
    so.reuse_port = true;
    so.ipv6_only = bind_to.family() == AF_INET6;
    auto listener = Socket::Listen(**loop, bind_to, so, o.backlog);
    if (!listener.ok()) {
      return absl::Status(listener.status().code(),
                          absl::StrCat("cannot listen on ", bind_to.ToString(), ": ", listener.status().message()));
    }
    listener_fds.push_back(listener->fd());
    if (i == 0) {
      // With --port=0 (and --share_port) the first listener picks the port; the others share it.
      auto local = listener->local_address();
      if (!local.ok()) return local.status();
      bind_to = *local;
      server->address_ = *local;
      server->backend_ = (*loop)->stats().backend;
    }
    server->shards_.push_back(std::make_unique<Shard>(o, *std::move(loop), *std::move(listener),
                                                      server->active_total_, server->throttle_,
                                                      server->descriptor_budget_, *server->progress_));
  }
  if (!o.share_port) {
    if (absl::Status sole = CheckSoleListener(bind_to, listener_fds); !sole.ok()) {
      return absl::Status(sole.code(), absl::StrCat("cannot listen on ", bind_to.ToString(), ": ", sole.message()));
    }
  }
  return server;
}

EchoServer::~EchoServer() {
  if (!threads_.empty()) {
    Drain();
    Wait();
  }
}

absl::Status EchoServer::Start() {
  if (options_.reserved_descriptors > 0) {
    absl::StatusOr<DescriptorPlan> plan = DescriptorPlan::Measure(options_.reserved_descriptors);
    if (!plan.ok()) return plan.status();
    descriptor_plan_ = *plan;
    descriptor_budget_.set_limit(static_cast<int64_t>(plan->for_connections));
  }
  int64_t started = MonotonicNanos();
  for (auto& shard : shards_) {
    shard->start();
    threads_.emplace_back([s = shard.get()] { s->loop().run_forever(); });
  }
  started_at_ns_.store(started);
  return absl::OkStatus();
}

void EchoServer::Drain() {
  if (draining_.exchange(true)) return;
  drain_started_at_ns_.store(MonotonicNanos());  // readiness turns at once: before the log line
  progress_->Started(options_.drain_grace, options_.drain_timeout);
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->loop().call_soon_threadsafe(
        [s] { s->drain([s] { s->loop().stop(); }); }, "echo:drain");
  }
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
    s->loop().call_soon_threadsafe([s] { s->throttle_changed(); }, "echo:throttle_changed");
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
