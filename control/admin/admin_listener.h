// admin_listener.h: the admin plane's TCP listener. It accepts connections itself and hands
// each one to the gRPC server (grpc::AddInsecureChannelFromFd), so that it can cap how many
// are open: gRPC 1.51 has no limit on incoming connections (GRPC_ARG_MAX_ALLOWED_INCOMING_
// CONNECTIONS came in a later release), and each connection costs a descriptor that the echo
// side leaves to the admin plane (server/descriptor_budget.h). Past `max_connections` open at
// once, a new connection takes the place of the oldest one through which no call has been
// let through yet (MarkAllowed: the token checked, or none needed), which is closed; if every
// open one has had a call let through, the new one is closed as soon as it is accepted. Either
// way stderr says so (the 1st, 10th, 100th... time). gRPC closes idle connections itself
// (GRPC_ARG_MAX_CONNECTION_IDLE_MS, set by AdminServer), which frees their places; but a
// connection with a call in progress is not idle, and a call whose request never comes (a
// client that sends a call's headers and nothing more) never reaches the token check: without
// the rule above, a client without the token could hold every place for good and keep the
// operator out.
//
//   auto listener = AdminListener::Bind(*SocketAddress::Parse("127.0.0.1", 5001), 16);
//   (*listener)->Start(grpc_server.get());   // a thread accepts until Stop()
//   (*listener)->Stop();                     // before the gRPC server shuts down
//
// Counting: gRPC closes a connection's descriptor when it is done with it and tells no one,
// so the listener remembers each descriptor it handed over with its socket's inode, and before
// it takes a new connection forgets those whose descriptor is closed or now names another
// socket (a number is reused, an inode is not). That is at most `max_connections` fstat(2)
// calls per accepted connection.
//
// The listener does not set SO_REUSEPORT: no other process can bind the admin port while this
// one holds it.
//
// Threads: Bind, Start and Stop from one thread; the listener accepts on a thread of its own.
// Ownership: the listener owns its socket and thread; the gRPC server owns each connection
// from the moment it is handed over, and must outlive Stop().
#ifndef BRRR_CONTROL_ADMIN_LISTENER_H_
#define BRRR_CONTROL_ADMIN_LISTENER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "runtime/socket_address.h"

namespace brrr::control {

class AdminListener {
 public:
  // Binds and listens. Unavailable (naming the address) if it cannot.
  static absl::StatusOr<std::unique_ptr<AdminListener>> Bind(const SocketAddress& address, uint32_t max_connections);
  // Takes over a listening socket another process handed over (server/take_over.h): owned
  // from now on, closed if this fails.
  static absl::StatusOr<std::unique_ptr<AdminListener>> Adopt(int fd, uint32_t max_connections);
  ~AdminListener();  // stops if still running
  AdminListener(const AdminListener&) = delete;
  AdminListener& operator=(const AdminListener&) = delete;

  // The bound address (with the actual port).
  const SocketAddress& address() const { return address_; }
  // Starts accepting for `server`, which must have been started.
  void Start(grpc::Server* server);
  // Stops accepting and closes the listening socket; connections handed over stay with gRPC.
  // Idempotent.
  void Stop();
  // A duplicate of the listening socket (close-on-exec), or -1 once stopped (errno says why
  // otherwise). From the thread that calls Stop, or one it is sequenced with.
  int Duplicate() const;
  // A call from `grpc_peer` (grpc::ServerContext::peer(), which for a connection handed over
  // by descriptor is "fd:N") was let through: its connection keeps its place. Any thread.
  void MarkAllowed(const std::string& grpc_peer);

 private:
  struct Handed {
    int fd;
    ino_t inode;
    std::string grpc_peer;  // as gRPC names it: "fd:N" (its calls' ServerContext::peer())
    std::string peer;       // its address, for the log
    bool allowed = false;   // a call through it has been let through
  };

  AdminListener(int fd, int wake_fd, SocketAddress address, uint32_t max_connections)
      : fd_(fd), wake_fd_(wake_fd), address_(address), max_connections_(max_connections) {}
  void Run(grpc::Server* server);
  // Takes one connection that poll(2) announced; false to stop.
  void AcceptOne(grpc::Server* server);
  void ForgetClosed();  // handed_mu_ held
  // Closes the oldest handed connection that has had no call let through, if there is one, and
  // returns its peer. handed_mu_ held.
  std::optional<std::string> EvictOneNotAllowed();
  // Waits up to `ms` for Stop(); true if it came.
  bool StopRequested(int ms) const;

  int fd_;
  int wake_fd_;  // an eventfd that Stop() writes
  SocketAddress address_;
  const uint32_t max_connections_;
  std::thread thread_;
  std::mutex handed_mu_;
  std::vector<Handed> handed_;  // guarded by handed_mu_; oldest first
  uint64_t refused_ = 0;        // the accepting thread's
  uint64_t evicted_ = 0;        // the accepting thread's
  uint64_t accept_errors_ = 0;  // the accepting thread's
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_LISTENER_H_
