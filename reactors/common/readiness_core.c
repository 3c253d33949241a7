/* readiness_core.c: see readiness_core.h and readiness_internal.h. */
#include "reactors/common/readiness_core.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reactors/common/kernel_calls.h"
#include "reactors/common/plugin_util.h"
#include "reactors/common/readiness_internal.h"
#include "runtime/hot_path.h"

int rc_timeout_ms(int64_t timeout_ns) {
  if (timeout_ns < 0) return -1;
  int64_t ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0); /* rounded up, without overflow */
  return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

struct timespec* rc_timespec(int64_t timeout_ns, struct timespec* ts) {
  if (timeout_ns < 0) return NULL;
  ts->tv_sec = timeout_ns / 1000000000;
  ts->tv_nsec = timeout_ns % 1000000000;
  return ts;
}

/* ---- completion queue ---- */

void rc_queue_grow(rc_queue* q) {
  size_t capacity = q->capacity ? q->capacity * 2 : 64;
  brrr_completion* items = malloc(capacity * sizeof *items);
  if (items == NULL) pu_abort("out of memory queueing a completion");
  for (size_t i = 0; i < q->size; i++) items[i] = q->items[(q->head + i) & (q->capacity - 1)];
  free(q->items);
  q->items = items;
  q->capacity = capacity;
  q->head = 0;
}

/* ---- slots ---- */

static rc_slot* slot_for(rc_core* core, int fd) {
  if (fd < 0) return NULL;
  if ((size_t)fd >= core->slot_count) {
    rc_slot* slots = pu_grow_fd_table(core->slots, &core->slot_count, sizeof *slots, fd);
    if (slots == NULL) return NULL;
    core->slots = slots;
  }
  return &core->slots[fd];
}

static rc_slot* existing_slot(rc_core* core, int fd) {
  if (fd < 0 || (size_t)fd >= core->slot_count) return NULL;
  return &core->slots[fd];
}

static int change_interest(rc_core* core, int fd, rc_slot* slot, uint32_t want) {
  int rc = core->ops->set_interest(core->backend, fd, slot->watched, want);
  if (rc == 0) slot->watched = (uint8_t)want;
  return rc;
}

/* Brings what the backend watches for fd in line with the operations in flight. Inline: after
 * almost every event and submit nothing changes (a multishot receive stays armed). */
static inline int update_interest(rc_core* core, int fd, rc_slot* slot) {
  uint32_t want;
  if (core->mode == RC_EDGE) {
    want = RC_READ | RC_WRITE; /* registered once, for good */
  } else {
    want = (slot->has_read ? RC_READ : 0u) | (slot->has_write ? RC_WRITE : 0u);
  }
  return want == slot->watched ? 0 : change_interest(core, fd, slot, want);
}

static void push_again(rc_core* core, int fd, rc_slot* slot) {
  if (slot->in_again) return;
  if (core->again_size == core->again_capacity) {
    size_t capacity = core->again_capacity ? core->again_capacity * 2 : 64;
    int* again = realloc(core->again, capacity * sizeof *again);
    /* Without the again list an edge could be lost; level mode never needs it. */
    if (again == NULL) pu_abort("out of memory growing the again list");
    core->again = again;
    core->again_capacity = capacity;
  }
  core->again[core->again_size++] = fd;
  slot->in_again = 1;
}


static void serve(rc_core* core, int fd, rc_slot* slot, uint32_t ready) {
  if ((ready & RC_READ) && slot->has_read) {
    if (rc_run_read(core, fd, slot) && core->mode == RC_EDGE) push_again(core, fd, slot);
  }
  if ((ready & RC_WRITE) && slot->has_write) rc_run_write(core, fd, slot);
}

BRRR_HOT_PATH static void serve_event(rc_core* core, const rc_event* event) {
  rc_slot* slot = existing_slot(core, event->fd);
  if (slot == NULL) return;
  if (core->mode == RC_EDGE) {
    slot->ready |= event->ready & (RC_READ | RC_WRITE);
    slot->closed |= event->closed;
    if (event->ready & RC_URGENT) slot->urgent = 1;
  }
  serve(core, event->fd, slot, (uint32_t)(event->ready | event->closed));
  if (core->mode == RC_LEVEL) update_interest(core, event->fd, slot);
}

/* Serves up to `limit` of the recorded events, in the order the backend reported them. */
static void serve_recorded(rc_core* core, size_t limit) {
  size_t end = core->event_count - core->next_event > limit ? core->next_event + limit
                                                            : core->event_count;
  while (core->next_event < end) {
    const rc_event* event = &core->events[core->next_event++];
    if (event->fd >= 0) serve_event(core, event);
  }
  if (core->next_event == core->event_count) core->next_event = core->event_count = 0;
}

BRRR_HOT_PATH void rc_on_ready(rc_core* core, int fd, uint32_t ready, uint32_t closed) {
  rc_event event = {fd, (uint8_t)ready, (uint8_t)closed};
  if (fd == core->wake_fd) {
    core->woken = 1;
    uint64_t value;
    core->counters.syscalls++;
    while (read(core->wake_fd, &value, sizeof value) < 0 && errno == EINTR) {
    }
    return;
  }
  if (core->event_count == core->event_capacity) {
    size_t capacity = core->event_capacity ? core->event_capacity * 2 : 256;
    rc_event* events = realloc(core->events, capacity * sizeof *events);
    if (events == NULL) {
      serve_event(core, &event); /* no room to defer it: serve it now */
      return;
    }
    core->events = events;
    core->event_capacity = capacity;
  }
  core->events[core->event_count++] = event;
}

/* ---- ABI entry points ---- */

static rc_core* as_core(brrr_reactor* reactor) { return (rc_core*)reactor; }

int rc_create(const rc_backend_ops* ops, int max_fd, brrr_reactor** out, char* err,
              size_t err_size) {
  void* backend = NULL;
  int rc = ops->open(&backend, err, err_size);
  if (rc != 0) return rc;
  rc_core* core = calloc(1, sizeof *core);
  if (core == NULL) {
    ops->destroy(backend);
    return pu_fail(err, err_size, "allocating the reactor", -ENOMEM, NULL);
  }
  core->ops = ops;
  core->backend = backend;
  core->mode = ops->mode;
  core->max_fd = max_fd;
  core->wake_fd = -1;
  if (ops->wake_by_signal && rc_signal_wake_init(&core->signal_wake) == 0) {
    core->wake_by_signal = 1; /* else (the signal is taken): the eventfd */
  } else if ((core->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
    rc = pu_fail(err, err_size, "eventfd (the cross-thread wake-up)", -errno, NULL);
  } else if (max_fd >= 0 && core->wake_fd > max_fd) {
    char what[160];
    snprintf(what, sizeof what, "wake-up eventfd is descriptor %d, above this backend's limit %d",
             core->wake_fd, max_fd);
    rc = pu_fail(err, err_size, what, -ERANGE, NULL);
  } else {
    rc = ops->set_interest(backend, core->wake_fd, 0, RC_READ);
    if (rc != 0) pu_fail(err, err_size, "watching the wake-up eventfd", rc, NULL);
  }
  if (rc != 0) {
    rc_destroy((brrr_reactor*)core);
    return rc;
  }
  *out = (brrr_reactor*)core;
  return 0;
}

void rc_destroy(brrr_reactor* reactor) {
  rc_core* core = as_core(reactor);
  if (core == NULL) return;
  core->ops->destroy(core->backend);
  if (core->wake_fd >= 0) close(core->wake_fd);
  /* Connections accepted but never handed out are this backend's to close. */
  rc_queue* q = &core->completions;
  for (size_t i = 0; i < q->size; i++) {
    const brrr_completion* c = &q->items[(q->head + i) & (q->capacity - 1)];
    if (c->reserved == RC_QUEUED_DESCRIPTOR && c->result >= 0) close(c->result);
  }
  free(core->slots);
  free(core->completions.items);
  free(core->again);
  free(core->events);
  free(core->free_buffers);
  free(core->buffer_out);
  free(core);
}

static int validate(const rc_core* core, const brrr_op* op) {
  if (op->fd >= 0 && core->max_fd >= 0 && op->fd > core->max_fd) return -ERANGE;
  return brrr_op_check(op, core->buffer_count != 0);
}

int rc_submit(brrr_reactor* reactor, const brrr_op* op) {
  rc_core* core = as_core(reactor);
  int rc = validate(core, op);
  if (rc != 0) return rc;
  rc_slot* slot = slot_for(core, op->fd);
  if (slot == NULL) return -ENOMEM;
  int read_side = brrr_op_is_read_side(op->opcode);
  if (read_side ? slot->has_read : slot->has_write) return -EBUSY;

  if (op->opcode == BRRR_OP_CONNECT) {
    core->counters.syscalls++;
    int r = connect(op->fd, (const struct sockaddr*)op->buf, op->len);
    int error = r == 0 ? 0 : errno;
    /* EALREADY: a connect still in progress (one the caller cancelled): this one ends as that
     * one does, as on io_uring. */
    if (error != EINPROGRESS && error != EINTR && error != EALREADY) {
      core->counters.submitted++;
      rc_complete(core, op, -error, 0, 0);
      return 0;
    }
    slot->connecting = 1;
  }
  if (read_side) {
    slot->read_op = *op;
    slot->has_read = 1;
  } else {
    slot->write_op = *op;
    slot->has_write = 1;
  }
  core->counters.submitted++;

  /* Try at once where that usually succeeds: a send (socket buffers are rarely full), or any
   * op on a descriptor the edge-mode cache knows to be ready. Done before registering
   * interest, so an op that completes here costs the backend nothing. */
  if (!read_side && !slot->connecting &&
      (op->opcode == BRRR_OP_SEND || op->opcode == BRRR_OP_SENDMSG || rc_cached_ready(slot, RC_WRITE))) {
    rc_run_write(core, op->fd, slot);
  } else if (read_side && rc_cached_ready(slot, RC_READ)) {
    if (rc_run_read(core, op->fd, slot)) push_again(core, op->fd, slot);
  }
  rc = update_interest(core, op->fd, slot);
  if (rc != 0 && (read_side ? slot->has_read : slot->has_write)) {
    /* Nothing can wake this op up: take it back, as if submit had never started it. */
    if (read_side) slot->has_read = 0; else slot->has_write = 0;
    slot->connecting = 0;
    core->counters.submitted--;
    return rc;
  }
  return 0;
}

int rc_cancel(brrr_reactor* reactor, int fd, uint64_t user_data) {
  rc_core* core = as_core(reactor);
  rc_slot* slot = existing_slot(core, fd);
  if (slot == NULL) return -ENOENT;
  if (slot->has_read && slot->read_op.user_data == user_data) {
    slot->has_read = 0;
    rc_complete(core, &slot->read_op, -ECANCELED, 0, 0);
  } else if (slot->has_write && slot->write_op.user_data == user_data) {
    slot->has_write = 0;
    slot->connecting = 0;
    rc_complete(core, &slot->write_op, -ECANCELED, 0, 0);
  } else {
    return -ENOENT;
  }
  if (core->mode == RC_LEVEL) update_interest(core, fd, slot);
  return 0;
}

static void serve_again_list(rc_core* core) {
  size_t count = core->again_size;
  for (size_t i = 0; i < count; i++) {
    int fd = core->again[i];
    rc_slot* slot = existing_slot(core, fd);
    if (slot == NULL) continue;
    slot->in_again = 0;
    /* Still ready after another batch: keep it for the next round, at the end. */
    if (rc_cached_ready(slot, RC_READ) && slot->has_read && rc_run_read(core, fd, slot)) {
      push_again(core, fd, slot);
    }
  }
  memmove(core->again, core->again + count, (core->again_size - count) * sizeof *core->again);
  core->again_size -= count;
}

/* One backend wait that honours the whole timeout: an interrupted wait (a signal, or task
 * work that io_uring queued on this thread) is not a timeout, so it waits again for the
 * rest. *deadline (-1 at first) is where a finite timeout ends, read from the clock as the
 * first wait starts, so that a caller that waits again can wait for the rest too. */
static int wait_in_kernel(rc_core* core, int64_t timeout_ns, int64_t* deadline) {
  for (;;) {
    core->counters.waits++;
    core->counters.syscalls++;
    if (timeout_ns > 0 && *deadline < 0) {
      int64_t now = pu_monotonic_ns();
      *deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;  /* never wraps */
    }
    int rc;
    if (core->wake_by_signal && timeout_ns != 0) {
      const sigset_t* mask = rc_signal_wake_arm(&core->signal_wake);
      /* NULL: a wake-up was pending (and is taken now), so look without blocking, as a
       * readable eventfd would; whatever interrupts that look, the wake-up ends this wait. */
      rc = core->ops->wait(core->backend, core, mask != NULL ? timeout_ns : 0, mask);
      rc_signal_wake_disarm(&core->signal_wake);
      if (mask == NULL) core->woken = 1; /* the pending wake-up, taken by the arm */
      if (rc == -EINTR && (mask == NULL || rc_signal_wake_consume(&core->signal_wake))) {
        core->woken = 1;
        return 0;
      }
    } else {
      rc = core->ops->wait(core->backend, core, timeout_ns, NULL);
    }
    if (rc != -EINTR) return rc;
    if (timeout_ns == 0) return 0;
    if (timeout_ns > 0) {
      int64_t now = pu_monotonic_ns();
      if (now >= *deadline) return 0;
      timeout_ns = *deadline - now;
    }
  }
}

BRRR_HOT_PATH int rc_wait(brrr_reactor* reactor, brrr_completion* out, int max_completions,
                          int64_t timeout_ns) {
  rc_core* core = as_core(reactor);
  if (max_completions <= 0) return -EINVAL;
  rc_queue* q = &core->completions;
  int64_t deadline = -1;
  core->woken = 0;
  for (;;) {
    int blocked = 0;
    if (core->next_event == core->event_count) {
      int have_work = q->size > 0 || core->again_size > 0;
      /* The again list is read on only once the runtime has taken every completion: until
       * then a connection's earlier receives may be waiting in the queue, unseen, and the
       * runtime could not yet have stopped its reading (server/connection.h's read-ahead). */
      int read_on = core->again_size > 0 && q->size == 0;
      /* Completions already queued are handed out without a system call, but the kernel is
       * still asked (without blocking) every few rounds so that other descriptors are served. */
      if (!have_work || read_on || ++core->waits_without_kernel >= 8) {
        core->waits_without_kernel = 0;
        blocked = !have_work && timeout_ns != 0;
        int rc = wait_in_kernel(core, have_work ? 0 : timeout_ns, &deadline);
        if (rc < 0) return rc;
      }
      if (read_on) serve_again_list(core);
    }
    do {
      serve_recorded(core, RC_SERVE_PER_WAIT);
    } while (q->size == 0 && core->next_event < core->event_count);
    /* The kernel reported readiness that completed nothing (epoll's first edge for a direction
     * no operation waits on, data for a stopped receive): not a reason to return before the
     * timeout, a completion or a wake(). */
    if (!blocked || q->size > 0 || core->woken || core->again_size > 0) break;
    if (timeout_ns > 0) {
      int64_t left = deadline - pu_monotonic_ns();
      if (left <= 0) break;
      timeout_ns = left;
      deadline = -1;
    }
  }

  int n = 0;
  while (n < max_completions && q->size > 0) {
    out[n] = q->items[q->head];
    out[n++].reserved = 0;
    q->head = (q->head + 1) & (q->capacity - 1);
    q->size--;
  }
  core->counters.completed += (uint64_t)n;
  return n;
}

int rc_wake(brrr_reactor* reactor) {
  rc_core* core = as_core(reactor);
  if (core->wake_by_signal) return rc_signal_wake_wake(&core->signal_wake);
  return pu_eventfd_signal(core->wake_fd);
}

int rc_release_fd(brrr_reactor* reactor, int fd) {
  rc_core* core = as_core(reactor);
  rc_slot* slot = existing_slot(core, fd);
  if (slot == NULL) return 0;
  if (slot->has_read || slot->has_write) return -EBUSY;
  int rc = 0;
  if (slot->watched) rc = core->ops->set_interest(core->backend, fd, slot->watched, 0);
  for (size_t i = core->next_event; i < core->event_count; i++) {
    if (core->events[i].fd == fd) core->events[i].fd = -1;
  }
  if (slot->in_again) {
    for (size_t i = 0; i < core->again_size; i++) {
      if (core->again[i] == fd) {
        core->again[i] = core->again[--core->again_size];
        break;
      }
    }
  }
  memset(slot, 0, sizeof *slot);
  return rc;
}

int rc_provide_buffers(brrr_reactor* reactor, void* base, uint32_t size, uint32_t count) {
  rc_core* core = as_core(reactor);
  if (core->buffer_count != 0) return -EEXIST;
  if (base == NULL || size == 0 || count == 0 || count > BRRR_MAX_PROVIDED_BUFFERS) return -EINVAL;
  core->free_buffers = malloc((size_t)count * sizeof *core->free_buffers);
  core->buffer_out = calloc(count, 1);
  if (core->free_buffers == NULL || core->buffer_out == NULL) {
    free(core->free_buffers);
    free(core->buffer_out);
    core->free_buffers = NULL;
    core->buffer_out = NULL;
    return -ENOMEM;
  }
  /* Hand out low ids first: they are the most recently touched memory. */
  for (uint32_t i = 0; i < count; i++) core->free_buffers[i] = count - 1 - i;
  core->free_count = count;
  core->buffer_base = base;
  core->buffer_size = size;
  core->buffer_count = count;
  return 0;
}

BRRR_HOT_PATH void rc_recycle_buffer(brrr_reactor* reactor, uint32_t buffer_id) {
  rc_core* core = as_core(reactor);
  /* A buffer recycled twice would be on the free list twice: two receives would share it. */
  if (buffer_id >= core->buffer_count || !core->buffer_out[buffer_id]) {
    pu_abort("recycle_buffer(%u) of a buffer the runtime does not own", buffer_id);
  }
  core->buffer_out[buffer_id] = 0;
  core->free_buffers[core->free_count++] = buffer_id;
}

BRRR_HOT_PATH int rc_try_send(brrr_reactor* reactor, int fd, const void* buf, uint32_t len) {
  rc_core* core = as_core(reactor);
  if (fd < 0) return -EBADF;
  if (core->max_fd >= 0 && fd > core->max_fd) return -ERANGE;
  rc_slot* slot = existing_slot(core, fd);
  if (slot != NULL && slot->has_write) return -EBUSY;
  if (len == 0) return 0;
  int n = rc_send_at_once(fd, buf, len, &core->counters.syscalls);
  /* The edge-mode cache forgets that the descriptor was writable, as a SEND would. */
  if (n == -EAGAIN && slot != NULL) slot->ready &= (uint8_t)~RC_WRITE;
  return n;
}

BRRR_HOT_PATH void rc_counters(const brrr_reactor* reactor, brrr_reactor_counters* out) {
  *out = ((const rc_core*)reactor)->counters;
}
