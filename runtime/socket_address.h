// socket_address.h: an IPv4 or IPv6 address and port.
//
//   auto a = SocketAddress::Parse("127.0.0.1", 5000);     // or "::1", "localhost", "0.0.0.0"
//   auto b = SocketAddress::ParseHostPort("[::1]:5000");
//   a->ToString();                                         // "127.0.0.1:5000", "[::1]:5000"
//
// Hosts are numeric addresses or "localhost" (no DNS: resolving would block the loop).
// Threads: a value type.
#ifndef BRRR_RUNTIME_SOCKET_ADDRESS_H_
#define BRRR_RUNTIME_SOCKET_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace brrr {

class SocketAddress {
 public:
  SocketAddress() = default;

  static absl::StatusOr<SocketAddress> Parse(absl::string_view host, uint16_t port);
  // "host:port", "[v6]:port".
  static absl::StatusOr<SocketAddress> ParseHostPort(absl::string_view host_port);
  static SocketAddress FromSockaddr(const sockaddr* addr, socklen_t size);
  static SocketAddress Loopback(uint16_t port, int family = AF_INET);

  // The local / peer address of a connected or bound socket.
  static absl::StatusOr<SocketAddress> LocalOf(int fd);
  static absl::StatusOr<SocketAddress> PeerOf(int fd);

  bool valid() const { return size_ != 0; }
  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  bool is_loopback() const;
  std::string host() const;      // "127.0.0.1", "::1"
  std::string ToString() const;  // "127.0.0.1:5000", "[::1]:5000", "(none)"

  const sockaddr* data() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const { return size_; }

 private:
  sockaddr_storage storage_{};
  socklen_t size_ = 0;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_SOCKET_ADDRESS_H_
