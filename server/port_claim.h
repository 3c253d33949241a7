// port_claim.h: one port, one server, unless sharing is asked for.
//
// The loops of one brrr-echo each listen on the same port with SO_REUSEPORT, and Linux lets
// any process of the same user join such a group: a second brrr-echo started on the port of a
// running one would quietly take part of its connections. Two checks keep a port to one
// server:
//   - ClaimPort, before the listeners bind: binds a probe socket *without* SO_REUSEPORT, which
//     fails with EADDRINUSE when any socket holds the port (a reuse-port group too), and with
//     port 0 picks a free port. The probe is closed before the listeners bind.
//   - CheckSoleListener, after they listen: reads the kernel's table of TCP sockets
//     (/proc/net/tcp or tcp6) and fails if a listener on the same address and port is not one
//     of ours, which catches two servers that passed their probes at the same moment.
// A deliberate hand-over (brrr-echo --share_port) skips both.
//
//   absl::StatusOr<SocketAddress> addr = ClaimPort(requested);   // port filled in
//   ... bind and listen every loop's socket on *addr with SO_REUSEPORT ...
//   absl::Status sole = CheckSoleListener(*addr, {fd0, fd1});
//
// Threads: any; no state.
#ifndef BRRR_SERVER_PORT_CLAIM_H_
#define BRRR_SERVER_PORT_CLAIM_H_

#include <vector>

#include "absl/status/statusor.h"
#include "runtime/socket_address.h"

namespace brrr::server {

// The address with its port (the free one picked for port 0), or Unavailable when the port
// is in use (EADDRINUSE), or the bind's own error.
absl::StatusOr<SocketAddress> ClaimPort(const SocketAddress& address);

// OK if every TCP listener on `address` is one of `our_fds` (or the kernel's table cannot be
// read, which is reported as OK: the probe already ran); else Unavailable.
absl::Status CheckSoleListener(const SocketAddress& address, const std::vector<int>& our_fds);

}  // namespace brrr::server

#endif  // BRRR_SERVER_PORT_CLAIM_H_
