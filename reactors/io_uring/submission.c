/* submission.c: the op table, the submission queue, arming kernel requests and cancels;
 * submit() and cancel(). See io_uring_reactor.c for the design. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "reactors/common/kernel_calls.h"
#include "reactors/common/plugin_util.h"
#include "reactors/io_uring/io_uring_internal.h"
#include "runtime/hot_path.h"

/* ---- submission queue ---- */

BRRR_HOT_PATH struct io_uring_sqe* ur_get_sqe(brrr_reactor* r) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&r->ring);
  if (sqe != NULL) return sqe;
  /* A one-thread ring is entered only by the thread of its first wait(). */
  if (!ur_may_enter(r)) return NULL;
  r->counters.syscalls++;
  if (io_uring_submit(&r->ring) < 0) return NULL;
  ur_keep_overflow(r); /* requests that completed as they were submitted may have overflowed */
  return io_uring_get_sqe(&r->ring);
}

int ur_arm_wake(brrr_reactor* r) {
  struct io_uring_sqe* sqe = ur_get_sqe(r);
  if (sqe == NULL) return -ENOMEM;
  io_uring_prep_read(sqe, r->wake_fd, &r->wake_value, sizeof r->wake_value, 0);
  io_uring_sqe_set_data64(sqe, ur_encode(UR_KIND_WAKE, 0, 0));
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
    ur_fd* fds = pu_grow_fd_table(r->fds, &r->fd_count, sizeof *fds, fd);
    if (fds == NULL) return NULL;
    r->fds = fds;
  }
  return &r->fds[fd];
}

ur_fd* ur_existing_fd_entry(brrr_reactor* r, int fd) {
  if (fd < 0 || (size_t)fd >= r->fd_count) return NULL;
  return &r->fds[fd];
}

BRRR_HOT_PATH void ur_op_free(brrr_reactor* r, uint32_t slot) {
  ur_op* o = &r->ops[slot];
  ur_fd* e = ur_existing_fd_entry(r, o->fd);
  if (e != NULL) {
    if (e->read_slot == slot + 1) e->read_slot = 0;
    if (e->write_slot == slot + 1) e->write_slot = 0;
  }
  if (o->state & UR_ST_CANCEL_SQE) r->cancels_owed--;
  if (o->state & UR_ST_ARM_SQE) r->arms_owed--;
  if (o->opcode == BRRR_OP_RECV && (o->flags & BRRR_OP_BUFFER_SELECT)) r->select_recvs--;
  o->opcode = 0;
  o->state = 0;
  o->gen = (o->gen + 1) & UR_GEN_MASK;
  o->next_free = r->free_head;
  r->free_head = slot;
  r->live--;
}

/* ---- arming kernel requests and cancels ---- */

/* May this op's RECV be a native multishot request? The kernel's multishot recv takes no
 * length per buffer (from 6.17 sqe->len caps a kernel pass, sqe->optlen the whole request:
 * recv_cap), so an op that caps the length below the buffer size is emulated. */
static int recv_can_multishot(const brrr_reactor* r, const ur_op* o) {
  return r->ms_recv && (o->flags & BRRR_OP_BUFFER_SELECT) &&
         (o->len == 0 || o->len >= r->buf_size);
}

BRRR_HOT_PATH int ur_arm_op(brrr_reactor* r, uint32_t slot) {
  ur_op* o = &r->ops[slot];
  struct io_uring_sqe* sqe = ur_get_sqe(r);
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
          /* sqe->optlen, which Debian's liburing 2.3 names file_index (the same word). */
          if (r->recv_cap) sqe->file_index = UR_RECV_CAP_BUFFERS * r->buf_size;
          if (r->bundles) sqe->ioprio |= IORING_RECVSEND_BUNDLE;
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
  io_uring_sqe_set_data64(sqe, ur_op_key(r, slot));
  return 0;
}

int ur_arm_poll_fallback(brrr_reactor* r, uint32_t slot) {
  ur_op* o = &r->ops[slot];
  struct io_uring_sqe* sqe = ur_get_sqe(r);
  if (sqe == NULL) return -ENOMEM;
  unsigned mask = brrr_op_is_read_side(o->opcode) ? (POLLIN | POLLRDHUP) : POLLOUT;
  io_uring_prep_poll_add(sqe, o->fd, mask);
  io_uring_sqe_set_data64(sqe, ur_op_key(r, slot));
  o->state &= (uint8_t) ~(UR_ST_NATIVE_MS | UR_ST_SHOT);
  o->state |= UR_ST_POLLING;
  return 0;
}

/* Queues an ASYNC_CANCEL for the op's kernel request. 0 or -ENOMEM. */
static int queue_cancel(brrr_reactor* r, uint32_t slot) {
  struct io_uring_sqe* sqe = ur_get_sqe(r);
  if (sqe == NULL) return -ENOMEM;
  io_uring_prep_cancel64(sqe, ur_op_key(r, slot), 0);
  io_uring_sqe_set_data64(sqe, ur_encode(UR_KIND_CANCEL, r->ops[slot].gen, slot));
  if (r->cqe_skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  return 0;
}

void ur_pay_owed_cancels(brrr_reactor* r) {
  for (uint32_t slot = 0; slot < r->op_capacity && r->cancels_owed > 0; slot++) {
    ur_op* o = &r->ops[slot];
    /* An op still owed its request is cancelled after it is armed. */
    if (o->opcode == 0 || !(o->state & UR_ST_CANCEL_SQE) || (o->state & UR_ST_ARM_SQE)) continue;
    if (queue_cancel(r, slot) != 0) return;
    o->state &= (uint8_t)~UR_ST_CANCEL_SQE;
    r->cancels_owed--;
  }
}

void ur_pay_owed_arms(brrr_reactor* r) {
  for (uint32_t slot = 0; slot < r->op_capacity && r->arms_owed > 0; slot++) {
    ur_op* o = &r->ops[slot];
    if (o->opcode == 0 || !(o->state & UR_ST_ARM_SQE)) continue;
    if (ur_arm_op(r, slot) != 0) return;
    o->state &= (uint8_t)~UR_ST_ARM_SQE;
    r->arms_owed--;
  }
}

void ur_drop_owed_arms(brrr_reactor* r) {
  for (uint32_t slot = 0; slot < r->op_capacity && r->arms_owed > 0; slot++) {
    if (r->ops[slot].opcode != 0 && (r->ops[slot].state & UR_ST_ARM_SQE)) ur_op_free(r, slot);
  }
}

void ur_cancel_each(brrr_reactor* r) {
  for (uint32_t slot = 0; slot < r->op_capacity; slot++) {
    if (r->ops[slot].opcode != 0) queue_cancel(r, slot);
  }
}

/* ---- entry points ---- */

BRRR_HOT_PATH int ur_submit(brrr_reactor* r, const brrr_op* op) {
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
    ur_ring_top_up(r);
  }
  if (ur_arm_op(r, slot) != 0) {
    /* No SQE: a one-thread ring before its first wait() cannot be entered to make room in its
     * SQ (and create() may have made the ring small, under RLIMIT_MEMLOCK), or the kernel took
     * no flush of a full SQ. The request is owed: wait() arms it. */
    o->state |= UR_ST_ARM_SQE;
    r->arms_owed++;
  }
  if (read_side) {
    e->read_slot = slot + 1;
  } else {
    e->write_slot = slot + 1;
  }
  r->counters.submitted++;
  return 0;
}

int ur_cancel(brrr_reactor* r, int fd, uint64_t user_data) {
  ur_fd* e = ur_existing_fd_entry(r, fd);
  if (e == NULL) return -ENOENT;
  uint32_t slot;
  if (e->read_slot != 0 && r->ops[e->read_slot - 1].user_data == user_data) {
    slot = e->read_slot - 1;
  } else if (e->write_slot != 0 && r->ops[e->write_slot - 1].user_data == user_data) {
    slot = e->write_slot - 1;
  } else {
    /* Ended, but its final completion waits behind a bundle's others: it will follow. */
    return ur_pending_final(r, user_data) ? 0 : -ENOENT;
  }
  ur_op* o = &r->ops[slot];
  if (o->state & UR_ST_CANCEL) return 0; /* already asked; the final completion will follow */
  o->state |= UR_ST_CANCEL;
  /* An op owed its request gets its cancel after it, once wait() has queued it. */
  if ((o->state & UR_ST_ARM_SQE) || queue_cancel(r, slot) != 0) {
    o->state |= UR_ST_CANCEL_SQE; /* owed: wait() issues it */
    r->cancels_owed++;
  }
  return 0;
}

/* Sends at once, with send(2), only when the loop is quiet: its last wait() returned at most
 * one completion, no send went at once since, and nothing waits in the submission queue. Then
 * a reply (a connection answering one request at a time) costs one send instead of a SEND
 * request and the loop iteration its completion takes. Under load the loop's sends stay
 * operations, all of an iteration's in one io_uring_enter. */
BRRR_HOT_PATH int ur_try_send(brrr_reactor* r, int fd, const void* buf, uint32_t len) {
  if (fd < 0) return -EBADF;
  ur_fd* e = ur_existing_fd_entry(r, fd);
  if (e != NULL && e->write_slot != 0) return -EBUSY;
  if (len == 0) return 0;
  if (!r->quiet || io_uring_sq_ready(&r->ring) > 0) return -EAGAIN;
  int n = rc_send_at_once(fd, buf, len, &r->counters.syscalls);
  if (n >= 0) r->quiet = 0;
  return n;
}
