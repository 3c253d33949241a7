/* readiness_core.c: see readiness_core.h. */
#include "reactors/common/readiness_core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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
} rc_slot;

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
  int wake_fd;

  rc_slot* slots; /* indexed by descriptor */
  size_t slot_count;

  rc_queue completions;

  int* again; /* edge mode: descriptors left ready after a batch */
  size_t again_size;
  size_t again_capacity;

  /* Provided buffers: free ids on a stack. */
  uint8_t* buffer_base;
  uint32_t buffer_size;
  uint32_t buffer_count;
  uint32_t* free_buffers;
  uint32_t free_count;

  /* Consecutive wait() calls answered from the queue alone, without asking the kernel. */
  unsigned waits_without_kernel;

  brrr_reactor_counters counters;
};

int rc_fail(char* err, size_t err_size, const char* what, int error) {
  if (err != NULL && err_size > 0) snprintf(err, err_size, "%s: %s", what, strerror(-error));
  return error;
}

int rc_timeout_ms(int64_t timeout_ns) {
  if (timeout_ns < 0) return -1;
  int64_t ms = (timeout_ns + 999999) / 1000000;
  return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

void rc_count_syscall(rc_core* core) { core->counters.syscalls++; }

/* ---- completion queue ---- */

static int queue_push(rc_queue* q, uint64_t user_data, int32_t result, uint32_t flags,
                      uint32_t buffer_id) {
  if (q->size == q->capacity) {
    size_t capacity = q->capacity ? q->capacity * 2 : 64;
    brrr_completion* items = malloc(capacity * sizeof *items);
    if (items == NULL) return -ENOMEM;
    for (size_t i = 0; i < q->size; i++) items[i] = q->items[(q->head + i) & (q->capacity - 1)];
    free(q->items);
    q->items = items;
    q->capacity = capacity;
    q->head = 0;
  }
  brrr_completion* c = &q->items[(q->head + q->size) & (q->capacity - 1)];
  c->user_data = user_data;
  c->result = result;
  c->flags = flags;
  c->buffer_id = buffer_id;
  c->reserved = 0;
  q->size++;
  return 0;
}

/* Completions must never be lost: if the queue cannot grow, the process cannot keep its
 * promises to the runtime, so it stops here with a message rather than corrupting state. */
static void complete(rc_core* core, const brrr_op* op, int32_t result, uint32_t flags,
                     uint32_t buffer_id) {
  if (queue_push(&core->completions, op->user_data, result, flags, buffer_id) != 0) {
    fprintf(stderr, "brrr reactor: out of memory queueing a completion\n");
    abort();
  }
}

/* ---- slots ---- */

static rc_slot* slot_for(rc_core* core, int fd) {
  if (fd < 0) return NULL;
  if ((size_t)fd >= core->slot_count) {
    size_t count = core->slot_count ? core->slot_count : 256;
    while (count <= (size_t)fd) count *= 2;
    rc_slot* slots = realloc(core->slots, count * sizeof *slots);
    if (slots == NULL) return NULL;
    memset(slots + core->slot_count, 0, (count - core->slot_count) * sizeof *slots);
    core->slots = slots;
    core->slot_count = count;
  }
  return &core->slots[fd];
}

static rc_slot* existing_slot(rc_core* core, int fd) {
  if (fd < 0 || (size_t)fd >= core->slot_count) return NULL;
  return &core->slots[fd];
}

/* Brings what the backend watches for fd in line with the operations in flight. */
static int update_interest(rc_core* core, int fd, rc_slot* slot) {
  uint32_t want;
  if (core->mode == RC_EDGE) {
    want = RC_READ | RC_WRITE; /* registered once, for good */
  } else {
    want = (slot->has_read ? RC_READ : 0u) | (slot->has_write ? RC_WRITE : 0u);
  }
  if (want == slot->watched) return 0;
  int rc = core->ops->set_interest(core->backend, fd, slot->watched, want);
  if (rc == 0) slot->watched = (uint8_t)want;
  return rc;
}

static void push_again(rc_core* core, int fd, rc_slot* slot) {
  if (slot->in_again) return;
  if (core->again_size == core->again_capacity) {
    size_t capacity = core->again_capacity ? core->again_capacity * 2 : 64;
    int* again = realloc(core->again, capacity * sizeof *again);
    if (again == NULL) {
      /* Without the again list an edge could be lost; level mode never needs it. */
      fprintf(stderr, "brrr reactor: out of memory growing the again list\n");
      abort();
    }
    core->again = again;
    core->again_capacity = capacity;
  }
  core->again[core->again_size++] = fd;
  slot->in_again = 1;
}

/* Whether the edge-mode cache says an operation in `direction` would not block. */
static int cached_ready(const rc_slot* slot, uint32_t direction) {
  return ((slot->ready | slot->closed) & direction) != 0;
}

/* ---- performing operations ---- */

static int is_retryable(int error) { return error == EINTR; }

/* Errors accept4 reports for one dead connection; the listener itself is fine. */
static int is_per_connection_accept_error(int error) {
  return error == ECONNABORTED || error == EPROTO || error == EPERM;
}

/* Runs the read-side op of fd while the descriptor stays ready, for at most RC_BATCH system
 * calls and RC_BATCH filled receive buffers. Returns 1 if that limit stopped it while the
 * descriptor may still be ready. */
static int run_read(rc_core* core, int fd, rc_slot* slot) {
  brrr_op* op = &slot->read_op;
  int multishot = (op->flags & BRRR_OP_MULTISHOT) != 0;
  int buffers_filled = 0;
  for (int i = 0; i < RC_BATCH && buffers_filled < RC_BATCH && slot->has_read; i++) {
    switch (op->opcode) {
      case BRRR_OP_POLL_READABLE:
        slot->has_read = 0;
        complete(core, op, 0, 0, 0);
        return 0;
      case BRRR_OP_ACCEPT: {
        core->counters.syscalls++;
        int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client >= 0) {
          if (!multishot) slot->has_read = 0;
          complete(core, op, client, multishot ? BRRR_COMPLETION_MORE : 0, 0);
          continue;
        }
        int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK) {
          slot->ready &= (uint8_t)~RC_READ;
          return 0;
        }
        if (is_retryable(error) || is_per_connection_accept_error(error)) continue;
        slot->has_read = 0; /* EMFILE, ENFILE, ENOBUFS...: the runtime decides when to retry */
        complete(core, op, -error, 0, 0);
        return 0;
      }
      case BRRR_OP_RECV: {
        int select = (op->flags & BRRR_OP_BUFFER_SELECT) != 0;
        struct iovec iov[RC_SCATTER];
        uint32_t ids[RC_SCATTER] = {0};
        int count = 1;
        iov[0].iov_base = op->buf;
        iov[0].iov_len = op->len;
        if (select) {
          if (core->free_count == 0) {
            slot->has_read = 0;
            complete(core, op, -ENOBUFS, 0, 0);
            return 0;
          }
          /* A multishot receive without a length cap fills up to RC_SCATTER buffers per call
           * (each becomes its own completion); a capped or single receive fills one. */
          if (multishot && op->len == 0) {
            count = RC_SCATTER;
            if ((uint32_t)count > core->free_count) count = (int)core->free_count;
            if (count > RC_BATCH - buffers_filled) count = RC_BATCH - buffers_filled;
          }
          for (int k = 0; k < count; k++) {
            ids[k] = core->free_buffers[--core->free_count];
            iov[k].iov_base = core->buffer_base + (size_t)ids[k] * core->buffer_size;
            iov[k].iov_len = core->buffer_size;
          }
          if (op->len != 0 && op->len < iov[0].iov_len) iov[0].iov_len = op->len;
        }
        size_t len = 0;
        for (int k = 0; k < count; k++) len += iov[k].iov_len;
        core->counters.syscalls++;
        ssize_t n;
        if (count == 1) {
          n = recv(fd, iov[0].iov_base, iov[0].iov_len, 0);
        } else {
          struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)count};
          n = recvmsg(fd, &msg, 0);
        }
        int error = n < 0 ? errno : 0;
        size_t received = n > 0 ? (size_t)n : 0;
        int used = 0;
        while (used < count && (size_t)used * core->buffer_size < received) used++;
        if (select) {
          /* Unused buffers go back in the reverse order they were taken: the free list is a
           * stack, and the next receive should get the same (cache-warm) buffers. */
          for (int k = count - 1; k >= used; k--) core->free_buffers[core->free_count++] = ids[k];
        }
        if (n > 0) {
          if (!multishot) slot->has_read = 0;
          uint32_t flags = (multishot ? BRRR_COMPLETION_MORE : 0u) |
                           (select ? BRRR_COMPLETION_BUFFER : 0u);
          size_t left = received;
          for (int k = 0; k < used; k++) {
            size_t part = left < iov[k].iov_len ? left : iov[k].iov_len;
            complete(core, op, (int32_t)part, flags, ids[k]);
            left -= part;
          }
          buffers_filled += used;
          /* A short read drained the socket: new data brings a new edge. Not so once the
           * peer has closed its side: no edge will announce the end of stream left behind. */
          if (received < len && !(slot->closed & RC_READ)) {
            slot->ready &= (uint8_t)~RC_READ;
            return 0;
          }
          continue;
        }
        if (n == 0) {
          slot->has_read = 0;
          complete(core, op, 0, 0, 0);
          return 0;
        }
        if (error == EAGAIN || error == EWOULDBLOCK) {
          slot->ready &= (uint8_t)~RC_READ;
          return 0;
        }
        if (is_retryable(error)) continue;
        slot->has_read = 0;
        complete(core, op, -error, 0, 0);
        return 0;
      }
      default:
        slot->has_read = 0;
        complete(core, op, -EINVAL, 0, 0);
        return 0;
    }
  }
  return slot->has_read && multishot;
}

/* Runs the write-side op of fd once. */
static void run_write(rc_core* core, int fd, rc_slot* slot) {
  brrr_op* op = &slot->write_op;
  switch (op->opcode) {
    case BRRR_OP_POLL_WRITABLE:
      slot->has_write = 0;
      complete(core, op, 0, 0, 0);
      return;
    case BRRR_OP_CONNECT: {
      int so_error = 0;
      socklen_t size = sizeof so_error;
      core->counters.syscalls++;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &size) != 0) so_error = errno;
      slot->has_write = 0;
      slot->connecting = 0;
      complete(core, op, -so_error, 0, 0);
      return;
    }
    case BRRR_OP_SEND:
    case BRRR_OP_SENDMSG:
      for (;;) {
        core->counters.syscalls++;
        ssize_t n;
        if (op->opcode == BRRR_OP_SEND) {
          n = send(fd, op->buf, op->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
          n = sendmsg(fd, (const struct msghdr*)op->buf, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n >= 0) {
          slot->has_write = 0;
          complete(core, op, (int32_t)n, 0, 0);
          return;
        }
        int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK) {
          slot->ready &= (uint8_t)~RC_WRITE;
          return;
        }
        if (is_retryable(error)) continue;
        slot->has_write = 0;
        complete(core, op, -error, 0, 0);
        return;
      }
    default:
      slot->has_write = 0;
      complete(core, op, -EINVAL, 0, 0);
      return;
  }
}

static void serve(rc_core* core, int fd, rc_slot* slot, uint32_t ready) {
  if ((ready & RC_READ) && slot->has_read) {
    if (run_read(core, fd, slot) && core->mode == RC_EDGE) push_again(core, fd, slot);
  }
  if ((ready & RC_WRITE) && slot->has_write) run_write(core, fd, slot);
}

void rc_on_ready(rc_core* core, int fd, uint32_t ready, uint32_t closed) {
  if (fd == core->wake_fd) {
    uint64_t value;
    core->counters.syscalls++;
    while (read(core->wake_fd, &value, sizeof value) < 0 && errno == EINTR) {
    }
    return;
  }
  rc_slot* slot = existing_slot(core, fd);
  if (slot == NULL) return;
  if (core->mode == RC_EDGE) {
    slot->ready |= (uint8_t)ready;
    slot->closed |= (uint8_t)closed;
  }
  serve(core, fd, slot, ready | closed);
  if (core->mode == RC_LEVEL) update_interest(core, fd, slot);
}

/* ---- ABI entry points ---- */

static rc_core* as_core(brrr_reactor* reactor) { return (rc_core*)reactor; }

int rc_create(const rc_backend_ops* ops, void* backend, rc_mode mode, int max_fd,
              rc_core** out, char* err, size_t err_size) {
  rc_core* core = calloc(1, sizeof *core);
  if (core == NULL) {
    ops->destroy(backend);
    return rc_fail(err, err_size, "allocating the reactor", -ENOMEM);
  }
  core->ops = ops;
  core->backend = backend;
  core->mode = mode;
  core->max_fd = max_fd;
  core->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int rc;
  if (core->wake_fd < 0) {
    rc = rc_fail(err, err_size, "eventfd (the cross-thread wake-up)", -errno);
  } else if (max_fd >= 0 && core->wake_fd > max_fd) {
    char what[160];
    snprintf(what, sizeof what, "wake-up eventfd is descriptor %d, above this backend's limit %d",
             core->wake_fd, max_fd);
    rc = rc_fail(err, err_size, what, -ERANGE);
  } else {
    rc = ops->set_interest(backend, core->wake_fd, 0, RC_READ);
    if (rc != 0) rc_fail(err, err_size, "watching the wake-up eventfd", rc);
  }
  if (rc != 0) {
    rc_destroy((brrr_reactor*)core);
    return rc;
  }
  *out = core;
  return 0;
}

void rc_destroy(brrr_reactor* reactor) {
  rc_core* core = as_core(reactor);
  if (core == NULL) return;
  core->ops->destroy(core->backend);
  if (core->wake_fd >= 0) close(core->wake_fd);
  free(core->slots);
  free(core->completions.items);
  free(core->again);
  free(core->free_buffers);
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
    if (error != EINPROGRESS && error != EINTR) {
      core->counters.submitted++;
      complete(core, op, -error, 0, 0);
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
      (op->opcode == BRRR_OP_SEND || op->opcode == BRRR_OP_SENDMSG || cached_ready(slot, RC_WRITE))) {
    run_write(core, op->fd, slot);
  } else if (read_side && cached_ready(slot, RC_READ)) {
    if (run_read(core, op->fd, slot)) push_again(core, op->fd, slot);
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
    complete(core, &slot->read_op, -ECANCELED, 0, 0);
  } else if (slot->has_write && slot->write_op.user_data == user_data) {
    slot->has_write = 0;
    slot->connecting = 0;
    complete(core, &slot->write_op, -ECANCELED, 0, 0);
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
    if (cached_ready(slot, RC_READ) && slot->has_read && run_read(core, fd, slot)) {
      push_again(core, fd, slot);
    }
  }
  memmove(core->again, core->again + count, (core->again_size - count) * sizeof *core->again);
  core->again_size -= count;
}

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One backend wait that honours the whole timeout: an interrupted wait (a signal, or task
 * work that io_uring queued on this thread) is not a timeout, so it waits again for the
 * rest. The clock is read only when a finite timeout is interrupted. */
static int wait_in_kernel(rc_core* core, int64_t timeout_ns) {
  int64_t deadline = -1;
  for (;;) {
    core->counters.waits++;
    core->counters.syscalls++;
    int64_t started = timeout_ns > 0 && deadline < 0 ? monotonic_ns() : 0;
    int rc = core->ops->wait(core->backend, core, timeout_ns);
    if (rc != -EINTR) return rc;
    if (timeout_ns == 0) return 0;
    if (timeout_ns > 0) {
      if (deadline < 0) deadline = started + timeout_ns;
      int64_t now = monotonic_ns();
      if (now >= deadline) return 0;
      timeout_ns = deadline - now;
    }
  }
}

int rc_wait(brrr_reactor* reactor, brrr_completion* out, int max_completions,
            int64_t timeout_ns) {
  rc_core* core = as_core(reactor);
  if (max_completions <= 0) return -EINVAL;
  int have_work = core->completions.size > 0 || core->again_size > 0;
  /* Completions already queued are handed out without a system call, but the kernel is
   * still asked (without blocking) every few rounds so that other descriptors are served. */
  if (!have_work || core->again_size > 0 || ++core->waits_without_kernel >= 8) {
    core->waits_without_kernel = 0;
    int rc = wait_in_kernel(core, have_work ? 0 : timeout_ns);
    if (rc < 0) return rc;
  }
  if (core->again_size > 0) serve_again_list(core);

  rc_queue* q = &core->completions;
  int n = 0;
  while (n < max_completions && q->size > 0) {
    out[n++] = q->items[q->head];
    q->head = (q->head + 1) & (q->capacity - 1);
    q->size--;
  }
  core->counters.completed += (uint64_t)n;
  return n;
}

int rc_wake(brrr_reactor* reactor) {
  rc_core* core = as_core(reactor);
  uint64_t one = 1;
  for (;;) {
    if (write(core->wake_fd, &one, sizeof one) == (ssize_t)sizeof one) return 0;
    if (errno == EINTR) continue;
    /* EAGAIN: the counter is saturated, so a wake-up is already pending. */
    return errno == EAGAIN ? 0 : -errno;
  }
}

int rc_release_fd(brrr_reactor* reactor, int fd) {
  rc_core* core = as_core(reactor);
  rc_slot* slot = existing_slot(core, fd);
  if (slot == NULL) return 0;
  if (slot->has_read || slot->has_write) return -EBUSY;
  int rc = 0;
  if (slot->watched) rc = core->ops->set_interest(core->backend, fd, slot->watched, 0);
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
  if (base == NULL || size == 0 || count == 0) return -EINVAL;
  core->free_buffers = malloc((size_t)count * sizeof *core->free_buffers);
  if (core->free_buffers == NULL) return -ENOMEM;
  /* Hand out low ids first: they are the most recently touched memory. */
  for (uint32_t i = 0; i < count; i++) core->free_buffers[i] = count - 1 - i;
  core->free_count = count;
  core->buffer_base = base;
  core->buffer_size = size;
  core->buffer_count = count;
  return 0;
}

void rc_recycle_buffer(brrr_reactor* reactor, uint32_t buffer_id) {
  rc_core* core = as_core(reactor);
  if (buffer_id >= core->buffer_count || core->free_count >= core->buffer_count) {
    fprintf(stderr, "brrr reactor: recycle_buffer(%u) of a buffer the runtime does not own\n",
            buffer_id);
    abort();
  }
  core->free_buffers[core->free_count++] = buffer_id;
}

void rc_counters(const brrr_reactor* reactor, brrr_reactor_counters* out) {
  *out = ((const rc_core*)reactor)->counters;
}
