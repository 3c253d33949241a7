// connection_closer.h: the admin plane's CloseConnection over the loops that may hold a
// descriptor, asked all at once, so that one blocked loop holds up the answer only if the
// descriptor may be its.
//
//   ConnectionCloser closer(target, fd, "127.0.0.1:40000");  // or no peer: whichever has fd
//   absl::StatusOr<ClosedConnection> closed = closer.Close({0, 1}, wait);
//
// One call closes at most one connection, and answers with the close it made. The close on one
// loop frees the descriptor (once that loop's call has returned), and another loop can give it
// out again to a new connection before that loop runs its part of the same call: that part then
// closes nothing (without the peer named it would have closed the newer connection too), and
// what it says of the newer connection (another peer: FailedPrecondition) does not hide the
// close that was made.
//
// Threads: Close from any thread but the loops' own; CloseOn on loop `loop`'s thread.
#ifndef BRRR_CONTROL_ADMIN_CONNECTION_CLOSER_H_
#define BRRR_CONTROL_ADMIN_CONNECTION_CLOSER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/admin/administered.h"
#include "runtime/clock.h"
#include "runtime/socket_table.h"

namespace brrr::control {

// A connection CloseConnection closed, and its loop.
struct ClosedConnection {
  uint32_t loop = 0;
  SocketInfo socket;
};

class ConnectionCloser {
 public:
  // Closes the connection with descriptor `fd`; with `peer` not empty, only if its peer
  // address is `peer`. `target` outlives every call made through this closer.
  ConnectionCloser(Administered& target, int fd, std::string peer);

  // Asks loops `loops` (ids of target.loops()) at once and waits up to `wait` for them: the
  // connection closed and its loop; else the refusal of the loop that holds the descriptor
  // (FailedPrecondition: a listener, or a connection of another peer); else UNAVAILABLE for a
  // loop that did not answer in time (detail::LoopDidNotAnswer), its part never run; else
  // NotFound.
  absl::StatusOr<ClosedConnection> Close(const std::vector<uint32_t>& loops, Duration wait) const;

  // One loop's part of the call: Administered::CloseConnection on `loop`, unless another
  // loop's part has closed a connection already (NotFound then: what holds the descriptor here
  // is newer than the call).
  absl::StatusOr<SocketInfo> CloseOn(uint32_t loop) const;

 private:
  struct Call {
    Administered& target;
    const int fd;
    const std::string peer;
    std::atomic<bool> closed_one{false};  // a loop's part closed a connection
  };

  // Shared by the copies that go into the loops' queued parts, which may outlive Close's wait
  // unrun.
  std::shared_ptr<Call> call_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_CONNECTION_CLOSER_H_
