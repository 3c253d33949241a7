// admin_probes.h: small probes the admin-plane tests share: the time since a moment, a client
// socket's address as the server sees it, that peer in a ListSockets answer, the round trip
// of one small echo, and how a connection ended for its client (ReadToTheEnd).
//
//   testing::BlockingClient client(port_);
//   ASSERT_GE(testing::EchoRoundTripMs(client), 0);  // echoed
//   const admin::SocketInfo* s = testing::FindPeer(list, testing::LocalAddress(client.fd()));
//
// Threading: plain functions of their arguments. Ownership: FindPeer points into `list`.
#ifndef BRRR_TESTS_CONTROL_ADMIN_PROBES_H_
#define BRRR_TESTS_CONTROL_ADMIN_PROBES_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "tests/testing/net.h"

namespace brrr::testing {

// Everything the peer sends on `fd` until its stream ends, and how it ended: error 0 at an end
// of stream, else the errno (ECONNRESET for a reset; EAGAIN if the socket's receive timeout ran
// out, a BlockingClient's 30 s by default).
struct Ending {
  std::string bytes;
  int error = 0;
};

inline Ending ReadToTheEnd(int fd) {
  Ending e;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      e.bytes.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return e;
    } else if (errno != EINTR) {
      e.error = errno;
      return e;
    }
  }
}

inline double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// "127.0.0.1:PORT" of a client socket: the peer the server sees.
inline std::string LocalAddress(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

// The socket whose peer is `peer` in `list`, or nullptr.
inline const brrr::admin::v1::SocketInfo* FindPeer(const brrr::admin::v1::ListSocketsResponse& list,
                                                   const std::string& peer) {
  for (const brrr::admin::v1::SocketInfo& s : list.sockets()) {
    if (s.peer() == peer) return &s;
  }
  return nullptr;
}

// Echo one small message and return the round trip in ms (-1 if the echo did not come back).
inline double EchoRoundTripMs(BlockingClient& client) {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  if (!client.send_all("ping")) return -1;
  if (client.recv_exact(4) != "ping") return -1;
  return MillisSince(start);
}

}  // namespace brrr::testing

#endif  // BRRR_TESTS_CONTROL_ADMIN_PROBES_H_
