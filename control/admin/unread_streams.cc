#include "control/admin/unread_streams.h"

#include <chrono>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "runtime/line_output.h"

namespace brrr::control {

UnreadStreams::UnreadStreams(Duration timeout, ClientOf client_of)
    : timeout_(timeout), client_of_(std::move(client_of)), thread_([this] { CancelUnread(); }) {}

UnreadStreams::~UnreadStreams() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_one();
  thread_.join();
}

bool UnreadStreams::Write(grpc::ServerContext& context, const char* method, absl::FunctionRef<bool()> write) {
  uint64_t id = 0;
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    first = waiting_.empty();
    waiting_.emplace(
        id, Waiting{.context = &context, .method = method, .deadline = std::chrono::steady_clock::now() + timeout_});
  }
  // The thread sleeps until the oldest deadline; only the first one changes that.
  if (first) changed_.notify_one();
  const bool written = write();
  std::lock_guard<std::mutex> lock(mu_);
  waiting_.erase(id);  // the context is not touched once this Write has returned
  return written;
}

void UnreadStreams::CancelUnread() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (waiting_.empty()) {
      changed_.wait(lock);
      continue;
    }
    auto oldest = waiting_.begin();
    // A copy: while this thread waits, that Write may return and take its entry with it.
    const std::chrono::steady_clock::time_point deadline = oldest->second.deadline;
    if (std::chrono::steady_clock::now() < deadline) {
      changed_.wait_until(lock, deadline);
      continue;
    }
    // Under the lock, so that its Write cannot return and take its context away meanwhile.
    grpc::ServerContext& context = *oldest->second.context;
    // Named first: a cancelled call's peer() is "unknown".
    const std::string client = client_of_ != nullptr ? client_of_(context.peer()) : context.peer();
    context.TryCancel();
    const uint64_t n = ended_.fetch_add(1, std::memory_order_relaxed) + 1;
    PrintToStderr(
        "brrr-echo: admin: ended %s from %s: its client took nothing for %s (it stopped reading; "
        "--admin_unread_timeout); %llu stream%s ended so\n",
        oldest->second.method, client.c_str(), absl::FormatDuration(absl::FromChrono(timeout_)).c_str(),
        static_cast<unsigned long long>(n), n == 1 ? "" : "s");
    waiting_.erase(oldest);
  }
}

}  // namespace brrr::control
