#include "server/brrr-echo/upgrade.h"

#include <unistd.h>

#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "runtime/line_output.h"
#include "server/port_claim.h"

ABSL_FLAG(std::string, handover_socket, "",
          "Listen on this UNIX socket (created 0600, removed at exit) for a new brrr-echo started with "
          "--take_over=PATH: it receives the listening sockets, and once it accepts on them this process "
          "stops accepting and drains, as on SIGTERM; no connection attempt is refused. Empty: no hand-over");
ABSL_FLAG(std::string, take_over, "",
          "Take the listening sockets (echo, and metrics and admin where this process serves the same "
          "address) of the brrr-echo listening on this --handover_socket, instead of binding; --host must be "
          "the running one's and --port the same or 0. Exit code 3 if it cannot; the running one serves on");
ABSL_FLAG(bool, take_over_or_start, false,
          "With --take_over: when no brrr-echo listens at that path (no socket there, or one left by a process "
          "that died without removing it, or one that dies before it has handed its listeners over), start afresh "
          "instead of exiting 3: "
          "bind the ports (waiting up to 2 s in all for ports a process that has just died still holds), and serve "
          "--handover_socket (replacing the file left there). For a service manager, which restarts a process "
          "that crashed the same way it upgrades a running one");

namespace brrr {

absl::Status Upgrade::CheckFlags() {
  if (absl::GetFlag(FLAGS_take_over_or_start) && absl::GetFlag(FLAGS_take_over).empty()) {
    return absl::InvalidArgumentError("--take_over_or_start needs --take_over=PATH (what to take over, if it runs)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Upgrade>> Upgrade::Begin() {
  std::unique_ptr<Upgrade> upgrade(new Upgrade());
  std::string take_over = absl::GetFlag(FLAGS_take_over);
  std::string handover = absl::GetFlag(FLAGS_handover_socket);
  // Opened first, so that a path where another process listens stops this one before it
  // binds anything; unless it is the path being taken over, which is free only once the old
  // process has let go.
  if (!handover.empty() && handover != take_over) {
    if (absl::Status opened = upgrade->OpenHandoverSocket(handover); !opened.ok()) return opened;
  }
  if (take_over.empty()) return upgrade;
  absl::StatusOr<std::unique_ptr<server::TakeOver>> taking = server::TakeOver::Connect(take_over);
  if (!taking.ok()) {
    // NotFound: nothing listens there. A process that listened there has died, or none ever
    // did: nobody serves the ports, so starting afresh takes them from no one (and if a process
    // still holds them after all, binding fails and this one exits 3).
    if (!absl::IsNotFound(taking.status()) || !absl::GetFlag(FLAGS_take_over_or_start)) return taking.status();
    PrintToStdout("brrr-echo: no brrr-echo listens for a hand-over at %s: starting afresh (--take_over_or_start)\n",
                  take_over.c_str());
    upgrade->started_afresh_ = true;
    // The path is opened by Serve, once this process holds the ports (upgrade.h says why).
    return upgrade;
  }
  upgrade->taking_ = *std::move(taking);
  return upgrade;
}

void Upgrade::WaitForPortsOfTheDead(const std::vector<SocketAddress>& ports) const {
  if (!started_afresh_) return;
  const int64_t deadline = MonotonicNanos() + kDiedProcessPortWait.count();
  for (const SocketAddress& port : ports) {
    if (server::WaitWhilePortInUse(port, Duration(0)).ok()) continue;
    const int64_t since = MonotonicNanos();
    PrintToStdout(
        "brrr-echo: %s is still in use: waiting up to %lld ms for it (a process that has just died may hold its "
        "sockets a moment longer)\n",
        port.ToString().c_str(), static_cast<long long>((deadline - since + 500'000) / 1'000'000));
    if (server::WaitWhilePortInUse(port, Duration(std::max<int64_t>(0, deadline - since))).ok()) {
      PrintToStdout("brrr-echo: %s is free after %lld ms\n", port.ToString().c_str(),
                    static_cast<long long>((MonotonicNanos() - since) / 1'000'000));
    }
  }
}

absl::Status Upgrade::OpenHandoverSocket(const std::string& path) {
  server::HandoverCallbacks callbacks;
  callbacks.collect = [this]() -> absl::StatusOr<server::ListenerSet> {
    std::lock_guard<std::mutex> lock(mu_);
    if (server_ == nullptr) return absl::UnavailableError("this instance is still starting; try again in a moment");
    server::ListenerSet set;
    set.echo = server_->address();
    absl::StatusOr<std::vector<UniqueFd>> echo = server_->DuplicateListeners();
    if (!echo.ok()) return echo.status();
    set.echo_fds = *std::move(echo);
    if (admin_ != nullptr) {
      absl::StatusOr<SocketAddress> at = SocketAddress::ParseHostPort(admin_->address());
      absl::StatusOr<UniqueFd> fd = admin_->DuplicateListener();
      if (at.ok() && fd.ok()) set.admin = server::HandedListener{*at, *std::move(fd)};
    }
    if (metrics_ != nullptr) {
      absl::StatusOr<SocketAddress> at = SocketAddress::ParseHostPort(metrics_->address());
      absl::StatusOr<UniqueFd> fd = metrics_->DuplicateListener();
      if (at.ok() && fd.ok()) set.metrics = server::HandedListener{*at, *std::move(fd)};
    }
    return set;
  };
  callbacks.released = [this](pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    // The new process accepts on every socket now: stop here and let open connections finish.
    if (admin_ != nullptr) admin_->StopAccepting();
    if (metrics_ != nullptr) metrics_->StopAccepting();
    // The new process accepts already: no grace. The line comes once readiness has turned, so a
    // scraper that reads it and asks this process is told it drains.
    server_->DrainHandedOver([this, pid] {
      PrintToStdout(
          "brrr-echo: handed the listeners over to pid %d: draining (up to %lld ms for open connections)\n",
          static_cast<int>(pid),
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(server_->options().drain_timeout).count()));
    });
  };
  absl::StatusOr<std::unique_ptr<server::HandoverListener>> listening =
      server::HandoverListener::Listen(path, std::move(callbacks));
  if (!listening.ok()) return listening.status();
  handing_ = *std::move(listening);
  return absl::OkStatus();
}

Upgrade::~Upgrade() {
  Stop();
  if (taking_ != nullptr) taking_->Decline("the new instance did not start (its stderr says why)");
}

void Upgrade::AdoptEcho(server::EchoServerOptions& options) {
  if (taking_ != nullptr) options.adopted_listeners = taking_->TakeEchoListeners();
}

int Upgrade::Adopt(std::optional<server::HandedListener>& listener, const std::string& host, uint16_t port) {
  if (taking_ == nullptr || !listener.has_value() || port == 0) return -1;
  absl::StatusOr<SocketAddress> wanted = SocketAddress::Parse(host, port);
  if (!wanted.ok() || wanted->ToString() != listener->address.ToString()) {
    listener.reset();
    return -1;
  }
  int fd = listener->fd.release();
  listener.reset();
  return fd;
}

int Upgrade::AdoptAdmin(const std::string& host, uint16_t port) {
  return taking_ == nullptr ? -1 : Adopt(taking_->mutable_listeners().admin, host, port);
}

int Upgrade::AdoptMetrics(const std::string& host, uint16_t port) {
  return taking_ == nullptr ? -1 : Adopt(taking_->mutable_listeners().metrics, host, port);
}

absl::Status Upgrade::Serve(server::EchoServer& server, control::AdminServer* admin,
                            control::MetricsHttpServer* metrics) {
  if (taking_ != nullptr) {
    pid_t old_pid = taking_->listeners().pid;
    absl::Status committed = taking_->Commit();
    const bool taken_from_exited = taking_->old_process_exited();
    std::string path = taking_->path();
    taking_.reset();
    if (!committed.ok()) return committed;
    server.JoinPortGroup();  // the loops beyond the old process's count listen now
    if (taken_from_exited) {
      PrintToStdout(
          "brrr-echo: took over the listeners of pid %d through %s; it exited before it let go, so they are "
          "this process's alone\n",
          static_cast<int>(old_pid), path.c_str());
    } else {
      PrintToStdout("brrr-echo: took over the listeners of pid %d through %s; it drains\n", static_cast<int>(old_pid),
                    path.c_str());
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    server_ = &server;
    admin_ = admin;
    metrics_ = metrics;
  }
  std::string path = absl::GetFlag(FLAGS_handover_socket);
  if (path.empty()) return absl::OkStatus();
  if (handing_ == nullptr) {
    absl::Status opened = OpenHandoverSocket(path);
    // Started afresh (--take_over_or_start): the ports are this process's now, and a path where
    // another process listens stops it, as it stops any start (Begin).
    if (!opened.ok() && started_afresh_) return opened;
    // The path just taken over from. The old process has let go: draining now would leave
    // the port to nobody, so this process serves on, only without a way to hand over.
    if (!opened.ok()) {
      PrintToStderr("brrr-echo: warning: %s; serving on, but no new process can take over from this one\n",
                    std::string(opened.message()).c_str());
      return absl::OkStatus();
    }
  }
  PrintToStdout("brrr-echo: hand-over socket at %s (brrr-echo --take_over=%s takes the listeners)\n", path.c_str(),
                path.c_str());
  return absl::OkStatus();
}

void Upgrade::Stop() {
  if (handing_ != nullptr) handing_->Stop();
  std::lock_guard<std::mutex> lock(mu_);
  server_ = nullptr;
  admin_ = nullptr;
  metrics_ = nullptr;
}

}  // namespace brrr
