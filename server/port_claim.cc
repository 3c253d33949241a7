#include "server/port_claim.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/unique_fd.h"

namespace brrr::server {
namespace {

// Whether a listener on the sock_diag address `words` (network order: 1 word for IPv4, 4 for
// IPv6) takes connections meant for `address`: one on the same IP, and, when `address` is the
// wildcard, one on any IP of its family (the kernel prefers a listener on the exact address:
// it would take every connection to that IP).
bool TakesConnectionsFor(const uint32_t words[4], const SocketAddress& address) {
  if (address.family() == AF_INET) {
    const in_addr_t ip = reinterpret_cast<const sockaddr_in*>(address.data())->sin_addr.s_addr;
    return ip == htonl(INADDR_ANY) || words[0] == ip;
  }
  const in6_addr& ip = reinterpret_cast<const sockaddr_in6*>(address.data())->sin6_addr;
  return IN6_IS_ADDR_UNSPECIFIED(&ip) || std::memcmp(words, ip.s6_addr, 16) == 0;
}

}  // namespace

std::set<uint64_t> InodesOf(const std::vector<int>& fds) {
  std::set<uint64_t> inodes;
  for (int fd : fds) {
    struct stat st;
    if (::fstat(fd, &st) == 0) inodes.insert(st.st_ino);
  }
  return inodes;
}

absl::StatusOr<UniqueFd> OpenSockDiag() {
  UniqueFd diag(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!diag.valid()) return absl::ErrnoToStatus(errno, "socket(AF_NETLINK, NETLINK_SOCK_DIAG)");
  return diag;
}

absl::StatusOr<std::vector<ForeignListener>> ForeignListeners(const SocketAddress& address,
                                                              const std::set<uint64_t>& ours) {
  absl::StatusOr<UniqueFd> diag = OpenSockDiag();
  if (!diag.ok()) return diag.status();
  return ForeignListeners(address, ours, diag->get());
}

absl::StatusOr<std::vector<ForeignListener>> ForeignListeners(const SocketAddress& address,
                                                              const std::set<uint64_t>& ours, int diag) {
  // A dump of the TCP sockets in LISTEN on the port: the kernel walks its listening table only,
  // and skips other ports (inet_diag compares idiag_sport there).
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } ask{};
  ask.header.nlmsg_len = sizeof(ask);
  ask.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  ask.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  ask.request.sdiag_family = static_cast<uint8_t>(address.family());
  ask.request.sdiag_protocol = IPPROTO_TCP;
  ask.request.idiag_states = 1u << TCP_LISTEN;
  ask.request.id.idiag_sport = htons(address.port());
  if (::send(diag, &ask, sizeof(ask), 0) != static_cast<ssize_t>(sizeof(ask))) {
    return absl::ErrnoToStatus(errno, "asking sock_diag for the port's listeners");
  }
  std::vector<ForeignListener> foreign;
  alignas(nlmsghdr) char buffer[16384];
  for (;;) {
    ssize_t n = ::recv(diag, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::ErrnoToStatus(n < 0 ? errno : EPROTO, "reading sock_diag's answer");
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) return foreign;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return absl::ErrnoToStatus(-error->error, "sock_diag");
      }
      const auto* socket = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      if (socket->id.idiag_sport != htons(address.port()) || !TakesConnectionsFor(socket->id.idiag_src, address))
        continue;
      if (ours.count(socket->idiag_inode) != 0) continue;
      foreign.push_back({.inode = socket->idiag_inode, .uid = socket->idiag_uid});
    }
  }
}

absl::Status ClaimPort(const SocketAddress& address) {
  if (address.port() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ClaimPort(", address.ToString(),
        "): port 0 names no port to claim (a probe's pick would be free again once it closed); let the first "
        "listener's bind pick the port"));
  }
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  UniqueFd closer(fd);
  // SO_REUSEADDR as the listeners have it (a port in TIME_WAIT is free), SO_REUSEPORT not:
  // any listener on the port, a reuse-port group included, then makes the bind fail.
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (address.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, address.data(), address.size()) != 0) {
    int e = errno;
    if (e == EADDRINUSE) {
      return absl::UnavailableError(
          "Address already in use (another socket holds the port: another server?); pick another --port, or "
          "--share_port to join its listeners on purpose");
    }
    return absl::ErrnoToStatus(e, absl::StrCat("bind ", address.ToString()));
  }
  return absl::OkStatus();
}

absl::Status WaitWhilePortInUse(const SocketAddress& address, Duration wait) {
  if (address.port() == 0) return absl::OkStatus();
  const int64_t deadline = MonotonicNanos() + wait.count();
  for (;;) {
    absl::Status probe = ClaimPort(address);
    if (probe.ok() || !absl::IsUnavailable(probe) || MonotonicNanos() >= deadline) return probe;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

absl::Status CheckSoleListener(const SocketAddress& address, const std::vector<int>& our_fds) {
  absl::StatusOr<std::vector<ForeignListener>> foreign = ForeignListeners(address, InodesOf(our_fds));
  if (!foreign.ok() || foreign->empty()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("Address already in use (a listener of another process, user ", foreign->front().uid,
                   ", took the port at the same moment); pick another --port, or --share_port to join it on purpose"));
}

}  // namespace brrr::server
