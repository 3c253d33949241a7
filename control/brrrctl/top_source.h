// top_source.h: `brrrctl top`'s reads of one admin plane: each Poll calls GetStats and
// ListSockets and adds the latest stall of each loop, which a WatchStalls stream (recent stalls
// first, stalls in progress too) keeps up to date on a thread of its own.
//
//   BRRR_ASSIGN_OR_RETURN(auto source, TopSource::Create(options));   // AdminClientOptions
//   top::TargetSnapshot snapshot = source->Poll();   // status "unreachable: ..." when down
//
// The server may go away and come back: a poll that fails says why in the snapshot's status,
// and the next poll tries again, on a new channel (a channel that failed may wait seconds,
// in gRPC's reconnect backoff, before it tries again); the stall stream reopens on the next
// poll that reaches the server, and forgets the stalls of the server that went away.
//
// Threads: Poll from one thread; the stall stream runs on its own thread, which the destructor
// cancels and joins.
#ifndef BRRR_CONTROL_TOP_SOURCE_H_
#define BRRR_CONTROL_TOP_SOURCE_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "control/brrrctl/admin_client.h"
#include "control/brrrctl/top_model.h"

namespace brrr::control {

class TopSource {
 public:
  // Errors: those of AdminClient::Create. `socket_limit`: ListSockets' limit.
  static absl::StatusOr<std::unique_ptr<TopSource>> Create(const AdminClientOptions& options,
                                                           uint32_t socket_limit = 10000);
  ~TopSource();
  TopSource(const TopSource&) = delete;
  TopSource& operator=(const TopSource&) = delete;

  // Reads the target now. `throttle` of the snapshot is left empty (the command words it).
  top::TargetSnapshot Poll();

 private:
  TopSource(AdminClientOptions options, std::unique_ptr<AdminClient> client, uint32_t socket_limit);
  // The stall stream's thread: open, read until it ends, wait for the next poll, again.
  void WatchStalls();

  const AdminClientOptions options_;
  const uint32_t socket_limit_;
  std::unique_ptr<AdminClient> client_;  // Poll's; a new one after the server was unreachable

  std::mutex mu_;
  std::condition_variable reopen_;
  bool stopping_ = false;                                // guarded by mu_
  bool stream_open_ = false;                             // guarded by mu_
  bool reopen_wanted_ = false;                           // guarded by mu_
  grpc::ClientContext* stream_context_ = nullptr;        // guarded by mu_
  std::map<uint32_t, brrr::admin::v1::Stall> stalls_;    // guarded by mu_
  std::thread thread_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_TOP_SOURCE_H_
