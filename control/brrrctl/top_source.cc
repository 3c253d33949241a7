#include "control/brrrctl/top_source.h"

#include <utility>

#include "absl/time/clock.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;

// A failed call as the view shows it: unreachable (the server is not there) or an error; the
// code keeps the exit code the command ends with (commands_top.cc).
absl::Status StatusOf(const Outcome& outcome) {
  if (outcome.code == ExitCode::kUnreachable) return absl::UnavailableError(outcome.message);
  if (outcome.code == ExitCode::kUnauthenticated) return absl::UnauthenticatedError(outcome.message);
  return absl::UnknownError(outcome.message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TopSource>> TopSource::Create(const AdminClientOptions& options,
                                                             uint32_t socket_limit) {
  absl::StatusOr<std::unique_ptr<AdminClient>> client = AdminClient::Create(options);
  if (!client.ok()) return client.status();
  return std::unique_ptr<TopSource>(new TopSource(options, *std::move(client), socket_limit));
}

TopSource::TopSource(AdminClientOptions options, std::unique_ptr<AdminClient> client, uint32_t socket_limit)
    : options_(std::move(options)), socket_limit_(socket_limit), client_(std::move(client)) {
  thread_ = std::thread([this] { WatchStalls(); });
}

TopSource::~TopSource() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (stream_context_ != nullptr) stream_context_->TryCancel();
  }
  reopen_.notify_all();
  thread_.join();
}

top::TargetSnapshot TopSource::Poll() {
  top::TargetSnapshot snapshot;
  snapshot.target = options_.target;
  Outcome outcome = client_->Call([&](grpc::ClientContext* context) {
    return client_->admin().GetStats(context, admin::GetStatsRequest(), &snapshot.stats);
  });
  admin::ListSocketsResponse sockets;
  if (outcome.ok()) {
    admin::ListSocketsRequest request;
    request.set_limit(socket_limit_);
    Outcome listed = client_->Call(
        [&](grpc::ClientContext* context) { return client_->admin().ListSockets(context, request, &sockets); });
    // A loop stuck in a task cannot list its sockets, and that is when the stats (read without
    // the loops) matter most: only a server that went away fails the whole poll.
    if (listed.code == ExitCode::kUnreachable) {
      outcome = listed;
    } else if (!listed.ok()) {
      snapshot.sockets_status = StatusOf(listed);
      sockets.Clear();
    }
  }
  snapshot.taken = absl::Now();
  if (!outcome.ok()) {
    snapshot.status = StatusOf(outcome);
    snapshot.stats.Clear();
    if (outcome.code == ExitCode::kUnreachable) {
      // Create succeeded with these options before: it cannot fail now.
      if (absl::StatusOr<std::unique_ptr<AdminClient>> fresh = AdminClient::Create(options_); fresh.ok()) {
        client_ = *std::move(fresh);
      }
    }
    return snapshot;
  }
  snapshot.sockets.assign(sockets.sockets().begin(), sockets.sockets().end());
  snapshot.sockets_matched = sockets.matched();
  std::lock_guard<std::mutex> lock(mu_);
  snapshot.latest_stalls = stalls_;
  if (!stream_open_) {
    reopen_wanted_ = true;
    reopen_.notify_all();
  }
  return snapshot;
}

void TopSource::WatchStalls() {
  admin::WatchStallsRequest request;
  request.set_include_recent(true);
  request.set_include_in_progress(true);
  // The first stream opens at once; later ones when a poll has reached the server again.
  bool first = true;
  for (;;) {
    std::unique_ptr<AdminClient> client;
    std::unique_ptr<grpc::ClientContext> context;
    {
      std::unique_lock<std::mutex> lock(mu_);
      reopen_.wait(lock, [&] { return stopping_ || first || reopen_wanted_; });
      if (stopping_) return;
      first = false;
      reopen_wanted_ = false;
      // A channel of its own, new each time, for the same reason as Poll's.
      absl::StatusOr<std::unique_ptr<AdminClient>> made = AdminClient::Create(options_);
      if (!made.ok()) return;
      client = *std::move(made);
      context = client->StreamContext();
      stream_open_ = true;
      stream_context_ = context.get();
      // A new stream sends the recent stalls again, of the server that answers now.
      stalls_.clear();
    }
    std::unique_ptr<grpc::ClientReaderInterface<admin::Stall>> reader = client->admin().WatchStalls(context.get(), request);
    admin::Stall stall;
    while (reader->Read(&stall)) {
      std::lock_guard<std::mutex> lock(mu_);
      stalls_[stall.loop()] = stall;
    }
    reader->Finish();
    std::lock_guard<std::mutex> lock(mu_);
    stream_open_ = false;
    stream_context_ = nullptr;
  }
}

}  // namespace brrr::control
