/*
 * reactor_abi.h: the plugin boundary between the brrr runtime and its I/O backends.
 *
 * A backend (select, poll, epoll, io_uring) is a shared object that exports one C function,
 * BRRR_REACTOR_ENTRY_NAME, returning a table of plain C function pointers. A C table, not a
 * C++ vtable: no C++ ABI, allocator or exception crosses dlopen, and a plugin built by another
 * compiler works. This header depends on <stddef.h> and <stdint.h> only; a plugin needs nothing
 * else of ours. Inside the runtime only runtime/reactor.{h,cc} sees these types.
 *
 * Model: the runtime submits OPERATIONS (accept, recv, send, gathered send, connect,
 * wait-readable, wait-writable) and later collects COMPLETIONS from wait(). Readiness backends
 * (select, poll, epoll) perform the system call when the descriptor is ready; io_uring submits
 * the operation itself. Either way the runtime sees the same thing: an operation, then one or more
 * completions carrying its user_data, the last of which has no BRRR_COMPLETION_MORE flag.
 * A backend may also offer try_send: a send made at once, outside that model (no operation,
 * no completion), which saves a message's reply the trip through submit() and wait() whenever
 * the socket has room (and, on io_uring, whenever the loop is quiet enough that a send of its
 * own costs less than one more request in its next batch); a SEND op does the rest.
 *
 * Rules every backend keeps (the conformance suite in tests/reactors checks them):
 *  - Every successful submit() yields exactly one FINAL completion (flags without
 *    BRRR_COMPLETION_MORE), possibly preceded by non-final ones for multishot operations.
 *    After cancel(), the final completion still arrives: -ECANCELED, or the operation's real
 *    result if it finished first (a completed accept or recv is never thrown away).
 *  - A descriptor has at most one read-side operation (ACCEPT, RECV, POLL_READABLE) and at
 *    most one write-side operation (SEND, SENDMSG, CONNECT, POLL_WRITABLE) in flight; a
 *    second one fails with -EBUSY.
 *  - Results are >= 0 on success and -errno on failure. SEND may be partial. RECV returns 0
 *    when the peer has shut down its side. Sockets given to a backend are non-blocking.
 *  - Opcodes and capabilities are only ever added: a plugin built before BRRR_OP_SENDMSG does
 *    not announce BRRR_CAP_SENDMSG and refuses the opcode with -EINVAL.
 *  - Completions are returned only from wait(), never from submit() or cancel(), so the
 *    runtime never re-enters itself.
 *
 * Threads: a reactor is used by one thread (its loop) at a time; wake() alone is thread-safe.
 * Ownership: every pointer passed in is BORROWED unless its comment says otherwise.
 */
#ifndef BRRR_RUNTIME_REACTOR_ABI_H_
#define BRRR_RUNTIME_REACTOR_ABI_H_

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to the structs or functions below. */
#define BRRR_REACTOR_ABI_VERSION 1u

/* The one symbol a plugin exports. */
#define BRRR_REACTOR_ENTRY_NAME "brrr_reactor_entry"

#if defined(__GNUC__)
#define BRRR_REACTOR_EXPORT __attribute__((visibility("default")))
#else
#define BRRR_REACTOR_EXPORT
#endif

/* An instance of a backend: one per event loop. Opaque; owned by the plugin. */
typedef struct brrr_reactor brrr_reactor;

/* Operation codes. */
enum {
  /* fd: a listening socket. result: the accepted descriptor (non-blocking, close-on-exec),
   * owned by the runtime from then on. */
  BRRR_OP_ACCEPT = 1,
  /* fd, buf, len: receive up to len bytes. result: bytes received, 0 at end of stream.
   * With BRRR_OP_BUFFER_SELECT, buf is NULL and the backend picks a buffer from the pool
   * given to provide_buffers(); the completion names it (BRRR_COMPLETION_BUFFER). */
  BRRR_OP_RECV = 2,
  /* fd, buf, len: send up to len bytes (never raises SIGPIPE). result: bytes sent. */
  BRRR_OP_SEND = 3,
  /* fd: a non-blocking socket; buf: a struct sockaddr, len its size. result: 0. On a socket
   * whose earlier connect is still in progress (it was cancelled: EALREADY), completes as that
   * connection does. */
  BRRR_OP_CONNECT = 4,
  /* fd: wait until readable / writable. result: 0. */
  BRRR_OP_POLL_READABLE = 5,
  BRRR_OP_POLL_WRITABLE = 6,
  /* fd; buf: a `struct msghdr` (<sys/socket.h>) whose msg_iov / msg_iovlen (1 to IOV_MAX
   * entries) name the data, msg_name and msg_control NULL; len: 0. Sends the entries in order
   * as one gathered send (never raises SIGPIPE). The msghdr, its iovec array and the memory
   * they point to are BORROWED until the final completion. result: bytes sent, counted across
   * the entries; may be partial. Needs BRRR_CAP_SENDMSG. */
  BRRR_OP_SENDMSG = 7
};

/* Operation flags. */
/* ACCEPT, RECV: stay armed and complete once per connection / per chunk received, each such
 * completion flagged BRRR_COMPLETION_MORE, until cancelled or an error or end of stream ends
 * it (that last completion is the final one). Needs BRRR_CAP_MULTISHOT. */
#define BRRR_OP_MULTISHOT (1u << 0)
/* RECV: receive into a buffer of the provided pool instead of buf. */
#define BRRR_OP_BUFFER_SELECT (1u << 1)

/* One operation. submit() copies the struct; buf must stay valid until the final completion. */
typedef struct brrr_op {
  uint64_t user_data; /* echoed in every completion; unique among the reactor's live ops */
  uint32_t opcode;    /* BRRR_OP_* */
  uint32_t flags;     /* BRRR_OP_MULTISHOT | BRRR_OP_BUFFER_SELECT */
  int32_t fd;
  uint32_t len;
  void* buf; /* BORROWED until the final completion */
} brrr_op;

/* Completion flags. */
#define BRRR_COMPLETION_MORE (1u << 0)   /* not the final completion of this operation */
#define BRRR_COMPLETION_BUFFER (1u << 1) /* buffer_id names a provided buffer holding the data;
                                            the runtime owns it until recycle_buffer() */

typedef struct brrr_completion {
  uint64_t user_data;
  int32_t result; /* >= 0 success (see the opcode), -errno failure, -ECANCELED after cancel */
  uint32_t flags; /* BRRR_COMPLETION_* */
  uint32_t buffer_id;
  uint32_t reserved;
} brrr_completion;

/* The most buffers provide_buffers() takes, on every backend (io_uring's buffer ring holds at
 * most 32768 entries). */
#define BRRR_MAX_PROVIDED_BUFFERS 32768u

/* Capability flags in brrr_reactor_plugin.capabilities. */
#define BRRR_CAP_MULTISHOT (1u << 0)        /* BRRR_OP_MULTISHOT on ACCEPT and RECV */
#define BRRR_CAP_PROVIDED_BUFFERS (1u << 1) /* provide_buffers() and BRRR_OP_BUFFER_SELECT */
#define BRRR_CAP_NATIVE_OPS (1u << 2)       /* operations are kernel operations, not
                                               readiness plus a system call */
#define BRRR_CAP_SENDMSG (1u << 3)          /* BRRR_OP_SENDMSG */

/* brrr_reactor_config.flags. A backend ignores the bits it does not know. */
/* The runtime promises that one thread makes every call but create(), destroy() and wake():
 * the thread of the first wait(), for the reactor's whole life. A backend may then tie kernel
 * state to that thread (io_uring: SINGLE_ISSUER | DEFER_TASKRUN); before that first wait()
 * it may only queue what submit() is given, and starts it then (io_uring keeps what its
 * submission queue cannot hold: submit() takes any number of operations before that wait).
 * destroy() may still come from any thread, and keeps its promise there. */
#define BRRR_REACTOR_ONE_THREAD (1u << 0)

typedef struct brrr_reactor_config {
  uint32_t struct_size; /* sizeof(brrr_reactor_config) as the runtime compiled it */
  uint32_t queue_depth; /* hint: operations in flight at once (io_uring ring size) */
  uint32_t flags;       /* BRRR_REACTOR_* above; 0 before BRRR_REACTOR_ONE_THREAD */
  uint32_t reserved;
} brrr_reactor_config;

/* Counters for benchmarks and the admin plane; all monotonic. */
typedef struct brrr_reactor_counters {
  uint64_t waits;      /* wait() calls that entered the kernel */
  uint64_t syscalls;   /* system calls the backend made (io_uring_enter, epoll_wait, recv...) */
  uint64_t submitted;  /* operations accepted by submit() */
  uint64_t completed;  /* completions returned by wait() */
  /* Kernel receives that filled several provided buffers at once (io_uring's receive
   * bundles), each delivered as one completion per buffer; 0 on backends without them.
   * Added in place of a reserved field: a plugin built before it leaves 0 here. */
  uint64_t recv_bundles;
  uint64_t reserved[3];
} brrr_reactor_counters;

typedef struct brrr_reactor_plugin {
  uint32_t abi_version; /* BRRR_REACTOR_ABI_VERSION the plugin was built with */
  uint32_t struct_size; /* sizeof(brrr_reactor_plugin) as the plugin compiled it */
  const char* name;     /* short name: "epoll". Static storage. */
  const char* description; /* one line for listings. Static storage. */
  uint64_t capabilities;   /* BRRR_CAP_* */
  int32_t max_fd;          /* highest descriptor the backend can watch, or -1 for no limit */
  uint32_t reserved0;

  /* Creates an instance. On success returns 0 and stores it in *out (OWNED by the caller,
   * released with destroy). On failure returns -errno and writes a NUL-terminated reason
   * (what failed and, when known, why: "io_uring_setup: Operation not permitted: io_uring is
   * disabled (sysctl kernel.io_uring_disabled=2)") into err, a caller-owned buffer of
   * err_size bytes. */
  int (*create)(const brrr_reactor_config* config, brrr_reactor** out, char* err, size_t err_size);

  /* Cancels every live operation and frees the instance. When it returns, no buffer given to
   * the backend (op buffers, provided buffers) will be touched again. No completions are
   * delivered for the cancelled operations. */
  void (*destroy)(brrr_reactor* reactor);

  /* Starts an operation. 0 on success (a final completion will follow), else -errno and
   * nothing was started: -EBUSY (a same-side op is in flight on fd), -EINVAL (bad opcode or
   * flags), -ERANGE (fd above max_fd), -ENOMEM. */
  int (*submit)(brrr_reactor* reactor, const brrr_op* op);

  /* Asks the live operation on fd with this user_data to stop. 0: its final completion will
   * follow (-ECANCELED, or its result if it had already finished). -ENOENT: no such live op. */
  int (*cancel)(brrr_reactor* reactor, int fd, uint64_t user_data);

  /* Waits for completions, stores up to max_completions of them into out (caller-owned), and
   * returns how many, or -errno. timeout_ns: -1 waits until something completes or wake() is
   * called; 0 does not block. Returns 0 on timeout and after wake(). */
  int (*wait)(brrr_reactor* reactor, brrr_completion* out, int max_completions,
              int64_t timeout_ns);

  /* THREAD-SAFE, async-signal-safe. Makes the current or the next wait() return. */
  int (*wake)(brrr_reactor* reactor);

  /* Tells the backend that fd is about to be closed: it drops what it kept for it. The runtime
   * calls it only when fd has no live operation (-EBUSY otherwise). */
  int (*release_fd)(brrr_reactor* reactor, int fd);

  /* Gives the backend a pool of count buffers of size bytes each, laid out back to back from
   * base (BORROWED until destroy). Buffer ids are 0..count-1; each starts owned by the backend.
   * Once. -ENOTSUP without BRRR_CAP_PROVIDED_BUFFERS; -EINVAL for a count of 0 or past
   * BRRR_MAX_PROVIDED_BUFFERS. */
  int (*provide_buffers)(brrr_reactor* reactor, void* base, uint32_t size, uint32_t count);

  /* Returns a buffer that a BRRR_COMPLETION_BUFFER completion handed to the runtime. */
  void (*recycle_buffer)(brrr_reactor* reactor, uint32_t buffer_id);

  /* Copies the instance's counters into *out (caller-owned). */
  void (*counters)(const brrr_reactor* reactor, brrr_reactor_counters* out);

  /* OPTIONAL (NULL when the backend has none). Sends up to len bytes of buf on fd now,
   * without an operation: no completion follows, and buf is not kept. Returns the bytes sent
   * (> 0), or -EAGAIN when the bytes should go as a SEND op instead: the socket takes nothing
   * now (the op waits for room), or the backend would rather batch it (io_uring sends at once
   * only on a quiet loop: see reactors/io_uring); -EBUSY when a write-side operation is in
   * flight on fd, -ERANGE (fd above max_fd), or the send's -errno. Never raises SIGPIPE. For
   * len 0 it returns 0 without a system call. */
  int (*try_send)(brrr_reactor* reactor, int fd, const void* buf, uint32_t len);
} brrr_reactor_plugin;

/* The entry point's type. Returns a table with static storage duration; never NULL. */
typedef const brrr_reactor_plugin* (*brrr_reactor_entry_fn)(void);

/* ---- Helpers every backend shares, so that all of them judge an op alike ---- */

/* Whether submit() must take `op`: 0, or the -errno submit() returns. `has_buffers`: whether
 * provide_buffers() succeeded. (Backend-specific limits, such as select's max_fd, come on
 * top.) */
static inline int brrr_op_check(const brrr_op* op, int has_buffers) {
  if (op->fd < 0) return -EBADF;
  if (op->flags & ~(uint32_t)(BRRR_OP_MULTISHOT | BRRR_OP_BUFFER_SELECT)) return -EINVAL;
  switch (op->opcode) {
    case BRRR_OP_ACCEPT:
      return (op->flags & BRRR_OP_BUFFER_SELECT) ? -EINVAL : 0;
    case BRRR_OP_RECV:
      if (op->flags & BRRR_OP_BUFFER_SELECT) return has_buffers ? 0 : -ENOBUFS;
      /* Multishot into one caller buffer would overwrite data the runtime has not read. */
      if (op->flags & BRRR_OP_MULTISHOT) return -EINVAL;
      return op->buf != NULL || op->len == 0 ? 0 : -EFAULT;
    case BRRR_OP_SEND:
    case BRRR_OP_CONNECT:
      if (op->flags) return -EINVAL;
      return op->buf != NULL || op->len == 0 ? 0 : -EFAULT;
    case BRRR_OP_SENDMSG:
      if (op->flags || op->len != 0) return -EINVAL;
      return op->buf != NULL ? 0 : -EFAULT;
    case BRRR_OP_POLL_READABLE:
    case BRRR_OP_POLL_WRITABLE:
      return op->flags ? -EINVAL : 0;
    default:
      return -EINVAL;
  }
}

/* Whether an opcode takes a descriptor's read side (one at a time) or its write side. */
static inline int brrr_op_is_read_side(uint32_t opcode) {
  return opcode == BRRR_OP_ACCEPT || opcode == BRRR_OP_RECV || opcode == BRRR_OP_POLL_READABLE;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BRRR_RUNTIME_REACTOR_ABI_H_ */
