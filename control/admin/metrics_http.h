// metrics_http.h: the metrics port: a small HTTP/1.1 server for scrapers and load balancers,
// on a brrr event loop of its own (its own thread, brrr Sockets on the chosen backend).
//   GET /metrics   the Prometheus text exposition (version 0.0.4) of the pages' collectables
//   GET /healthz   200 "ok": the process is alive and its metrics loop answers
//   GET /readyz    200 "ready", or 503 "not ready: <why>" (MetricsPages::not_ready)
// HEAD is answered too; other methods 405, other paths 404.
//
//   MetricsHttpOptions o{.host = "127.0.0.1", .port = 9464};
//   MetricsPages pages{.collectables = {exporter, process}, .not_ready = [&] { return why; }};
//   auto server = MetricsHttpServer::Start(o, std::move(pages));
//   ... (*server)->address() ...   // "127.0.0.1:9464"
//   (*server)->Stop();             // before what the pages read goes away
//
// Why not prometheus-cpp's pull Exposer (civetweb): its only access check is HTTP Basic
// auth (the admin token is a bearer token, which Prometheus and balancers send as
// "Authorization: Bearer"), it serves collectables only (no /healthz or /readyz), and it
// has no cap on connections (each costs a descriptor of the reserve that the echo side leaves,
// server/descriptor_budget.h). prometheus-cpp's core (Collectable, MetricFamily,
// TextSerializer) is used; the serving is this file's, on the runtime it reports on.
//
// Bounds: at most `max_connections` connections are open at once (counted until their
// descriptors are really closed); past that, new ones wait in the kernel's backlog. A
// connection is closed when a request head has not arrived complete within `idle_timeout`
// (an idle keep-alive connection too), or a response has not been taken within it. A
// request head is at most 8 KiB (control/admin/http_message.h).
//
// Fairness at the cap: neither idle scrapers nor hostile or broken clients can keep a load
// balancer's health check out for `idle_timeout`.
//   - The listener defers accepting (TCP_DEFER_ACCEPT, as nginx's "deferred" and HAProxy's
//     "defer-accept"): a connection enters the backlog when its first bytes arrive, so a
//     request overtakes connections that have sent nothing. One silent for kDeferAccept is
//     queued then anyway, and so has been silent that long when it is accepted.
//   - While every place is taken and a connection waits in the backlog, as many connections as
//     wait are closed for them, oldest wait first, of those that are (a) idle: kept alive
//     after an answer, with nothing of the next request, for 100 ms (as nginx reuses idle
//     keep-alive connections; the client sends its next request on a new one, as HTTP clients
//     do); (b) slow: no whole request head a second after the connection opened or the last
//     answer (a port scan, a bare TCP check, a slow sender); or (c) not reading: an answer of
//     which no byte has been taken for a second (a client that pipelines requests and never
//     reads its answers), closed with a reset.
//   - A connection with bytes waiting to be read is never closed so: its task is about to take
//     them.
//
// With `auth` requiring a token (--admin_token_file), every request must carry
// "Authorization: Bearer <token>", else 401 with "WWW-Authenticate: Bearer".
//
// A scrape reads lock-free snapshots on this server's loop: a blocked echo loop does not
// delay it, and nothing costs the echo loops per event.
//
// Threads: Start, Stop and the destructor from one thread; requests are served on the
// server's own, named "brrr-metrics". The pages' collectables and not_ready are called on the server's thread.
// Ownership: the server owns its loop, thread, listener and connections.
#ifndef BRRR_CONTROL_ADMIN_METRICS_HTTP_H_
#define BRRR_CONTROL_ADMIN_METRICS_HTTP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "control/admin/call_auth.h"
#include "control/admin/http_message.h"
#include "prometheus/collectable.h"
#include "runtime/clock.h"
#include "runtime/event_loop.h"
#include "runtime/future.h"
#include "runtime/socket.h"
#include "runtime/unique_fd.h"

namespace brrr::control {

struct MetricsHttpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port
  // Who may ask (--admin_token_file); open by default.
  CallAuth auth;
  // Connections open at once (--metrics_max_connections).
  uint32_t max_connections = 8;
  // How long a request head may take to arrive (after the last response, on a kept-alive
  // connection) and a response to be taken.
  Duration idle_timeout = std::chrono::seconds(30);
  // The backend of the server's loop ("auto", "epoll"...; see PluginLoader).
  std::string backend = "auto";
  std::string plugin_dir;
  // A listening socket handed over by the process this one takes over from
  // (server/take_over.h): served instead of binding host:port. Owned by Start from then on
  // (closed if it fails). -1: bind.
  int listener_fd = -1;
  // False: the listener is not accepted from until StartAccepting(). For a handed-over listener:
  // the process it comes from still accepts on the same socket and answers /readyz "ready"
  // until this one's echo server runs, where this one would answer "not listening yet".
  bool accept_at_start = true;
};

// What the pages show.
struct MetricsPages {
  // /metrics: their families, in this order.
  std::vector<std::shared_ptr<const prometheus::Collectable>> collectables;
  // /readyz: empty when ready, else why not ("draining"); always ready if unset.
  std::function<std::string()> not_ready;
};

class MetricsHttpServer {
 public:
  // Starts the loop, binds host:port and serves. Errors: the backend does not start; the
  // host is not an IP address (InvalidArgument); the port is in use or not permitted
  // (naming the address).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(MetricsHttpOptions options, MetricsPages pages);
  ~MetricsHttpServer();  // stops
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // "host:port" ("[::1]:9464" for IPv6), with the actual port.
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }
  // Stops serving and closes every connection: returns once their sockets and the listener's
  // are closed (within kCloseLimit), on the server's thread, so that each client has seen its
  // end by then. Idempotent.
  void Stop();

  // Starts accepting on a server started with accept_at_start false (until then its
  // connections wait in the listener's backlog, for whichever process accepts there); nothing
  // otherwise. Any thread but the server's.
  void StartAccepting();
  // For a hand-over (server/handover_listener.h): a duplicate of the listening socket
  // (close-on-exec); FailedPrecondition once it no longer accepts. Any thread but the server's.
  absl::StatusOr<UniqueFd> DuplicateListener();
  // Closes the listening socket (the process it was handed to serves the port now), once the
  // connections queued in its backlog as the accept ended are taken (Socket::accept_queued
  // says why they may be this process's to serve). Requests on connections already open are
  // still answered, each connection closes after its next answer (so a keep-alive client
  // reconnects, to the new process), and Stop then waits up to kHandedOverGrace for
  // connections that have not had their first answer (accepted just before the hand-over) to
  // get it. Any thread but the server's.
  void StopAccepting();
  static constexpr Duration kHandedOverGrace = std::chrono::seconds(2);
  // How long a connection may stay silent before the listener queues it anyway.
  static constexpr Duration kDeferAccept = std::chrono::seconds(1);
  // How long Stop waits for the connections' tasks to end and their sockets to close.
  static constexpr Duration kCloseLimit = std::chrono::seconds(1);

 private:
  MetricsHttpServer(MetricsHttpOptions options, MetricsPages pages)
      : options_(std::move(options)), pages_(std::move(pages)) {}

  // Accepts once `start` (if any) has a result: accept_at_start false.
  Task<> accept_loop(Socket listener, std::optional<Future<>> start);
  Task<> serve(Socket connection);
  // Loop thread: serves `connection` in a task of its own, kept in connections_ until it ends.
  void start_serving(Socket connection);
  // Loop thread, for Stop: cancels the accept loop (its listener closes as it ends) and every
  // connection's task; the loop stops once all have ended and no socket is still closing.
  void close_everything();
  // The stop, once close_everything has run and nothing is left.
  void stop_once_closed();
  // At the cap, for each connection waiting in `listener`'s backlog: closes one that is idle,
  // slow or not reading (above), oldest wait first.
  void make_room(const Socket& listener);
  // The answer to one request: the token, the method, then the page.
  HttpResponse Answer(const HttpRequest& request) const;
  std::string exposition() const;

  const MetricsHttpOptions options_;
  const MetricsPages pages_;
  std::string address_;
  uint16_t port_ = 0;
  // Connections whose descriptors are open, and accepts in progress (Socket::count_descriptor_in);
  // declared before loop_, whose destruction closes the last of them.
  std::atomic<int64_t> open_descriptors_{0};
  uint64_t waits_at_cap_ = 0;   // the loop thread's
  uint64_t accept_errors_ = 0;  // the loop thread's
  // The loop thread's, declared before loop_ (its connections' tasks erase their entries as
  // the loop destroys them): the connections waiting for a request or for an answer to be
  // taken, by when they started to (oldest first).
  struct Wait {
    int fd;  // its socket's
    // For a request: MonotonicNanos() as the wait began, or as the connection opened (a new
    // connection accepted without a byte waited the deferral before). For an answer: when
    // make_room last saw a byte of it taken.
    int64_t since_ns;
    bool for_answer;              // else for a request
    bool kept_alive;              // for a request: after an answer (else: a new connection)
    const std::string* received;  // for a request: what the connection's task has received of it
    int64_t unsent = -1;          // for an answer: its socket's send queue (SIOCOUTQ) at the last look
  };
  // Whether make_room may close `w` now; updates an answer's progress.
  bool may_close(Wait& w, int64_t now_ns);
  std::map<uint64_t, Wait> waits_;  // by wait number, from 1
  uint64_t next_wait_ = 1;
  uint64_t reclaimed_idle_ = 0;
  uint64_t reclaimed_slow_ = 0;
  uint64_t reclaimed_unread_ = 0;
  std::unique_ptr<EventLoop> loop_;
  Future<> acceptor_;                      // the accept loop; it owns the listener
  std::optional<Promise<>> accept_start_;  // the loop thread's: set by StartAccepting (accept_at_start false)
  int listener_fd_ = -1;                   // the loop thread's: the listener's descriptor while acceptor_ runs
  std::atomic<bool> handed_over_{false};   // StopAccepting was called
  std::atomic<int> unanswered_{0};         // connections that have not had a first answer yet
  // The loop thread's: each connection's task, by number, until it ends (Stop cancels them).
  std::map<uint64_t, Future<>> connections_;
  uint64_t next_connection_ = 0;  // the loop thread's
  bool stopping_ = false;         // the loop thread's: close_everything has run
  bool stop_asked_ = false;       // the loop thread's: stop_once_closed has stopped the loop
  std::thread thread_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_METRICS_HTTP_H_
