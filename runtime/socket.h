// socket.h: TCP sockets whose accept, connect, recv and send are awaitables on the loop.
//
//   auto listener = Socket::Listen(loop, *SocketAddress::Parse("127.0.0.1", 0), {});
//   absl::StatusOr<Socket> conn = co_await listener->accept();
//   char buf[4096];
//   absl::StatusOr<size_t> n = co_await conn->recv(buf, sizeof buf);   // 0: peer closed
//   absl::Status sent = co_await conn->send_all(buf, *n);               // partial writes handled
//
// Every operation goes through the loop's backend plugin, so it behaves the same on select,
// poll, epoll and io_uring. Errors a caller can act on (refused, reset, EMFILE...) come back as
// absl::Status naming the operation, the descriptor and the peer; nothing here throws except
// CancelledError when the awaiting task is cancelled. An operation awaited on a closed (or
// moved-from) socket fails at once with FailedPrecondition ("recv on a closed socket").
// Cancelling a task cancels its pending operation in the backend; the task resumes once the
// backend confirms, so the buffer it lent is never written after it resumes. A recv or accept
// that completed anyway keeps its result, as does a send (or send_all) whose bytes all went
// out, and the task's cancellation takes effect at its next await; a send_all cut short by the
// cancel throws CancelledError.
//
// Read set and write set: a socket is in its loop's read set while a receive or accept is
// pending, and in the write set while a send is in flight or its owner has bytes queued for it
// (set_queued_bytes). Both are counted in LoopStats and shown per socket by the socket table.
//
// Threads: loop thread only. Ownership: Socket owns the descriptor; closing (or destroying)
// the Socket cancels its operations and closes the descriptor once the backend has let go of
// it. A socket must be closed before its loop is destroyed, unless a task owns it (tasks are
// destroyed with the loop).
#ifndef BRRR_RUNTIME_SOCKET_H_
#define BRRR_RUNTIME_SOCKET_H_

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/buffer_pool.h"
#include "runtime/event_loop.h"
#include "runtime/send_gather.h"
#include "runtime/socket_address.h"
#include "runtime/socket_table.h"
#include "runtime/task.h"
#include "runtime/task_context.h"

namespace brrr {

class Receiver;
class Sender;

struct SocketOptions {
  bool reuse_address = true;
  bool reuse_port = false;  // several listeners (one per loop) share a port
  bool no_delay = true;     // TCP_NODELAY
  int send_buffer = 0;      // SO_SNDBUF in bytes; 0 leaves the kernel's default
  int receive_buffer = 0;   // SO_RCVBUF in bytes; 0 leaves the kernel's default
  bool ipv6_only = false;   // IPV6_V6ONLY for IPv6 listeners
  // SO_OOBINLINE: TCP urgent data stays in the stream, in its place, rather than out of band
  // (where only a MSG_OOB receive, which brrr never makes, would see it). Accepted sockets
  // inherit it from their listener.
  bool urgent_inline = false;
};

class Socket;

namespace detail {

// Someone awaiting one operation of a socket.
class IoWaiter {
 public:
  virtual void on_op_complete(const Completion& c) = 0;

 protected:
  ~IoWaiter() = default;
};

enum class Side { kRead, kWrite };

// One descriptor: its operations in flight, counters, and place in the loop's socket table.
// Deleted by Socket::close, or, if operations are still in flight then, by the final
// completion of the last one.
class SocketState final : public IoCompletionHandler, public SocketEntry {
 public:
  SocketState(EventLoop& loop, int fd, const char* kind);
  ~SocketState();

  EventLoop& loop() const { return loop_; }
  int fd() const { return fd_; }

  // Starts an operation on one side: 0, or -errno (nothing started).
  int start(Side side, IoOperation op, IoWaiter* waiter);
  // Sends up to `len` bytes at once without an operation, when no send is in flight. Only on
  // a loop whose backend can (Reactor::can_try_send: its caller asks once, as the Sender
  // does). The bytes sent (> 0, counted in bytes_out), or -errno: -EAGAIN (start a kSend:
  // the socket takes nothing now, or io_uring batches sends under load), -EBUSY, -EBADF
  // (closing), -ESHUTDOWN, or the send's error.
  int try_send(const char* data, uint32_t len);
  // Asks the backend to stop the side's operation (once); its completion still arrives.
  void cancel(Side side);
  // The waiter is going away; the operation's completion will only update the counters.
  void forget_waiter(Side side);
  bool busy(Side side) const { return slot(side).in_flight; }

  void set_queued_bytes(uint64_t bytes);
  void set_kind(const char* kind) { kind_ = kind; }
  // Keep memory alive until the side's operation has finished: its owner is going away while
  // the backend may still use it (a receive's block; a send's chunks and gather header).
  void adopt_receive_buffer(Chunk buffer) { orphaned_receive_buffer_ = std::move(buffer); }
  void adopt_send(std::unique_ptr<OrphanedSend> send) { orphaned_send_ = std::move(send); }
  bool closing() const { return closing_; }
  void set_descriptor_count(std::atomic<int64_t>* count) { descriptor_count_ = count; }

  // Closes now if nothing is in flight, else cancels everything and closes (and deletes
  // itself) when the last completion arrives.
  void close();

  void on_io_completion(const Completion& c) override;
  SocketInfo info(int64_t now_ns) const override;
  void finish_close_at_shutdown() override;

  // An error Status for a failed operation: what, on which descriptor and peer, and why.
  absl::Status error(const char* operation, int negative_errno) const;

 private:
  struct Slot {
    uint64_t user_data = 0;
    IoOpcode opcode = IoOpcode::kPollReadable;
    IoWaiter* waiter = nullptr;
    bool in_flight = false;
    bool cancel_sent = false;
  };
  Slot& slot(Side side) { return side == Side::kRead ? read_ : write_; }
  const Slot& slot(Side side) const { return side == Side::kRead ? read_ : write_; }
  bool in_read_set() const { return read_.in_flight; }
  bool in_write_set() const { return write_.in_flight || queued_bytes_ > 0; }
  void update_sets(bool was_reading, bool was_writing);
  void close_descriptor();
  // Once closed with nothing in flight: closes the descriptor and deletes this.
  void delete_if_closed();

  EventLoop& loop_;
  int fd_;
  const char* kind_;
  int64_t created_ns_;
  Slot read_;
  Slot write_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t queued_bytes_ = 0;
  Chunk orphaned_receive_buffer_;
  std::unique_ptr<OrphanedSend> orphaned_send_;
  std::atomic<int64_t>* descriptor_count_ = nullptr;  // decremented when fd_ is closed
  bool closing_ = false;
  bool registered_ = true;     // in the loop's socket table
  bool awaiting_close_ = false;  // in the table's closing list
  // Inside on_io_completion's call to its waiter, whose handler may close (destroy) the
  // socket: close() then leaves the delete to on_io_completion, which reads this state after.
  bool dispatching_ = false;
};

// The shared part of every socket awaitable: submit on suspend, resume on the final
// completion (through the ready queue), cancel in the backend when the task is cancelled.
class SocketOpAwaiter : public Suspension, public IoWaiter {
 public:
  SocketOpAwaiter(SocketState* state, Side side, IoOperation op) : state_(state), side_(side), op_(op) {}
  SocketOpAwaiter(const SocketOpAwaiter&) = delete;
  SocketOpAwaiter& operator=(const SocketOpAwaiter&) = delete;
  ~SocketOpAwaiter();

  bool await_ready() const noexcept { return false; }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    return suspend(h.promise().context(), h);
  }

  void on_op_complete(const Completion& c) override;
  void cancel_suspension() override;

 protected:
  // Throws CancelledError if the task was cancelled here; else returns the raw result
  // (-errno on failure, with error_ describing it).
  int32_t finish();
  // Called on each successful final completion, cancelled or not, to count what it did; true:
  // resubmit op_ (unless a cancel was asked) instead of resuming.
  virtual bool again(const Completion&) { return false; }
  // Whether a cancellation cut the operation short (it then throws CancelledError).
  virtual bool unfinished() const { return false; }

  SocketState* state_;  // valid while the operation is in flight
  Side side_;
  IoOperation op_;
  absl::Status error_;

 private:
  bool suspend(TaskContext* context, std::coroutine_handle<> h);

  TaskContext* context_ = nullptr;
  std::coroutine_handle<> handle_;
  int32_t result_ = 0;
  bool pending_ = false;
  bool cancel_asked_ = false;
  bool cancelled_ = false;
};

class AcceptAwaiter final : public SocketOpAwaiter {
 public:
  explicit AcceptAwaiter(SocketState* state);
  absl::StatusOr<Socket> await_resume();

 private:
  EventLoop* loop_;
};

class ConnectAwaiter final : public SocketOpAwaiter {
 public:
  ConnectAwaiter(SocketState* state, const SocketAddress& address);
  absl::Status await_resume();

 private:
  SocketAddress address_;  // the backend reads it until the operation completes
};

class TransferAwaiter final : public SocketOpAwaiter {
 public:
  TransferAwaiter(SocketState* state, IoOpcode opcode, void* buf, size_t len);
  absl::StatusOr<size_t> await_resume();
};

// Sends a whole buffer, resubmitting after partial sends without resuming the task between.
class SendAllAwaiter final : public SocketOpAwaiter {
 public:
  SendAllAwaiter(SocketState* state, const void* buf, size_t len);
  absl::Status await_resume();

 protected:
  bool again(const Completion& c) override;
  bool unfinished() const override { return left_ > 0; }

 private:
  const char* next_;
  size_t left_;
};

}  // namespace detail

class Socket {
 public:
  Socket() = default;
  Socket(Socket&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { close(); }

  // A new non-blocking TCP socket (AF_INET or AF_INET6) on `loop`.
  static absl::StatusOr<Socket> Create(EventLoop& loop, int family);
  // Create + options + bind + listen.
  static absl::StatusOr<Socket> Listen(EventLoop& loop, const SocketAddress& address,
                                       const SocketOptions& options = {}, int backlog = 1024);
  // Create + options + bind, not yet listening: with reuse_port, a socket that holds its place
  // at the address but joins the port's group (and gets connections) only at listen().
  static absl::StatusOr<Socket> Bind(EventLoop& loop, const SocketAddress& address, const SocketOptions& options = {});
  // listen(2) on a socket from Bind.
  absl::Status listen(int backlog = 1024);
  // Takes ownership of a connected or listening non-blocking stream socket (TCP, or AF_UNIX
  // SOCK_STREAM): the backends take a short receive as the socket drained, true of a stream
  // only. Builds without NDEBUG abort on a datagram or SEQPACKET socket.
  static Socket Adopt(EventLoop& loop, int fd, const char* kind);

  bool valid() const { return state_ != nullptr; }
  int fd() const { return state_ ? state_->fd() : -1; }
  EventLoop& loop() const { return state_->loop(); }
  absl::StatusOr<SocketAddress> local_address() const { return SocketAddress::LocalOf(fd()); }
  absl::StatusOr<SocketAddress> peer_address() const { return SocketAddress::PeerOf(fd()); }
  // What the loop's socket table shows for it (addresses, age, bytes, read and write set).
  SocketInfo info() const { return state_->info(MonotonicNanos()); }

  absl::Status apply(const SocketOptions& options);
  // SO_LINGER {on, 0}: closing sends RST instead of FIN (drops unsent data).
  absl::Status set_linger_zero();

  // For a listener about to close: the kernel stops starting handshakes on it (a socket filter
  // drops every new SYN), while the clients in its backlog and the handshakes already under
  // way still complete and can be accepted. Without it, a client whose handshake completes
  // between the owner's last accept and the close is reset, after its connect succeeded; with
  // it, such a client's SYN goes unanswered, it sends it again (after about 1 s) and then meets
  // whatever listens by then, or a refusal. The filter is the socket's own: never for one that
  // another process still accepts on (a hand-over), whom it would stop too.
  absl::Status refuse_new_handshakes();

  // ---- Awaitables: co_await inside a task on this socket's loop. ----
  // A new connection (non-blocking, close-on-exec).
  detail::AcceptAwaiter accept();
  // A connection already waiting in this listener's backlog, accepted now without waiting
  // (one accept(2), outside the backend): nullopt when none waits. FailedPrecondition while
  // an accept is pending on the socket. For an owner that stops accepting on a listener
  // another process or loop may share: io_uring wakes one pending accept per new connection,
  // so a connection that arrived as this socket's accept was being cancelled may have woken
  // that accept alone and would wait in the backlog, unseen by the other waiters, until the
  // next connection arrives. Once the cancelled accept has ended, what is queued is taken here.
  absl::StatusOr<std::optional<Socket>> accept_queued();
  // Connects this (fresh) socket. After a connect that was cancelled while the kernel was
  // still connecting, a connect again ends as that connection does, on every backend.
  detail::ConnectAwaiter connect(const SocketAddress& address);
  // Up to len bytes into buf (0: the peer closed its side). buf must stay valid until resumed.
  detail::TransferAwaiter recv(void* buf, size_t len);
  // Sends some of the bytes: the count actually sent.
  detail::TransferAwaiter send(const void* buf, size_t len);
  // Sends all of them (several sends if the socket buffer fills).
  detail::SendAllAwaiter send_all(const void* buf, size_t len);

  // Half-close: no more sends; the peer reads end of stream.
  absl::Status shutdown_write();

  // Bytes its owner holds for this socket and has not yet handed to send (puts the socket in
  // the write set while > 0).
  void set_queued_bytes(uint64_t bytes) { state_->set_queued_bytes(bytes); }

  // Cancels pending operations and closes. Idempotent.
  void close();

  // Counts this socket's descriptor in `*count` until the descriptor is closed: the caller
  // has added 1 for it, and the socket subtracts 1 when it closes the descriptor, which may
  // be after close() returns (the backend still holds it) or at the loop's destruction. So
  // `*count` tells how many descriptors are really open (server/descriptor_budget.h). The
  // counter must outlive the descriptor; any thread may read it.
  void count_descriptor_in(std::atomic<int64_t>* count) { state_->set_descriptor_count(count); }

 private:
  explicit Socket(detail::SocketState* state) : state_(state) {}
  detail::SocketState* state() const { return state_; }
  friend class detail::AcceptAwaiter;
  friend class Receiver;
  friend class Sender;

  detail::SocketState* state_ = nullptr;
};

// Connects a new socket to `address`.
Task<absl::StatusOr<Socket>> ConnectTo(EventLoop& loop, SocketAddress address, SocketOptions options = {});

}  // namespace brrr

#endif  // BRRR_RUNTIME_SOCKET_H_
