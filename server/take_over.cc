#include "server/take_over.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace brrr::server {
namespace {

// How long a Commit whose exchange failed waits to see the old process exit: a process that
// is killed closes its descriptors (the connection fails at once) a moment before it exits.
constexpr Duration kExitWait = std::chrono::seconds(2);

// The process at the other end of a UNIX socket: a pidfd of it, or an invalid one (the kernel
// has no pidfd_open, before Linux 5.3, or the process is gone already: then `gone`).
struct PeerProcess {
  UniqueFd pidfd = UniqueFd();
  bool gone = false;
};

PeerProcess PeerOf(int conn) {
  ucred peer{};
  socklen_t size = sizeof peer;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 || peer.pid <= 0) return PeerProcess{};
#ifdef SYS_pidfd_open
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0)));
  const bool gone = !pidfd.valid() && errno == ESRCH;
  return {.pidfd = std::move(pidfd), .gone = gone};
#else
  return PeerProcess{};
#endif
}

// Whether the process of `pidfd` exits within `wait` (false if it cannot be told: no pidfd).
bool ExitsWithin(const UniqueFd& pidfd, Duration wait) {
  if (!pidfd.valid()) return false;
  pollfd exited{.fd = pidfd.get(), .events = POLLIN, .revents = 0};
  const int64_t deadline = MonotonicNanos() + wait.count();
  for (;;) {
    int64_t left_ms = (deadline - MonotonicNanos()) / 1'000'000;
    int n = ::poll(&exited, 1, static_cast<int>(std::max<int64_t>(left_ms, 0)));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TakeOver>> TakeOver::Connect(const std::string& path, Duration timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("--take_over=", path, ": a path of 1 to ",
                                                   sizeof addr.sun_path - 1, " bytes is needed"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd conn(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!conn.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  if (::connect(conn.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    std::string why = absl::StrCat("cannot take over: no brrr-echo listens for a hand-over at ", path, " (",
                                   std::strerror(err), "); is it running with --handover_socket=", path, "?");
    return err == ENOENT || err == ECONNREFUSED ? absl::NotFoundError(why) : absl::ErrnoToStatus(err, why);
  }
  // Known before anything is said: a process that dies before it offers its listeners leaves
  // them to nobody, and the caller may then start afresh (NotFound, as when it was gone before).
  PeerProcess old_process = PeerOf(conn.get());
  timeval t{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  auto failed = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("cannot take over from ", path, ": ", s.message()));
  };
  absl::Status hello = SendFrame(conn.get(), HandoverFrameType::kHello, "");
  // A refusal may have been sent, and the connection closed, before the hello arrived (the
  // send then fails with EPIPE): its reason is still there to read.
  absl::StatusOr<ListenerSet> set =
      ReceiveOffer(conn.get(), hello.ok() ? MonotonicNanos() + timeout.count() : MonotonicNanos());
  if (!set.ok() && absl::IsUnavailable(set.status()) &&
      (old_process.gone || ExitsWithin(old_process.pidfd, kExitWait))) {
    return absl::NotFoundError(absl::StrCat("cannot take over: the brrr-echo at ", path,
                                            " exited before it handed its listeners over (", set.status().message(),
                                            ")"));
  }
  if (!hello.ok() && !absl::IsFailedPrecondition(set.status())) return failed(hello);
  if (!set.ok()) {
    // The old process learns why (a listener it sent was not what it said): it logs it.
    if (absl::IsInvalidArgument(set.status())) {
      (void)SendFrame(conn.get(), HandoverFrameType::kDeclined, std::string(set.status().message()));
    }
    return failed(set.status());
  }
  return std::unique_ptr<TakeOver>(new TakeOver(path, std::move(conn), *std::move(set), std::move(old_process.pidfd)));
}

std::vector<int> TakeOver::TakeEchoListeners() {
  std::vector<int> fds;
  for (UniqueFd& fd : set_.echo_fds) fds.push_back(fd.release());
  set_.echo_fds.clear();
  return fds;
}

absl::Status TakeOver::Commit(Duration timeout) {
  auto failed = [&](absl::string_view why) {
    // Gone instead of answering: it accepts no more, so the sockets are this process's.
    if (ExitsWithin(old_process_, kExitWait)) {
      old_process_exited_ = true;
      conn_.reset();
      return absl::OkStatus();
    }
    return absl::UnavailableError(absl::StrCat("the hand-over from pid ", set_.pid, " did not complete (", why,
                                               "): it may still be accepting"));
  };
  if (absl::Status taken = SendFrame(conn_.get(), HandoverFrameType::kTaken, ""); !taken.ok()) {
    return failed(taken.message());
  }
  absl::StatusOr<HandoverFrame> released = ReadFrame(conn_.get(), MonotonicNanos() + timeout.count());
  if (!released.ok()) return failed(released.status().message());
  if (released->type != HandoverFrameType::kReleased) {
    return failed(absl::StrCat("it answered ", HandoverFrameName(released->type), " ", released->payload));
  }
  conn_.reset();
  return absl::OkStatus();
}

void TakeOver::Decline(const std::string& why) {
  if (conn_.valid()) (void)SendFrame(conn_.get(), HandoverFrameType::kDeclined, why);
  conn_.reset();
}

}  // namespace brrr::server
