// fake_administered.h: an Administered (control/admin/administered.h) made of real event
// loops that no server runs, with echo figures, start and drain times set by the test: for
// tests of what reads an Administered (the metrics exporter, readiness).
//
//   FakeAdministered target(2);            // two epoll loops (the test fails if epoll cannot start)
//   target.loop(0).call_soon(...); target.loop(0).run_once(...);
//   target.echo[1].bytes_in = 10;
//   target.draining_since_ns = 5;
//   target.after_read = [&](size_t loop) { target.echo[0].bytes_in += 1; };  // moves as it is read
#ifndef BRRR_TESTS_CONTROL_FAKE_ADMINISTERED_H_
#define BRRR_TESTS_CONTROL_FAKE_ADMINISTERED_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "control/admin/administered.h"
#include "gtest/gtest.h"
#include "server/drain_watchers.h"
#include "tests/testing/backends.h"

namespace brrr::testing {

class FakeAdministered final : public control::Administered {
 public:
  explicit FakeAdministered(size_t loops, EventLoopOptions options = {}) : echo(loops) {
    for (size_t i = 0; i < loops; ++i) {
      options.loop_id = static_cast<uint32_t>(i);
      loops_.push_back(NewLoop("epoll", options));
      if (loops_.back() == nullptr) ADD_FAILURE() << "the epoll backend does not start";
    }
  }

  EventLoop& loop(size_t i) { return *loops_[i]; }

  std::vector<server::ServerStats> echo;
  int64_t started_ns = 1;
  int64_t draining_since_ns = 0;

  std::string backend() const override { return "epoll"; }
  std::vector<std::string> listening_addresses() const override { return {}; }
  int64_t started_at_ns() const override { return started_ns; }
  std::vector<EventLoop*> loops() const override {
    std::vector<EventLoop*> out;
    for (const auto& l : loops_) out.push_back(l.get());
    return out;
  }
  // Called after each read of one loop's echo figures (tests: figures that move while a
  // reader goes from loop to loop).
  std::function<void(size_t loop)> after_read;

  server::ServerStats server_stats(size_t loop) const override {
    server::ServerStats read = echo[loop];
    if (after_read) after_read(loop);
    return read;
  }
  server::ServerStats server_stats() const override {
    server::ServerStats total;
    for (const auto& s : echo) total += s;
    return total;
  }
  // What CloseConnection does (none: it has no connections).
  std::function<absl::StatusOr<SocketInfo>(size_t loop, int fd, absl::string_view peer)> close_connection;

  absl::StatusOr<SocketInfo> CloseConnection(size_t loop, int fd, absl::string_view peer) override {
    if (!close_connection) return absl::UnimplementedError("FakeAdministered has no connections");
    return close_connection(loop, fd, peer);
  }
  server::ThrottleSettings throttle() const override { return {}; }
  absl::Status SetThrottle(const server::ThrottleChange&) override {
    return absl::UnimplementedError("FakeAdministered has no throttles");
  }
  bool Drain(absl::FunctionRef<void()> announce) override {
    if (draining_since_ns != 0) return false;
    draining_since_ns = 1;
    drain_watchers_.Started();
    announce();
    return true;
  }
  int64_t drain_started_at_ns() const override { return draining_since_ns; }
  uint64_t AddDrainWatcher(std::function<void()> started) override { return drain_watchers_.Add(std::move(started)); }
  void RemoveDrainWatcher(uint64_t id) override { drain_watchers_.Remove(id); }

 private:
  std::vector<std::unique_ptr<EventLoop>> loops_;
  server::DrainWatchers drain_watchers_;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_CONTROL_FAKE_ADMINISTERED_H_
