/*
 * readiness_internal.h: the readiness core's state, shared by its two files and by nothing
 * else (backends see readiness_core.h only).
 *
 *   readiness_core.c  slots, interest, the again list, the completion queue and the ABI
 *                     entry points
 *   readiness_io.c    performing an operation on a ready descriptor (accept, recv, send,
 *                     sendmsg, connect's outcome), queueing its completions
 *
 * Threads: loop thread only. Ownership: the core owns everything here; op buffers and the
 * provided buffer pool are borrowed.
 */
#ifndef BRRR_REACTORS_COMMON_READINESS_INTERNAL_H_
#define BRRR_REACTORS_COMMON_READINESS_INTERNAL_H_

#include <stddef.h>
#include <stdint.h>

#include "reactors/common/readiness_core.h"
#include "reactors/common/signal_wake.h"

/* One descriptor's operations in flight and cached readiness. */
typedef struct rc_slot {
  brrr_op read_op;  /* valid when has_read */
  brrr_op write_op; /* valid when has_write */
  uint8_t has_read;
  uint8_t has_write;
  uint8_t ready;      /* RC_READ | RC_WRITE believed ready (edge mode cache) */
  uint8_t closed;     /* RC_READ | RC_WRITE ready for good: hang-up or error (edge mode) */
  uint8_t watched;    /* RC_READ | RC_WRITE the backend watches */
  uint8_t in_again;   /* on the again list */
  uint8_t connecting; /* write_op is a CONNECT whose connect() returned EINPROGRESS */
  uint8_t urgent;     /* edge mode: RC_URGENT seen, reads go on until EAGAIN (rc_on_ready) */
  /* Multishot receives in a row that filled less than one buffer (saturating): past
   * RC_SMALL_READS the next receives take one buffer (recv) instead of RC_SCATTER (recvmsg);
   * a receive that fills a buffer sets it back to 0. */
  uint8_t small_reads;
} rc_slot;

/* A readiness event the backend reported and the core has not served yet. */
typedef struct rc_event {
  int fd;          /* -1: dropped (its descriptor was released meanwhile) */
  uint8_t ready;   /* RC_READ | RC_WRITE */
  uint8_t closed;  /* RC_READ | RC_WRITE, see rc_on_ready */
} rc_event;

/* A growable ring of completions. */
typedef struct rc_queue {
  brrr_completion* items;
  size_t capacity; /* power of two */
  size_t head;
  size_t size;
} rc_queue;

struct rc_core {
  const rc_backend_ops* ops;
  void* backend;
  rc_mode mode;
  int max_fd;
  int wake_fd;                 /* -1 when woken by signal */
  int wake_by_signal;          /* 1: `signal_wake` wakes the waits, there is no eventfd */
  rc_signal_wake signal_wake;  /* when wake_by_signal */

  rc_slot* slots; /* indexed by descriptor */
  size_t slot_count;

  rc_queue completions;

  /* The events of the last backend wait, served RC_SERVE_PER_WAIT to a wait() (see
   * readiness_core.h): events[next_event..event_count) are still to serve. */
  rc_event* events;
  size_t event_count;
  size_t next_event;
  size_t event_capacity;

  int* again; /* edge mode: descriptors left ready after a batch */
  size_t again_size;
  size_t again_capacity;

  /* Provided buffers: free ids on a stack; buffer_out[id] is 1 while a completion holds the
   * buffer (queued, or handed out until recycle_buffer()). */
  uint8_t* buffer_base;
  uint32_t buffer_size;
  uint32_t buffer_count;
  uint32_t* free_buffers;
  uint32_t free_count;
  uint8_t* buffer_out;

  int woken; /* wait(): wake() ended the backend's wait (its eventfd or signal) */

  /* Consecutive wait() calls answered from the queue alone, without asking the kernel. */
  unsigned waits_without_kernel;

  brrr_reactor_counters counters;
};

/* Doubles a full queue; aborts when it cannot (see rc_complete). */
void rc_queue_grow(rc_queue* q);

/* Queues a completion of `op` for wait() to hand out. Completions must never be lost: if the
 * queue cannot grow, the process cannot keep its promises to the runtime, so it stops with a
 * message rather than corrupting state. */
static inline void rc_complete(rc_core* core, const brrr_op* op, int32_t result,
                               uint32_t flags, uint32_t buffer_id) {
  rc_queue* q = &core->completions;
  if (q->size == q->capacity) rc_queue_grow(q);
  brrr_completion* c = &q->items[(q->head + q->size) & (q->capacity - 1)];
  c->user_data = op->user_data;
  c->result = result;
  c->flags = flags;
  c->buffer_id = buffer_id;
  c->reserved = 0;
  q->size++;
}

/* In a queued completion's `reserved` (cleared as wait() hands it out): its result is a
 * descriptor this backend accepted, which destroy() closes if it was never handed out. */
#define RC_QUEUED_DESCRIPTOR 1u

/* rc_complete for an accepted connection: the completion owns `client` until handed out. */
static inline void rc_complete_accepted(rc_core* core, const brrr_op* op, int client, uint32_t flags) {
  rc_complete(core, op, client, flags, 0);
  rc_queue* q = &core->completions;
  q->items[(q->head + q->size - 1) & (q->capacity - 1)].reserved = RC_QUEUED_DESCRIPTOR;
}

/* Whether the edge-mode cache says an operation in `direction` would not block. */
static inline int rc_cached_ready(const rc_slot* slot, uint32_t direction) {
  return ((slot->ready | slot->closed) & direction) != 0;
}

/* readiness_io.c: runs the read-side op of fd while the descriptor stays ready, for at most
 * RC_BATCH system calls and RC_BATCH filled receive buffers. Returns 1 if that limit stopped
 * it while the descriptor may still be ready. */
int rc_run_read(rc_core* core, int fd, rc_slot* slot);

/* readiness_io.c: runs the write-side op of fd once. */
void rc_run_write(rc_core* core, int fd, rc_slot* slot);

#endif /* BRRR_REACTORS_COMMON_READINESS_INTERNAL_H_ */
