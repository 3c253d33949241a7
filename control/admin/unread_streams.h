// unread_streams.h: ends the admin plane's streams whose client has stopped reading.
//
// A stream's Write (gRPC's synchronous API) returns once HTTP/2 flow control lets the message
// out, so it waits for as long as the client takes nothing: a `brrrctl watch` suspended in a
// terminal or piped into a pager nobody scrolls, a script that opened a WatchStats and forgot
// it. Such a stream held a call slot (--admin_max_calls) and a gRPC thread for as long as its
// client lived; enough of them kept every other call out (RESOURCE_EXHAUSTED). Here a Write
// that has not returned within the timeout (--admin_unread_timeout) is cancelled
// (ServerContext::TryCancel): it returns false, the stream ends CANCELLED, and stderr says so.
// A client that reads, however slowly, keeps its stream: each message it makes room for lets a
// Write return.
//
//   UnreadStreams unread(std::chrono::seconds(60), client_of);
//   if (!unread.Write(*context, "WatchStats", [&] { return writer->Write(m); })) break;
//
// Threads: Write from any thread (gRPC's); the cancelling runs on a thread of its own.
#ifndef BRRR_CONTROL_UNREAD_STREAMS_H_
#define BRRR_CONTROL_UNREAD_STREAMS_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "grpcpp/server_context.h"
#include "runtime/clock.h"

namespace brrr::control {

class UnreadStreams {
 public:
  // Names a call's client in what is logged, given its grpc::ServerContext::peer()
  // (AdminListener::ClientOf); none: as gRPC names it.
  using ClientOf = std::function<std::string(const std::string& grpc_peer)>;

  // `timeout` > 0. Starts the cancelling thread.
  explicit UnreadStreams(Duration timeout, ClientOf client_of = nullptr);
  // Stops it; no Write may be in progress.
  ~UnreadStreams();
  UnreadStreams(const UnreadStreams&) = delete;
  UnreadStreams& operator=(const UnreadStreams&) = delete;

  // Runs `write`, one blocking Write of the stream of `context`; if it has not returned within
  // the timeout, cancels the call so that it does, and says so on stderr, naming the stream by
  // `method` (a literal: "WatchStats") and its client. Returns what `write` returned.
  bool Write(grpc::ServerContext& context, const char* method, absl::FunctionRef<bool()> write);

  Duration timeout() const { return timeout_; }
  // Streams ended so far.
  uint64_t ended() const { return ended_.load(std::memory_order_relaxed); }

 private:
  struct Waiting {
    grpc::ServerContext* context;
    const char* method;
    std::chrono::steady_clock::time_point deadline;
  };

  void CancelUnread();

  const Duration timeout_;
  const ClientOf client_of_;
  std::mutex mu_;
  std::condition_variable changed_;
  // The Writes in progress, oldest first (every one has the same timeout). A cancelled one is
  // taken out, so that it is cancelled once.
  std::map<uint64_t, Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> ended_{0};
  std::thread thread_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_UNREAD_STREAMS_H_
