/*
 * io_uring_internal.h: the io_uring backend's state and the functions its files share.
 * io_uring_reactor.c's top comment describes the design; nothing outside reactors/io_uring/
 * includes this header.
 *
 *   io_uring_reactor.c  create(), destroy() and the small entry points; the plugin table
 *   ring_setup.c        setting up the ring and probing what the kernel supports
 *   submission.c        the op table, SQEs, arming requests and cancels; submit(), cancel()
 *   completion.c        CQEs into completions (re-arming, fallbacks); wait()
 *   buffer_ring.c       the provided-buffer ring; provide_buffers(), recycle_buffer()
 *
 * Threads: the loop's thread only (wake() does not come here). Ownership: the reactor owns
 * what its struct points to, except the op buffers and the provided buffer pool (borrowed).
 */
#ifndef BRRR_REACTORS_IO_URING_IO_URING_INTERNAL_H_
#define BRRR_REACTORS_IO_URING_IO_URING_INTERNAL_H_

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/reactor_abi.h"

/* ---- SQE user_data encoding (see io_uring_reactor.c's top comment) ---- */
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

#define UR_BGID 0 /* the buffer group of the provided-buffer ring */
/* The most one native multishot bundle receive takes before it ends, in pool buffers (recv_cap,
 * Linux 6.17's total limit): the backend arms it again at once, and that SQE goes in with the
 * loop's next submission, beside the cancel of a connection that stopped reading. So such a
 * connection holds at most about twice this much taken ahead of its stop. */
#define UR_RECV_CAP_BUFFERS 16u

/* Receive bundles (Linux 6.10), which Debian 12's liburing 2.3 headers predate. Values from
 * the kernel's include/uapi/linux/io_uring.h: IORING_RECVSEND_BUNDLE is a send/recv flag in
 * sqe->ioprio, IORING_FEAT_RECVSEND_BUNDLE a bit of io_uring_params.features. */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

/* Set to 0 in the environment, turns receive bundles off (see io_uring_reactor.c). */
#define UR_BUNDLES_ENV "BRRR_IO_URING_BUNDLES"
/* Set to 0 in the environment, turns the one-thread ring off (see io_uring_reactor.c). */
#define UR_ONE_THREAD_ENV "BRRR_IO_URING_DEFER_TASKRUN"

/* ur_op.state bits. */
#define UR_ST_CANCEL 0x01u     /* cancel() was called: never re-arm, the next end is final */
#define UR_ST_CANCEL_SQE 0x02u /* the cancel still needs its SQE (the SQ was full) */
#define UR_ST_NATIVE_MS 0x04u  /* the kernel request is a native multishot */
#define UR_ST_EMULATE 0x08u    /* emulate multishot: re-arm single shots */
#define UR_ST_PROBING 0x10u    /* a single shot after native multishot said -EINVAL */
#define UR_ST_POLLING 0x20u    /* the kernel request is the POLL_ADD of the -EAGAIN fallback */
#define UR_ST_SHOT 0x40u       /* the native multishot request delivered at least once */
#define UR_ST_ARM_SQE 0x80u    /* the request still needs its SQE (owed: submit() or a re-arm
                                  found the SQ full, a one-thread ring's before its first wait()
                                  or one whose flush the kernel did not take) */

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

/* A CQE kept by the backend (see r->backlog). */
typedef struct ur_cqe {
  uint64_t user_data;
  int32_t res;
  uint32_t flags;
} ur_cqe;

/* The operations in flight on one descriptor: slot + 1, 0 for none. */
typedef struct ur_fd {
  uint32_t read_slot;
  uint32_t write_slot;
} ur_fd;

struct brrr_reactor {
  struct io_uring ring;
  int ring_ready; /* io_uring_queue_init succeeded */
  /* The one-thread ring (BRRR_REACTOR_ONE_THREAD): SINGLE_ISSUER | DEFER_TASKRUN, created
   * disabled (IORING_SETUP_R_DISABLED) and enabled by the first wait(), whose thread becomes
   * the only one the kernel lets enter it (`issuer`). */
  uint8_t one_thread_ring;
  uint8_t ring_enabled; /* always 1 for other rings */
  pid_t issuer;         /* one-thread ring, once enabled: its kernel thread id (pu_thread_id) */
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
  uint8_t bundles; /* multishot receives are bundles (6.10, unless UR_BUNDLES_ENV=0) */
  uint8_t recv_cap; /* bundle receives end after UR_RECV_CAP_BUFFERS (6.17; off at -EINVAL) */

  ur_op* ops;
  uint32_t op_capacity;
  uint32_t free_head; /* UR_NO_SLOT when empty */
  uint32_t live;
  uint32_t cancels_owed; /* ops with UR_ST_CANCEL_SQE */
  uint32_t arms_owed;    /* ops with UR_ST_ARM_SQE */

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
  /* Where each id went on the ring, so that a bundle's first id leads to the ones after it:
   * ring_ids[position & br_mask] is the id added at that position, ring_pos[id] the position
   * of the id's last addition; ring_tail is the next position (as the ring's own 16 bits). */
  uint16_t* ring_ids;
  uint16_t* ring_pos;
  uint16_t ring_tail;

  /* Completions split from a bundle CQE that did not fit into wait()'s array: delivered
   * first by the next wait(), in order. A FIFO of buf_count entries: each holds a buffer. */
  brrr_completion* pending;
  uint32_t pending_head;
  uint32_t pending_count;

  /* CQEs of a one-thread ring moved out of the CQ ring so that the kernel could flush its
   * overflow list into it (ur_keep_overflow): read before the ring, oldest first;
   * backlog[backlog_head..backlog_end) are still to read. */
  ur_cqe* backlog;
  uint32_t backlog_head;
  uint32_t backlog_end;
  uint32_t backlog_capacity;

  /* try_send's pacing: the last wait() returned at most one completion and no send went at
   * once since. */
  uint8_t quiet;

  brrr_reactor_counters counters;
};

static inline uint64_t ur_encode(uint32_t kind, uint32_t gen, uint32_t slot) {
  return ((uint64_t)kind << UR_KIND_SHIFT) | ((uint64_t)(gen & UR_GEN_MASK) << UR_GEN_SHIFT) |
         (uint64_t)slot;
}

/* The SQE user_data of the op in `slot`'s kernel request. */
static inline uint64_t ur_op_key(const brrr_reactor* r, uint32_t slot) {
  return ur_encode(UR_KIND_OP, r->ops[slot].gen, slot);
}

/* ---- ring_setup.c ---- */

/* Sets up the ring (config->queue_depth entries, see create()) and probes the kernel's
 * features into r. 0, or -errno with the reason (and, when known, why) in err. */
int ur_open_ring(brrr_reactor* r, const brrr_reactor_config* config, char* err,
                 size_t err_size);

/* Enables a one-thread ring from the calling thread, which becomes its issuer; 0 at once for
 * a ring that is enabled already. 0 or -errno. */
int ur_claim_ring(brrr_reactor* r);
/* Whether this thread may enter the ring: it is enabled, and this is its issuer if it has
 * one. */
int ur_may_enter(const brrr_reactor* r);

/* ---- submission.c ---- */

/* An SQE, flushing the queue to the kernel when it is full. NULL if the kernel takes no flush,
 * or when a one-thread ring, not enabled yet, is full. */
struct io_uring_sqe* ur_get_sqe(brrr_reactor* r);
/* Queues the read of the wake-up eventfd. 0 or -ENOMEM (no SQE). */
int ur_arm_wake(brrr_reactor* r);
/* The operations on fd, or NULL if fd never had one. */
ur_fd* ur_existing_fd_entry(brrr_reactor* r, int fd);
/* Frees a slot whose kernel request has ended, releasing its side of the descriptor. */
void ur_op_free(brrr_reactor* r, uint32_t slot);
/* Queues the op's kernel request (again). 0, or -ENOMEM when no SQE can be had. */
int ur_arm_op(brrr_reactor* r, uint32_t slot);
/* The -EAGAIN fallback: waits for the op's direction with POLL_ADD under the op's key. */
int ur_arm_poll_fallback(brrr_reactor* r, uint32_t slot);
/* Issues the cancels that found the SQ full. */
void ur_pay_owed_cancels(brrr_reactor* r);
/* Arms the ops owed their request (UR_ST_ARM_SQE): submitted or re-armed (completion.c) when
 * the SQ was full, a one-thread ring's before its first wait() or one whose flush the kernel
 * did not take. wait() calls it. Stops at the first op that gets no SQE: wait() goes on after
 * its next enter. */
void ur_pay_owed_arms(brrr_reactor* r);
/* destroy(): frees the ops whose request never reached the kernel (UR_ST_ARM_SQE). */
void ur_drop_owed_arms(brrr_reactor* r);
/* destroy(): cancels each live op on its own (no CANCEL_ANY, or it failed). */
void ur_cancel_each(brrr_reactor* r);
int ur_submit(brrr_reactor* r, const brrr_op* op);
int ur_cancel(brrr_reactor* r, int fd, uint64_t user_data);
/* A plain send at once, only on a quiet loop (see the function); else -EAGAIN: an operation. */
int ur_try_send(brrr_reactor* r, int fd, const void* buf, uint32_t len);

/* ---- completion.c ---- */

/* Consumes CQEs while `out` has room, after the completions a bundle left pending (and from
 * r->backlog before the CQ ring). Returns the completions stored. */
int ur_reap(brrr_reactor* r, brrr_completion* out, int max_completions);
/* A one-thread ring leaves no CQE on the kernel's overflow list, where only its issuer could
 * reach it: moves the CQ ring's CQEs to r->backlog while the kernel has more to flush. Issuer
 * only. ur_keep_overflow is the test each wait makes, ur_take_overflow the work. */
void ur_take_overflow(brrr_reactor* r);
static inline void ur_keep_overflow(brrr_reactor* r) {
  if (r->one_thread_ring && io_uring_cq_has_overflow(&r->ring)) ur_take_overflow(r);
}
/* Whether the final completion of the op with user_data waits in r->pending. */
int ur_pending_final(const brrr_reactor* r, uint64_t user_data);
/* One io_uring_enter: submits everything queued and waits for one CQE, up to timeout_ns
 * (-1: no limit; 0: do not wait). 0 or more, or -errno (-ETIME on timeout). */
int ur_enter(brrr_reactor* r, int64_t timeout_ns);
int ur_wait(brrr_reactor* r, brrr_completion* out, int max_completions, int64_t timeout_ns);

/* ---- buffer_ring.c ---- */

/* Is the buffer ring (5.19) there? Registers a small one and takes it back. */
int ur_buf_ring_supported(brrr_reactor* r);
/* Moves spare buffers, hottest first, onto the ring until it holds what the armed receives
 * may need (see io_uring_reactor.c). */
void ur_ring_top_up(brrr_reactor* r);
/* A buffer is back from the kernel (no data) or the runtime. */
void ur_buffer_returned(brrr_reactor* r, uint32_t id);
/* The id that went on the ring `offset` entries after `first` (a bundle's buffers follow its
 * first one on the ring); aborts if that entry was reused meanwhile (a broken invariant). */
uint32_t ur_ring_id_after(const brrr_reactor* r, uint32_t first, uint32_t offset);
int ur_provide_buffers(brrr_reactor* r, void* base, uint32_t size, uint32_t count);
void ur_recycle_buffer(brrr_reactor* r, uint32_t buffer_id);

#endif /* BRRR_REACTORS_IO_URING_IO_URING_INTERNAL_H_ */
