// peer_address.h: the form of a peer address that CloseConnection compares with a connection's,
// checked the same way by the server (the request's `peer`) and by brrrctl (close --peer), so
// that brrrctl refuses before any call what the server would refuse.
//
//   CheckPeerAddress("127.0.0.1:41234");  // OK
//   CheckPeerAddress("[::1]:41234");      // OK
//   CheckPeerAddress("garbage");          // InvalidArgument: expected HOST:PORT as ListSockets gives it...
//   CheckPeerAddress("localhost:41234");  // InvalidArgument: ...give 127.0.0.1:41234
//
// A peer address is written as ListSockets writes one (SocketAddress::ToString): a numeric IPv4
// host, or an IPv6 one in brackets, then a port from 1 to 65535. A peer is compared as text, so
// another spelling of the same address (localhost, [0::1], a leading zero) would never match:
// it is refused, naming the spelling that would.
//
// Threads: a pure function.
#ifndef BRRR_CONTROL_ADMIN_PEER_ADDRESS_H_
#define BRRR_CONTROL_ADMIN_PEER_ADDRESS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace brrr::control {

// OK, or InvalidArgument saying why `peer` is not a peer address as ListSockets gives one; the
// message quotes `peer` with its unprintable bytes escaped.
absl::Status CheckPeerAddress(absl::string_view peer);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_PEER_ADDRESS_H_
