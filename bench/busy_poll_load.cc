#include "bench/busy_poll_load.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/load_parts.h"
#include "runtime/clock.h"

namespace brrr::bench {
namespace {

bool WouldBlock(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

// One connection of a busy-polling thread: a socket that is only ever called with
// MSG_DONTWAIT. Owned and run by one thread.
class BusyConnection : public SpinningConnection {
 public:
  using SpinningConnection::SpinningConnection;

  // Takes what came back (one recv), checks and counts it. Never blocks.
  void receive(std::vector<char>& buf) {
    if (done_) return;
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (!WouldBlock(errno)) fail(std::strerror(errno));
      return;
    }
    if (n == 0) return end_of_stream();
    take(buf.data(), static_cast<size_t>(n));
  }

  // Sends what the window has room for, or the rest of a batch the kernel took part of (no
  // system call when there is neither); once `stopping`, half-closes instead. Never blocks.
  void send(bool stopping) {
    if (done_) return;
    if (window_.refill(o_, echo_, stopping)) {
      ssize_t n =
          ::send(fd_, shared_.pattern.at(id_, window_.unsent_from), window_.unsent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (!WouldBlock(errno)) fail(std::strerror(errno));
        return;
      }
      counters_.bytes_sent.add(static_cast<uint64_t>(n));
      window_.took(static_cast<size_t>(n));
    }
    if (stopping && window_.unsent == 0 && !write_shut_) half_close();
  }
};

// Up to this many connections a thread calls recv on each of them in every pass; past it, one
// epoll_wait with a zero timeout (a question, never a sleep) says which have data, so that a
// pass over 1,000 connections is not 1,000 empty receives and the load generator stays
// cheaper per message than the server it measures.
constexpr size_t kReceiveOnEachUpTo = 64;

// The connections of a thread with data to read, when it asks epoll instead of each socket.
class ReadyProbe {
 public:
  // Watches the connections still open; false if epoll cannot (the thread then asks each).
  bool watch(const std::vector<std::unique_ptr<BusyConnection>>& connections) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return false;
    for (const auto& c : connections) {
      if (c->done()) continue;
      epoll_event event{};
      event.events = EPOLLIN;  // level-triggered: reported while unread bytes (or the end) remain
      event.data.ptr = c.get();
      if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, c->fd(), &event) != 0) return false;
    }
    events_.resize(std::min<size_t>(connections.size(), 1024));
    return true;
  }
  ~ReadyProbe() {
    if (epoll_ >= 0) ::close(epoll_);
  }

  // Calls `f` on each connection with data now; never waits. A closed socket leaves the set.
  template <typename F>
  void each_ready(F f) {
    int n = ::epoll_wait(epoll_, events_.data(), static_cast<int>(events_.size()), 0);
    for (int i = 0; i < n; ++i) f(*static_cast<BusyConnection*>(events_[static_cast<size_t>(i)].data.ptr));
  }

 private:
  int epoll_ = -1;
  std::vector<epoll_event> events_;
};

// One busy-polling thread: connects its connections, then spins over them until each is done:
// in every pass, what came back is taken, and what can go out is sent in the same pass.
void Spin(const LoadOptions& o, Shared& shared, std::vector<std::unique_ptr<BusyConnection>>& mine) {
  for (auto& c : mine) c->connect();
  std::vector<char> buf(ReceiveBufferSize(o.size));
  ReadyProbe probe;
  bool ask_epoll = mine.size() > kReceiveOnEachUpTo && probe.watch(mine);
  for (;;) {
    bool stopping = shared.stop.load(std::memory_order_relaxed);
    if (stopping && shared.abort.load(std::memory_order_relaxed)) {
      for (auto& c : mine) c->abort();
    }
    if (ask_epoll) {
      probe.each_ready([&](BusyConnection& c) { c.receive(buf); });
    } else {
      for (auto& c : mine) c->receive(buf);
    }
    bool any = false;
    for (auto& c : mine) {
      c->send(stopping);
      any = any || !c->done();
    }
    if (!any) return;
  }
}

}  // namespace

absl::StatusOr<LoadResult> RunBusyPollLoad(const LoadOptions& o,
                                           const std::function<void(const LoadProgress&)>& on_progress) {
  SpinningRun run(o);
  std::vector<std::vector<std::unique_ptr<BusyConnection>>> slices(static_cast<size_t>(o.threads));
  for (int i = 0; i < o.connections; ++i) {
    Counters& c = run.expect(i);
    slices[static_cast<size_t>(i % o.threads)].push_back(std::make_unique<BusyConnection>(o, run.shared(), c, i));
  }
  return run.Run([&](size_t t) { Spin(o, run.shared(), slices[t]); }, "--busy_poll", "busy-poll", on_progress);
}

}  // namespace brrr::bench
