#include "server/handover_listener.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/line_output.h"

namespace brrr::server {

namespace {

// How long the new process may take to say which protocol it speaks once connected.
constexpr Duration kHelloTimeout = std::chrono::seconds(5);

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("hand-over socket \"", path, "\": a path of 1 to ",
                                                   sizeof addr.sun_path - 1, " bytes is needed"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

int64_t DeadlineAfter(Duration d) { return MonotonicNanos() + d.count(); }

void Say(const std::string& line) { PrintToStderr("brrr-echo: hand-over: %s\n", line.c_str()); }

// An exclusive flock(2) on the directory of `path`, held while a hand-over socket there is
// created or removed: two processes that find the same stale socket file would otherwise both
// replace it (the second one's probe, between the first one's bind and listen, finds nobody
// listening and unlinks the first one's new file), leaving one of them listening at no path.
// Best effort: no lock if the directory cannot be opened.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& path) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    fd_ = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    while (fd_.valid() && ::flock(fd_.get(), LOCK_EX) != 0 && errno == EINTR) {
    }
  }

 private:
  UniqueFd fd_;  // closing it releases the lock
};

struct ListeningSocket {
  UniqueFd fd;
  ino_t inode = 0;
};

// A UNIX socket listening at `path`, created 0600. A socket file left there by a process that
// died is replaced; one where a process listens, or any other file, is refused.
absl::StatusOr<ListeningSocket> ListenAt(const std::string& path) {
  absl::StatusOr<sockaddr_un> addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  DirectoryLock lock(path);  // from the probe of a socket file there to the listen
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  auto bind_private = [&]() -> int {
    // Created 0600 from the start: no moment when another user could connect. umask is
    // process-wide, but nothing else in brrr-echo creates files.
    mode_t old_mask = ::umask(0177);
    int r = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
    int err = errno;
    ::umask(old_mask);
    errno = err;
    return r;
  };
  if (bind_private() != 0) {
    int err = errno;
    if (err != EADDRINUSE) return absl::ErrnoToStatus(err, absl::StrCat("hand-over socket ", path, ": bind"));
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("hand-over socket ", path, ": the path exists and is not a socket; choose another path"));
    }
    // A socket file: live if someone accepts on it, stale if it is left from a process that died.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() && ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("hand-over socket ", path, ": another process listens there (a brrr-echo still running?); "
                       "take it over with --take_over=", path, " or choose another path"));
    }
    if (errno != ECONNREFUSED) {
      return absl::ErrnoToStatus(errno, absl::StrCat("hand-over socket ", path, ": probing the existing socket"));
    }
    ::unlink(path.c_str());
    if (bind_private() != 0) return absl::ErrnoToStatus(errno, absl::StrCat("hand-over socket ", path, ": bind"));
    Say(absl::StrCat("removed a stale socket at ", path));
  }
  struct stat st {};
  if (::chmod(path.c_str(), 0600) != 0 || ::stat(path.c_str(), &st) != 0 || ::listen(fd.get(), 4) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("hand-over socket ", path));
  }
  return ListeningSocket{std::move(fd), st.st_ino};
}

}  // namespace

absl::StatusOr<std::unique_ptr<HandoverListener>> HandoverListener::Listen(const std::string& path,
                                                                           HandoverCallbacks callbacks,
                                                                           Duration take_over_timeout) {
  absl::StatusOr<ListeningSocket> listening = ListenAt(path);
  if (!listening.ok()) return listening.status();
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) {
    int err = errno;
    ::unlink(path.c_str());
    return absl::ErrnoToStatus(err, "eventfd");
  }
  std::unique_ptr<HandoverListener> listener(new HandoverListener(
      path, std::move(listening->fd), std::move(wake), listening->inode, std::move(callbacks), take_over_timeout));
  listener->thread_ = std::thread([l = listener.get()] { l->Run(); });
  return listener;
}

HandoverListener::HandoverListener(std::string path, UniqueFd fd, UniqueFd wake, ino_t inode,
                                   HandoverCallbacks callbacks, Duration take_over_timeout)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      wake_(std::move(wake)),
      inode_(inode),
      callbacks_(std::move(callbacks)),
      take_over_timeout_(take_over_timeout) {}

HandoverListener::~HandoverListener() { Stop(); }

void HandoverListener::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    thread_.join();
  }
  Unlink();
}

void HandoverListener::Unlink() {
  if (!fd_.valid()) return;
  DirectoryLock lock(path_);  // the file is not replaced between the look and the unlink
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
  fd_.reset();
}

bool HandoverListener::StopRequested(int ms) const {
  pollfd p{.fd = wake_.get(), .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, ms) > 0;
}

void HandoverListener::Run() {
  for (;;) {
    pollfd fds[2] = {{.fd = fd_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      if (errno == EMFILE || errno == ENFILE) {
        if (StopRequested(100)) return;
      }
      continue;
    }
    if (Serve(std::move(conn))) return;
    taking_ = 0;
  }
}

HandoverListener::Woken HandoverListener::WaitOn(int conn, int64_t deadline_ns) const {
  for (;;) {
    int64_t left_ms = (deadline_ns - MonotonicNanos()) / 1'000'000;
    if (left_ms <= 0) return Woken::kTimeout;
    pollfd fds[3] = {{.fd = conn, .events = POLLIN, .revents = 0},
                     {.fd = fd_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    int n = ::poll(fds, 3, static_cast<int>(std::min<int64_t>(left_ms, 60'000)));
    if (n < 0 && errno != EINTR) return Woken::kTimeout;
    if (fds[2].revents != 0) return Woken::kStop;
    if (fds[0].revents != 0) return Woken::kConnection;
    if (fds[1].revents != 0) return Woken::kNextConnection;
  }
}

void HandoverListener::RefuseSecond() {
  UniqueFd second(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!second.valid()) return;
  timeval t{.tv_sec = 1, .tv_usec = 0};
  ::setsockopt(second.get(), SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  (void)SendFrame(second.get(), HandoverFrameType::kRefuse,
                  absl::StrCat("already handing over to pid ", taking_, "; try again once that has ended"));
}

bool HandoverListener::Serve(UniqueFd conn) {
  // Sends block at most this long: a new process that stops reading cannot hold this thread.
  timeval t{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  auto refuse = [&](const std::string& why) {
    Say(absl::StrCat("refused pid ", cred.pid, ": ", why, "; still serving"));
    (void)SendFrame(conn.get(), HandoverFrameType::kRefuse, why);
    return false;
  };
  if (cred.uid != ::geteuid()) {
    return refuse(absl::StrCat("user ", cred.uid, " may not take over the listeners of user ", ::geteuid()));
  }
  taking_ = cred.pid;
  // A new process says HELLO as it connects: one that has not when another connects is not one,
  // and must not make a real one wait.
  switch (WaitOn(conn.get(), DeadlineAfter(kHelloTimeout))) {
    case Woken::kConnection:
      break;
    case Woken::kNextConnection:
      Say(absl::StrCat("pid ", cred.pid,
                       " connected but sent no hello before the next connection came; serving that one"));
      // Told why, so that it does not take the closed connection for this process's death.
      (void)SendFrame(conn.get(), HandoverFrameType::kRefuse,
                      "another process connected before this one said HELLO, and is served instead");
      return false;
    case Woken::kStop:
      return true;
    case Woken::kTimeout: {
      const std::string why = absl::StrCat(
          "no hello within ", std::chrono::duration_cast<std::chrono::milliseconds>(kHelloTimeout).count(), " ms");
      Say(absl::StrCat("pid ", cred.pid, " connected but sent ", why, "; still serving"));
      (void)SendFrame(conn.get(), HandoverFrameType::kRefuse, why);
      return false;
    }
  }
  absl::StatusOr<HandoverFrame> hello = ReadFrame(conn.get(), DeadlineAfter(kHelloTimeout));
  if (!hello.ok()) {
    // A process that connects and closes at once is another brrr-echo checking whether this
    // socket is live (Listen's probe): nothing to report.
    if (absl::IsUnavailable(hello.status()) && absl::StrContains(hello.status().message(), "closed")) return false;
    Say(absl::StrCat("pid ", cred.pid, " connected but sent no hello (", hello.status().message(),
                     "); still serving"));
    return false;
  }
  if (hello->type != HandoverFrameType::kHello) {
    return refuse(absl::StrCat("expected a HELLO, got a ", HandoverFrameName(hello->type)));
  }
  if (hello->version != kHandoverProtocolVersion) {
    return refuse(absl::StrCat("this instance speaks hand-over protocol version ", kHandoverProtocolVersion,
                               ", the new one version ", hello->version,
                               "; upgrade through a release that speaks both"));
  }
  absl::StatusOr<ListenerSet> set = callbacks_.collect();
  if (!set.ok()) return refuse(std::string(set.status().message()));
  set->pid = ::getpid();
  if (absl::Status sent = SendOffer(conn.get(), *set); !sent.ok()) {
    Say(absl::StrCat("could not send the listeners to pid ", cred.pid, ": ", sent.message(), "; still serving"));
    return false;
  }
  // The new process builds its loops and starts accepting; meanwhile a third one is refused.
  int64_t deadline = DeadlineAfter(take_over_timeout_);
  for (Woken woken; (woken = WaitOn(conn.get(), deadline)) != Woken::kConnection;) {
    if (woken == Woken::kTimeout) {
      Say(absl::StrCat("pid ", cred.pid, " did not take the listeners within ",
                       std::chrono::duration_cast<std::chrono::milliseconds>(take_over_timeout_).count(),
                       " ms; still serving"));
      return false;
    }
    if (woken == Woken::kStop) {
      Say(absl::StrCat("stopped while pid ", cred.pid, " was taking over"));
      return true;
    }
    RefuseSecond();  // the answer (or the new process going away) comes first
  }
  absl::StatusOr<HandoverFrame> answer = ReadFrame(conn.get(), deadline);
  if (!answer.ok()) {
    Say(absl::StrCat("pid ", cred.pid, " went away before taking the listeners (", answer.status().message(),
                     "); still serving"));
    return false;
  }
  if (answer->type != HandoverFrameType::kTaken) {
    Say(absl::StrCat("pid ", cred.pid, " did not take the listeners (",
                     answer->type == HandoverFrameType::kDeclined ? answer->payload
                                                                  : HandoverFrameName(answer->type),
                     "); still serving"));
    return false;
  }
  // Removed before RELEASED, so that the new process can create its own socket at the same
  // path as soon as it reads RELEASED.
  Unlink();
  if (absl::Status sent = SendFrame(conn.get(), HandoverFrameType::kReleased, ""); !sent.ok()) {
    // The new process gave up before it heard RELEASED (it exits 3: take_over.h), and this one
    // never stopped accepting: it serves on, and listens at the path again, so that it can
    // still be upgraded.
    const std::string gone =
        absl::StrCat("pid ", cred.pid, " took the listeners but went away before they were released (", sent.message(),
                     "); still serving");
    absl::StatusOr<ListeningSocket> again = ListenAt(path_);
    if (!again.ok()) {
      Say(absl::StrCat(gone, ", but no longer at ", path_, " (", again.status().message(), ")"));
      return true;
    }
    fd_ = std::move(again->fd);
    inode_ = again->inode;
    Say(absl::StrCat(gone, ", and listening at ", path_, " again"));
    return false;
  }
  Say(absl::StrCat("pid ", cred.pid, " took the listeners; no longer accepting here"));
  callbacks_.released(cred.pid);
  return true;
}

}  // namespace brrr::server
