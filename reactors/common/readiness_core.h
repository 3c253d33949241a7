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
 * mode a descriptor left ready goes on an "again" list that the next wait() serves before
 * blocking, so no edge is ever lost.
 *
 * Threads: loop thread only, except rc_wake() (thread-safe, async-signal-safe).
 * Ownership: the core owns its slots, queues and the wake eventfd; op buffers are borrowed.
 */
#ifndef BRRR_REACTORS_COMMON_READINESS_CORE_H_
#define BRRR_REACTORS_COMMON_READINESS_CORE_H_

#include <stddef.h>
#include <stdint.h>

#include "runtime/reactor_abi.h"

#define RC_READ 1u
#define RC_WRITE 2u

/* System calls one descriptor gets per readiness event before others are served. */
#define RC_BATCH 16

/* Provided buffers one multishot receive fills with one system call (recvmsg with that many
 * entries): a burst costs a call per RC_SCATTER buffers, not one per buffer. */
#define RC_SCATTER 4

typedef enum rc_mode { RC_LEVEL = 0, RC_EDGE = 1 } rc_mode;

typedef struct rc_core rc_core;

/* What a backend implements. `backend` is the backend's own state. */
typedef struct rc_backend_ops {
  /* Watch fd for the directions in `interest` (RC_READ | RC_WRITE; 0 = stop watching).
   * `previous` is what was watched before. 0 or -errno. */
  int (*set_interest)(void* backend, int fd, uint32_t previous, uint32_t interest);
  /* Block up to timeout_ns (-1: no limit) and report each ready descriptor with
   * rc_on_ready(). Returns the number of events, 0 on timeout, or -errno (-EINTR when a
   * signal or io_uring task work interrupted the wait: the core waits again for the rest). */
  int (*wait)(void* backend, rc_core* core, int64_t timeout_ns);
  /* Frees the backend's state. */
  void (*destroy)(void* backend);
} rc_backend_ops;

/* Creates a core over a backend (ownership of `backend` passes to the core). Registers the
 * wake eventfd with the backend. `max_fd` is the highest descriptor the backend can watch,
 * or -1. On failure returns -errno, writes a reason into err and destroys the backend. */
int rc_create(const rc_backend_ops* ops, void* backend, rc_mode mode, int max_fd,
              rc_core** out, char* err, size_t err_size);

/* Called by the backend's wait() for each ready descriptor; `ready` is RC_READ | RC_WRITE.
 * `closed` reports conditions that never go away: RC_READ when the peer has shut down its
 * side or the socket failed (EPOLLRDHUP, EPOLLHUP, EPOLLERR), RC_WRITE when writing can only
 * fail (EPOLLHUP, EPOLLERR). In edge mode they stay set until release_fd(), so a short read
 * that left only the end of stream behind (no further edge will come for it) is still
 * followed by a read that sees it. Level backends pass 0: they hear of readiness on every
 * wait. */
void rc_on_ready(rc_core* core, int fd, uint32_t ready, uint32_t closed);

/* Counts one system call the backend made (for brrr_reactor_counters). */
void rc_count_syscall(rc_core* core);

/* The ABI entry points, for the backend's brrr_reactor_plugin table. A backend casts its
 * rc_core* to brrr_reactor*: the core is the reactor instance. */
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

/* Writes "what: strerror(-error)" into err. Returns error (a negative errno). */
int rc_fail(char* err, size_t err_size, const char* what, int error);

/* Converts a timeout in ns (-1 = none) to whole milliseconds, rounding up so a timer is
 * never woken for early. */
int rc_timeout_ms(int64_t timeout_ns);

#endif /* BRRR_REACTORS_COMMON_READINESS_CORE_H_ */
