#include "runtime/socket.h"
#include "runtime/internal/loop_internals.h"

#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/hot_path.h"

namespace brrr {
namespace detail {
namespace {

const char* OperationName(IoOpcode opcode) {
  switch (opcode) {
    case IoOpcode::kAccept:
      return "accept";
    case IoOpcode::kRecv:
      return "recv";
    case IoOpcode::kSend:
      return "send";
    case IoOpcode::kSendMsg:
      return "sendmsg";
    case IoOpcode::kConnect:
      return "connect";
    case IoOpcode::kPollReadable:
      return "wait for readable";
    case IoOpcode::kPollWritable:
      return "wait for writable";
  }
  return "operation";
}

}  // namespace

SocketState::SocketState(EventLoop& loop, int fd, const char* kind)
    : loop_(loop), fd_(fd), kind_(kind), created_ns_(MonotonicNanos()) {
  LoopInternals::sockets(loop_).add(this);
}

SocketState::~SocketState() {
  if (registered_) LoopInternals::sockets(loop_).remove(this);
  if (awaiting_close_) LoopInternals::sockets(loop_).remove_closing(this);
}

BRRR_HOT_PATH int SocketState::start(Side side, IoOperation op, IoWaiter* waiter) {
  Slot& s = slot(side);
  if (s.in_flight) return -EBUSY;
  if (closing_) return -EBADF;
  if (!LoopInternals::has_reactor(loop_)) return -ESHUTDOWN;
  bool was_reading = in_read_set();
  bool was_writing = in_write_set();
  uint64_t user_data = LoopInternals::io(loop_).add(this, op.opcode);
  op.user_data = user_data;
  op.fd = fd_;
  int rc = LoopInternals::reactor(loop_).submit(op);
  if (rc != 0) {
    LoopInternals::io(loop_).remove(user_data);
    return rc;
  }
  s = Slot{user_data, op.opcode, waiter, true, false};
  update_sets(was_reading, was_writing);
  return 0;
}

BRRR_HOT_PATH int SocketState::try_send(const char* data, uint32_t len) {
  if (write_.in_flight) return -EBUSY;
  if (closing_) return -EBADF;
  if (!LoopInternals::has_reactor(loop_)) return -ESHUTDOWN;
  int n = LoopInternals::reactor(loop_).try_send(fd_, data, len);
  if (n > 0) bytes_out_ += static_cast<uint64_t>(n);
  return n;
}

void SocketState::cancel(Side side) {
  Slot& s = slot(side);
  if (!s.in_flight || s.cancel_sent || !LoopInternals::has_reactor(loop_)) return;
  s.cancel_sent = true;
  LoopInternals::reactor(loop_).cancel(fd_, s.user_data);
}

void SocketState::forget_waiter(Side side) { slot(side).waiter = nullptr; }

BRRR_HOT_PATH void SocketState::set_queued_bytes(uint64_t bytes) {
  bool was_reading = in_read_set();
  bool was_writing = in_write_set();
  queued_bytes_ = bytes;
  update_sets(was_reading, was_writing);
}

BRRR_HOT_PATH void SocketState::update_sets(bool was_reading, bool was_writing) {
  if (in_read_set() != was_reading) LoopInternals::sockets(loop_).read_set_delta(in_read_set() ? 1 : -1);
  if (in_write_set() != was_writing) LoopInternals::sockets(loop_).write_set_delta(in_write_set() ? 1 : -1);
}

BRRR_HOT_PATH void SocketState::on_io_completion(const Completion& c) {
  Side side = (read_.in_flight && c.user_data == read_.user_data) ? Side::kRead : Side::kWrite;
  Slot& s = slot(side);
  if (c.result > 0) {
    if (s.opcode == IoOpcode::kRecv) bytes_in_ += static_cast<uint64_t>(c.result);
    if (s.opcode == IoOpcode::kSend || s.opcode == IoOpcode::kSendMsg) bytes_out_ += static_cast<uint64_t>(c.result);
  }
  IoWaiter* waiter = s.waiter;
  IoOpcode opcode = s.opcode;
  if (!c.more()) {
    bool was_reading = in_read_set();
    bool was_writing = in_write_set();
    s.in_flight = false;
    s.waiter = nullptr;
    s.cancel_sent = false;
    update_sets(was_reading, was_writing);
    if (side == Side::kRead) {
      orphaned_receive_buffer_.reset();
    } else {
      orphaned_send_.reset();
    }
  }
  if (waiter != nullptr) {
    dispatching_ = true;
    try {
      waiter->on_op_complete(c);
    } catch (...) {  // a handler's bug, which the loop reports: a close it made still happens
      dispatching_ = false;
      delete_if_closed();
      throw;
    }
    dispatching_ = false;
  } else {
    // Nobody awaits this result any more: release what it carries.
    if (c.has_buffer() && LoopInternals::has_reactor(loop_)) LoopInternals::reactor(loop_).recycle_buffer(c.buffer_id);
    if (opcode == IoOpcode::kAccept && c.result >= 0) ::close(c.result);
  }
  delete_if_closed();
}

void SocketState::delete_if_closed() {
  if (closing_ && !read_.in_flight && !write_.in_flight) {
    close_descriptor();
    delete this;
  }
}

void SocketState::close() {
  if (closing_) return;
  closing_ = true;
  if (registered_) {
    LoopInternals::sockets(loop_).remove(this);
    registered_ = false;
  }
  set_queued_bytes(0);
  cancel(Side::kRead);
  cancel(Side::kWrite);
  if (!read_.in_flight && !write_.in_flight) {
    // Closed by a handler on_io_completion is calling: it closes and deletes once that returns.
    if (dispatching_) return;
    close_descriptor();
    delete this;
    return;
  }
  // Otherwise the last completion closes and deletes, or the loop's shutdown does.
  LoopInternals::sockets(loop_).add_closing(this);
  awaiting_close_ = true;
}

void SocketState::finish_close_at_shutdown() {
  ::close(fd_);
  if (descriptor_count_ != nullptr) descriptor_count_->fetch_sub(1);
  delete this;
}

void SocketState::close_descriptor() {
  if (LoopInternals::has_reactor(loop_)) LoopInternals::reactor(loop_).release_fd(fd_);
  ::close(fd_);
  if (descriptor_count_ != nullptr) descriptor_count_->fetch_sub(1);
}

SocketInfo SocketState::info(int64_t now_ns) const {
  SocketInfo i;
  i.fd = fd_;
  i.kind = kind_;
  if (auto local = SocketAddress::LocalOf(fd_); local.ok()) i.local = local->ToString();
  if (auto peer = SocketAddress::PeerOf(fd_); peer.ok()) i.peer = peer->ToString();
  i.age_ns = now_ns - created_ns_;
  i.bytes_in = bytes_in_;
  i.bytes_out = bytes_out_;
  i.bytes_queued = queued_bytes_;
  i.in_read_set = in_read_set();
  i.in_write_set = in_write_set();
  return i;
}

absl::Status SocketState::error(const char* operation, int negative_errno) const {
  int e = -negative_errno;
  std::string where = absl::StrCat(operation, " on fd ", fd_);
  // A listener has no peer: getpeername would fail with ENOTCONN, and formatting that errno
  // (absl's StrError, uninstrumented in Debian) on several loops at once, as each cancels its
  // accept in a drain, is a race report under ThreadSanitizer.
  if (std::strcmp(kind_, "listener") != 0) {
    if (auto peer = SocketAddress::PeerOf(fd_); peer.ok()) absl::StrAppend(&where, " (peer ", peer->ToString(), ")");
  }
  if (e == ERANGE && loop_.max_fd() >= 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        where, ": the ", loop_.backend(), " backend cannot watch descriptor ", fd_,
        " (it handles descriptors up to ", loop_.max_fd(),
        ", select(2)'s FD_SETSIZE limit); use --backend=poll, epoll or io_uring"));
  }
  if (e == ECANCELED) return absl::CancelledError(absl::StrCat(where, ": the socket was closed"));
  if (e == ESHUTDOWN) return absl::FailedPreconditionError(absl::StrCat(where, ": the event loop is shutting down"));
  return absl::ErrnoToStatus(e, where);
}

// ---- awaiters ----

SocketOpAwaiter::~SocketOpAwaiter() {
  if (pending_) {
    state_->forget_waiter(side_);
    state_->cancel(side_);
  }
}

bool SocketOpAwaiter::suspend(TaskContext* context, std::coroutine_handle<> h) {
  context_ = context;
  if (context->take_cancel_request()) {
    cancelled_ = true;
    return false;
  }
  if (state_ == nullptr) {  // closed, moved from, or never opened: nothing to ask the backend
    result_ = -EBADF;
    error_ = absl::FailedPreconditionError(absl::StrCat(OperationName(op_.opcode), " on a closed socket"));
    return false;
  }
  int rc = state_->start(side_, op_, this);
  if (rc != 0) {
    result_ = rc;
    error_ = state_->error(OperationName(op_.opcode), rc);
    return false;
  }
  handle_ = h;
  pending_ = true;
  context->set_suspension(this);
  return true;
}

void SocketOpAwaiter::on_op_complete(const Completion& c) {
  // again() counts what completed even when a cancel was asked (a send_all whose last send went
  // out anyway has finished); the cancel only keeps the rest from being resubmitted.
  if (c.result >= 0 && again(c) && !cancel_asked_) {
    int rc = state_->start(side_, op_, this);
    if (rc == 0) return;
    result_ = rc;
  } else {
    result_ = c.result;
  }
  pending_ = false;
  if (cancel_asked_ && (result_ == -ECANCELED || unfinished())) {
    cancelled_ = true;
    context_->take_cancel_request();
  } else if (result_ < 0) {
    error_ = state_->error(OperationName(op_.opcode), result_);
  }
  context_->set_suspension(nullptr);
  context_->schedule_resume(handle_);
}

void SocketOpAwaiter::cancel_suspension() {
  if (!pending_ || cancel_asked_) return;
  cancel_asked_ = true;
  state_->cancel(side_);
}

int32_t SocketOpAwaiter::finish() {
  if (cancelled_) context_->throw_cancelled();
  return result_;
}

AcceptAwaiter::AcceptAwaiter(SocketState* state)
    : SocketOpAwaiter(state, Side::kRead, IoOperation{.opcode = IoOpcode::kAccept}),
      loop_(state != nullptr ? &state->loop() : nullptr) {}

absl::StatusOr<Socket> AcceptAwaiter::await_resume() {
  int32_t r = finish();
  if (r < 0) return error_;
  return Socket(new SocketState(*loop_, r, "connection"));
}

ConnectAwaiter::ConnectAwaiter(SocketState* state, const SocketAddress& address)
    : SocketOpAwaiter(state, Side::kWrite, IoOperation{.opcode = IoOpcode::kConnect}), address_(address) {
  op_.buf = const_cast<sockaddr*>(address_.data());
  op_.len = address_.size();
}

absl::Status ConnectAwaiter::await_resume() {
  int32_t r = finish();
  if (r < 0) return error_;
  return absl::OkStatus();
}

TransferAwaiter::TransferAwaiter(SocketState* state, IoOpcode opcode, void* buf, size_t len)
    : SocketOpAwaiter(state, opcode == IoOpcode::kRecv ? Side::kRead : Side::kWrite,
                      IoOperation{.opcode = opcode,
                                  .len = static_cast<uint32_t>(std::min<size_t>(len, UINT32_MAX)),
                                  .buf = buf}) {}

absl::StatusOr<size_t> TransferAwaiter::await_resume() {
  int32_t r = finish();
  if (r < 0) return error_;
  return static_cast<size_t>(r);
}

SendAllAwaiter::SendAllAwaiter(SocketState* state, const void* buf, size_t len)
    : SocketOpAwaiter(state, Side::kWrite,
                      IoOperation{.opcode = IoOpcode::kSend,
                                  .len = static_cast<uint32_t>(std::min<size_t>(len, 1u << 30)),
                                  .buf = const_cast<void*>(buf)}),
      next_(static_cast<const char*>(buf)),
      left_(len) {}

bool SendAllAwaiter::again(const Completion& c) {
  size_t sent = static_cast<size_t>(c.result);
  next_ += sent;
  left_ -= sent;
  if (left_ == 0) return false;
  op_.buf = const_cast<char*>(next_);
  op_.len = static_cast<uint32_t>(std::min<size_t>(left_, 1u << 30));
  return true;
}

absl::Status SendAllAwaiter::await_resume() {
  int32_t r = finish();
  if (r < 0) return error_;
  return absl::OkStatus();
}

}  // namespace detail

// ---- Socket ----

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

absl::StatusOr<Socket> Socket::Create(EventLoop& loop, int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    return absl::ErrnoToStatus(e, absl::StrCat("socket(", family == AF_INET6 ? "AF_INET6" : "AF_INET",
                                               ", SOCK_STREAM)"));
  }
  return Socket(new detail::SocketState(loop, fd, "connection"));
}

Socket Socket::Adopt(EventLoop& loop, int fd, const char* kind) {
#ifndef NDEBUG
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type != SOCK_STREAM) {
    std::fprintf(stderr, "brrr: Socket::Adopt(fd %d): not a stream socket (SO_TYPE %d)\n", fd, type);
    std::abort();
  }
#endif
  return Socket(new detail::SocketState(loop, fd, kind));
}

absl::StatusOr<Socket> Socket::Listen(EventLoop& loop, const SocketAddress& address,
                                      const SocketOptions& options, int backlog) {
  absl::StatusOr<Socket> s = Bind(loop, address, options);
  if (!s.ok()) return s.status();
  if (absl::Status listening = s->listen(backlog); !listening.ok()) return listening;
  return s;
}

absl::StatusOr<Socket> Socket::Bind(EventLoop& loop, const SocketAddress& address, const SocketOptions& options) {
  absl::StatusOr<Socket> s = Create(loop, address.family());
  if (!s.ok()) return s.status();
  absl::Status applied = s->apply(options);
  if (!applied.ok()) return applied;
  if (::bind(s->fd(), address.data(), address.size()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind ", address.ToString()));
  }
  return s;
}

absl::Status Socket::listen(int backlog) {
  if (::listen(fd(), backlog) != 0) {
    const int err = errno;
    absl::StatusOr<SocketAddress> at = local_address();
    return absl::ErrnoToStatus(err, absl::StrCat("listen on ", at.ok() ? at->ToString() : absl::StrCat("fd ", fd())));
  }
  state_->set_kind("listener");
  return absl::OkStatus();
}

absl::Status Socket::apply(const SocketOptions& options) {
  auto set = [this](int level, int name, int value, const char* what) -> absl::Status {
    if (::setsockopt(fd(), level, name, &value, sizeof value) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("setsockopt(", what, "=", value, ") on fd ", fd()));
    }
    return absl::OkStatus();
  };
  absl::Status s;
  if (options.reuse_address) s.Update(set(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"));
  if (options.reuse_port) s.Update(set(SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"));
  if (options.send_buffer > 0) s.Update(set(SOL_SOCKET, SO_SNDBUF, options.send_buffer, "SO_SNDBUF"));
  if (options.receive_buffer > 0) s.Update(set(SOL_SOCKET, SO_RCVBUF, options.receive_buffer, "SO_RCVBUF"));
  if (options.ipv6_only) s.Update(set(IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY"));
  if (options.urgent_inline) s.Update(set(SOL_SOCKET, SO_OOBINLINE, 1, "SO_OOBINLINE"));
  // TCP_NODELAY only means something on a TCP socket that will carry data; it is harmless on
  // a listener (accepted sockets inherit it on Linux).
  if (options.no_delay) s.Update(set(IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY"));
  return s;
}

absl::Status Socket::set_linger_zero() {
  linger l{1, 0};
  if (::setsockopt(fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("setsockopt(SO_LINGER) on fd ", fd()));
  }
  return absl::OkStatus();
}

absl::Status Socket::refuse_new_handshakes() {
  // A classic BPF socket filter, run on every segment that reaches the listener, from the TCP
  // header (for IPv4 and IPv6 alike): drop (keep 0 bytes of) one whose SYN is set and ACK not,
  // keep everything else. Connections accepted from here on inherit it, and it keeps all of
  // theirs (no segment of an established connection is a bare SYN).
  constexpr uint32_t kTcpFlagsOffset = 13;
  constexpr uint32_t kSynAndAck = 0x12;
  constexpr uint32_t kSynAlone = 0x02;
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, kTcpFlagsOffset),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kSynAndAck),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kSynAlone, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (::setsockopt(fd(), SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("setsockopt(SO_ATTACH_FILTER) on listener fd ", fd()));
  }
  return absl::OkStatus();
}

detail::AcceptAwaiter Socket::accept() { return detail::AcceptAwaiter(state_); }

absl::StatusOr<std::optional<Socket>> Socket::accept_queued() {
  if (state_ == nullptr) return absl::FailedPreconditionError("accept on a closed socket");
  if (state_->busy(detail::Side::kRead)) {
    return absl::FailedPreconditionError(
        absl::StrCat("accept on fd ", fd(), ": an accept is pending; take queued connections once it has ended"));
  }
  for (;;) {
    int fd = ::accept4(state_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return std::optional<Socket>(Socket(new detail::SocketState(state_->loop(), fd, "connection")));
    // These concern one connection that died in the backlog (or a signal): the next may be fine.
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
    return state_->error("accept", -errno);
  }
}

detail::ConnectAwaiter Socket::connect(const SocketAddress& address) {
  return detail::ConnectAwaiter(state_, address);
}

detail::TransferAwaiter Socket::recv(void* buf, size_t len) {
  return detail::TransferAwaiter(state_, IoOpcode::kRecv, buf, len);
}

detail::TransferAwaiter Socket::send(const void* buf, size_t len) {
  return detail::TransferAwaiter(state_, IoOpcode::kSend, const_cast<void*>(buf), len);
}

detail::SendAllAwaiter Socket::send_all(const void* buf, size_t len) {
  return detail::SendAllAwaiter(state_, buf, len);
}

absl::Status Socket::shutdown_write() {
  if (::shutdown(fd(), SHUT_WR) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("shutdown(SHUT_WR) on fd ", fd()));
  }
  return absl::OkStatus();
}

void Socket::close() {
  if (state_ != nullptr) std::exchange(state_, nullptr)->close();
}

Task<absl::StatusOr<Socket>> ConnectTo(EventLoop& loop, SocketAddress address, SocketOptions options) {
  absl::StatusOr<Socket> s = Socket::Create(loop, address.family());
  if (!s.ok()) co_return s.status();
  options.reuse_address = false;
  if (absl::Status applied = s->apply(options); !applied.ok()) co_return applied;
  if (absl::Status connected = co_await s->connect(address); !connected.ok()) co_return connected;
  co_return s;
}

}  // namespace brrr
