#include "server/take_over.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace brrr::server {

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
  if (!hello.ok() && !absl::IsFailedPrecondition(set.status())) return failed(hello);
  if (!set.ok()) {
    // The old process learns why (a listener it sent was not what it said): it logs it.
    if (absl::IsInvalidArgument(set.status())) {
      (void)SendFrame(conn.get(), HandoverFrameType::kDeclined, std::string(set.status().message()));
    }
    return failed(set.status());
  }
  return std::unique_ptr<TakeOver>(new TakeOver(path, std::move(conn), *std::move(set)));
}

std::vector<int> TakeOver::TakeEchoListeners() {
  std::vector<int> fds;
  for (UniqueFd& fd : set_.echo_fds) fds.push_back(fd.release());
  set_.echo_fds.clear();
  return fds;
}

absl::Status TakeOver::Commit(Duration timeout) {
  auto failed = [&](absl::string_view why) {
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
