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
 * one brrr completion, except a receive bundle: see below). When wait() already has
 * completions to return it does not block, but still submits what is queued so that new
 * operations start at once. A wait the kernel refuses with EBUSY (its CQ overflow list does
 * not fit into a full CQ ring, kernels before 5.19) or EAGAIN (no memory for a request) reaps
 * and waits again for what is left of its timeout: neither is a timeout or a wake-up.
 *
 * Sends at once (try_send). On a quiet loop (its last wait() returned at most one completion,
 * no send went at once since, nothing waits in the submission queue) a reply goes out with one
 * send(2) (kernel_calls.h's, as the readiness backends send) and no request: a connection
 * answering one request at a time then costs that send and the enter that waits for the next
 * request, where a SEND request cost an enter whose wait its own completion ended at once, and
 * one more loop iteration. Under load (several completions per wait) every send stays a request
 * in the loop's next batch.
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
 * end of stream (recv 0), -ENOBUFS when the pool is handed out (a ring that ran dry while
 * buffers wait on the spare stack, below, takes more and the receive is re-armed), any other
 * error. Accept errors that concern one dead connection (ECONNABORTED, EPROTO, EPERM) and
 * EINTR re-arm silently, as the readiness core retries them.
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
 * Receive bundles (IORING_RECVSEND_BUNDLE, Linux 6.10). A native multishot receive is armed as
 * a bundle: one kernel receive fills as many ring buffers as the socket has data for (up to
 * 256), each whole but the last, and posts one CQE for all of them. Without bundles 64 KiB
 * waiting in a socket costs four receives and four CQEs. The CQE names the first buffer; the
 * others are the ring entries that followed it, which the backend looks up in its record of
 * what it put where on the ring (the ring has twice as many entries as the pool, so an entry
 * is not rewritten before its CQE is seen). The runtime's ABI carries one buffer per
 * completion, so a bundle becomes one completion per buffer, in ring order, all flagged MORE
 * but the last, which the CQE's own handling (re-arm, final) takes. Those that do not fit
 * into wait()'s array wait in a FIFO (one entry per pool buffer: each holds one) that the next
 * wait() empties before it reads the CQ. An end of stream, an error or -ENOBUFS comes in a
 * CQE of its own after the data, as without bundles. Bundles need IORING_FEAT_RECVSEND_BUNDLE
 * in the ring's features; BRRR_IO_URING_BUNDLES=0 in the environment turns them off (the
 * per-buffer receives, to compare or to test). The counter `recv_bundles` (the loop figure
 * backend_recv_bundles) counts CQEs that filled several buffers, so it shows whether bundles
 * are in use. Left to itself one kernel pass (the kernel retries up to 32 receives, each up to
 * 256 buffers) takes everything the socket holds, megabytes once the kernel has grown its
 * receive buffer, all of it held by a connection that stopped reading at its high-water mark
 * (server/connection.h). So each bundle receive carries Linux 6.17's total limit
 * (sqe->optlen, UR_RECV_CAP_BUFFERS buffers): it ends there, the backend arms it again at once,
 * and that SQE goes in with the loop's next submission, beside the cancel of a connection that
 * stopped. (The per-pass cap, sqe->len, left a receive waiting for ever when the peer had reset
 * behind its data.) A kernel before 6.17 refuses the limit with -EINVAL; the receive is armed
 * again without it, and so is every later one (recv_cap off).
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
 * are dropped, newest first. create() queues the wake-up read without submitting it, so
 * creating a reactor leaves no request tied to the creating thread. Without CAP_IPC_LOCK the
 * rings count against RLIMIT_MEMLOCK, per user and across processes, and a closed ring's
 * share is released asynchronously: on -ENOMEM create() halves the ring down to 32 entries,
 * then pauses briefly (5 to 80 ms, five times) before it gives up.
 *
 * The one-thread ring. When the runtime promises that one thread drives the reactor
 * (BRRR_REACTOR_ONE_THREAD), the ring is also IORING_SETUP_SINGLE_ISSUER |
 * IORING_SETUP_DEFER_TASKRUN (6.1): the kernel runs the completion work of the ring's
 * requests (a receive's copy, an accept) only inside that thread's io_uring_enter with
 * GETEVENTS, in one batch, instead of as task work at every return to user space
 * (bench/JOURNAL.md, fourth run, has the A/B). Such a ring can be entered (and registered
 * with) by one thread only, so it is created disabled (IORING_SETUP_R_DISABLED) and enabled
 * by the first wait() (IORING_REGISTER_ENABLE_RINGS), whose thread becomes the issuer: a loop
 * built on one thread and run by another works. Before that, submit() only queues: an op
 * that finds the SQ full (a ring made small under RLIMIT_MEMLOCK fills at 32) is kept in the
 * op table and armed by the first wait(), after it enables the ring.
 * destroy() may run on any thread (the issuer is told by its kernel thread id: glibc gives a
 * joined thread's pthread_t to the next thread it makes): on the issuer it cancels and reaps
 * as below; elsewhere (the server destroys its loops after joining their threads) it reaps
 * what is in the CQ ring (closing accepted descriptors) and closes the ring. The kernel's CQ
 * overflow list (CQEs that found the CQ ring full) is out of its reach there: only the
 * issuer's io_uring_enter flushes it. So the issuer leaves none there: a wait (or a flush of
 * a full SQ) that finds the overflow flag raised moves the CQ ring's CQEs to a backlog, which
 * reaps read first, and has the kernel flush, until the list is empty. Closing the ring is
 * what ends the requests still live, safely: a deferred request makes progress (touches a
 * buffer) only inside the issuer's io_uring_enter, which can no longer happen, and the kernel
 * cancels the rest as the ring dies (when the issuer thread has exited, the kernel cancelled
 * its requests then).
 * BRRR_IO_URING_DEFER_TASKRUN=0 in the environment turns the one-thread ring off.
 * Without the promise the ring is neither: a reactor may be created on one thread and then
 * run by another. io_uring_setup(2) names "the thread that waits is not the one that
 * submitted" as COOP_TASKRUN's exception (completion work that runs as task_work of the
 * submitting thread waits until that thread enters the kernel); checked on 6.18, a socket
 * request whose submitting thread then sleeps completes at once for another thread's wait,
 * IORING_SQ_TASKRUN never raised.
 *
 * Cancellation. cancel() queues an IORING_OP_ASYNC_CANCEL keyed on the request's user_data
 * (with IOSQE_CQE_SKIP_SUCCESS where supported, so a successful cancel posts nothing). The
 * operation's own final CQE follows: -ECANCELED, or its real result if it had finished; the
 * backend never re-arms a cancelled operation. Cancelling twice is harmless (0, no second
 * request). If no SQE can be had, the cancel is owed (below).
 *
 * Wake-up. The ring always has an IORING_OP_READ of an eventfd queued or in flight (or owed,
 * below); wake() writes 1 to it (thread-safe and async-signal-safe), the read completes,
 * wait() returns, and the read is re-armed. The eventfd is blocking: a read of an O_NONBLOCK
 * file would fail with -EAGAIN instead of waiting. Its counter cannot reach the limit at which
 * write blocks.
 *
 * Owed SQEs. An SQE is had by flushing the SQ when it is full. Where none can be had (the
 * kernel takes no flush: -EAGAIN, no memory for a request; -EBUSY, an overflow it cannot flush
 * before 5.19; or a one-thread ring before its first wait(), above), a cancel, the wake-up
 * read's re-arm, a submit()'s request, and the re-arm of an operation that goes on
 * (multishot, a retry, a fallback) are owed, not errors (the loop takes a wait's error for a
 * lost ring, a connection a submit's) nor the operation's end: wait() queues them as soon as
 * it can, and while anything is owed a blocking wait goes in steps of 1 ms, each enter making
 * room. An owed cancel across an unbounded wait would leave its operation running, and a
 * socket's close waiting for it; a wake-up while the read is owed stays in the eventfd's
 * count, which the read returns at once when queued.
 *
 * destroy() cancels everything (one IORING_ASYNC_CANCEL_ANY, or one cancel per operation),
 * completes the eventfd read, and reaps until every operation's last CQE has arrived (so no
 * buffer is touched afterwards; bounded to 10 s, re-issuing cancels every second), closing
 * descriptors that accepts produced meanwhile. Then it unregisters the buffer ring and exits
 * the ring. Nothing is delivered for those operations.
 *
 * Counters: `syscalls` counts io_uring_enter calls (submit flushes, waits), io_uring_register
 * calls after create(), and the getsockopt of the connect fallback; wake()'s eventfd write is
 * not counted (it runs on other threads). `recv_bundles` counts receive CQEs that filled
 * several buffers.
 *
 * Files (io_uring_internal.h holds the state they share): this one, create(), destroy() and
 * the small entry points; ring_setup.c, the ring and the feature probes; submission.c, the op
 * table, SQEs and cancels; completion.c, CQEs into completions and wait(); buffer_ring.c, the
 * provided-buffer ring.
 *
 * Threads: one thread at a time (the loop), except wake(). Ownership: the reactor owns the
 * ring, the eventfd, its tables and the buffer ring's memory; op buffers and the provided
 * buffer pool are borrowed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reactors/common/plugin_util.h"
#include "reactors/io_uring/io_uring_internal.h"
#include "runtime/hot_path.h"

/* destroy(): how long to wait for the kernel to finish the cancelled operations. */
#define UR_DRAIN_STEP_NS 100000000LL /* 100 ms per wait */
#define UR_DRAIN_STEPS 100           /* 10 s in all */
#define UR_DRAIN_RECANCEL 10         /* re-issue cancels every 1 s */

static void ur_destroy(brrr_reactor* r);

static int ur_create(const brrr_reactor_config* config, brrr_reactor** out, char* err,
                     size_t err_size) {
  brrr_reactor* r = calloc(1, sizeof *r);
  if (r == NULL) return pu_fail(err, err_size, "allocating the reactor", -ENOMEM, NULL);
  r->wake_fd = -1;
  r->free_head = UR_NO_SLOT;
  r->quiet = 1; /* no wait yet, no batch */
  int rc = ur_open_ring(r, config, err, err_size);
  if (rc == 0) {
    /* Blocking on purpose: an io_uring read of an O_NONBLOCK file fails with -EAGAIN. */
    r->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (r->wake_fd < 0) {
      rc = pu_fail(err, err_size, "eventfd (the cross-thread wake-up)", -errno, NULL);
    }
  }
  /* Queued, not submitted: the first wait() submits it, from the thread that runs the loop. */
  if (rc == 0 && ur_arm_wake(r) != 0) {
    rc = pu_fail(err, err_size, "queueing the wake-up read", -ENOMEM, NULL);
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
    struct io_uring_sqe* sqe = ur_get_sqe(r);
    if (sqe != NULL) {
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
      io_uring_sqe_set_data64(sqe, ur_encode(UR_KIND_CANCEL, 0, UR_SLOT_ANY));
      if (r->cqe_skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
      return;
    }
  }
  ur_cancel_each(r);
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
    if (step > 0 && step % UR_DRAIN_RECANCEL == 0) ur_cancel_each(r);
    int rc = ur_enter(r, UR_DRAIN_STEP_NS);
    while (ur_reap(r, scratch, 64) > 0) {
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
    /* CQEs already in the backlog and the ring first: they may end ops (and close accepted
     * descriptors). */
    brrr_completion scratch[64];
    while (ur_reap(r, scratch, 64) > 0) {
    }
    ur_drop_owed_arms(r); /* requests no wait() armed: the kernel never had them */
    /* A one-thread ring on another thread than its issuer (or never enabled): the kernel
     * refuses to be entered, and closing the ring is what ends its requests (see the top of
     * this file). */
    int may_enter = ur_may_enter(r);
    if (may_enter) {
      cancel_all(r);
      if (r->wake_armed && r->wake_fd >= 0) {
        uint64_t one = 1; /* completes the eventfd read even where it cannot be cancelled */
        ssize_t written = write(r->wake_fd, &one, sizeof one);
        (void)written;
      }
      drain(r);
    }
    if (r->br != NULL) {
      if (may_enter) io_uring_unregister_buf_ring(&r->ring, UR_BGID);
      munmap(r->br, r->br_bytes); /* the kernel pinned its pages: they go with the ring */
    }
    io_uring_queue_exit(&r->ring);
  }
  if (r->wake_fd >= 0) close(r->wake_fd);
  free(r->ops);
  free(r->fds);
  free(r->buf_out);
  free(r->spare);
  free(r->ring_ids);
  free(r->ring_pos);
  free(r->pending);
  free(r->backlog);
  free(r);
}

static int ur_wake(brrr_reactor* r) { return pu_eventfd_signal(r->wake_fd); }

static int ur_release_fd(brrr_reactor* r, int fd) {
  ur_fd* e = ur_existing_fd_entry(r, fd);
  if (e == NULL) return 0;
  if (e->read_slot != 0 || e->write_slot != 0) return -EBUSY;
  return 0;
}

BRRR_HOT_PATH static void ur_counters(const brrr_reactor* r, brrr_reactor_counters* out) { *out = r->counters; }

static const brrr_reactor_plugin kIoUringPlugin = {
    .abi_version = BRRR_REACTOR_ABI_VERSION,
    .struct_size = sizeof(brrr_reactor_plugin),
    .name = "io_uring",
    .description =
        "io_uring(7), native operations, multishot accept/recv, buffer ring, receive bundles",
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
    .try_send = ur_try_send,
};

BRRR_REACTOR_EXPORT const brrr_reactor_plugin* brrr_reactor_entry(void) {
  return &kIoUringPlugin;
}
