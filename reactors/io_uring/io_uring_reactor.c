/*
 * io_uring_reactor.c: the io_uring(7) backend, on liburing.
 *
 * Native operations. Every brrr operation is one kernel request: ACCEPT is IORING_OP_ACCEPT
 * (multishot with IORING_ACCEPT_MULTISHOT), RECV is IORING_OP_RECV (multishot with
 * IORING_RECV_MULTISHOT, picking buffers from a registered provided-buffer ring), SEND and
 * SENDMSG are IORING_OP_SEND and IORING_OP_SENDMSG with MSG_NOSIGNAL (the kernel reads the
 * caller's msghdr, which stays valid until the final completion, whenever it (re)issues the
 * request), CONNECT is IORING_OP_CONNECT and the two waits are IORING_OP_POLL_ADD. The kernel
 * waits for readiness and performs the system call itself, so an echo server costs one
 * io_uring_enter per loop iteration however many sockets move.
 *
 * Batching. submit() only fills a submission queue entry (SQE); the ring is flushed with
 * io_uring_submit() only when the submission queue is full. wait() hands everything queued to
 * the kernel and waits in the same system call (io_uring_submit_and_wait[_timeout], or
 * io_uring_submit_and_get_events for a wait that must not block). Completions are read
 * straight from the shared completion queue (CQ) ring; when the caller's array is full the
 * rest stay in the ring for the next wait(), so none is ever lost (every CQE yields at most
 * one brrr completion). When wait() already has completions to return it does not block, but
 * still submits what is queued so that new operations start at once.
 *
 * The op table and SQE user_data. brrr's user_data is an arbitrary 64-bit value, so the
 * kernel never sees it: each live operation has a slot in a growable table holding its
 * record (user_data, opcode, flags, fd, buf/len or the connect address, state), and its
 * kernel requests carry our own encoding (as liburing's examples/echo-server.c packs its
 * request type and descriptor into the CQE user_data):
 *
 *    63        56 55                       32 31                              0
 *   +------------+---------------------------+--------------------------------+
 *   |    kind    |  generation (24 bits)     |  op slot (32 bits)             |
 *   +------------+---------------------------+--------------------------------+
 *   kind 1 (UR_KIND_OP):     the operation in the slot (its accept/recv/send/connect/poll,
 *                            or the POLL_ADD of the -EAGAIN fallback below)
 *   kind 2 (UR_KIND_CANCEL): an IORING_OP_ASYNC_CANCEL we issued; its CQE is never
 *                            delivered. Slot 0xffffffff: the IORING_ASYNC_CANCEL_ANY of
 *                            destroy().
 *   kind 3 (UR_KIND_WAKE):   the read of the wake-up eventfd; never delivered.
 *   anything else (liburing's LIBURING_UDATA_TIMEOUT, all ones): ignored.
 * The generation is bumped whenever a slot is freed, so a cancel aimed at an operation that
 * finished meanwhile can never hit the slot's next occupant. A slot is freed only after the
 * kernel posted the last CQE of the operation (one without IORING_CQE_F_MORE), so a live
 * operation always has exactly one kernel request queued or in flight.
 *
 * Multishot. A CQE with IORING_CQE_F_MORE becomes a completion with BRRR_COMPLETION_MORE. The
 * kernel may also end a multishot request on its own while the brrr operation should go on
 * (it delivered a connection or data without F_MORE, e.g. after a CQ overflow): the backend
 * then re-arms the request and still flags the completion MORE. What ends a multishot
 * operation: cancel() (-ECANCELED, or the data that won the race, as the final completion),
 * end of stream (recv 0), -ENOBUFS when the buffer ring ran dry, any other error. Accept
 * errors that concern one dead connection (ECONNABORTED, EPROTO, EPERM) and EINTR re-arm
 * silently, as the readiness core retries them.
 *
 * Provided buffers use a buffer ring (io_uring_register_buf_ring, Linux 5.19), group 0. A CQE
 * with IORING_CQE_F_BUFFER names the buffer (cqe->flags >> IORING_CQE_BUFFER_SHIFT); with
 * data it is handed to the runtime (BRRR_COMPLETION_BUFFER) until recycle_buffer() returns
 * it; without data (end of stream, error) it comes back at once. The ring is a FIFO: a buffer
 * put on it is used again only after every other buffer on it. With the whole pool on the
 * ring (1,024 x 16 KiB) every receive would write to the buffer touched longest ago, 16 MiB
 * of memory cycling through the cache; 64 KiB messages ran at 0.6x of what they run at with
 * a 64-buffer pool. So only a hot part of the pool is on the ring: enough for the receives
 * armed on it (UR_RING_PER_RECV each, at least UR_RING_MIN, at most the pool); the rest wait
 * on a stack, and buffers that come back go on top of it and onto the ring first.
 *
 * Fallbacks, probed at create(): io_uring_get_probe_ring() must report ACCEPT, CONNECT, SEND,
 * RECV, POLL_ADD, ASYNC_CANCEL and READ (Linux 5.6). Multishot accept and
 * IORING_ASYNC_CANCEL_ANY came with IORING_OP_SOCKET (5.19), multishot recv with
 * IORING_OP_SEND_ZC (6.0); the buffer ring is probed by registering a small one. Without
 * native multishot the backend emulates it by re-arming a single-shot request after each
 * completion (flagged MORE all the same); a native multishot request that the kernel rejects
 * with -EINVAL before its first shot is retried the same way, and the feature is dropped for
 * the reactor once the single shot works. Without the buffer ring provide_buffers() returns
 * -ENOTSUP. Older kernels may return -EAGAIN for a socket operation (an O_NONBLOCK socket
 * punted to io-wq, kernels without IORING_FEAT_FAST_POLL) or -EINPROGRESS/-EALREADY for a
 * connect: the backend then arms a POLL_ADD under the same user_data and retries the
 * operation (or, for a connect, reads SO_ERROR) when the descriptor is ready.
 *
 * Ring setup. The SQ has config->queue_depth entries (default 256, at most 4096), the CQ four
 * times as many (IORING_SETUP_CQSIZE), with IORING_SETUP_COOP_TASKRUN (5.19: no IPI to run
 * completion work) and IORING_SETUP_SUBMIT_ALL (5.18); flags the kernel rejects with -EINVAL
 * are dropped, newest first. Not SINGLE_ISSUER or DEFER_TASKRUN: a reactor may be created on
 * one thread and then run by another. io_uring_setup(2) names "the thread that waits is not
 * the one that submitted" as COOP_TASKRUN's exception (completion work that runs as
 * task_work of the submitting thread waits until that thread enters the kernel); checked on
 * 6.18, a socket request whose submitting thread then sleeps completes at once for another
 * thread's wait, IORING_SQ_TASKRUN never raised. create() queues the wake-up read without
 * submitting it, so creating a reactor leaves no request tied to the creating thread. Without
 * CAP_IPC_LOCK the rings count against RLIMIT_MEMLOCK, per user and across processes, and a
 * closed ring's share is released asynchronously: on -ENOMEM create() halves the ring down to
 * 32 entries, then pauses briefly (5 to 80 ms, five times) before it gives up.
 *
 * Cancellation. cancel() queues an IORING_OP_ASYNC_CANCEL keyed on the request's user_data
 * (with IOSQE_CQE_SKIP_SUCCESS where supported, so a successful cancel posts nothing). The
 * operation's own final CQE follows: -ECANCELED, or its real result if it had finished; the
 * backend never re-arms a cancelled operation. Cancelling twice is harmless (0, no second
 * request). If no SQE can be had, the cancel is remembered and issued by the next wait().
 *
 * Wake-up. The ring always has an IORING_OP_READ of an eventfd queued or in flight; wake()
 * writes 1 to it (thread-safe and async-signal-safe), the read completes, wait() returns, and
 * the read is re-armed. The eventfd is blocking: a read of an O_NONBLOCK file would fail
 * with -EAGAIN instead of waiting. Its counter cannot reach the limit at which write blocks.
 *
 * destroy() cancels everything (one IORING_ASYNC_CANCEL_ANY, or one cancel per operation),
 * completes the eventfd read, and reaps until every operation's last CQE has arrived (so no
 * buffer is touched afterwards; bounded to 10 s, re-issuing cancels every second), closing
 * descriptors that accepts produced meanwhile. Then it unregisters the buffer ring and exits
 * the ring. Nothing is delivered for those operations.
 *
 * Counters: `syscalls` counts io_uring_enter calls (submit flushes, waits), io_uring_register
 * calls after create(), and the getsockopt of the connect fallback; wake()'s eventfd write is
 * not counted (it runs on other threads).
 *
 * Threads: one thread at a time (the loop), except wake(). Ownership: the reactor owns the
 * ring, the eventfd, its tables and the buffer ring's memory; op buffers and the provided
 * buffer pool are borrowed.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "runtime/reactor_abi.h"

/* ---- SQE user_data encoding (see the header comment) ---- */
#define UR_KIND_SHIFT 56
#define UR_GEN_SHIFT 32
#define UR_GEN_MASK 0xffffffu
#define UR_KIND_OP 1u
#define UR_KIND_CANCEL 2u
#define UR_KIND_WAKE 3u
#define UR_SLOT_ANY 0xffffffffu /* cancel slot: the CANCEL_ANY of destroy() */

/* Op table limits: slot indexes stay below UR_SLOT_ANY. */
#define UR_NO_SLOT 0xffffffffu
#define UR_MAX_SLOTS (1u << 30)

#define UR_DEFAULT_DEPTH 256u
#define UR_MIN_DEPTH 8u
#define UR_MAX_DEPTH 4096u
#define UR_BGID 0
#define UR_MAX_BUFFERS 32768u /* a buffer ring holds at most 32768 entries */
#define UR_RING_MIN 64u       /* buffers on the ring at least (if the pool has them) */
#define UR_RING_PER_RECV 4u   /* ... and this many per armed buffer-select receive */

/* create() on -ENOMEM: halve the ring down to this, then pause 5, 10, 20, 40, 80 ms. */
#define UR_ENOMEM_MIN_DEPTH 32u
#define UR_ENOMEM_RETRIES 5
#define UR_ENOMEM_FIRST_PAUSE_NS 5000000L

/* destroy(): how long to wait for the kernel to finish the cancelled operations. */
#define UR_DRAIN_STEP_NS 100000000LL /* 100 ms per wait */
#define UR_DRAIN_STEPS 100           /* 10 s in all */
#define UR_DRAIN_RECANCEL 10         /* re-issue cancels every 1 s */

/* ur_op.state bits. */
#define UR_ST_CANCEL 0x01u     /* cancel() was called: never re-arm, the next end is final */
#define UR_ST_CANCEL_SQE 0x02u /* the cancel still needs its SQE (the SQ was full) */
#define UR_ST_NATIVE_MS 0x04u  /* the kernel request is a native multishot */
#define UR_ST_EMULATE 0x08u    /* emulate multishot: re-arm single shots */
#define UR_ST_PROBING 0x10u    /* a single shot after native multishot said -EINVAL */
#define UR_ST_POLLING 0x20u    /* the kernel request is the POLL_ADD of the -EAGAIN fallback */
#define UR_ST_SHOT 0x40u       /* the native multishot request delivered at least once */

/* One operation: a slot of the op table. */
typedef struct ur_op {
  uint64_t user_data; /* the runtime's */
  void* buf;          /* recv/send data, or the connect address */
  uint32_t len;
  int32_t fd;
  uint32_t gen;       /* generation, bumped when the slot is freed */
  uint32_t next_free; /* free list link while the slot is free */
  uint8_t opcode;     /* BRRR_OP_*; 0 while the slot is free */
  uint8_t flags;      /* BRRR_OP_* */
  uint8_t state;      /* UR_ST_* */
} ur_op;

/* The operations in flight on one descriptor: slot + 1, 0 for none. */
typedef struct ur_fd {
  uint32_t read_slot;
  uint32_t write_slot;
} ur_fd;

struct brrr_reactor {
  struct io_uring ring;
  int ring_ready; /* io_uring_queue_init succeeded */
  int wake_fd;
  uint64_t wake_value; /* target of the eventfd read */
  uint8_t wake_armed;  /* the eventfd read is queued or in flight */
  uint8_t woken;       /* wait(): a wake-up arrived */
  uint8_t destroying;

  /* What the kernel supports (probed at create()). */
  uint8_t ms_accept;
  uint8_t ms_recv;
  uint8_t buf_ring_ok;
  uint8_t cancel_any;
  uint8_t cqe_skip;

  ur_op* ops;
  uint32_t op_capacity;
  uint32_t free_head; /* UR_NO_SLOT when empty */
  uint32_t live;
  uint32_t cancels_owed; /* ops with UR_ST_CANCEL_SQE */
  int submit_error;      /* last io_uring_submit failure while looking for an SQE */

  ur_fd* fds; /* indexed by descriptor */
  size_t fd_count;

  /* Provided buffers: the pool and its ring. */
  struct io_uring_buf_ring* br;
  size_t br_bytes;
  uint32_t br_mask;
  uint8_t* buf_base;
  uint32_t buf_size;
  uint32_t buf_count;
  uint8_t* buf_out; /* 1 while the runtime holds the buffer */
  uint32_t* spare;  /* ids neither on the ring nor with the runtime; the top is the hottest */
  uint32_t spare_count;
  uint32_t on_ring;      /* ids on the ring (the kernel has not picked them yet) */
  uint32_t select_recvs; /* live RECV ops with BRRR_OP_BUFFER_SELECT */

  brrr_reactor_counters counters;
};

/* ---- small helpers ---- */

static uint64_t encode(uint32_t kind, uint32_t gen, uint32_t slot) {
  return ((uint64_t)kind << UR_KIND_SHIFT) | ((uint64_t)(gen & UR_GEN_MASK) << UR_GEN_SHIFT) |
         (uint64_t)slot;
}

static uint64_t op_key(const brrr_reactor* r, uint32_t slot) {
  return encode(UR_KIND_OP, r->ops[slot].gen, slot);
}

/* Errors accept reports for one dead connection; the listener itself is fine. */
static int is_per_connection_accept_error(int error) {
  return error == ECONNABORTED || error == EPROTO || error == EPERM;
}

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Writes "what: strerror(-error)" and, when given, " (why)" into err. Returns error. */
static int fail(char* err, size_t err_size, const char* what, int error, const char* why) {
  if (err != NULL && err_size > 0) {
    if (why != NULL) {
      snprintf(err, err_size, "%s: %s (%s)", what, strerror(-error), why);
    } else {
      snprintf(err, err_size, "%s: %s", what, strerror(-error));
    }
  }
  return error;
}

/* ---- submission queue ---- */

/* An SQE, flushing the queue to the kernel when it is full. NULL if the kernel takes none. */
static struct io_uring_sqe* get_sqe(brrr_reactor* r) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&r->ring);
  if (sqe != NULL) return sqe;
  r->counters.syscalls++;
  int rc = io_uring_submit(&r->ring);
  r->submit_error = rc < 0 ? rc : 0;
  if (rc < 0) return NULL;
  return io_uring_get_sqe(&r->ring);
}

/* Queues the read of the wake-up eventfd. 0 or -ENOMEM (no SQE). */
static int arm_wake(brrr_reactor* r) {
  struct io_uring_sqe* sqe = get_sqe(r);
  if (sqe == NULL) return -ENOMEM;
  io_uring_prep_read(sqe, r->wake_fd, &r->wake_value, sizeof r->wake_value, 0);
  io_uring_sqe_set_data64(sqe, encode(UR_KIND_WAKE, 0, 0));
  r->wake_armed = 1;
  return 0;
}

/* ---- the op table ---- */

static int op_alloc(brrr_reactor* r, uint32_t* out) {
  if (r->free_head == UR_NO_SLOT) {
    uint32_t capacity = r->op_capacity ? r->op_capacity * 2 : 64;
    if (capacity > UR_MAX_SLOTS) return -ENOMEM;
    ur_op* ops = realloc(r->ops, (size_t)capacity * sizeof *ops);
    if (ops == NULL) return -ENOMEM;
    for (uint32_t i = r->op_capacity; i < capacity; i++) {
      memset(&ops[i], 0, sizeof ops[i]);
      ops[i].next_free = i + 1 < capacity ? i + 1 : UR_NO_SLOT;
    }
    r->ops = ops;
    r->free_head = r->op_capacity;
    r->op_capacity = capacity;
  }
  uint32_t slot = r->free_head;
  r->free_head = r->ops[slot].next_free;
  *out = slot;
  return 0;
}

static ur_fd* fd_entry(brrr_reactor* r, int fd) {
  if (fd < 0) return NULL;
  if ((size_t)fd >= r->fd_count) {
    size_t count = r->fd_count ? r->fd_count : 256;
    while (count <= (size_t)fd) count *= 2;
    ur_fd* fds = realloc(r->fds, count * sizeof *fds);
    if (fds == NULL) return NULL;
    memset(fds + r->fd_count, 0, (count - r->fd_count) * sizeof *fds);
    r->fds = fds;
    r->fd_count = count;
  }
  return &r->fds[fd];
}

static ur_fd* existing_fd_entry(brrr_reactor* r, int fd) {
  if (fd < 0 || (size_t)fd >= r->fd_count) return NULL;
  return &r->fds[fd];
}

/* Frees a slot whose kernel request has ended, releasing its side of the descriptor. */
static void op_free(brrr_reactor* r, uint32_t slot) {
  ur_op* o = &r->ops[slot];
  ur_fd* e = existing_fd_entry(r, o->fd);
  if (e != NULL) {
    if (e->read_slot == slot + 1) e->read_slot = 0;
    if (e->write_slot == slot + 1) e->write_slot = 0;
  }
  if (o->state & UR_ST_CANCEL_SQE) r->cancels_owed--;
  if (o->opcode == BRRR_OP_RECV && (o->flags & BRRR_OP_BUFFER_SELECT)) r->select_recvs--;
  o->opcode = 0;
  o->state = 0;
  o->gen = (o->gen + 1) & UR_GEN_MASK;
  o->next_free = r->free_head;
  r->free_head = slot;
  r->live--;
}

/* ---- provided buffers ---- */

/* Moves spare buffers, hottest first, onto the ring until it holds what the armed receives
 * may need (see the header comment). */
static void ring_top_up(brrr_reactor* r) {
  uint32_t want = UR_RING_MIN;
  if (r->select_recvs > want / UR_RING_PER_RECV) want = r->select_recvs * UR_RING_PER_RECV;
  if (want > r->buf_count) want = r->buf_count;
  int added = 0;
  while (r->on_ring < want && r->spare_count > 0) {
    uint32_t id = r->spare[--r->spare_count];
    io_uring_buf_ring_add(r->br, r->buf_base + (size_t)id * r->buf_size, r->buf_size,
                          (unsigned short)id, (int)r->br_mask, added++);
    r->on_ring++;
  }
  if (added > 0) io_uring_buf_ring_advance(r->br, added);
}

/* A buffer is back from the kernel (no data) or the runtime. */
static void buffer_returned(brrr_reactor* r, uint32_t id) {
  r->spare[r->spare_count++] = id;
  ring_top_up(r);
}

/* ---- arming kernel requests ---- */

/* May this op's RECV be a native multishot request? The kernel's multishot recv takes no
 * length (before 6.10), so an op that caps the length below the buffer size is emulated. */
static int recv_can_multishot(const brrr_reactor* r, const ur_op* o) {
  return r->ms_recv && (o->flags & BRRR_OP_BUFFER_SELECT) &&
         (o->len == 0 || o->len >= r->buf_size);
}

/* Queues the op's kernel request (again). 0, or -ENOMEM when no SQE can be had. */
static int arm_op(brrr_reactor* r, uint32_t slot) {
  ur_op* o = &r->ops[slot];
  struct io_uring_sqe* sqe = get_sqe(r);
  if (sqe == NULL) return -ENOMEM;
  int multishot = (o->flags & BRRR_OP_MULTISHOT) && !(o->state & UR_ST_EMULATE);
  o->state &= (uint8_t) ~(UR_ST_NATIVE_MS | UR_ST_SHOT | UR_ST_POLLING);
  switch (o->opcode) {
    case BRRR_OP_ACCEPT:
      if (multishot && r->ms_accept) {
        io_uring_prep_multishot_accept(sqe, o->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        o->state |= UR_ST_NATIVE_MS;
      } else {
        io_uring_prep_accept(sqe, o->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      }
      break;
    case BRRR_OP_RECV:
      if (o->flags & BRRR_OP_BUFFER_SELECT) {
        if (multishot && recv_can_multishot(r, o)) {
          io_uring_prep_recv_multishot(sqe, o->fd, NULL, 0, 0);
          o->state |= UR_ST_NATIVE_MS;
        } else {
          io_uring_prep_recv(sqe, o->fd, NULL, o->len, 0); /* 0 or above: the buffer's size */
        }
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = UR_BGID;
      } else {
        io_uring_prep_recv(sqe, o->fd, o->buf, o->len, 0);
      }
      break;
    case BRRR_OP_SEND:
      io_uring_prep_send(sqe, o->fd, o->buf, o->len, MSG_NOSIGNAL);
      break;
    case BRRR_OP_SENDMSG:
      io_uring_prep_sendmsg(sqe, o->fd, (const struct msghdr*)o->buf, MSG_NOSIGNAL);
      break;
    case BRRR_OP_CONNECT:
      io_uring_prep_connect(sqe, o->fd, (const struct sockaddr*)o->buf, (socklen_t)o->len);
      break;
    case BRRR_OP_POLL_READABLE:
      io_uring_prep_poll_add(sqe, o->fd, POLLIN | POLLRDHUP);
      break;
    case BRRR_OP_POLL_WRITABLE:
      io_uring_prep_poll_add(sqe, o->fd, POLLOUT);
      break;
    default:
      io_uring_prep_nop(sqe); /* unreachable: submit() validated the opcode */
      break;
  }
  io_uring_sqe_set_data64(sqe, op_key(r, slot));
  return 0;
}

/* The -EAGAIN fallback: waits for the op's direction with POLL_ADD under the op's key. */
static int arm_poll_fallback(brrr_reactor* r, uint32_t slot) {
  ur_op* o = &r->ops[slot];
  struct io_uring_sqe* sqe = get_sqe(r);
  if (sqe == NULL) return -ENOMEM;
  unsigned mask = brrr_op_is_read_side(o->opcode) ? (POLLIN | POLLRDHUP) : POLLOUT;
  io_uring_prep_poll_add(sqe, o->fd, mask);
  io_uring_sqe_set_data64(sqe, op_key(r, slot));
  o->state &= (uint8_t) ~(UR_ST_NATIVE_MS | UR_ST_SHOT);
  o->state |= UR_ST_POLLING;
  return 0;
}

/* Queues an ASYNC_CANCEL for the op's kernel request. 0 or -ENOMEM. */
static int queue_cancel(brrr_reactor* r, uint32_t slot) {
  struct io_uring_sqe* sqe = get_sqe(r);
  if (sqe == NULL) return -ENOMEM;
  io_uring_prep_cancel64(sqe, op_key(r, slot), 0);
  io_uring_sqe_set_data64(sqe, encode(UR_KIND_CANCEL, r->ops[slot].gen, slot));
  if (r->cqe_skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  return 0;
}

/* Issues the cancels that found the SQ full. */
static void pay_owed_cancels(brrr_reactor* r) {
  for (uint32_t slot = 0; slot < r->op_capacity && r->cancels_owed > 0; slot++) {
    ur_op* o = &r->ops[slot];
    if (o->opcode == 0 || !(o->state & UR_ST_CANCEL_SQE)) continue;
    if (queue_cancel(r, slot) != 0) return;
    o->state &= (uint8_t)~UR_ST_CANCEL_SQE;
    r->cancels_owed--;
  }
}

/* ---- turning CQEs into completions ---- */

static int emit(brrr_completion* out, const ur_op* o, int32_t result, uint32_t flags,
                uint32_t buffer_id) {
  out->user_data = o->user_data;
  out->result = result;
  out->flags = flags;
  out->buffer_id = buffer_id;
  out->reserved = 0;
  return 1;
}

/* The final completion: emitted, then the slot is freed. */
static int finish(brrr_reactor* r, uint32_t slot, brrr_completion* out, int32_t result,
                  uint32_t flags, uint32_t buffer_id) {
  emit(out, &r->ops[slot], result, flags & ~BRRR_COMPLETION_MORE, buffer_id);
  op_free(r, slot);
  return 1;
}

/* A result (with data, or an accepted descriptor) of a request that ended while the op goes
 * on (multishot, not cancelled): re-arm and flag it MORE; if re-arming fails it is final. */
static int continue_or_finish(brrr_reactor* r, uint32_t slot, brrr_completion* out,
                              int32_t result, uint32_t flags, uint32_t buffer_id) {
  ur_op* o = &r->ops[slot];
  if ((o->flags & BRRR_OP_MULTISHOT) && !(o->state & UR_ST_CANCEL) && arm_op(r, slot) == 0) {
    return emit(out, o, result, flags | BRRR_COMPLETION_MORE, buffer_id);
  }
  return finish(r, slot, out, result, flags, buffer_id);
}

/* A request ended with an error that says "try again" (EINTR, EAGAIN, per-connection accept
 * errors...). Unless cancelled, retry (via poll for EAGAIN): 0 completions. Cancelled, or if
 * retrying fails: the final completion. */
static int retry_or_finish(brrr_reactor* r, uint32_t slot, brrr_completion* out,
                           int32_t result, int via_poll) {
  ur_op* o = &r->ops[slot];
  if (o->state & UR_ST_CANCEL) return finish(r, slot, out, -ECANCELED, 0, 0);
  int rc = via_poll ? arm_poll_fallback(r, slot) : arm_op(r, slot);
  return rc == 0 ? 0 : finish(r, slot, out, result, 0, 0);
}

/* Native multishot rejected before its first shot: maybe the kernel lacks it. Retry the op
 * as emulated single shots; the first single shot that works settles it (see on_success). */
static int try_emulation(brrr_reactor* r, uint32_t slot, brrr_completion* out, int32_t res) {
  ur_op* o = &r->ops[slot];
  o->state |= UR_ST_EMULATE | UR_ST_PROBING;
  if (arm_op(r, slot) == 0) return 0;
  return finish(r, slot, out, res, 0, 0);
}

/* A single shot after a native-multishot -EINVAL worked: the kernel lacks the feature. */
static void settle_probe(brrr_reactor* r, ur_op* o, int worked) {
  if (!(o->state & UR_ST_PROBING)) return;
  o->state &= (uint8_t)~UR_ST_PROBING;
  if (!worked) return;
  if (o->opcode == BRRR_OP_ACCEPT) r->ms_accept = 0;
  if (o->opcode == BRRR_OP_RECV) r->ms_recv = 0;
}

static int on_accept(brrr_reactor* r, uint32_t slot, int32_t res, int armed,
                     brrr_completion* out) {
  ur_op* o = &r->ops[slot];
  if (res >= 0) {
    o->state |= UR_ST_SHOT;
    settle_probe(r, o, 1);
    if (armed) return emit(out, o, res, BRRR_COMPLETION_MORE, 0);
    return continue_or_finish(r, slot, out, res, 0, 0);
  }
  if (armed) return 0; /* the kernel's multishot goes on (not expected with an error) */
  settle_probe(r, o, 0);
  int error = -res;
  if (!(o->state & UR_ST_CANCEL) && error == EINVAL && (o->state & UR_ST_NATIVE_MS) &&
      !(o->state & UR_ST_SHOT)) {
    return try_emulation(r, slot, out, res);
  }
  if (is_per_connection_accept_error(error) || error == EINTR) {
    return retry_or_finish(r, slot, out, res, 0);
  }
  if (error == EAGAIN) return retry_or_finish(r, slot, out, res, 1);
  return finish(r, slot, out, res, 0, 0);
}

static int on_recv(brrr_reactor* r, uint32_t slot, int32_t res, uint32_t cqe_flags, int armed,
                   brrr_completion* out) {
  ur_op* o = &r->ops[slot];
  if (res > 0) {
    uint32_t flags = 0;
    uint32_t id = 0;
    if (cqe_flags & IORING_CQE_F_BUFFER) {
      id = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
      if (id < r->buf_count) {
        r->buf_out[id] = 1;
        flags = BRRR_COMPLETION_BUFFER;
      }
    }
    o->state |= UR_ST_SHOT;
    settle_probe(r, o, 1);
    if (armed) return emit(out, o, res, flags | BRRR_COMPLETION_MORE, id);
    return continue_or_finish(r, slot, out, res, flags, id);
  }
  if (armed) return 0; /* the kernel never keeps a multishot recv after 0 or an error */
  settle_probe(r, o, res == 0);
  int error = -res;
  if (!(o->state & UR_ST_CANCEL) && error == EINVAL && (o->state & UR_ST_NATIVE_MS) &&
      !(o->state & UR_ST_SHOT)) {
    return try_emulation(r, slot, out, res);
  }
  if (error == EINTR) return retry_or_finish(r, slot, out, res, 0);
  if (error == EAGAIN) return retry_or_finish(r, slot, out, res, 1);
  return finish(r, slot, out, res, 0, 0); /* 0: end of stream; -ENOBUFS: the ring ran dry */
}

static int on_send(brrr_reactor* r, uint32_t slot, int32_t res, brrr_completion* out) {
  if (res == -EINTR) return retry_or_finish(r, slot, out, res, 0);
  if (res == -EAGAIN) return retry_or_finish(r, slot, out, res, 1);
  return finish(r, slot, out, res, 0, 0);
}

static int on_connect(brrr_reactor* r, uint32_t slot, int32_t res, brrr_completion* out) {
  /* Still connecting (older kernels hand EINPROGRESS back): wait for writability. */
  if (res == -EINPROGRESS || res == -EALREADY || res == -EAGAIN || res == -EINTR) {
    return retry_or_finish(r, slot, out, res, 1);
  }
  return finish(r, slot, out, res, 0, 0);
}

/* The POLL_ADD of the fallback fired: retry the op, or for a connect read its outcome. */
static int on_poll_fallback(brrr_reactor* r, uint32_t slot, int32_t res, brrr_completion* out) {
  ur_op* o = &r->ops[slot];
  o->state &= (uint8_t)~UR_ST_POLLING;
  if (res < 0) return finish(r, slot, out, res == -EINTR ? -ECANCELED : res, 0, 0);
  if (o->state & UR_ST_CANCEL) return finish(r, slot, out, -ECANCELED, 0, 0);
  if (o->opcode == BRRR_OP_CONNECT) {
    int so_error = 0;
    socklen_t size = sizeof so_error;
    r->counters.syscalls++;
    if (getsockopt(o->fd, SOL_SOCKET, SO_ERROR, &so_error, &size) != 0) so_error = errno;
    if (so_error == EINPROGRESS || so_error == EALREADY) {
      return retry_or_finish(r, slot, out, -so_error, 1);
    }
    return finish(r, slot, out, -so_error, 0, 0);
  }
  int rc = arm_op(r, slot);
  return rc == 0 ? 0 : finish(r, slot, out, rc, 0, 0);
}

/* A CQE of an operation during destroy(): nothing is delivered, descriptors are closed. */
static void on_op_cqe_destroying(brrr_reactor* r, uint32_t slot, int32_t res, int armed) {
  ur_op* o = &r->ops[slot];
  if (o->opcode == BRRR_OP_ACCEPT && res >= 0 && !(o->state & UR_ST_POLLING)) close(res);
  if (!armed) op_free(r, slot);
}

static int on_op_cqe(brrr_reactor* r, uint32_t slot, uint32_t gen, int32_t res,
                     uint32_t cqe_flags, brrr_completion* out) {
  if (slot >= r->op_capacity) return 0;
  ur_op* o = &r->ops[slot];
  if (o->opcode == 0 || o->gen != gen) return 0; /* cannot happen: slots outlive requests */
  int armed = (cqe_flags & IORING_CQE_F_MORE) != 0;
  if (cqe_flags & IORING_CQE_F_BUFFER) r->on_ring--;
  /* A provided buffer that carries no data comes straight back. */
  if ((cqe_flags & IORING_CQE_F_BUFFER) && (res <= 0 || r->destroying)) {
    uint32_t id = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
    if (!r->destroying && id < r->buf_count) buffer_returned(r, id);
    cqe_flags &= ~IORING_CQE_F_BUFFER;
  }
  if (r->destroying) {
    on_op_cqe_destroying(r, slot, res, armed);
    return 0;
  }
  if (o->state & UR_ST_POLLING) return on_poll_fallback(r, slot, res, out);
  switch (o->opcode) {
    case BRRR_OP_ACCEPT:
      return on_accept(r, slot, res, armed, out);
    case BRRR_OP_RECV:
      return on_recv(r, slot, res, cqe_flags, armed, out);
    case BRRR_OP_SEND:
    case BRRR_OP_SENDMSG:
      return on_send(r, slot, res, out);
    case BRRR_OP_CONNECT:
      return on_connect(r, slot, res, out);
    default: /* POLL_READABLE, POLL_WRITABLE: res is the poll mask */
      if (armed) return 0;
      return finish(r, slot, out, res >= 0 ? 0 : res, 0, 0);
  }
}

/* destroy(): cancels each live op on its own (no CANCEL_ANY, or it failed). */
static void cancel_each(brrr_reactor* r) {
  for (uint32_t slot = 0; slot < r->op_capacity; slot++) {
    if (r->ops[slot].opcode != 0) queue_cancel(r, slot);
  }
}

static void on_cancel_cqe(brrr_reactor* r, uint32_t slot, int32_t res) {
  /* The CANCEL_ANY of destroy() failed as an unknown flag: cancel one by one. */
  if (slot == UR_SLOT_ANY && res == -EINVAL && r->destroying) {
    r->cancel_any = 0;
    cancel_each(r);
  }
  /* Otherwise -ENOENT (the op had finished) or -EALREADY (it is finishing): its own CQE
   * follows or has arrived. Nothing to do. */
}

/* Turns one CQE into at most one completion. Returns how many it stored into *out. */
static int on_cqe(brrr_reactor* r, uint64_t user_data, int32_t res, uint32_t cqe_flags,
                  brrr_completion* out) {
  uint32_t kind = (uint32_t)(user_data >> UR_KIND_SHIFT);
  uint32_t gen = (uint32_t)(user_data >> UR_GEN_SHIFT) & UR_GEN_MASK;
  uint32_t slot = (uint32_t)user_data;
  switch (kind) {
    case UR_KIND_OP:
      return on_op_cqe(r, slot, gen, res, cqe_flags, out);
    case UR_KIND_CANCEL:
      on_cancel_cqe(r, slot, res);
      return 0;
    case UR_KIND_WAKE:
      r->wake_armed = 0;
      r->woken = 1;
      if (!r->destroying) arm_wake(r); /* on failure wait() re-arms before blocking */
      return 0;
    default: /* liburing's own timeout (kernels without IORING_FEAT_EXT_ARG) */
      return 0;
  }
}

/* The first unseen CQE, read from the shared ring without entering the kernel. */
static struct io_uring_cqe* peek_cqe(struct io_uring* ring) {
  unsigned head = *ring->cq.khead;
  unsigned tail = io_uring_smp_load_acquire(ring->cq.ktail);
  if (head == tail) return NULL;
  return &ring->cq.cqes[io_uring_cqe_index(ring, head, ring->cq.ring_mask)];
}

/* Consumes CQEs while `out` has room. Returns the completions stored. */
static int reap(brrr_reactor* r, brrr_completion* out, int max_completions) {
  int n = 0;
  struct io_uring_cqe* cqe;
  while (n < max_completions && (cqe = peek_cqe(&r->ring)) != NULL) {
    uint64_t user_data = cqe->user_data;
    int32_t res = cqe->res;
    uint32_t flags = cqe->flags;
    io_uring_cqe_seen(&r->ring, cqe);
    n += on_cqe(r, user_data, res, flags, &out[n]);
  }
  return n;
}

/* One io_uring_enter: submits everything queued and waits for one CQE, up to timeout_ns
 * (-1: no limit; 0: do not wait). 0 or more, or -errno (-ETIME on timeout). */
static int enter(brrr_reactor* r, int64_t timeout_ns) {
  r->counters.syscalls++;
  if (timeout_ns == 0) return io_uring_submit_and_get_events(&r->ring);
  if (timeout_ns < 0) return io_uring_submit_and_wait(&r->ring, 1);
  struct __kernel_timespec ts;
  ts.tv_sec = timeout_ns / 1000000000LL;
  ts.tv_nsec = timeout_ns % 1000000000LL;
  struct io_uring_cqe* cqe = NULL;
  return io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
}

/* ---- ABI entry points ---- */

/* Why io_uring_queue_init failed, when we can tell. */
static const char* explain_setup_error(int error, char* buf, size_t size) {
  switch (error) {
    case -EPERM: {
      FILE* f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
      int value = -1;
      if (f != NULL) {
        if (fscanf(f, "%d", &value) != 1) value = -1;
        fclose(f);
      }
      if (value == 2) {
        snprintf(buf, size, "io_uring is disabled: sysctl kernel.io_uring_disabled=2");
      } else if (value == 1) {
        snprintf(buf, size,
                 "io_uring is restricted to CAP_SYS_ADMIN and kernel.io_uring_group: sysctl "
                 "kernel.io_uring_disabled=1, or blocked by seccomp/container policy");
      } else if (value == 0) {
        snprintf(buf, size,
                 "sysctl kernel.io_uring_disabled=0, so blocked by seccomp/container policy");
      } else {
        snprintf(buf, size,
                 "io_uring is disabled: sysctl kernel.io_uring_disabled=N, or blocked by "
                 "seccomp/container policy");
      }
      return buf;
    }
    case -ENOSYS:
      return "the kernel has no io_uring (or seccomp blocks it)";
    case -ENOMEM: {
      struct rlimit limit;
      if (getrlimit(RLIMIT_MEMLOCK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        snprintf(buf, size,
                 "the rings' locked memory exceeds RLIMIT_MEMLOCK (ulimit -l: %llu KiB, shared "
                 "by all of this user's rings; closed rings are released asynchronously), or "
                 "out of memory",
                 (unsigned long long)(limit.rlim_cur / 1024));
        return buf;
      }
      return "out of memory";
    }
    case -EMFILE:
    case -ENFILE:
      return "out of file descriptors";
    case -EINVAL:
      return "the kernel rejected the ring parameters";
    default:
      return NULL;
  }
}

/* io_uring_queue_init with `entries`, dropping optional setup flags the kernel does not know
 * (newest first). 0 or -errno. */
static int init_ring(brrr_reactor* r, uint32_t entries) {
  static const uint32_t kAttempts[] = {
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE, /* 5.19 */
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,                             /* 5.18 */
      IORING_SETUP_CQSIZE,                                                       /* 5.5 */
      0,
  };
  int rc = -EINVAL;
  for (size_t i = 0; i < sizeof kAttempts / sizeof kAttempts[0]; i++) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = kAttempts[i];
    if (params.flags & IORING_SETUP_CQSIZE) params.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &r->ring, &params);
    if (rc != -EINVAL) break;
  }
  return rc;
}

/* Sets up the ring. -ENOMEM usually means RLIMIT_MEMLOCK: without CAP_IPC_LOCK the rings
 * count against it, per user and across processes, and the kernel releases a closed ring's
 * share asynchronously. So on -ENOMEM: smaller rings (the SQ only holds what is queued
 * between two waits; a CQ overflow is kept by the kernel), then a few short pauses. */
static int setup_ring(brrr_reactor* r, uint32_t depth, char* err, size_t err_size) {
  uint32_t entries = depth;
  int rc = init_ring(r, entries);
  while (rc == -ENOMEM && entries > UR_ENOMEM_MIN_DEPTH) {
    entries /= 2;
    if (entries < UR_ENOMEM_MIN_DEPTH) entries = UR_ENOMEM_MIN_DEPTH;
    rc = init_ring(r, entries);
  }
  for (int i = 0; rc == -ENOMEM && i < UR_ENOMEM_RETRIES; i++) {
    struct timespec pause = {0, (long)(UR_ENOMEM_FIRST_PAUSE_NS << i)};
    nanosleep(&pause, NULL);
    rc = init_ring(r, entries);
  }
  if (rc != 0) {
    char why[256];
    return fail(err, err_size, "io_uring_queue_init", rc,
                explain_setup_error(rc, why, sizeof why));
  }
  r->ring_ready = 1;
  return 0;
}

/* Is the buffer ring (5.19) there? Registers a small one and takes it back. */
static int probe_buf_ring(brrr_reactor* r) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void* mem = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1; /* cannot tell: provide_buffers() will say */
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)mem;
  reg.ring_entries = 8;
  reg.bgid = UR_BGID;
  int rc = io_uring_register_buf_ring(&r->ring, &reg, 0);
  if (rc == 0) io_uring_unregister_buf_ring(&r->ring, UR_BGID);
  munmap(mem, page);
  /* An unknown register opcode is -EINVAL; anything else (-ENOMEM under RLIMIT_MEMLOCK
   * pressure...) is not "unsupported", and provide_buffers() will report it. */
  return rc != -EINVAL;
}

static int probe_features(brrr_reactor* r, char* err, size_t err_size) {
  struct io_uring_probe* probe = io_uring_get_probe_ring(&r->ring);
  if (probe == NULL) {
    return fail(err, err_size, "io_uring_register(IORING_REGISTER_PROBE)", -ENOTSUP,
                "the kernel is older than 5.6: its io_uring lacks IORING_OP_SEND and "
                "IORING_OP_RECV");
  }
  static const struct {
    int op;
    const char* name;
  } kRequired[] = {
      {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},   {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
      {IORING_OP_SEND, "IORING_OP_SEND"},       {IORING_OP_RECV, "IORING_OP_RECV"},
      {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"}, {IORING_OP_READ, "IORING_OP_READ"},
      {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
  };
  for (size_t i = 0; i < sizeof kRequired / sizeof kRequired[0]; i++) {
    if (!io_uring_opcode_supported(probe, kRequired[i].op)) {
      io_uring_free_probe(probe);
      char what[128];
      snprintf(what, sizeof what, "io_uring probe: %s", kRequired[i].name);
      return fail(err, err_size, what, -ENOTSUP, "the kernel is too old; Linux 5.6 or later");
    }
  }
  /* Features without an opcode of their own, dated by opcodes of the same release. */
  r->ms_accept = (uint8_t)io_uring_opcode_supported(probe, IORING_OP_SOCKET);   /* 5.19 */
  r->cancel_any = (uint8_t)io_uring_opcode_supported(probe, IORING_OP_SOCKET);  /* 5.19 */
  r->ms_recv = (uint8_t)io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);    /* 6.0 */
  io_uring_free_probe(probe);
  r->cqe_skip = (r->ring.features & IORING_FEAT_CQE_SKIP) != 0; /* 5.17 */
  r->buf_ring_ok = (uint8_t)probe_buf_ring(r);
  return 0;
}

static void ur_destroy(brrr_reactor* r);

static uint32_t config_depth(const brrr_reactor_config* config) {
  uint32_t depth = 0;
  if (config != NULL &&
      config->struct_size >= offsetof(brrr_reactor_config, queue_depth) + sizeof(uint32_t)) {
    depth = config->queue_depth;
  }
  if (depth == 0) depth = UR_DEFAULT_DEPTH;
  if (depth < UR_MIN_DEPTH) depth = UR_MIN_DEPTH;
  if (depth > UR_MAX_DEPTH) depth = UR_MAX_DEPTH;
  return depth;
}

static int ur_create(const brrr_reactor_config* config, brrr_reactor** out, char* err,
                     size_t err_size) {
  brrr_reactor* r = calloc(1, sizeof *r);
  if (r == NULL) return fail(err, err_size, "allocating the reactor", -ENOMEM, NULL);
  r->wake_fd = -1;
  r->free_head = UR_NO_SLOT;
  int rc = setup_ring(r, config_depth(config), err, err_size);
  if (rc == 0) rc = probe_features(r, err, err_size);
  if (rc == 0) {
    /* Blocking on purpose: an io_uring read of an O_NONBLOCK file fails with -EAGAIN. */
    r->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (r->wake_fd < 0) rc = fail(err, err_size, "eventfd (the cross-thread wake-up)", -errno, NULL);
  }
  /* Queued, not submitted: the first wait() submits it, from the thread that runs the loop. */
  if (rc == 0 && arm_wake(r) != 0) {
    rc = fail(err, err_size, "queueing the wake-up read", -ENOMEM, NULL);
  }
  if (rc != 0) {
    ur_destroy(r);
    return rc;
  }
  *out = r;
  return 0;
}

/* destroy(): cancels everything still live in the kernel. */
static void cancel_all(brrr_reactor* r) {
  if (r->live == 0) return;
  if (r->cancel_any) {
    struct io_uring_sqe* sqe = get_sqe(r);
    if (sqe != NULL) {
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
      io_uring_sqe_set_data64(sqe, encode(UR_KIND_CANCEL, 0, UR_SLOT_ANY));
      if (r->cqe_skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
      return;
    }
  }
  cancel_each(r);
}

/* destroy(): reaps until every operation and the wake-up read have ended (bounded). */
static void drain(brrr_reactor* r) {
  brrr_completion scratch[64];
  for (int step = 0; r->live > 0 || r->wake_armed; step++) {
    if (step == UR_DRAIN_STEPS) {
      fprintf(stderr,
              "brrr io_uring reactor: %u operation(s) still in the kernel 10 s after destroy; "
              "closing the ring anyway\n",
              r->live);
      return;
    }
    if (step > 0 && step % UR_DRAIN_RECANCEL == 0) cancel_each(r);
    int rc = enter(r, UR_DRAIN_STEP_NS);
    while (reap(r, scratch, 64) > 0) {
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
      fprintf(stderr, "brrr io_uring reactor: io_uring_enter during destroy: %s\n",
              strerror(-rc));
      return;
    }
  }
}

static void ur_destroy(brrr_reactor* r) {
  if (r == NULL) return;
  r->destroying = 1;
  if (r->ring_ready) {
    /* CQEs already in the ring first: they may end ops (and close accepted descriptors). */
    brrr_completion scratch[64];
    while (reap(r, scratch, 64) > 0) {
    }
    cancel_all(r);
    if (r->wake_armed && r->wake_fd >= 0) {
      uint64_t one = 1; /* completes the eventfd read even where it cannot be cancelled */
      ssize_t written = write(r->wake_fd, &one, sizeof one);
      (void)written;
    }
    drain(r);
    if (r->br != NULL) {
      io_uring_unregister_buf_ring(&r->ring, UR_BGID);
      munmap(r->br, r->br_bytes);
    }
    io_uring_queue_exit(&r->ring);
  }
  if (r->wake_fd >= 0) close(r->wake_fd);
  free(r->ops);
  free(r->fds);
  free(r->buf_out);
  free(r->spare);
  free(r);
}

static int ur_submit(brrr_reactor* r, const brrr_op* op) {
  int rc = brrr_op_check(op, r->buf_count != 0);
  if (rc != 0) return rc;
  ur_fd* e = fd_entry(r, op->fd);
  if (e == NULL) return -ENOMEM;
  int read_side = brrr_op_is_read_side(op->opcode);
  if (read_side ? e->read_slot : e->write_slot) return -EBUSY;
  uint32_t slot;
  rc = op_alloc(r, &slot);
  if (rc != 0) return rc;
  e = &r->fds[op->fd];
  ur_op* o = &r->ops[slot];
  o->user_data = op->user_data;
  o->buf = op->buf;
  o->len = op->len;
  o->fd = op->fd;
  o->opcode = (uint8_t)op->opcode;
  o->flags = (uint8_t)op->flags;
  o->state = 0;
  r->live++;
  if (o->opcode == BRRR_OP_RECV && (o->flags & BRRR_OP_BUFFER_SELECT)) {
    r->select_recvs++;
    ring_top_up(r);
  }
  rc = arm_op(r, slot);
  if (rc != 0) {
    op_free(r, slot); /* nothing reached the kernel */
    return rc;
  }
  if (read_side) {
    e->read_slot = slot + 1;
  } else {
    e->write_slot = slot + 1;
  }
  r->counters.submitted++;
  return 0;
}

static int ur_cancel(brrr_reactor* r, int fd, uint64_t user_data) {
  ur_fd* e = existing_fd_entry(r, fd);
  if (e == NULL) return -ENOENT;
  uint32_t slot;
  if (e->read_slot != 0 && r->ops[e->read_slot - 1].user_data == user_data) {
    slot = e->read_slot - 1;
  } else if (e->write_slot != 0 && r->ops[e->write_slot - 1].user_data == user_data) {
    slot = e->write_slot - 1;
  } else {
    return -ENOENT;
  }
  ur_op* o = &r->ops[slot];
  if (o->state & UR_ST_CANCEL) return 0; /* already asked; the final completion will follow */
  o->state |= UR_ST_CANCEL;
  if (queue_cancel(r, slot) != 0) {
    o->state |= UR_ST_CANCEL_SQE; /* the next wait() issues it */
    r->cancels_owed++;
  }
  return 0;
}

static int ur_wait(brrr_reactor* r, brrr_completion* out, int max_completions,
                   int64_t timeout_ns) {
  if (max_completions <= 0) return -EINVAL;
  if (r->cancels_owed > 0) pay_owed_cancels(r);
  if (!r->wake_armed && arm_wake(r) != 0) return r->submit_error ? r->submit_error : -ENOMEM;

  /* Completions (or a wake-up) already in the ring: return without blocking, but start what
   * is queued. */
  r->woken = 0;
  int n = reap(r, out, max_completions);
  if (n > 0 || r->woken) {
    if (io_uring_sq_ready(&r->ring) > 0) {
      r->counters.syscalls++;
      io_uring_submit(&r->ring); /* a failure shows again at the next enter */
    }
    r->counters.completed += (uint64_t)n;
    return n;
  }

  int64_t deadline = 0;
  if (timeout_ns > 0) {
    int64_t now = monotonic_ns();
    deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
  }
  int64_t remaining = timeout_ns;
  r->counters.waits++;
  for (;;) {
    int rc = enter(r, remaining);
    n = reap(r, out, max_completions);
    if (n > 0 || r->woken) break;
    if (rc == -ETIME || rc == -EBUSY || rc == -EAGAIN) break;
    /* -EINTR (a signal, task work) is not a timeout: wait again for what is left. */
    if (rc < 0 && rc != -EINTR) return rc;
    if (timeout_ns == 0) break;
    if (timeout_ns > 0) {
      remaining = deadline - monotonic_ns();
      if (remaining <= 0) break;
    }
    /* Only internal CQEs (a cancel's, a fallback's): keep waiting. */
    if (!r->wake_armed && arm_wake(r) != 0) break;
  }
  r->counters.completed += (uint64_t)n;
  return n;
}

static int ur_wake(brrr_reactor* r) {
  uint64_t one = 1;
  for (;;) {
    if (write(r->wake_fd, &one, sizeof one) == (ssize_t)sizeof one) return 0;
    if (errno == EINTR) continue;
    return errno == EAGAIN ? 0 : -errno;
  }
}

static int ur_release_fd(brrr_reactor* r, int fd) {
  ur_fd* e = existing_fd_entry(r, fd);
  if (e == NULL) return 0;
  if (e->read_slot != 0 || e->write_slot != 0) return -EBUSY;
  return 0;
}

static int ur_provide_buffers(brrr_reactor* r, void* base, uint32_t size, uint32_t count) {
  if (!r->buf_ring_ok) return -ENOTSUP;
  if (r->buf_count != 0) return -EEXIST;
  if (base == NULL || size == 0 || count == 0 || count > UR_MAX_BUFFERS) return -EINVAL;
  uint32_t entries = 1;
  while (entries < count) entries <<= 1;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t bytes = (entries * sizeof(struct io_uring_buf) + page - 1) / page * page;
  void* mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -ENOMEM;
  uint8_t* out = calloc(count, 1);
  uint32_t* spare = malloc(count * sizeof *spare);
  if (out == NULL || spare == NULL) {
    free(out);
    free(spare);
    munmap(mem, bytes);
    return -ENOMEM;
  }
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)mem;
  reg.ring_entries = entries;
  reg.bgid = UR_BGID;
  r->counters.syscalls++;
  int rc = io_uring_register_buf_ring(&r->ring, &reg, 0);
  if (rc != 0) {
    free(out);
    free(spare);
    munmap(mem, bytes);
    if (rc == -EINVAL) { /* valid arguments: the kernel has no buffer rings */
      r->buf_ring_ok = 0;
      return -ENOTSUP;
    }
    return rc;
  }
  r->br = mem;
  r->br_bytes = bytes;
  r->br_mask = (uint32_t)io_uring_buf_ring_mask(entries);
  r->buf_base = base;
  r->buf_size = size;
  r->buf_count = count;
  r->buf_out = out;
  r->spare = spare;
  for (uint32_t i = 0; i < count; i++) spare[i] = count - 1 - i; /* id 0 on top */
  r->spare_count = count;
  r->on_ring = 0;
  io_uring_buf_ring_init(r->br);
  ring_top_up(r);
  return 0;
}

static void ur_recycle_buffer(brrr_reactor* r, uint32_t buffer_id) {
  if (buffer_id >= r->buf_count || !r->buf_out[buffer_id]) {
    fprintf(stderr, "brrr reactor: recycle_buffer(%u) of a buffer the runtime does not own\n",
            buffer_id);
    abort();
  }
  r->buf_out[buffer_id] = 0;
  buffer_returned(r, buffer_id);
}

static void ur_counters(const brrr_reactor* r, brrr_reactor_counters* out) { *out = r->counters; }

static const brrr_reactor_plugin kIoUringPlugin = {
    .abi_version = BRRR_REACTOR_ABI_VERSION,
    .struct_size = sizeof(brrr_reactor_plugin),
    .name = "io_uring",
    .description = "io_uring(7), native operations, multishot accept/recv, buffer ring",
    .capabilities = BRRR_CAP_MULTISHOT | BRRR_CAP_PROVIDED_BUFFERS | BRRR_CAP_NATIVE_OPS |
                    BRRR_CAP_SENDMSG,
    .max_fd = -1,
    .create = ur_create,
    .destroy = ur_destroy,
    .submit = ur_submit,
    .cancel = ur_cancel,
    .wait = ur_wait,
    .wake = ur_wake,
    .release_fd = ur_release_fd,
    .provide_buffers = ur_provide_buffers,
    .recycle_buffer = ur_recycle_buffer,
    .counters = ur_counters,
};

BRRR_REACTOR_EXPORT const brrr_reactor_plugin* brrr_reactor_entry(void) {
  return &kIoUringPlugin;
}
