// listener_handover.h: the wire protocol by which a running brrr-echo hands its listening
// sockets to a new one on the same host (an upgrade that refuses no connection), and the
// checks the new one makes on what it receives.
//
// Why pass descriptors (SCM_RIGHTS over a UNIX socket, as HAProxy's "expose-fd listeners" /
// -x and Envoy's hot restart do) and not net.ipv4.tcp_migrate_req: the listening socket, with
// its accept queue, simply changes hands, so a connection the kernel has queued for the old
// process is accepted by the new one and no SYN meets a closed port. tcp_migrate_req would
// need SO_REUSEPORT sharing between the two processes (which issue 10 promised happens only
// on request) and a sysctl that needs root and applies to the whole host.
//
// The exchange, on a UNIX stream socket (the new process, N, connects to the old one, O):
//   N -> O  HELLO     (the protocol version N speaks)
//   O -> N  OFFER     (O's pid, its echo address, its loop count, and which listeners follow)
//           or REFUSE (why: another version, already handing over, draining...)
//   O -> N  LISTENER  one per listener, its descriptor attached (SCM_RIGHTS), in the order
//                     the offer lists them: every echo listener (one per loop, SO_REUSEPORT
//                     siblings), then the metrics and admin listeners if O serves them
//   N       checks every descriptor (CheckListener), starts accepting on them
//   N -> O  TAKEN     or DECLINED (why)
//   O -> N  RELEASED  O has committed: it stops accepting and drains, as SIGTERM does
// Until RELEASED both may accept on the same sockets, which is harmless (each connection is
// accepted once); there is no moment when no process accepts. If N gets no RELEASED, O is
// still serving, and N stops (it drains what it accepted) and exits 3.
//
// A frame is a 12-byte header (magic "BRHO", version u16, type u16, payload length u32, all
// big-endian) and a payload of at most kMaxHandoverPayload bytes. The OFFER payload is text,
// one "key=value" per line: pid; loops, the number of echo listeners that follow (one per
// loop of the old process, or more if it had itself taken over from one with more loops);
// echo, their address; and metrics / admin, those listeners' addresses, when served. A LISTENER's
// payload is its role ("echo", "metrics", "admin"); a REFUSE's or DECLINED's is the reason.
//
//   // old side (server/handover_listener.h runs this on its thread)
//   absl::StatusOr<HandoverFrame> hello = ReadFrame(conn, deadline);
//   SendOffer(conn, set);                       // frames and descriptors
//   // new side (server/take_over.h)
//   SendFrame(conn, HandoverFrameType::kHello, "");
//   absl::StatusOr<ListenerSet> set = ReceiveOffer(conn, deadline);   // checked
//
// Threads: functions with no state; any thread. Descriptors are blocking UNIX sockets; every
// read waits at most until the deadline given.
#ifndef BRRR_SERVER_LISTENER_HANDOVER_H_
#define BRRR_SERVER_LISTENER_HANDOVER_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/clock.h"
#include "runtime/socket_address.h"
#include "runtime/unique_fd.h"

namespace brrr::server {

// Version 1: the exchange above. Both sides refuse any other.
inline constexpr uint16_t kHandoverProtocolVersion = 1;
inline constexpr size_t kMaxHandoverPayload = 4096;

enum class HandoverFrameType : uint16_t {
  kHello = 1,
  kOffer = 2,
  kRefuse = 3,
  kListener = 4,
  kTaken = 5,
  kDeclined = 6,
  kReleased = 7,
};
const char* HandoverFrameName(HandoverFrameType type);

struct HandoverFrame {
  uint16_t version = 0;
  HandoverFrameType type = HandoverFrameType::kHello;
  std::string payload;
  UniqueFd descriptor;  // a LISTENER's socket (owned), else invalid
};

// One listening socket and the address it must be listening on.
struct HandedListener {
  SocketAddress address;
  UniqueFd fd;
};

// Everything one process hands over.
struct ListenerSet {
  pid_t pid = 0;                      // the process handing them over
  SocketAddress echo;                 // the echo port (every echo listener's address)
  std::vector<UniqueFd> echo_fds;     // one per loop of the old process
  std::optional<HandedListener> metrics;
  std::optional<HandedListener> admin;
};

// Writes one frame, with `descriptor` attached if >= 0. A peer that went away (EPIPE), or a
// write that does not complete within the socket's send timeout, is Unavailable.
absl::Status SendFrame(int conn, HandoverFrameType type, const std::string& payload, int descriptor = -1,
                       uint16_t version = kHandoverProtocolVersion);
// Reads one frame (and a descriptor sent with it). Unavailable if the peer closes or nothing
// comes by `deadline` (monotonic ns); InvalidArgument for what is not a frame of this
// protocol (bad magic, oversized payload, more than one descriptor). The version is not
// checked here: the caller says what another version means.
absl::StatusOr<HandoverFrame> ReadFrame(int conn, int64_t deadline_ns);

// Old side: OFFER, then one LISTENER per descriptor of `set`.
absl::Status SendOffer(int conn, const ListenerSet& set);
// New side: reads OFFER (or REFUSE: FailedPrecondition with the old process's reason) and the
// listeners it announces, and checks each with CheckListener. FailedPrecondition for another
// protocol version; InvalidArgument when a listener is not what the offer said.
absl::StatusOr<ListenerSet> ReceiveOffer(int conn, int64_t deadline_ns);

// OK if `fd` is a listening TCP socket (SO_ACCEPTCONN, SO_TYPE, SO_PROTOCOL) of `address`'s
// family (SO_DOMAIN) bound to `address` (getsockname); else InvalidArgument naming what
// differs (`role` says which listener: "echo listener 2").
absl::Status CheckListener(int fd, const SocketAddress& address, const std::string& role);

}  // namespace brrr::server

#endif  // BRRR_SERVER_LISTENER_HANDOVER_H_
