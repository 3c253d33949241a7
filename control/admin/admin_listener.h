// admin_listener.h: the admin plane's TCP listener. It accepts connections itself and relays
// each one to the gRPC server over a socket pair (admin_relay.h, grpc::AddInsecureChannelFromFd),
// so that it can hold what gRPC 1.51 does not:
// - Connections open at once (GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS came in a later
//   release); each costs descriptors that the echo side leaves to the admin plane
//   (kDescriptorsPerConnection; server/descriptor_budget.h). Past `max_connections` open at
//   once, a new connection takes the place of the oldest one through which no call has been
//   let through yet (MarkAllowed: the token checked, or none needed), which is closed; if every
//   open one has had a call let through, the new one is closed as soon as it is accepted.
//   Either way stderr says so (the 1st, 10th, 100th... time). gRPC closes idle connections
//   itself (GRPC_ARG_MAX_CONNECTION_IDLE_MS, set by AdminServer), which frees their places; but
//   a connection with a call in progress is not idle, and a call whose request never comes (a
//   client that sends a call's headers and nothing more) never reaches the token check: without
//   the rule above, a client without the token could hold every place for good and keep the
//   operator out. A connection closed leaves gRPC's end of its pair open until gRPC sees the end
//   and closes it, on its own threads; while two such wait (each for 1 s at most) no new
//   connection is accepted, so that a burst of connections stays within the reserve.
// - Calls open at once on one connection, `max_streams`, from its first byte: gRPC applies its
//   own bound (SETTINGS_MAX_CONCURRENT_STREAMS) only once the client has acknowledged the
//   server's SETTINGS, and each call open holds memory. The client's next call waits until one
//   ends (http2_stream_bound.h); stderr says so the first time a connection waits (the 1st,
//   10th, 100th... time).
//
//   auto listener = AdminListener::Bind(*SocketAddress::Parse("127.0.0.1", 5001), 16, 65);
//   (*listener)->Start(grpc_server.get());   // a thread accepts and relays until Stop()
//   (*listener)->StopAccepting();            // closes the listening socket; relaying goes on
//   (*listener)->EndIdleConnections();       // as the gRPC server shuts down
//   (*listener)->Stop();                     // after the gRPC server has shut down
//
// The listener does not set SO_REUSEPORT: no other process can bind the admin port while this
// one holds it.
//
// Threads: Bind, Start, StopAccepting, Stop and Duplicate from one thread; the listener accepts
// and relays on a thread of its own; MarkAllowed and ClientOf from any. Ownership: the listener
// owns its socket, its thread, and each connection's socket and relay; gRPC owns its end of each
// pair from the moment it is handed over, and the gRPC server must outlive Stop().
#ifndef BRRR_CONTROL_ADMIN_LISTENER_H_
#define BRRR_CONTROL_ADMIN_LISTENER_H_

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "control/admin/admin_relay.h"
#include "grpcpp/server.h"
#include "runtime/socket_address.h"

namespace brrr::control {

class AdminListener {
 public:
  // Descriptors one admin connection holds: the client's socket and the two ends of the pair.
  static constexpr uint32_t kDescriptorsPerConnection = 3;

  // Binds and listens. Unavailable (naming the address) if it cannot.
  static absl::StatusOr<std::unique_ptr<AdminListener>> Bind(const SocketAddress& address, uint32_t max_connections,
                                                             uint32_t max_streams);
  // Takes over a listening socket another process handed over (server/take_over.h): owned
  // from now on, closed if this fails.
  static absl::StatusOr<std::unique_ptr<AdminListener>> Adopt(int fd, uint32_t max_connections, uint32_t max_streams);
  ~AdminListener();  // stops if still running
  AdminListener(const AdminListener&) = delete;
  AdminListener& operator=(const AdminListener&) = delete;

  // The bound address (with the actual port).
  const SocketAddress& address() const { return address_; }
  // Starts accepting and relaying for `server`, which must have been started.
  void Start(grpc::Server* server);
  // Stops accepting and closes the listening socket; the connections open are still relayed.
  // Idempotent.
  void StopAccepting();
  // As the gRPC server shuts down: each connection ends once gRPC's GOAWAY has gone through and no
  // call is open on it (RelayedConnection::EndOnceIdle), so that a client that holds an idle
  // connection does not hold up the shutdown; calls in progress go on until they end. Any thread.
  void EndIdleConnections();
  // Stops accepting, stops relaying and closes every connection (gRPC sees each end). After the
  // gRPC server has shut down, so that what it says last reaches its clients. Idempotent.
  void Stop();
  // A duplicate of the listening socket (close-on-exec), or -1 once it no longer accepts (errno
  // says why otherwise).
  int Duplicate() const;
  // A call from `grpc_peer` (grpc::ServerContext::peer(), which for a connection handed over
  // by descriptor is "fd:N") was let through: its connection keeps its place. Any thread.
  void MarkAllowed(const std::string& grpc_peer);
  // The client's address ("127.0.0.1:40312") of the connection that gRPC names `grpc_peer`
  // ("fd:N", a call's ServerContext::peer()), or `grpc_peer` itself when no open connection is
  // named so. Any thread.
  std::string ClientOf(const std::string& grpc_peer) const;

 private:
  // gRPC's end of a connection's pair: its descriptor, which gRPC closes in its own time, and
  // the socket's inode (a number is reused, an inode is not).
  struct GrpcEnd {
    int fd;
    ino_t inode;
  };
  struct ClosingGrpcEnd {
    GrpcEnd end;
    RelayedConnection::Clock::time_point since;  // when its connection was dropped
  };
  struct Relayed {
    std::unique_ptr<RelayedConnection> connection;
    GrpcEnd grpc_end;
    // As gRPC names it: "fd:N" (its calls' ServerContext::peer()); empty once gRPC has closed N.
    // Written by the thread with mu_ held.
    std::string grpc_peer;
    bool allowed = false;  // a call through it has been let through; guarded by mu_
  };

  AdminListener(int fd, int wake_fd, SocketAddress address, uint32_t max_connections, uint32_t max_streams)
      : fd_(fd), wake_fd_(wake_fd), address_(address), max_connections_(max_connections), max_streams_(max_streams) {}
  static absl::StatusOr<std::unique_ptr<AdminListener>> Listening(int fd, uint32_t max_connections,
                                                                  uint32_t max_streams);
  // The thread: RelayUntilStopped, then no more accepting, whatever ended it.
  void Run(grpc::Server* server);
  void RelayUntilStopped(grpc::Server* server);
  // Takes one connection that poll(2) announced.
  void AcceptOne(grpc::Server* server);
  // Moves the bytes of the connections poll(2) reported on, or whose time is up; drops those
  // that ended.
  // With `end_idle` (EndIdleConnections was called), each connection is told so.
  void Relay(const std::vector<pollfd>& fds, RelayedConnection::Clock::time_point now, bool end_idle);
  // Closes the oldest connection that has had no call let through, if there is one, and
  // returns its peer. mu_ held.
  std::optional<std::string> EvictOneNotAllowed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops a connection (closing its sockets); remembers gRPC's end until gRPC has closed it.
  // mu_ held.
  void Drop(std::vector<Relayed>::iterator connection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether gRPC has yet to close so many ends of dropped connections that accepting waits
  // (forgets those it has closed).
  bool TooManyGrpcEndsClosing();
  void Wake() const;

  int fd_;       // -1 once StopAccepting has closed it
  int wake_fd_;  // an eventfd that StopAccepting and Stop write
  SocketAddress address_;
  const uint32_t max_connections_;
  const uint32_t max_streams_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable accept_stopped_cv_;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool accept_stopped_ ABSL_GUARDED_BY(mu_) = false;  // the thread no longer polls fd_
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool end_idle_ ABSL_GUARDED_BY(mu_) = false;
  // Oldest first. Added and removed by the thread with mu_ held; the thread reads it without.
  std::vector<Relayed> relayed_;
  uint64_t refused_ = 0;        // the thread's
  uint64_t evicted_ = 0;        // the thread's
  uint64_t accept_errors_ = 0;  // the thread's
  uint64_t held_ = 0;           // the thread's
  // When accepting goes on after it ran out of descriptors; the thread's.
  std::optional<RelayedConnection::Clock::time_point> accept_resumes_;
  // gRPC's ends of dropped connections that gRPC had not closed yet (it does so on its own
  // threads, soon after it sees the end); the thread's. Each is a descriptor of the reserve.
  std::vector<ClosingGrpcEnd> grpc_ends_closing_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_LISTENER_H_
