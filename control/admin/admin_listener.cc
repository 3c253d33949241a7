#include "control/admin/admin_listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "grpcpp/server_posix.h"
#include "runtime/line_output.h"
#include "runtime/retry_pacing.h"

namespace brrr::control {

namespace {

// How long accepting pauses when the process is out of descriptors after all (the reserve is
// meant to prevent it): poll(2) would report the waiting connection again at once. Relaying
// goes on meanwhile.
constexpr std::chrono::milliseconds kOutOfDescriptorsPause{100};
// gRPC's ends of dropped connections that may wait for gRPC to close them before a new
// connection is accepted: a burst of connections that each take the place of the one before
// would otherwise leave any number of them open at once, past --admin_reserved_fds. Part of
// the reserve's 8 beyond the connections' own (server/brrr-echo/main.cc).
constexpr size_t kGrpcEndsClosingAtMost = 2;
// How often accepting looks again while it waits for them.
constexpr std::chrono::milliseconds kGrpcEndsClosingLookAgain{2};
// How long one is waited for at most: accepting must not stop for good on an end gRPC keeps.
constexpr std::chrono::seconds kGrpcEndClosingWaitAtMost{1};

}  // namespace

absl::StatusOr<std::unique_ptr<AdminListener>> AdminListener::Bind(const SocketAddress& address,
                                                                   uint32_t max_connections, uint32_t max_streams) {
  auto fail = [&](const char* what, int err) {
    return absl::UnavailableError(
        absl::StrCat("admin plane: cannot listen on ", address.ToString(), ": ", what, ": ", std::strerror(err)));
  };
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket", errno);
  int one = 1;
  // As gRPC's own listener: a restart binds again while old connections sit in TIME_WAIT.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, address.data(), address.size()) != 0 || ::listen(fd, 128) != 0) {
    int err = errno;
    ::close(fd);
    return fail(err == EADDRINUSE ? "the port is in use" : "bind/listen", err);
  }
  return Listening(fd, max_connections, max_streams);
}

absl::StatusOr<std::unique_ptr<AdminListener>> AdminListener::Adopt(int fd, uint32_t max_connections,
                                                                    uint32_t max_streams) {
  // Accepting polls first, so the socket need not be non-blocking, but it was made so.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return Listening(fd, max_connections, max_streams);
}

absl::StatusOr<std::unique_ptr<AdminListener>> AdminListener::Listening(int fd, uint32_t max_connections,
                                                                        uint32_t max_streams) {
  absl::StatusOr<SocketAddress> bound = SocketAddress::LocalOf(fd);
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!bound.ok() || wake < 0) {
    int err = errno;
    ::close(fd);
    if (wake >= 0) ::close(wake);
    return bound.ok() ? absl::ErrnoToStatus(err, "admin plane: eventfd") : bound.status();
  }
  return std::unique_ptr<AdminListener>(new AdminListener(fd, wake, *bound, max_connections, max_streams));
}

int AdminListener::Duplicate() const {
  if (fd_ < 0) {
    errno = EBADF;
    return -1;
  }
  return ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
}

AdminListener::~AdminListener() {
  Stop();
  ::close(wake_fd_);
}

void AdminListener::Start(grpc::Server* server) {
  thread_ = std::thread([this, server] { Run(server); });
}

void AdminListener::Wake() const {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void AdminListener::StopAccepting() {
  if (fd_ < 0) return;
  if (thread_.joinable()) {
    std::unique_lock<std::mutex> lock(mu_);
    accepting_ = false;
    Wake();
    accept_stopped_cv_.wait(lock, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return accept_stopped_; });
  }
  ::close(fd_);  // the thread polls it no more
  fd_ = -1;
}

void AdminListener::Stop() {
  StopAccepting();
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    Wake();
    thread_.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  relayed_.clear();  // closes every connection: gRPC sees the end of each
}

void AdminListener::EndIdleConnections() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    end_idle_ = true;
  }
  Wake();
}

void AdminListener::Run(grpc::Server* server) {
  RelayUntilStopped(server);
  std::lock_guard<std::mutex> lock(mu_);
  accept_stopped_ = true;  // however it ended, StopAccepting waits for no more
  accept_stopped_cv_.notify_all();
}

void AdminListener::RelayUntilStopped(grpc::Server* server) {
  std::vector<pollfd> fds;
  for (;;) {
    bool accepting;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      accepting = accepting_;
      if (!accepting && !accept_stopped_) {
        accept_stopped_ = true;
        accept_stopped_cv_.notify_all();
      }
    }
    // The listening socket, the wake-up, then two for each connection: its client's socket
    // and the relay's end of its pair.
    const RelayedConnection::Clock::time_point before = RelayedConnection::Clock::now();
    std::optional<RelayedConnection::Clock::time_point> soonest;
    if (accepting && TooManyGrpcEndsClosing()) accept_resumes_ = before + kGrpcEndsClosingLookAgain;
    const bool accept_paused = accept_resumes_.has_value() && before < *accept_resumes_;
    if (accepting && accept_paused) soonest = accept_resumes_;
    fds.assign(2 + 2 * relayed_.size(), pollfd{});
    fds[0] = {.fd = accepting && !accept_paused ? fd_ : -1, .events = POLLIN, .revents = 0};
    fds[1] = {.fd = wake_fd_, .events = POLLIN, .revents = 0};
    for (size_t i = 0; i < relayed_.size(); ++i) {
      const RelayedConnection& connection = *relayed_[i].connection;
      connection.Interest(&fds[2 + 2 * i], &fds[3 + 2 * i]);
      if (connection.deadline().has_value() && (!soonest.has_value() || *connection.deadline() < *soonest)) {
        soonest = connection.deadline();
      }
    }
    int timeout_ms = -1;
    if (soonest.has_value()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*soonest - before);
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 60'000));
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) return;  // cannot happen
    if (fds[1].revents != 0) {
      uint64_t count;
      (void)!::read(wake_fd_, &count, sizeof count);
    }
    bool end_idle;
    {
      // Read after the wait, so that the wake-up of EndIdleConnections is never spent on a look
      // that does not see it.
      std::lock_guard<std::mutex> lock(mu_);
      end_idle = end_idle_;
    }
    Relay(fds, RelayedConnection::Clock::now(), end_idle);
    if (fds[0].revents != 0) AcceptOne(server);
  }
}

void AdminListener::Relay(const std::vector<pollfd>& fds, RelayedConnection::Clock::time_point now, bool end_idle) {
  std::vector<size_t> ended;
  for (size_t i = 0; i < relayed_.size(); ++i) {
    RelayedConnection& connection = *relayed_[i].connection;
    const short client_events = fds[2 + 2 * i].revents;
    const short grpc_events = fds[3 + 2 * i].revents;
    const bool due = connection.deadline().has_value() && now >= *connection.deadline();
    // Told once, and looked at then even without events: its GOAWAY may have gone through already.
    const bool told = end_idle && !connection.ending_once_idle();
    if (told) connection.EndOnceIdle();
    if (client_events == 0 && grpc_events == 0 && !due && !told) continue;
    if (!connection.OnReady(client_events, grpc_events, now)) {
      ended.push_back(i);
      continue;
    }
    if (connection.grpc_gone() && !relayed_[i].grpc_peer.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      relayed_[i].grpc_peer.clear();  // gRPC may give the number to a new connection's end
    }
    if (connection.TakeStartedHolding() && IsPowerOfTen(++held_)) {
      const Http2StreamBound& bound = connection.bound();
      PrintToStderr(
          "brrr-echo: admin plane: the connection from %s has %zu calls open, the most one connection may "
          "(--admin_max_calls + 1); its next call waits until one ends%s (%llu times so far)\n",
          connection.peer().c_str(), bound.open(),
          bound.settings_acknowledged() ? "" : " (its client has not acknowledged the server's HTTP/2 SETTINGS)",
          static_cast<unsigned long long>(held_));
    }
  }
  if (ended.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto i = ended.rbegin(); i != ended.rend(); ++i) Drop(relayed_.begin() + static_cast<ptrdiff_t>(*i));
}

void AdminListener::AcceptOne(grpc::Server* server) {
  UniqueFd client(::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!client.valid()) {
    int err = errno;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      if (IsPowerOfTen(++accept_errors_)) {
        PrintToStderr("brrr-echo: admin plane: accept: %s (%llu times so far); retrying in %lld ms\n",
                      std::strerror(err), static_cast<unsigned long long>(accept_errors_),
                      static_cast<long long>(kOutOfDescriptorsPause.count()));
      }
      accept_resumes_ = RelayedConnection::Clock::now() + kOutOfDescriptorsPause;
    }
    return;  // EAGAIN, EINTR, or a connection that died in the backlog
  }
  absl::StatusOr<SocketAddress> address = SocketAddress::PeerOf(client.get());
  std::string peer = address.ok() ? address->ToString() : "an unknown peer";
  std::unique_lock<std::mutex> lock(mu_);
  if (relayed_.size() >= max_connections_) {
    std::optional<std::string> evicted = EvictOneNotAllowed();
    if (!evicted.has_value()) {
      client.reset();
      if (IsPowerOfTen(++refused_)) {
        PrintToStderr(
            "brrr-echo: admin plane: %u connections are open (--admin_max_connections); closed the one "
            "from %s (%llu refused so far); idle ones close after --admin_idle_timeout\n",
            max_connections_, peer.c_str(), static_cast<unsigned long long>(refused_));
      }
      return;
    }
    if (IsPowerOfTen(++evicted_)) {
      PrintToStderr(
          "brrr-echo: admin plane: %u connections are open (--admin_max_connections); closed the one from %s, "
          "through which no call had been let through, for the one from %s (%llu so far)\n",
          max_connections_, evicted->c_str(), peer.c_str(), static_cast<unsigned long long>(evicted_));
    }
  }
  int one = 1;
  // Small requests and replies: Nagle's algorithm would hold them back (gRPC sets it too).
  ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  absl::StatusOr<RelayedConnection::Opened> opened = RelayedConnection::Open(std::move(client), peer, max_streams_);
  if (!opened.ok()) {
    if (IsPowerOfTen(++accept_errors_)) {
      PrintToStderr("brrr-echo: admin plane: closed the connection from %s: %s (%llu times so far)\n", peer.c_str(),
                    std::string(opened.status().message()).c_str(), static_cast<unsigned long long>(accept_errors_));
    }
    return;
  }
  struct stat grpc_end {};
  ::fstat(opened->grpc_fd, &grpc_end);
  // gRPC names a connection it was handed by its descriptor: its calls' peer() is "fd:N".
  relayed_.push_back(Relayed{.connection = std::move(opened->connection),
                             .grpc_end = {.fd = opened->grpc_fd, .inode = grpc_end.st_ino},
                             .grpc_peer = absl::StrCat("fd:", opened->grpc_fd)});
  lock.unlock();
  grpc::AddInsecureChannelFromFd(server, opened->grpc_fd);
}

void AdminListener::MarkAllowed(const std::string& grpc_peer) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Relayed& r : relayed_) {
    if (r.grpc_peer == grpc_peer) r.allowed = true;
  }
}

std::string AdminListener::ClientOf(const std::string& grpc_peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Relayed& r : relayed_) {
    if (r.grpc_peer == grpc_peer) return r.connection->peer();
  }
  return grpc_peer;
}

std::optional<std::string> AdminListener::EvictOneNotAllowed() {
  auto oldest = std::find_if(relayed_.begin(), relayed_.end(), [](const Relayed& r) { return !r.allowed; });
  if (oldest == relayed_.end()) return std::nullopt;
  std::string peer = oldest->connection->peer();
  Drop(oldest);
  return peer;
}

void AdminListener::Drop(std::vector<Relayed>::iterator connection) {
  // gRPC's hang-up says it closed its end; otherwise it will once it sees the end of ours.
  if (!connection->connection->grpc_gone()) {
    grpc_ends_closing_.push_back(ClosingGrpcEnd{.end = connection->grpc_end, .since = RelayedConnection::Clock::now()});
  }
  relayed_.erase(connection);  // closes its sockets
}

bool AdminListener::TooManyGrpcEndsClosing() {
  if (grpc_ends_closing_.size() < kGrpcEndsClosingAtMost) return false;
  const RelayedConnection::Clock::time_point now = RelayedConnection::Clock::now();
  std::erase_if(grpc_ends_closing_, [now](const ClosingGrpcEnd& closing) {
    struct stat st {};
    const bool closed = ::fstat(closing.end.fd, &st) != 0 || st.st_ino != closing.end.inode;
    return closed || now - closing.since >= kGrpcEndClosingWaitAtMost;
  });
  return grpc_ends_closing_.size() >= kGrpcEndsClosingAtMost;
}

}  // namespace brrr::control
