#include "runtime/socket_address.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace brrr {

absl::StatusOr<SocketAddress> SocketAddress::Parse(absl::string_view host, uint16_t port) {
  std::string h(host);
  if (h == "localhost") h = "127.0.0.1";
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.size_ = sizeof(sockaddr_in);
    return a;
  }
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.size_ = sizeof(sockaddr_in6);
    return a;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", host, "\" is not an IPv4 or IPv6 address (use a numeric address such as 127.0.0.1 or ::1, "
      "or localhost)"));
}

absl::StatusOr<SocketAddress> SocketAddress::ParseHostPort(absl::string_view host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", host_port, "\" is not host:port (for example 127.0.0.1:5000 or [::1]:5000)"));
  }
  absl::string_view host = host_port.substr(0, colon);
  uint32_t port = 0;
  if (!absl::SimpleAtoi(host_port.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", host_port, "\": the port must be a number from 0 to 65535"));
  }
  if (host.find(':') != absl::string_view::npos && (host.empty() || host.front() != '[')) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", host_port, "\": put an IPv6 address in brackets, as in [::1]:5000"));
  }
  return Parse(host, static_cast<uint16_t>(port));
}

SocketAddress SocketAddress::FromSockaddr(const sockaddr* addr, socklen_t size) {
  SocketAddress a;
  if (size > sizeof a.storage_) size = sizeof a.storage_;
  std::memcpy(&a.storage_, addr, size);
  a.size_ = size;
  return a;
}

SocketAddress SocketAddress::Loopback(uint16_t port, int family) {
  return *Parse(family == AF_INET6 ? "::1" : "127.0.0.1", port);
}

absl::StatusOr<SocketAddress> SocketAddress::LocalOf(int fd) {
  SocketAddress a;
  a.size_ = sizeof a.storage_;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage_), &a.size_) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getsockname(fd ", fd, ")"));
  }
  return a;
}

absl::StatusOr<SocketAddress> SocketAddress::PeerOf(int fd) {
  SocketAddress a;
  a.size_ = sizeof a.storage_;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a.storage_), &a.size_) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getpeername(fd ", fd, ")"));
  }
  return a;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

bool SocketAddress::is_loopback() const {
  if (family() == AF_INET) {
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr) >> 24) == 127;
  }
  if (family() == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&a) ||
           (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127);
  }
  return false;
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::string SocketAddress::ToString() const {
  if (!valid()) return "(none)";
  if (family() == AF_INET6) return absl::StrCat("[", host(), "]:", port());
  return absl::StrCat(host(), ":", port());
}

}  // namespace brrr
