/*
 * readiness_core.h: the half of the select, poll and epoll backends that they share.
 *
 * brrr's plugin ABI (runtime/reactor_abi.h) is operation-based. A readiness backend turns
 * "the descriptor is ready" into "the operation completed": this core keeps, per descriptor,
 * the one read-side and one write-side operation in flight, performs accept/recv/send/connect
 * when the kernel reports readiness, and queues completions for wait() to hand out. A backend
 * supplies only the kernel mechanism: which descriptors to watch, and a blocking wait.
 *
 * Two interest modes:
 *  - RC_LEVEL (select, poll): the backend watches exactly the directions that have an
 *    operation in flight; set_interest() is called whenever that set changes.
 *  - RC_EDGE (epoll): the backend registers a descriptor once for both directions, edge
 *    triggered, the first time it gets an operation, and drops it at release_fd(). The core
 *    caches readiness per direction, so an operation submitted on a ready descriptor runs at
 *    once, without another trip through the kernel.
 *
 * Fairness: one readiness event performs at most RC_BATCH system calls for a descriptor
 * (multishot accept, multishot recv) and fills at most RC_BATCH receive buffers. In edge
 * mode a descriptor left ready goes on an "again" list that a wait() serves before blocking,
 * so no edge is ever lost: the first wait() to find every completion taken, so that the
 * runtime has seen a descriptor's receives (and could stop it) before more are made.
 *
 * Pacing: the backend's wait() only reports; the core records the events and serves
 * RC_SERVE_PER_WAIT of them per wait() call, so the runtime sends the replies to those
 * before the next descriptors are received. The waits after that serve the rest, in the
 * order reported, without asking the kernel until none is left. A descriptor released
 * meanwhile has its events dropped. So that no descriptor is always among the last served,
 * the scanning backends (poll, select) start each walk of their sets one place further on
 * (epoll, edge-triggered, reports each edge once, in the order the edges came).
 *
 * A backend file holds only its mechanism (an rc_backend_ops) and one RC_DEFINE_PLUGIN line.
 *
 * Wake-ups from other threads: an eventfd the backend watches (epoll, where a watched
 * descriptor costs a wait nothing), or for a backend with wake_by_signal (poll, select, which
 * look at every watched descriptor on every wait) a signal that ends the wait
 * (signal_wake.h), with the eventfd as the fallback when that signal is taken.
 *
 * Threads: loop thread only, except rc_wake() (thread-safe, async-signal-safe).
 * Ownership: the core owns its slots, queues and the wake eventfd (if any); op buffers are
 * borrowed.
 */
#ifndef BRRR_REACTORS_COMMON_READINESS_CORE_H_
#define BRRR_REACTORS_COMMON_READINESS_CORE_H_

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "reactors/common/plugin_util.h"
#include "runtime/reactor_abi.h"

#define RC_READ 1u
#define RC_WRITE 2u
/* In an edge backend's `ready` only (rc_on_ready): TCP urgent data is pending (EPOLLPRI). */
#define RC_URGENT 4u

/* System calls one descriptor gets per readiness event before others are served. */
#define RC_BATCH 16

/* Provided buffers one multishot receive fills with one system call (recvmsg with that many
 * entries): a burst costs a call per RC_SCATTER buffers, not one per buffer. Eight, not four:
 * only a read that leaves room over proves the socket drained, so a message that fills the
 * buffers offered exactly (64 KiB in four of the default 16 KiB) costs a second receive that
 * finds nothing; offered eight, it costs one (bench/JOURNAL.md, ninth run). */
#define RC_SCATTER 8
/* Small receives in a row (each less than one buffer) after which a descriptor's multishot
 * receives take one buffer with recv(2): a recvmsg over RC_SCATTER buffers costs the kernel a
 * msghdr and an iovec array to import on every small message. */
#define RC_SMALL_READS 4

/* Reported descriptors one wait() serves (see Pacing above). A whole kernel batch (up to 256
 * from epoll, every ready one from poll and select) received before the loop sends any reply
 * keeps the first replies waiting for the last receives, and fills the peer CPU's deferred
 * socket-buffer free list until the kernel kicks it with an inter-processor interrupt (every
 * 32 frees, half of net.core.skb_defer_max). A/B in bench/JOURNAL.md (fifth run): p99 at 1,000
 * connections 10% lower, CPU per message level. */
#define RC_SERVE_PER_WAIT 32

typedef enum rc_mode { RC_LEVEL = 0, RC_EDGE = 1 } rc_mode;

typedef struct rc_core rc_core;

/* What a backend implements. `backend` is the backend's own state. */
typedef struct rc_backend_ops {
  /* Makes the backend's state (create()): 0 with *backend set, or -errno with a reason
   * written into err (see pu_fail). */
  int (*open)(void** backend, char* err, size_t err_size);
  /* Watch fd for the directions in `interest` (RC_READ | RC_WRITE; 0 = stop watching).
   * `previous` is what was watched before. 0 or -errno. */
  int (*set_interest)(void* backend, int fd, uint32_t previous, uint32_t interest);
  /* Block up to timeout_ns (-1: no limit) and report each ready descriptor with
   * rc_on_ready() (which only records it). Returns the number of events, 0 on timeout, or
   * -errno (-EINTR when a signal interrupted the wait: the core waits again for the rest,
   * unless it was the wake-up). `mask`, when not NULL, is the signal mask to wait with (the
   * kernel sets it for the wait alone: ppoll, pselect); only wake_by_signal backends get one. */
  int (*wait)(void* backend, rc_core* core, int64_t timeout_ns, const sigset_t* mask);
  /* Frees the backend's state. */
  void (*destroy)(void* backend);
  rc_mode mode;
  /* 1: wake this backend's waits with a signal, through `mask` (signal_wake.h), instead of
   * watching an eventfd; for waits that cost a descriptor's work per watched descriptor. */
  int wake_by_signal;
} rc_backend_ops;

/* What every readiness backend can do: the core emulates the rest of the ABI. */
#define RC_CAPABILITIES (BRRR_CAP_MULTISHOT | BRRR_CAP_PROVIDED_BUFFERS | BRRR_CAP_SENDMSG)

/* Defines a readiness plugin: its create(), its brrr_reactor_plugin table (the core's entry
 * points) and the one exported symbol, brrr_reactor_entry. `ops` names the backend's
 * rc_backend_ops; `max_fd` is the highest descriptor it can watch, or -1. Use once per plugin,
 * at file scope:
 *
 *   RC_DEFINE_PLUGIN(kPollOps, "poll", "poll(2), level-triggered, readiness plus system call",
 *                    -1)
 */
#define RC_DEFINE_PLUGIN(ops, plugin_name, plugin_description, plugin_max_fd)                  \
  static int rc_plugin_create(const brrr_reactor_config* config, brrr_reactor** out,          \
                              char* err, size_t err_size) {                                   \
    (void)config;                                                                              \
    return rc_create(&(ops), (plugin_max_fd), out, err, err_size);                             \
  }                                                                                            \
  static const brrr_reactor_plugin rc_plugin = {                                               \
      .abi_version = BRRR_REACTOR_ABI_VERSION,                                                 \
      .struct_size = sizeof(brrr_reactor_plugin),                                              \
      .name = (plugin_name),                                                                   \
      .description = (plugin_description),                                                     \
      .capabilities = RC_CAPABILITIES,                                                         \
      .max_fd = (plugin_max_fd),                                                               \
      .create = rc_plugin_create,                                                              \
      .destroy = rc_destroy,                                                                   \
      .submit = rc_submit,                                                                     \
      .cancel = rc_cancel,                                                                     \
      .wait = rc_wait,                                                                         \
      .wake = rc_wake,                                                                         \
      .release_fd = rc_release_fd,                                                             \
      .provide_buffers = rc_provide_buffers,                                                   \
      .recycle_buffer = rc_recycle_buffer,                                                     \
      .counters = rc_counters,                                                                 \
      .try_send = rc_try_send,                                                                 \
  };                                                                                           \
  BRRR_REACTOR_EXPORT const brrr_reactor_plugin* brrr_reactor_entry(void) { return &rc_plugin; }

/* create(): opens the backend and a core over it, with its wake-up: the signal (a
 * wake_by_signal backend whose signal is free) or an eventfd registered with the backend.
 * `max_fd` is the highest descriptor the backend can watch, or -1. On success stores the
 * instance (OWNED by the caller, freed with rc_destroy) in *out; on failure returns -errno and
 * writes a reason into err. */
int rc_create(const rc_backend_ops* ops, int max_fd, brrr_reactor** out, char* err,
              size_t err_size);

/* Called by the backend's wait() for each ready descriptor; `ready` is RC_READ | RC_WRITE,
 * and in edge mode RC_URGENT when TCP urgent data is pending: a receive stops short at its
 * mark with more behind it, which no further edge announces, so until an EAGAIN a short read
 * no longer counts as the queue drained.
 * `closed` reports conditions that never go away: RC_READ when the peer has shut down its
 * side or the socket failed (EPOLLRDHUP, EPOLLHUP, EPOLLERR), RC_WRITE when writing can only
 * fail (EPOLLHUP, EPOLLERR). In edge mode they stay set until release_fd(), so a short read
 * that left only the end of stream behind (no further edge will come for it) is still
 * followed by a read that sees it. Level backends pass 0: they hear of readiness on every
 * wait. Records the event for the core to serve (see Pacing above), so the backend may report
 * a descriptor and go on walking its own structures: nothing runs on the descriptor yet. */
void rc_on_ready(rc_core* core, int fd, uint32_t ready, uint32_t closed);

/* The ABI entry points of the plugin table (RC_DEFINE_PLUGIN): the core is the instance. */
void rc_destroy(brrr_reactor* reactor);
int rc_submit(brrr_reactor* reactor, const brrr_op* op);
int rc_cancel(brrr_reactor* reactor, int fd, uint64_t user_data);
int rc_wait(brrr_reactor* reactor, brrr_completion* out, int max_completions,
            int64_t timeout_ns);
int rc_wake(brrr_reactor* reactor);
int rc_release_fd(brrr_reactor* reactor, int fd);
int rc_provide_buffers(brrr_reactor* reactor, void* base, uint32_t size, uint32_t count);
void rc_recycle_buffer(brrr_reactor* reactor, uint32_t buffer_id);
void rc_counters(const brrr_reactor* reactor, brrr_reactor_counters* out);
int rc_try_send(brrr_reactor* reactor, int fd, const void* buf, uint32_t len);

/* Converts a timeout in ns (-1 = none) to whole milliseconds, rounding up so a timer is
 * never woken for early. */
int rc_timeout_ms(int64_t timeout_ns);

/* Converts a timeout in ns (-1 = none) to *ts for pselect, ppoll or epoll_pwait2: returns ts,
 * or NULL for none. */
struct timespec* rc_timespec(int64_t timeout_ns, struct timespec* ts);

#endif /* BRRR_REACTORS_COMMON_READINESS_CORE_H_ */
