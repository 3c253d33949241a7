// ClaimPort and CheckSoleListener on real sockets: the probe refuses a port any listener holds,
// and port 0; the after-the-fact check tells our listeners from others.
#include "server/port_claim.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"

namespace brrr::server {
namespace {

// A listener with SO_REUSEPORT on `address` (port 0: a free one).
int ReusePortListener(const SocketAddress& address) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  EXPECT_EQ(::bind(fd, address.data(), address.size()), 0);
  EXPECT_EQ(::listen(fd, 16), 0);
  return fd;
}

// Port 0 is refused: a port the probe picked would be free again once it closed (the server
// lets its first listener's bind pick the port instead).
TEST(PortClaimTest, PortZeroIsRefused) {
  absl::Status claimed = ClaimPort(SocketAddress::Loopback(0));
  EXPECT_EQ(claimed.code(), absl::StatusCode::kInvalidArgument) << claimed;
  EXPECT_NE(claimed.message().find("port 0"), absl::string_view::npos) << claimed;
}

// A port that only a bound socket holds, one that does not listen, with SO_REUSEADDR as the
// probe has it (it keeps the port from being anyone else's meanwhile): the probe passes, and
// our listeners then take the port.
TEST(PortClaimTest, AFreePortIsClaimedAndListenersThenTakeIt) {
  int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(holder, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  SocketAddress any_port = SocketAddress::Loopback(0);
  ASSERT_EQ(::bind(holder, any_port.data(), any_port.size()), 0);
  absl::StatusOr<SocketAddress> port = SocketAddress::LocalOf(holder);
  ASSERT_TRUE(port.ok()) << port.status();
  absl::Status claimed = ClaimPort(*port);
  ASSERT_TRUE(claimed.ok()) << claimed;
  int a = ReusePortListener(*port);
  int b = ReusePortListener(*port);
  EXPECT_TRUE(CheckSoleListener(*port, {a, b}).ok());
  ::close(a);
  ::close(b);
  ::close(holder);
}

TEST(PortClaimTest, APortWithAReusePortGroupIsInUse) {
  int held = ReusePortListener(SocketAddress::Loopback(0));
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(held);
  ASSERT_TRUE(local.ok());
  absl::Status claimed = ClaimPort(*local);
  EXPECT_EQ(claimed.code(), absl::StatusCode::kUnavailable) << claimed;
  EXPECT_NE(claimed.message().find("Address already in use"), absl::string_view::npos);
  ::close(held);
}

TEST(PortClaimTest, AListenerThatIsNotOursIsFoundAfterTheFact) {
  // Two servers whose probes both passed, then both joined the group: each sees the other.
  int ours = ReusePortListener(SocketAddress::Loopback(0));
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(ours);
  ASSERT_TRUE(local.ok());
  int theirs = ReusePortListener(*local);
  absl::Status sole = CheckSoleListener(*local, {ours});
  EXPECT_EQ(sole.code(), absl::StatusCode::kUnavailable) << sole;
  EXPECT_TRUE(CheckSoleListener(*local, {ours, theirs}).ok());
  ::close(theirs);
  EXPECT_TRUE(CheckSoleListener(*local, {ours}).ok());
  ::close(ours);
}

// A server on the wildcard address loses the connections to 127.0.0.1 to a listener there (the
// kernel prefers the exact address): that one counts; one on the wildcard of a server on
// 127.0.0.1 takes none of its connections, and does not.
TEST(PortClaimTest, AListenerOnOneIpCountsForAServerOnTheWildcard) {
  absl::StatusOr<SocketAddress> any = SocketAddress::Parse("0.0.0.0", 0);
  ASSERT_TRUE(any.ok());
  int ours = ReusePortListener(*any);
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(ours);
  ASSERT_TRUE(local.ok());
  int theirs = ReusePortListener(SocketAddress::Loopback(local->port()));
  absl::StatusOr<std::vector<ForeignListener>> foreign = ForeignListeners(*local, InodesOf({ours}));
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  ASSERT_EQ(foreign->size(), 1u);
  EXPECT_EQ(foreign->front().inode, *InodesOf({theirs}).begin());
  EXPECT_EQ(foreign->front().uid, ::getuid());
  absl::StatusOr<std::vector<ForeignListener>> seen_from_loopback =
      ForeignListeners(SocketAddress::Loopback(local->port()), InodesOf({theirs}));
  ASSERT_TRUE(seen_from_loopback.ok());
  EXPECT_TRUE(seen_from_loopback->empty());
  ::close(theirs);
  ::close(ours);
}

TEST(PortClaimTest, IPv6ListenersAreCheckedToo) {
  int ours = ReusePortListener(SocketAddress::Loopback(0, AF_INET6));
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(ours);
  ASSERT_TRUE(local.ok()) << local.status();
  int theirs = ReusePortListener(*local);
  EXPECT_EQ(CheckSoleListener(*local, {ours}).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ClaimPort(*local).code(), absl::StatusCode::kUnavailable);
  ::close(theirs);
  ::close(ours);
}

}  // namespace
}  // namespace brrr::server
