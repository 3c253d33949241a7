#include "control/admin/peer_address.h"

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "runtime/socket_address.h"

namespace brrr::control {

absl::Status CheckPeerAddress(absl::string_view peer) {
  const std::string quoted = absl::StrCat("\"", absl::CHexEscape(peer), "\"");
  absl::StatusOr<SocketAddress> address = SocketAddress::ParseHostPort(peer);
  if (!address.ok() || address->port() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(quoted,
                     " is not a peer address: expected HOST:PORT as ListSockets (brrrctl sockets) gives it, a "
                     "numeric host (IPv6 in brackets) and a port from 1 to 65535, e.g. 127.0.0.1:41234 or "
                     "[::1]:41234"));
  }
  if (std::string written = address->ToString(); written != peer) {
    return absl::InvalidArgumentError(absl::StrCat(quoted, " is not written as ListSockets writes a peer address (",
                                                   "it is compared as text): give ", written));
  }
  return absl::OkStatus();
}

}  // namespace brrr::control
