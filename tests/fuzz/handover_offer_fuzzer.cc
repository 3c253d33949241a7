// ReceiveOffer (server/listener_handover.h), the new process's reading of what the running one
// sends it at a hand-over (ReadFrame, the OFFER's fields, each LISTENER and its descriptor), for
// any frames with any descriptors attached, over a real UNIX socket pair. Checked: a set it
// accepts holds only listening TCP sockets bound to the addresses the offer names, each a
// descriptor of its own (never one of the sender's); every refusal is InvalidArgument,
// FailedPrecondition or Unavailable with a message; and no descriptor stays open once the
// result is gone, whether the exchange was accepted or refused part-way (a descriptor that
// arrived with a refused frame is closed too).
//
// The sender's side is this fuzzer: it writes each piece of the input as one sendmsg, with the
// descriptors the piece's first byte names, then closes its side (so the reader meets the end
// of the stream, never the deadline). In a piece's bytes "PORT1" stands for the port of the
// first listener below and "PORT2" for the second's (ports differ from run to run; each has
// five digits, so a frame's length stays what the input says): "echo=127.0.0.1:PORT1".
//
// Input: repeated [attach: 1 byte, % 6][length: 2 bytes LE][bytes], at most 64 pieces. attach:
//   0 none, 1 the listener on PORT1, 2 the listener on PORT2, 3 /dev/null, 4 a TCP socket that
//   is not listening, 5 both listeners in one message
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_replace.h"
#include "runtime/clock.h"
#include "runtime/socket_address.h"
#include "server/listener_handover.h"
#include "tests/fuzz/fuzz_input.h"

namespace brrr::fuzz {
namespace {

constexpr size_t kMaxPieces = 64;

void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "handover_offer_fuzzer: %s\n", what.c_str());
  std::abort();
}

// A TCP socket on 127.0.0.1 with a port of its own, of five digits; listening if asked.
int TcpSocket(bool listening) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    Require(fd >= 0, "socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    Require(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "bind");
    Require(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0, "getsockname");
    if (ntohs(a.sin_port) < 10000) {
      ::close(fd);
      continue;
    }
    if (listening) Require(::listen(fd, 1) == 0, "listen");
    return fd;
  }
  Require(false, "no port of five digits in 100 binds (net.ipv4.ip_local_port_range)");
  return -1;
}

std::string PortOf(int fd) {
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(fd);
  Require(local.ok(), "LocalOf");
  return std::to_string(local->port());
}

// The descriptors the sender may attach, made once: each message carries copies of them.
struct Attachments {
  int first = TcpSocket(true);
  int second = TcpSocket(true);
  int dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int not_listening = TcpSocket(false);
  std::string first_port = PortOf(first);
  std::string second_port = PortOf(second);

  std::vector<int> For(uint8_t attach) const {
    switch (attach % 6) {
      case 1: return {first};
      case 2: return {second};
      case 3: return {dev_null};
      case 4: return {not_listening};
      case 5: return {first, second};
      default: return {};
    }
  }
  bool Ours(int fd) const { return fd == first || fd == second || fd == dev_null || fd == not_listening; }
};

const Attachments& Sender() {
  static const Attachments* attachments = new Attachments();
  return *attachments;
}

// The lowest descriptor number free now: a descriptor left open below it would change it.
int LowestFreeDescriptor() {
  int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
  Require(fd >= 0, "F_DUPFD");
  ::close(fd);
  return fd;
}

// Sends `bytes` as one message with `fds` attached; false once the socket is full.
bool SendPiece(int conn, const std::string& bytes, const std::vector<int>& fds) {
  std::string data = bytes.empty() ? std::string(1, '\0') : bytes;  // a descriptor needs a byte
  if (bytes.empty() && fds.empty()) return true;
  iovec iov{.iov_base = data.data(), .iov_len = data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 2)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n = ::sendmsg(conn, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(data.size());
}

void CheckListenerOf(const UniqueFd& fd, const SocketAddress& address, const char* role) {
  Require(fd.valid() && !Sender().Ours(fd.get()), std::string(role) + ": not a descriptor of its own");
  int listening = 0;
  socklen_t len = sizeof listening;
  Require(::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening == 1,
          std::string(role) + ": accepted a socket that is not listening");
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(fd.get());
  Require(local.ok() && local->ToString() == address.ToString(),
          std::string(role) + ": accepted a listener on another address than the offer's");
}

}  // namespace

int OneInput(const uint8_t* data, size_t size) {
  const Attachments& sender = Sender();
  const int lowest_free = LowestFreeDescriptor();
  {
    int pair[2];
    Require(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0, "socketpair");
    UniqueFd old_side(pair[0]);
    UniqueFd new_side(pair[1]);

    FuzzInput in(data, size);
    for (size_t i = 0; i < kMaxPieces && !in.empty(); ++i) {
      const uint8_t attach = in.Byte();
      std::string piece(in.Bytes(in.Uint(2)));
      piece = absl::StrReplaceAll(piece, {{"PORT1", sender.first_port}, {"PORT2", sender.second_port}});
      if (!SendPiece(old_side.get(), piece, sender.For(attach))) break;
    }
    old_side.reset();

    absl::StatusOr<server::ListenerSet> set = server::ReceiveOffer(new_side.get(), MonotonicNanos() + 1'000'000'000);
    if (set.ok()) {
      Require(!set->echo_fds.empty(), "accepted an offer without an echo listener");
      for (const UniqueFd& fd : set->echo_fds) CheckListenerOf(fd, set->echo, "echo listener");
      if (set->metrics.has_value()) CheckListenerOf(set->metrics->fd, set->metrics->address, "metrics listener");
      if (set->admin.has_value()) CheckListenerOf(set->admin->fd, set->admin->address, "admin listener");
    } else {
      const absl::StatusCode code = set.status().code();
      Require(code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kFailedPrecondition ||
                  code == absl::StatusCode::kUnavailable,
              "refused with another code: " + set.status().ToString());
      Require(!set.status().message().empty(), "refused without saying why");
    }
  }
  Require(LowestFreeDescriptor() == lowest_free, "a descriptor stayed open after the exchange");
  return 0;
}

}  // namespace brrr::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return brrr::fuzz::OneInput(data, size); }
