#include "server/port_claim.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/unique_fd.h"

namespace brrr::server {
namespace {

// The address as /proc/net/tcp{,6} prints a local address: the raw 32-bit words in host
// order, then the port, in hex ("0100007F:1388" for 127.0.0.1:5000).
std::string ProcNetForm(const SocketAddress& address) {
  std::string out;
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address.data());
    out = absl::StrFormat("%08X", in->sin_addr.s_addr);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address.data());
    for (int i = 0; i < 4; ++i) absl::StrAppendFormat(&out, "%08X", in6->sin6_addr.s6_addr32[i]);
  }
  absl::StrAppendFormat(&out, ":%04X", address.port());
  return out;
}

}  // namespace

absl::StatusOr<SocketAddress> ClaimPort(const SocketAddress& address) {
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
  return SocketAddress::LocalOf(fd);
}

absl::Status CheckSoleListener(const SocketAddress& address, const std::vector<int>& our_fds) {
  std::set<std::string> ours;
  for (int fd : our_fds) {
    struct stat st;
    if (::fstat(fd, &st) == 0) ours.insert(std::to_string(st.st_ino));
  }
  std::ifstream table(address.family() == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6");
  if (!table) return absl::OkStatus();
  const std::string local = ProcNetForm(address);
  constexpr absl::string_view kListen = "0A";
  std::string line;
  std::getline(table, line);  // the heading
  while (std::getline(table, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    std::istringstream fields(line);
    std::string sl, local_address, remote, state, queues, timer, retransmits, uid, timeout, inode;
    if (!(fields >> sl >> local_address >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
          inode)) {
      continue;
    }
    if (state != kListen || local_address != local || ours.count(inode) != 0) continue;
    return absl::UnavailableError(absl::StrCat(
        "Address already in use (a listener of another process, user ", uid,
        ", took the port at the same moment); pick another --port, or --share_port to join it on purpose"));
  }
  return absl::OkStatus();
}

}  // namespace brrr::server
