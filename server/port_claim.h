// port_claim.h: one port, one server, unless sharing is asked for.
//
// The loops of one brrr-echo each listen on the same port with SO_REUSEPORT, and Linux lets
// any process of the same user join such a group: a second brrr-echo started on the port of a
// running one would quietly take part of its connections. Two checks keep a port to one
// server:
//   - ClaimPort, before the listeners bind: binds a probe socket *without* SO_REUSEPORT, which
//     fails with EADDRINUSE when any socket holds the port (a reuse-port group too). The probe
//     is closed before the listeners bind. Not for port 0, which it refuses: a port a probe
//     picked is free again after the close, and a connect() may take it as its local port
//     first; the first listener's own bind picks the port instead (EchoServer does so).
//   - CheckSoleListener, after they listen: asks the kernel (sock_diag) for the TCP listeners
//     on the same address and port and fails if one is not ours, which catches two servers
//     that passed their probes at the same moment.
// A deliberate hand-over (brrr-echo --share_port) skips both. Nothing stops a process of the
// same user from joining the group later; ForeignListeners finds it (server/port_watch.h asks
// every second).
//
//   absl::Status free = ClaimPort(requested);   // a port other than 0
//   ... bind and listen every loop's socket on `requested` with SO_REUSEPORT ...
//   absl::Status sole = CheckSoleListener(requested, {fd0, fd1});
//
// Threads: any; no state.
#ifndef BRRR_SERVER_PORT_CLAIM_H_
#define BRRR_SERVER_PORT_CLAIM_H_

#include <cstdint>
#include <set>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/clock.h"
#include "runtime/socket_address.h"
#include "runtime/unique_fd.h"

namespace brrr::server {

// OK when `address`'s port is free, Unavailable when it is in use (EADDRINUSE), or the bind's
// own error. InvalidArgument for port 0: there is nothing to claim (see above).
absl::Status ClaimPort(const SocketAddress& address);

// Waits while `address`'s port is in use (ClaimPort's probe, every 10 ms), for up to `wait`: for a
// start that follows a process that has just died, whose sockets the kernel may hold a moment
// longer (io_uring releases a ring's sockets after its process has exited). OK once the port is
// free (at once for port 0); else the last probe's error (Unavailable if still in use).
absl::Status WaitWhilePortInUse(const SocketAddress& address, Duration wait);

// A TCP listener on our address and port that is not one of our sockets.
struct ForeignListener {
  uint64_t inode = 0;  // its socket's inode (ss -e, /proc/PID/fd show it)
  uint32_t uid = 0;    // its owner
};

// The inodes of the sockets `fds` (the ones that fstat answers for).
std::set<uint64_t> InodesOf(const std::vector<int>& fds);

// The TCP listeners on `address`'s port that take connections meant for it (on its IP, or on
// any IP of its family when it is the wildcard) whose inode is not in `ours`, from
// the kernel's socket table through sock_diag: a dump of the listeners on that port only, cheap
// enough to ask every second. An error if sock_diag cannot be asked.
absl::StatusOr<std::vector<ForeignListener>> ForeignListeners(const SocketAddress& address,
                                                              const std::set<uint64_t>& ours);
// The same through `diag`, a socket from OpenSockDiag kept for repeated looks. After an error
// the socket may hold the rest of a dump: open another.
absl::StatusOr<std::vector<ForeignListener>> ForeignListeners(const SocketAddress& address,
                                                              const std::set<uint64_t>& ours, int diag);

// A sock_diag socket (AF_NETLINK, NETLINK_SOCK_DIAG), or why there is none.
absl::StatusOr<UniqueFd> OpenSockDiag();

// OK if every TCP listener on `address` is one of `our_fds` (or the kernel cannot be asked,
// which is reported as OK: the probe already ran); else Unavailable.
absl::Status CheckSoleListener(const SocketAddress& address, const std::vector<int>& our_fds);

}  // namespace brrr::server

#endif  // BRRR_SERVER_PORT_CLAIM_H_
