// drain_watchers.h: tells those who wait for a drain to start that it has, as it does: the admin
// plane's grpc.health Watch streams (control/admin/admin_server.cc) sleep until then instead of
// looking at the drain time over and over.
//
//   DrainWatchers watchers;
//   uint64_t id = watchers.Add([&] { ...wake the streams... });
//   watchers.Started();   // the drain (EchoServer::Drain): runs each watcher, once
//   watchers.Remove(id);  // before what the watcher touches goes away
//
// Threads: any thread. A watcher runs on the thread that calls Started() (or Add, once the drain
// has started) with this class's lock held: it must be short (wake someone), and must not call
// Add or Remove.
#ifndef BRRR_SERVER_DRAIN_WATCHERS_H_
#define BRRR_SERVER_DRAIN_WATCHERS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace brrr::server {

class DrainWatchers {
 public:
  DrainWatchers() = default;
  DrainWatchers(const DrainWatchers&) = delete;
  DrainWatchers& operator=(const DrainWatchers&) = delete;

  // Keeps `started` for Started(); once that has been called, runs it at once instead. Returns
  // the id for Remove.
  uint64_t Add(std::function<void()> started);
  // When it returns, the watcher `id` is not running and will not run. An id whose watcher ran
  // already: nothing to do.
  void Remove(uint64_t id);
  // Runs every watcher kept, once each; the first call only.
  void Started();

 private:
  std::mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::function<void()>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_DRAIN_WATCHERS_H_
