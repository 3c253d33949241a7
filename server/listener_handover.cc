#include "server/listener_handover.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace brrr::server {

// runtime/status_macros.h is the runtime's own; these two are this file's.
#define HO_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::absl::Status ho_status_ = (expr);   \
    if (!ho_status_.ok()) return ho_status_; \
  } while (0)
#define HO_CONCAT_INNER_(a, b) a##b
#define HO_CONCAT_(a, b) HO_CONCAT_INNER_(a, b)
#define HO_ASSIGN_OR_RETURN(lhs, expr) HO_ASSIGN_OR_RETURN_IMPL_(HO_CONCAT_(ho_statusor_, __LINE__), lhs, expr)
#define HO_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) return statusor.status();        \
  lhs = std::move(statusor).value()

namespace {

constexpr char kMagic[4] = {'B', 'R', 'H', 'O'};
constexpr size_t kHeaderBytes = 12;

void PutU16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v & 0xff);
}
void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
}
uint32_t GetU(const char* p, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Waits until `conn` is readable or the deadline passes.
absl::Status WaitReadable(int conn, int64_t deadline_ns) {
  for (;;) {
    // Past the deadline, one look without waiting: what has arrived is still read.
    int64_t left_ms = std::max<int64_t>(0, (deadline_ns - MonotonicNanos()) / 1'000'000);
    pollfd p{.fd = conn, .events = POLLIN, .revents = 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 60'000)));
    if (n > 0) return absl::OkStatus();
    if (n < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
    if (n == 0 && left_ms == 0) return absl::UnavailableError("no answer in time");
  }
}

// Reads exactly `len` bytes into `buf`, keeping any descriptor that arrives with them.
absl::Status ReadExactly(int conn, char* buf, size_t len, int64_t deadline_ns, std::vector<UniqueFd>& fds) {
  size_t got = 0;
  while (got < len) {
    HO_RETURN_IF_ERROR(WaitReadable(conn, deadline_ns));
    iovec iov{.iov_base = buf + got, .iov_len = len - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(absl::StrCat("recvmsg: ", std::strerror(errno)));
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds.emplace_back(fd);
      }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
      return absl::InvalidArgumentError("more descriptors arrived than a frame carries (control data truncated)");
    }
    if (n == 0) return absl::UnavailableError("the other process closed the hand-over connection");
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// "key=value" lines.
absl::StatusOr<std::string> Field(const std::string& payload, const std::string& key, bool required) {
  for (absl::string_view line : absl::StrSplit(payload, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (kv.first == key) return std::string(kv.second);
  }
  if (required) return absl::InvalidArgumentError(absl::StrCat("the offer has no \"", key, "\""));
  return std::string();
}

absl::StatusOr<HandedListener> ReceiveListener(int conn, int64_t deadline_ns, const std::string& role,
                                               const SocketAddress& address, const std::string& label) {
  HO_ASSIGN_OR_RETURN(HandoverFrame frame, ReadFrame(conn, deadline_ns));
  if (frame.type != HandoverFrameType::kListener) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected the ", label, ", got a ", HandoverFrameName(frame.type), " frame"));
  }
  if (frame.payload != role || !frame.descriptor.valid()) {
    return absl::InvalidArgumentError(absl::StrCat("expected the ", label, " with its descriptor, got \"",
                                                   frame.payload, frame.descriptor.valid() ? "\"" : "\" without one"));
  }
  HO_RETURN_IF_ERROR(CheckListener(frame.descriptor.get(), address, label));
  return HandedListener{address, std::move(frame.descriptor)};
}

}  // namespace

const char* HandoverFrameName(HandoverFrameType type) {
  switch (type) {
    case HandoverFrameType::kHello:
      return "HELLO";
    case HandoverFrameType::kOffer:
      return "OFFER";
    case HandoverFrameType::kRefuse:
      return "REFUSE";
    case HandoverFrameType::kListener:
      return "LISTENER";
    case HandoverFrameType::kTaken:
      return "TAKEN";
    case HandoverFrameType::kDeclined:
      return "DECLINED";
    case HandoverFrameType::kReleased:
      return "RELEASED";
  }
  return "unknown";
}

absl::Status SendFrame(int conn, HandoverFrameType type, const std::string& payload, int descriptor,
                       uint16_t version) {
  if (payload.size() > kMaxHandoverPayload) {
    return absl::InvalidArgumentError(absl::StrCat("a hand-over frame carries at most ", kMaxHandoverPayload,
                                                   " bytes, not ", payload.size()));
  }
  std::string bytes(kHeaderBytes, '\0');
  std::memcpy(bytes.data(), kMagic, 4);
  PutU16(bytes.data() + 4, version);
  PutU16(bytes.data() + 6, static_cast<uint16_t>(type));
  PutU32(bytes.data() + 8, static_cast<uint32_t>(payload.size()));
  bytes += payload;
  size_t sent = 0;
  while (sent < bytes.size()) {
    iovec iov{.iov_base = bytes.data() + sent, .iov_len = bytes.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (descriptor >= 0 && sent == 0) {
      // The descriptor travels with the frame's first byte.
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &descriptor, sizeof descriptor);
    }
    ssize_t n = ::sendmsg(conn, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("sending ", HandoverFrameName(type), ": ", std::strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<HandoverFrame> ReadFrame(int conn, int64_t deadline_ns) {
  std::vector<UniqueFd> fds;
  char header[kHeaderBytes];
  HO_RETURN_IF_ERROR(ReadExactly(conn, header, sizeof header, deadline_ns, fds));
  if (std::memcmp(header, kMagic, 4) != 0) {
    return absl::InvalidArgumentError("the other side does not speak brrr's hand-over protocol (bad magic)");
  }
  HandoverFrame frame;
  frame.version = static_cast<uint16_t>(GetU(header + 4, 2));
  frame.type = static_cast<HandoverFrameType>(GetU(header + 6, 2));
  uint32_t length = GetU(header + 8, 4);
  if (length > kMaxHandoverPayload) {
    return absl::InvalidArgumentError(absl::StrCat("a hand-over frame of ", length, " bytes (at most ",
                                                   kMaxHandoverPayload, ")"));
  }
  frame.payload.resize(length);
  HO_RETURN_IF_ERROR(ReadExactly(conn, frame.payload.data(), length, deadline_ns, fds));
  if (fds.size() > 1) return absl::InvalidArgumentError("a hand-over frame carried more than one descriptor");
  if (!fds.empty()) frame.descriptor = std::move(fds[0]);
  return frame;
}

absl::Status SendOffer(int conn, const ListenerSet& set) {
  std::string offer = absl::StrCat("pid=", set.pid, "\nloops=", set.echo_fds.size(), "\necho=", set.echo.ToString(),
                                   "\n");
  if (set.metrics.has_value()) absl::StrAppend(&offer, "metrics=", set.metrics->address.ToString(), "\n");
  if (set.admin.has_value()) absl::StrAppend(&offer, "admin=", set.admin->address.ToString(), "\n");
  HO_RETURN_IF_ERROR(SendFrame(conn, HandoverFrameType::kOffer, offer));
  for (const UniqueFd& fd : set.echo_fds) {
    HO_RETURN_IF_ERROR(SendFrame(conn, HandoverFrameType::kListener, "echo", fd.get()));
  }
  if (set.metrics.has_value()) {
    HO_RETURN_IF_ERROR(SendFrame(conn, HandoverFrameType::kListener, "metrics", set.metrics->fd.get()));
  }
  if (set.admin.has_value()) {
    HO_RETURN_IF_ERROR(SendFrame(conn, HandoverFrameType::kListener, "admin", set.admin->fd.get()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ListenerSet> ReceiveOffer(int conn, int64_t deadline_ns) {
  HO_ASSIGN_OR_RETURN(HandoverFrame offer, ReadFrame(conn, deadline_ns));
  if (offer.type == HandoverFrameType::kRefuse) {
    return absl::FailedPreconditionError(absl::StrCat("the running instance refused: ", offer.payload));
  }
  if (offer.version != kHandoverProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat("the running instance speaks hand-over protocol version ",
                                                      offer.version, ", this one version ", kHandoverProtocolVersion,
                                                      "; upgrade through a release that speaks both"));
  }
  if (offer.type != HandoverFrameType::kOffer) {
    return absl::InvalidArgumentError(absl::StrCat("expected an OFFER, got a ", HandoverFrameName(offer.type)));
  }
  ListenerSet set;
  HO_ASSIGN_OR_RETURN(std::string pid, Field(offer.payload, "pid", true));
  HO_ASSIGN_OR_RETURN(std::string loops_text, Field(offer.payload, "loops", true));
  HO_ASSIGN_OR_RETURN(std::string echo, Field(offer.payload, "echo", true));
  HO_ASSIGN_OR_RETURN(std::string metrics, Field(offer.payload, "metrics", false));
  HO_ASSIGN_OR_RETURN(std::string admin, Field(offer.payload, "admin", false));
  uint32_t loops = 0;
  if (!absl::SimpleAtoi(pid, &set.pid) || !absl::SimpleAtoi(loops_text, &loops) || loops < 1 || loops > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("a malformed offer: \"", offer.payload, "\""));
  }
  HO_ASSIGN_OR_RETURN(set.echo, SocketAddress::ParseHostPort(echo));
  for (uint32_t i = 0; i < loops; ++i) {
    HO_ASSIGN_OR_RETURN(HandedListener l, ReceiveListener(conn, deadline_ns, "echo", set.echo,
                                                            absl::StrCat("echo listener ", i)));
    set.echo_fds.push_back(std::move(l.fd));
  }
  if (!metrics.empty()) {
    HO_ASSIGN_OR_RETURN(SocketAddress address, SocketAddress::ParseHostPort(metrics));
    HO_ASSIGN_OR_RETURN(set.metrics, ReceiveListener(conn, deadline_ns, "metrics", address, "metrics listener"));
  }
  if (!admin.empty()) {
    HO_ASSIGN_OR_RETURN(SocketAddress address, SocketAddress::ParseHostPort(admin));
    HO_ASSIGN_OR_RETURN(set.admin, ReceiveListener(conn, deadline_ns, "admin", address, "admin listener"));
  }
  return set;
}

absl::Status CheckListener(int fd, const SocketAddress& address, const std::string& role) {
  auto option = [fd](int name) -> int {
    int value = -1;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, name, &value, &len) != 0) return -1;
    return value;
  };
  auto wrong = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(role, " (fd ", fd, "): ", what));
  };
  if (option(SO_TYPE) != SOCK_STREAM || option(SO_PROTOCOL) != IPPROTO_TCP) return wrong("not a TCP socket");
  if (option(SO_ACCEPTCONN) != 1) return wrong("not listening");
  if (option(SO_DOMAIN) != address.family()) {
    return wrong(absl::StrCat("of address family ", option(SO_DOMAIN), ", not that of ", address.ToString()));
  }
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(fd);
  if (!local.ok()) return wrong(std::string(local.status().message()));
  if (local->ToString() != address.ToString()) {
    return wrong(absl::StrCat("listens on ", local->ToString(), ", not on ", address.ToString(),
                              " as the offer says (address mismatch)"));
  }
  return absl::OkStatus();
}

}  // namespace brrr::server
