// upgrade.h: brrr-echo's part in an upgrade on one host without a refused connection: the
// flags --take_over (this process takes the listening sockets of a running brrr-echo) and
// --handover_socket (this process hands its own to the next one), wired to the echo server,
// the admin plane and the metrics port. The protocol and its two sides are in server/
// (listener_handover.h, take_over.h, handover_listener.h); this is only the wiring, kept out
// of main.cc.
//
//   auto upgrade = Upgrade::Begin();            // --take_over: receives the old listeners
//   upgrade->AdoptEcho(options);                // the echo listeners go to EchoServer::Create
//   admin_options.listener_fd = upgrade->AdoptAdmin(admin_options.host, admin_port);
//   metrics_options.listener_fd = upgrade->AdoptMetrics(metrics_host, metrics_port);
//   ... start the echo server, admin plane, metrics port ...
//   absl::Status s = upgrade->Serve(server, admin, metrics);   // commit; open --handover_socket
//   ... server.Wait() ...
//   upgrade->Stop();                            // before the admin plane and metrics port go
//
// Which listener is taken: every echo listener (its --host must be the old one's, its --port
// the same or 0). The admin and metrics listeners are taken when this process serves that
// port on the same address; otherwise the old one closes its own when it lets go, and this
// one binds (or serves nothing) as its flags say.
//
// Threads: from main's thread; the hand-over listener's callbacks run on its own thread.
#ifndef BRRR_SERVER_BRRR_ECHO_UPGRADE_H_
#define BRRR_SERVER_BRRR_ECHO_UPGRADE_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "control/admin/admin_server.h"
#include "control/admin/metrics_http.h"
#include "runtime/clock.h"
#include "runtime/socket_address.h"
#include "server/echo_server.h"
#include "server/handover_listener.h"
#include "server/take_over.h"

namespace brrr {

// How long a start afresh after a process that died waits for that process's ports, in all.
inline constexpr Duration kDiedProcessPortWait = std::chrono::seconds(2);

class Upgrade {
 public:
  // Opens --handover_socket (unless it is the --take_over path), so that a path where another
  // process listens stops this one before it binds anything. With --take_over: connects and
  // receives the running instance's listeners; the error
  // (no such socket, another protocol version, address mismatch, already handing over) means
  // exit 3, and the running instance serves on; but where nothing listens at that path and
  // --take_over_or_start is set, an Upgrade that takes nothing (and has opened the
  // --handover_socket if it is that path). Without --take_over: an Upgrade that takes nothing.
  static absl::StatusOr<std::unique_ptr<Upgrade>> Begin();
  // InvalidArgument for flags that contradict each other (--take_over_or_start without
  // --take_over): exit 2 before anything starts.
  static absl::Status CheckFlags();
  ~Upgrade();  // declines a take-over that was not committed; stops the hand-over listener

  // After a start afresh by --take_over_or_start (whoever listened at the path has died): while
  // one of `ports` (its port 0: none) is still in use, waits for it, up to
  // kDiedProcessPortWait for all of them, saying so on stdout, for the kernel may release a dead
  // process's sockets a moment after it exits (io_uring, after its ring). The binds that follow
  // report a port still held. Otherwise does nothing.
  void WaitForPortsOfTheDead(const std::vector<SocketAddress>& ports) const;

  // Moves the received echo listeners into options.adopted_listeners.
  void AdoptEcho(server::EchoServerOptions& options);
  // The received admin / metrics listener if it listens on host:port (port != 0), else -1
  // (and the received one is dropped: the old process closes its own when it lets go).
  int AdoptAdmin(const std::string& host, uint16_t port);
  int AdoptMetrics(const std::string& host, uint16_t port);

  // Once everything has started: commits the take-over (the old process stops accepting),
  // then serves --handover_socket (Begin opened it already unless it is the --take_over path,
  // which is free only now; failing to open that one is only a warning, as the old process
  // has let go). After a start afresh the path is opened here too, once this process holds
  // the ports: "nobody at the path" is also what a start sees between a running process
  // letting go (it removes its socket file first) and its successor listening there, and
  // opened before the ports, it was taken from that successor. An error means the old process
  // did not let go and still accepts, or, after a start afresh, that another process listens
  // at the path: this one must drain and exit 3.
  absl::Status Serve(server::EchoServer& server, control::AdminServer* admin, control::MetricsHttpServer* metrics);
  // Stops the hand-over listener (before the parts its callbacks use go away).
  void Stop();

 private:
  Upgrade() = default;
  int Adopt(std::optional<server::HandedListener>& listener, const std::string& host, uint16_t port);
  // Listens at `path`; until Serve names the parts, a process asking is told to try later.
  absl::Status OpenHandoverSocket(const std::string& path);

  std::unique_ptr<server::TakeOver> taking_;
  bool started_afresh_ = false;  // --take_over_or_start found nobody to take over from
  std::unique_ptr<server::HandoverListener> handing_;
  // What the hand-over listener's callbacks (on its thread) hand over and stop; set by Serve,
  // cleared by Stop.
  std::mutex mu_;
  server::EchoServer* server_ ABSL_GUARDED_BY(mu_) = nullptr;
  control::AdminServer* admin_ ABSL_GUARDED_BY(mu_) = nullptr;
  control::MetricsHttpServer* metrics_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace brrr

#endif  // BRRR_SERVER_BRRR_ECHO_UPGRADE_H_
