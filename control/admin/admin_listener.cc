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
#include <cstring>

#include "absl/strings/str_cat.h"
#include "grpcpp/server_posix.h"
#include "runtime/line_output.h"
#include "runtime/retry_pacing.h"

namespace brrr::control {

namespace {

// How long accepting pauses when the process is out of descriptors after all (the reserve is
// meant to prevent it): poll(2) would report the waiting connection again at once.
constexpr int kOutOfDescriptorsPauseMs = 100;

}  // namespace

absl::StatusOr<std::unique_ptr<AdminListener>> AdminListener::Bind(const SocketAddress& address,
                                                                   uint32_t max_connections) {
  auto fail = [&](const char* what, int err) {
    return absl::UnavailableError(absl::StrCat("admin plane: cannot listen on ", address.ToString(), ": ", what,
                                               ": ", std::strerror(err)));
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
  absl::StatusOr<SocketAddress> bound = SocketAddress::LocalOf(fd);
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!bound.ok() || wake < 0) {
    int err = errno;
    ::close(fd);
    if (wake >= 0) ::close(wake);
    return bound.ok() ? fail("eventfd", err) : bound.status();
  }
  return std::unique_ptr<AdminListener>(new AdminListener(fd, wake, *bound, max_connections));
}

absl::StatusOr<std::unique_ptr<AdminListener>> AdminListener::Adopt(int fd, uint32_t max_connections) {
  absl::StatusOr<SocketAddress> bound = SocketAddress::LocalOf(fd);
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!bound.ok() || wake < 0) {
    int err = errno;
    ::close(fd);
    if (wake >= 0) ::close(wake);
    return bound.ok() ? absl::ErrnoToStatus(err, "admin plane: eventfd") : bound.status();
  }
  // Accepting polls first, so the socket need not be non-blocking, but it was made so.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<AdminListener>(new AdminListener(fd, wake, *bound, max_connections));
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

void AdminListener::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void AdminListener::Run(grpc::Server* server) {
  for (;;) {
    pollfd fds[2] = {{.fd = fd_, .events = POLLIN, .revents = 0}, {.fd = wake_fd_, .events = POLLIN, .revents = 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno != EINTR) return;  // cannot happen with valid descriptors
    if (fds[1].revents != 0) return;
    if (fds[0].revents != 0) AcceptOne(server);
  }
}

void AdminListener::AcceptOne(grpc::Server* server) {
  int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      if (IsPowerOfTen(++accept_errors_)) {
        PrintToStderr("brrr-echo: admin plane: accept: %s (%llu times so far); retrying in %d ms\n", std::strerror(err),
                      static_cast<unsigned long long>(accept_errors_), kOutOfDescriptorsPauseMs);
      }
      (void)StopRequested(kOutOfDescriptorsPauseMs);
    }
    return;  // EAGAIN, EINTR, or a connection that died in the backlog
  }
  absl::StatusOr<SocketAddress> address = SocketAddress::PeerOf(fd);
  const std::string peer = address.ok() ? address->ToString() : "an unknown peer";
  std::lock_guard<std::mutex> lock(handed_mu_);
  ForgetClosed();
  if (handed_.size() >= max_connections_) {
    std::optional<std::string> evicted = EvictOneNotAllowed();
    if (!evicted.has_value()) {
      ::close(fd);
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
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return;
  }
  // gRPC names a connection it was handed by its descriptor: its calls' peer() is "fd:N".
  handed_.push_back(Handed{.fd = fd, .inode = st.st_ino, .grpc_peer = absl::StrCat("fd:", fd), .peer = peer});
  grpc::AddInsecureChannelFromFd(server, fd);
}

void AdminListener::MarkAllowed(const std::string& grpc_peer) {
  std::lock_guard<std::mutex> lock(handed_mu_);
  for (Handed& h : handed_) {
    if (h.grpc_peer == grpc_peer) h.allowed = true;
  }
}

std::optional<std::string> AdminListener::EvictOneNotAllowed() {
  for (auto h = handed_.begin(); h != handed_.end(); ++h) {
    if (h->allowed) continue;
    // gRPC owns the descriptor and may close it at any moment, and its number may then name
    // another socket: the duplicate pins whatever it names now, and the inode says whether
    // that is still this connection.
    int pinned = ::fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
    if (pinned < 0) continue;  // closed meanwhile: ForgetClosed's next pass drops it
    struct stat st {};
    const bool same = ::fstat(pinned, &st) == 0 && st.st_ino == h->inode;
    if (same) ::shutdown(pinned, SHUT_RDWR);  // gRPC sees the end and closes its descriptor
    ::close(pinned);
    if (!same) continue;
    std::string peer = std::move(h->peer);
    handed_.erase(h);
    return peer;
  }
  return std::nullopt;
}

void AdminListener::ForgetClosed() {
  std::erase_if(handed_, [](const Handed& h) {
    struct stat st {};
    return ::fstat(h.fd, &st) != 0 || st.st_ino != h.inode || !S_ISSOCK(st.st_mode);
  });
}

bool AdminListener::StopRequested(int ms) const {
  pollfd wake = {.fd = wake_fd_, .events = POLLIN, .revents = 0};
  return ::poll(&wake, 1, ms) > 0;
}

}  // namespace brrr::control
