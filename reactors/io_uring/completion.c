/* completion.c: turning CQEs into completions (re-arming multishot and fallback requests on
 * the way) and wait(). See io_uring_reactor.c for the design. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "reactors/common/plugin_util.h"
#include "reactors/io_uring/io_uring_internal.h"
#include "runtime/hot_path.h"

/* ---- turning CQEs into completions ---- */

/* Every completion is written here, straight into the caller's array. */
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
  ur_op_free(r, slot);
  return 1;
}

/* A request of an op that goes on found no SQE (the SQ was full and the kernel took no flush
 * of it): owed, as submit() owes one before the first wait (UR_ST_ARM_SQE), not the op's end.
 * wait() queues it, as the op's own request, as soon as it has made room. */
static void owe_request(brrr_reactor* r, uint32_t slot) {
  r->ops[slot].state |= UR_ST_ARM_SQE;
  r->arms_owed++;
}

/* Queues the op's request again, or owes it. */
static void rearm(brrr_reactor* r, uint32_t slot) {
  if (ur_arm_op(r, slot) != 0) owe_request(r, slot);
}

/* A result (with data, or an accepted descriptor) of a request that ended while the op goes
 * on (multishot, not cancelled): re-arm and flag it MORE. Otherwise it is final. */
static int continue_or_finish(brrr_reactor* r, uint32_t slot, brrr_completion* out,
                              int32_t result, uint32_t flags, uint32_t buffer_id) {
  ur_op* o = &r->ops[slot];
  if ((o->flags & BRRR_OP_MULTISHOT) && !(o->state & UR_ST_CANCEL)) {
    rearm(r, slot);
    return emit(out, o, result, flags | BRRR_COMPLETION_MORE, buffer_id);
  }
  return finish(r, slot, out, result, flags, buffer_id);
}

/* A request ended with an error that says "try again" (EINTR, EAGAIN, per-connection accept
 * errors...). Unless cancelled, retry (via poll for EAGAIN): 0 completions. Cancelled: the
 * final completion. A poll that finds no SQE owes the op's own request, whose -EAGAIN, if it
 * must still wait, brings the poll back. */
static int retry_or_finish(brrr_reactor* r, uint32_t slot, brrr_completion* out, int via_poll) {
  ur_op* o = &r->ops[slot];
  if (o->state & UR_ST_CANCEL) return finish(r, slot, out, -ECANCELED, 0, 0);
  int rc = via_poll ? ur_arm_poll_fallback(r, slot) : ur_arm_op(r, slot);
  if (rc != 0) owe_request(r, slot);
  return 0;
}

/* An accept, recv or send request ended without a result to deliver as MORE (res: -errno, or
 * a recv's end of stream, or a send's count): retry, wait via poll, or finish, as pu_classify
 * judges the error. */
BRRR_HOT_PATH static int retry_or_finish_as_classified(brrr_reactor* r, uint32_t slot, brrr_completion* out,
                                                       int32_t res) {
  switch (res < 0 ? pu_classify(r->ops[slot].opcode, -res) : PU_DONE) {
    case PU_RETRY:
      return retry_or_finish(r, slot, out, 0);
    case PU_WAIT:
      return retry_or_finish(r, slot, out, 1);
    default: /* recv: 0 is the end of stream; -ENOBUFS: the ring ran dry */
      return finish(r, slot, out, res, 0, 0);
  }
}

/* A native multishot request (not cancelled) that the kernel rejected with -EINVAL before
 * its first shot: maybe the kernel lacks the feature. */
static int native_multishot_rejected(const ur_op* o, int32_t res) {
  return res == -EINVAL && !(o->state & UR_ST_CANCEL) && (o->state & UR_ST_NATIVE_MS) &&
         !(o->state & UR_ST_SHOT);
}

/* Retries such an op as emulated single shots; the first single shot that works settles it
 * (settle_probe). 0 completions. */
static int try_emulation(brrr_reactor* r, uint32_t slot) {
  r->ops[slot].state |= UR_ST_EMULATE | UR_ST_PROBING;
  rearm(r, slot);
  return 0;
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
  if (native_multishot_rejected(o, res)) return try_emulation(r, slot);
  return retry_or_finish_as_classified(r, slot, out, res);
}

/* How many provided buffers a CQE's res filled. The kernel fills a bundle's buffers whole
 * but for the last, so any receive, bundle or not, took ceil(res / buf_size) of them; a CQE
 * without data that still names a buffer (kernels before 6.x) used one. */
static uint32_t buffers_used(const brrr_reactor* r, int32_t res) {
  /* The common case, a receive that fits one buffer, without a division. */
  if (res <= 0 || r->buf_size == 0 || (uint32_t)res <= r->buf_size) return 1;
  return (uint32_t)(((uint64_t)res + r->buf_size - 1) / r->buf_size);
}

/* Where a CQE's completions go: the caller's array while it has room, then r->pending (a
 * bundle may fill more buffers than wait() was given room for). */
typedef struct ur_sink {
  brrr_completion* out;
  int room;
  int n;
} ur_sink;

BRRR_HOT_PATH static void sink_put(brrr_reactor* r, ur_sink* sink, const brrr_completion* c) {
  if (sink->n < sink->room && r->pending_count == 0) {
    sink->out[sink->n++] = *c;
    return;
  }
  /* Each pending completion holds a buffer of the pool: the FIFO cannot outgrow it. */
  if (r->pending_count >= r->buf_count) pu_abort("io_uring: more bundle completions than buffers");
  r->pending[(r->pending_head + r->pending_count) % r->buf_count] = *c;
  r->pending_count++;
}

/* Moves pending bundle completions, oldest first, into out. Returns how many. */
static int take_pending(brrr_reactor* r, brrr_completion* out, int max_completions) {
  int n = 0;
  while (n < max_completions && r->pending_count > 0) {
    out[n++] = r->pending[r->pending_head];
    r->pending_head = (r->pending_head + 1) % r->buf_count;
    r->pending_count--;
  }
  return n;
}

/* A bundle CQE (Linux 6.10): res bytes in buffers that follow `first` on the ring, each full
 * but the last. All but the last go to the runtime now, one completion each, in order and
 * flagged MORE; the last is left for the CQE's own handling (returned in *id and *len). */
static void split_bundle(brrr_reactor* r, const ur_op* o, uint32_t first, uint32_t count,
                         int32_t res, ur_sink* sink, uint32_t* id, int32_t* len) {
  r->counters.recv_bundles++;
  for (uint32_t i = 0; i + 1 < count; i++) {
    uint32_t bid = ur_ring_id_after(r, first, i);
    r->buf_out[bid] = 1;
    brrr_completion c;
    emit(&c, o, (int32_t)r->buf_size, BRRR_COMPLETION_BUFFER | BRRR_COMPLETION_MORE, bid);
    sink_put(r, sink, &c);
  }
  *id = ur_ring_id_after(r, first, count - 1);
  *len = res - (int32_t)((count - 1) * r->buf_size);
}

/* `buffers`: how many provided buffers the CQE used (buffers_used), when it names one. */
static int on_recv(brrr_reactor* r, uint32_t slot, int32_t res, uint32_t cqe_flags, uint32_t buffers,
                   int armed, ur_sink* sink) {
  ur_op* o = &r->ops[slot];
  brrr_completion last;
  brrr_completion* out = &last;
  if (res > 0) {
    uint32_t flags = 0;
    uint32_t id = 0;
    if (cqe_flags & IORING_CQE_F_BUFFER) {
      id = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
      if (buffers > 1 && id < r->buf_count) split_bundle(r, o, id, buffers, res, sink, &id, &res);
      if (id < r->buf_count) {
        r->buf_out[id] = 1;
        flags = BRRR_COMPLETION_BUFFER;
      }
    }
    o->state |= UR_ST_SHOT;
    settle_probe(r, o, 1);
    if (armed) {
      emit(out, o, res, flags | BRRR_COMPLETION_MORE, id);
    } else {
      continue_or_finish(r, slot, out, res, flags, id);
    }
    sink_put(r, sink, out);
    return 0;
  }
  if (armed) return 0; /* the kernel never keeps a multishot recv after 0 or an error */
  settle_probe(r, o, res == 0);
  /* The ring ran dry, but only the hot part of the pool is on it: while the rest waits on the
   * spare stack the pool is not dry (the readiness backends say -ENOBUFS only when every buffer
   * is handed out), so the ring takes more and the receive goes on. Each retry needs buffers
   * from the stack, so a pool that is truly handed out ends it. */
  if (res == -ENOBUFS && !(o->state & UR_ST_CANCEL) && r->spare_count > 0) {
    ur_ring_top_up(r);
    if (r->on_ring > 0) {
      rearm(r, slot);
      return 0;
    }
  }
  /* A kernel before 6.17 refuses a length on a multishot receive: arm them without one. */
  if (r->recv_cap && native_multishot_rejected(o, res)) {
    r->recv_cap = 0;
    rearm(r, slot);
    return 0;
  }
  int n = native_multishot_rejected(o, res) ? try_emulation(r, slot)
                                            : retry_or_finish_as_classified(r, slot, out, res);
  if (n > 0) sink_put(r, sink, out);
  return 0;
}

static int on_send(brrr_reactor* r, uint32_t slot, int32_t res, brrr_completion* out) {
  return retry_or_finish_as_classified(r, slot, out, res);
}

static int on_connect(brrr_reactor* r, uint32_t slot, int32_t res, brrr_completion* out) {
  /* Still connecting (older kernels hand EINPROGRESS back): wait for writability. */
  if (res == -EINPROGRESS || res == -EALREADY || res == -EAGAIN || res == -EINTR) {
    return retry_or_finish(r, slot, out, 1);
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
      return retry_or_finish(r, slot, out, 1);
    }
    return finish(r, slot, out, -so_error, 0, 0);
  }
  rearm(r, slot);
  return 0;
}

/* A CQE of an operation during destroy(): nothing is delivered, descriptors are closed. */
static void on_op_cqe_destroying(brrr_reactor* r, uint32_t slot, int32_t res, int armed) {
  ur_op* o = &r->ops[slot];
  if (o->opcode == BRRR_OP_ACCEPT && res >= 0 && !(o->state & UR_ST_POLLING)) close(res);
  if (!armed) ur_op_free(r, slot);
}

static int on_op_cqe(brrr_reactor* r, uint32_t slot, uint32_t gen, int32_t res,
                     uint32_t cqe_flags, ur_sink* sink) {
  if (slot >= r->op_capacity) return 0;
  ur_op* o = &r->ops[slot];
  if (o->opcode == 0 || o->gen != gen) return 0; /* cannot happen: slots outlive requests */
  brrr_completion* out = &sink->out[sink->n];
  int armed = (cqe_flags & IORING_CQE_F_MORE) != 0;
  const uint32_t buffers = (cqe_flags & IORING_CQE_F_BUFFER) ? buffers_used(r, res) : 0;
  r->on_ring -= buffers;
  /* A provided buffer that carries no data comes straight back. */
  if ((cqe_flags & IORING_CQE_F_BUFFER) && (res <= 0 || r->destroying)) {
    uint32_t id = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
    if (!r->destroying && id < r->buf_count) ur_buffer_returned(r, id);
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
      return on_recv(r, slot, res, cqe_flags, buffers, armed, sink);
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

static void on_cancel_cqe(brrr_reactor* r, uint32_t slot, int32_t res) {
  /* The CANCEL_ANY of destroy() failed as an unknown flag: cancel one by one. */
  if (slot == UR_SLOT_ANY && res == -EINVAL && r->destroying) {
    r->cancel_any = 0;
    ur_cancel_each(r);
  }
  /* Otherwise -ENOENT (the op had finished) or -EALREADY (it is finishing): its own CQE
   * follows or has arrived. Nothing to do. */
}

/* Turns one CQE into its completions: one at most, but one per buffer for a receive bundle.
 * The sink has room for one at least. Returns how many it stored into sink->out itself
 * (bundles store theirs through sink_put). */
static int on_cqe(brrr_reactor* r, uint64_t user_data, int32_t res, uint32_t cqe_flags,
                  ur_sink* sink) {
  uint32_t kind = (uint32_t)(user_data >> UR_KIND_SHIFT);
  uint32_t gen = (uint32_t)(user_data >> UR_GEN_SHIFT) & UR_GEN_MASK;
  uint32_t slot = (uint32_t)user_data;
  switch (kind) {
    case UR_KIND_OP:
      return on_op_cqe(r, slot, gen, res, cqe_flags, sink);
    case UR_KIND_CANCEL:
      on_cancel_cqe(r, slot, res);
      return 0;
    case UR_KIND_WAKE:
      r->wake_armed = 0;
      r->woken = 1;
      if (!r->destroying) ur_arm_wake(r); /* no SQE: owed, wait() queues it (ur_wait) */
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

BRRR_HOT_PATH int ur_reap(brrr_reactor* r, brrr_completion* out, int max_completions) {
  ur_sink sink = {out, max_completions, take_pending(r, out, max_completions)};
  while (sink.n < max_completions) {
    ur_cqe c;
    struct io_uring_cqe* cqe;
    /* The backlog first, looked at again after each CQE: handling one may move the ring's
     * CQEs there (a re-arm that flushes a full SQ). */
    if (r->backlog_head < r->backlog_end) {
      c = r->backlog[r->backlog_head++];
      if (r->backlog_head == r->backlog_end) r->backlog_head = r->backlog_end = 0;
    } else if ((cqe = peek_cqe(&r->ring)) != NULL) {
      c.user_data = cqe->user_data;
      c.res = cqe->res;
      c.flags = cqe->flags;
      io_uring_cqe_seen(&r->ring, cqe);
    } else {
      break;
    }
    sink.n += on_cqe(r, c.user_data, c.res, c.flags, &sink);
  }
  return sink.n;
}

/* Appends a CQE to r->backlog. 0, or -ENOMEM. */
static int backlog_put(brrr_reactor* r, const struct io_uring_cqe* cqe) {
  if (r->backlog_end == r->backlog_capacity) {
    uint32_t capacity = r->backlog_capacity ? r->backlog_capacity * 2 : 64;
    ur_cqe* grown = capacity > r->backlog_capacity ? realloc(r->backlog, capacity * sizeof *grown) : NULL;
    if (grown == NULL) return -ENOMEM;
    r->backlog = grown;
    r->backlog_capacity = capacity;
  }
  r->backlog[r->backlog_end++] = (ur_cqe){cqe->user_data, cqe->res, cqe->flags};
  return 0;
}

/* The kernel keeps CQEs that found the CQ ring full on an overflow list, which an
 * io_uring_enter flushes into the ring, and on a one-thread ring only one of the issuer:
 * destroy() on another thread could not reach them, and the descriptors of the accepts among
 * them would stay open for good. So the issuer leaves none there: it moves the ring's CQEs to
 * r->backlog and has the kernel flush, until the list is empty (or after UR_OVERFLOW_ROUNDS,
 * or without memory for the backlog: then the kernel keeps the rest, to be flushed by the
 * next wait). */
#define UR_OVERFLOW_ROUNDS 16

void ur_take_overflow(brrr_reactor* r) {
  for (int round = 0; round < UR_OVERFLOW_ROUNDS && io_uring_cq_has_overflow(&r->ring); round++) {
    struct io_uring_cqe* cqe;
    while ((cqe = peek_cqe(&r->ring)) != NULL) {
      if (backlog_put(r, cqe) != 0) return;
      io_uring_cqe_seen(&r->ring, cqe);
    }
    r->counters.syscalls++;
    if (io_uring_get_events(&r->ring) < 0) return;
  }
}

int ur_pending_final(const brrr_reactor* r, uint64_t user_data) {
  for (uint32_t i = 0; i < r->pending_count; i++) {
    const brrr_completion* c = &r->pending[(r->pending_head + i) % r->buf_count];
    if (c->user_data == user_data && !(c->flags & BRRR_COMPLETION_MORE)) return 1;
  }
  return 0;
}

int ur_enter(brrr_reactor* r, int64_t timeout_ns) {
  r->counters.syscalls++;
  if (timeout_ns == 0) return io_uring_submit_and_get_events(&r->ring);
  if (timeout_ns < 0) return io_uring_submit_and_wait(&r->ring, 1);
  struct __kernel_timespec ts;
  ts.tv_sec = timeout_ns / 1000000000LL;
  ts.tv_nsec = timeout_ns % 1000000000LL;
  struct io_uring_cqe* cqe = NULL;
  return io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
}

/* ---- wait() ---- */

/* A kernel without memory for a request: wait() tries again after this long (at most). */
#define UR_NOMEM_PAUSE_NS 1000000L
/* While something is owed its SQE (owes_sqes), a blocking wait() goes in steps of at most
 * this long, queueing what it owes after each. */
#define UR_OWED_STEP_NS 1000000L

/* Whether something found no SQE (the SQ was full and the kernel took no flush of it:
 * ur_get_sqe) and waits for one: an op's request (UR_ST_ARM_SQE), a cancel (UR_ST_CANCEL_SQE),
 * the wake-up read. */
static int owes_sqes(const brrr_reactor* r) {
  return r->arms_owed != 0 || r->cancels_owed != 0 || !r->wake_armed;
}

/* Queues what is owed while the SQ has room: requests first (an op owed its request is
 * cancelled once it is armed), then cancels, then the wake-up read. */
static void pay_owed(brrr_reactor* r) {
  if (r->arms_owed > 0) ur_pay_owed_arms(r);
  if (r->cancels_owed > 0) ur_pay_owed_cancels(r);
  if (!r->wake_armed) ur_arm_wake(r);
}

/* Sleeps UR_NOMEM_PAUSE_NS, or `remaining` if that is shorter and not -1 (no limit). */
static void pause_before_retry(int64_t remaining) {
  struct timespec pause = {0, UR_NOMEM_PAUSE_NS};
  if (remaining >= 0 && remaining < UR_NOMEM_PAUSE_NS) pause.tv_nsec = (long)remaining;
  nanosleep(&pause, NULL);
}

BRRR_HOT_PATH int ur_wait(brrr_reactor* r, brrr_completion* out, int max_completions, int64_t timeout_ns) {
  if (max_completions <= 0) return -EINVAL;
  if (!r->ring_enabled) {
    int rc = ur_claim_ring(r);
    if (rc != 0) return rc;
  }
  /* Owed, not an error (which the loop takes for a lost ring): the kernel may take the next
   * flush, and the enter below makes room. */
  if (owes_sqes(r)) pay_owed(r);

  /* Completions (or a wake-up) already in the ring: return without blocking, but start what
   * is queued. */
  r->woken = 0;
  /* A look first: most waits find the ring empty, and a reap costs a call and its setup. */
  int n = r->pending_count > 0 || r->backlog_end > 0 || io_uring_cq_ready(&r->ring) > 0
              ? ur_reap(r, out, max_completions)
              : 0;
  if (n > 0 || r->woken) {
    if (io_uring_sq_ready(&r->ring) > 0) {
      r->counters.syscalls++;
      io_uring_submit(&r->ring); /* a failure shows again at the next enter */
    }
    ur_keep_overflow(r);
    r->counters.completed += (uint64_t)n;
    r->quiet = n <= 1;
    return n;
  }

  int64_t deadline = 0;
  if (timeout_ns > 0) {
    int64_t now = pu_monotonic_ns();
    deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
  }
  int64_t remaining = timeout_ns;
  r->counters.waits++;
  for (;;) {
    /* With something owed the wait goes in steps, each enter making room in the SQ for it: an
     * owed cancel leaves its op running (a socket's close waits for its final completion), an
     * owed request is not in the kernel, and with the wake-up read owed a wake() cannot end
     * the wait (it stays in the eventfd's count; the read, once queued, completes at once). */
    int64_t step = remaining;
    if ((step < 0 || step > UR_OWED_STEP_NS) && owes_sqes(r)) step = UR_OWED_STEP_NS;
    int rc = ur_enter(r, step);
    n = ur_reap(r, out, max_completions);
    if (n > 0 || r->woken) break;
    if (rc == -ETIME && step == remaining) break;
    /* Not a timeout either, so wait again for what is left: -ETIME, a step's end; -EINTR (a
     * signal, task work); -EBUSY, the kernel could not flush its CQ overflow list into a full
     * CQ ring (kernels before 5.19 then refuse to submit or wait), for which the reap above
     * made room; -EAGAIN, no memory for a request (nothing was submitted), after a pause for
     * completions to free some. */
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) return rc;
    if (timeout_ns == 0) break;
    if (timeout_ns > 0) {
      remaining = deadline - pu_monotonic_ns();
      if (remaining <= 0) break;
    }
    if (rc == -EAGAIN) pause_before_retry(remaining);
    /* Only internal CQEs (a cancel's, a fallback's), or a step's end: keep waiting. */
    if (owes_sqes(r)) pay_owed(r);
  }
  ur_keep_overflow(r);
  r->counters.completed += (uint64_t)n;
  r->quiet = n <= 1;
  return n;
}
