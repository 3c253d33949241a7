/*
 * null_reactor.c: a backend plugin with no kernel under it, for measuring what the runtime
 * itself costs per echoed message (bench/echo_path_bench.cc). A server's profile puts 85-97%
 * of its CPU in the kernel, and this machine's timings drift by 10-50% from run to run, so
 * the few per cent the runtime spends outside the kernel cannot be told apart there; here
 * they are all there is.
 *
 * Every descriptor given a receive behaves as a ping-pong client that answers at once: it has
 * a message of BRRR_NULL_MESSAGE_SIZE bytes (default 64) waiting, and sends the next as soon
 * as every byte of the last one has been sent back. wait() hands out the completions queued
 * since the last call (sends complete as they are submitted, as the readiness backends'
 * usually do), then one message for each descriptor whose client has one waiting, in
 * provided buffers as a multishot receive takes them (a message larger than a buffer fills
 * several). No byte is written or read: the runtime's work, not memory traffic, is measured.
 * wait() never blocks; it returns 0 when nothing is due. Its counters count no system calls
 * and no waits: it makes none.
 *
 * Operations: RECV (multishot into provided buffers, or single into the caller's buffer),
 * SEND, SENDMSG; ACCEPT, CONNECT and the polls are refused (-EINVAL). Descriptors below
 * NULL_MAX_FD. Not a backend for anything but the benchmark: it is built under bench/ and
 * never installed.
 *
 * Threads: one thread at a time, as every backend; wake() does nothing (nothing ever sleeps).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "runtime/reactor_abi.h"

#define NULL_MAX_FD 4096
#define NULL_QUEUE 65536 /* completions; a power of two */

typedef struct null_slot {
  brrr_op read_op;
  uint8_t has_read;
  uint8_t waiting;  /* the client's next message waits to be received */
  uint8_t listed;   /* on the due list */
  uint64_t unanswered; /* bytes of the client's last message not yet sent back */
} null_slot;

struct brrr_reactor {
  null_slot slots[NULL_MAX_FD];
  int due[NULL_MAX_FD]; /* descriptors whose message waits and which have a receive */
  size_t due_count;
  brrr_completion queue[NULL_QUEUE];
  size_t head;
  size_t size;
  uint8_t* buffer_base;
  uint32_t buffer_size;
  uint32_t buffer_count;
  uint32_t* free_buffers;
  uint32_t free_count;
  uint64_t message_size;
  brrr_reactor_counters counters;
};

static int null_create(const brrr_reactor_config* config, brrr_reactor** out, char* err,
                       size_t err_size) {
  (void)config;
  brrr_reactor* r = calloc(1, sizeof *r);
  if (r == NULL) {
    if (err_size > 0) strncpy(err, "null backend: out of memory", err_size - 1);
    return -ENOMEM;
  }
  const char* size = getenv("BRRR_NULL_MESSAGE_SIZE");
  r->message_size = size != NULL ? strtoull(size, NULL, 10) : 64;
  if (r->message_size == 0) r->message_size = 64;
  *out = r;
  return 0;
}

static void null_destroy(brrr_reactor* r) {
  if (r == NULL) return;
  free(r->free_buffers);
  free(r);
}

static void complete(brrr_reactor* r, uint64_t user_data, int32_t result, uint32_t flags,
                     uint32_t buffer_id) {
  if (r->size == NULL_QUEUE) abort(); /* the benchmark keeps far fewer in flight */
  brrr_completion* c = &r->queue[(r->head + r->size) & (NULL_QUEUE - 1)];
  c->user_data = user_data;
  c->result = result;
  c->flags = flags;
  c->buffer_id = buffer_id;
  c->reserved = 0;
  r->size++;
}

static void make_due(brrr_reactor* r, int fd) {
  null_slot* s = &r->slots[fd];
  if (s->waiting && s->has_read && !s->listed) {
    s->listed = 1;
    r->due[r->due_count++] = fd;
  }
}

static int null_submit(brrr_reactor* r, const brrr_op* op) {
  int rc = brrr_op_check(op, r->buffer_count != 0);
  if (rc != 0) return rc;
  if (op->fd >= NULL_MAX_FD) return -ERANGE;
  null_slot* s = &r->slots[op->fd];
  r->counters.submitted++;
  switch (op->opcode) {
    case BRRR_OP_RECV:
      if (s->has_read) {
        r->counters.submitted--;
        return -EBUSY;
      }
      s->read_op = *op;
      s->has_read = 1;
      if (s->unanswered == 0) s->waiting = 1; /* a new descriptor: its client starts */
      make_due(r, op->fd);
      return 0;
    case BRRR_OP_SEND:
    case BRRR_OP_SENDMSG: {
      uint64_t len = op->len;
      if (op->opcode == BRRR_OP_SENDMSG) {
        const struct msghdr* m = op->buf;
        len = 0;
        for (size_t i = 0; i < m->msg_iovlen; i++) len += m->msg_iov[i].iov_len;
      }
      complete(r, op->user_data, (int32_t)len, 0, 0);
      s->unanswered = len >= s->unanswered ? 0 : s->unanswered - len;
      if (s->unanswered == 0) {
        s->waiting = 1;
        make_due(r, op->fd);
      }
      return 0;
    }
    default:
      r->counters.submitted--;
      return -EINVAL;
  }
}

static int null_cancel(brrr_reactor* r, int fd, uint64_t user_data) {
  if (fd < 0 || fd >= NULL_MAX_FD) return -ENOENT;
  null_slot* s = &r->slots[fd];
  if (!s->has_read || s->read_op.user_data != user_data) return -ENOENT;
  s->has_read = 0;
  complete(r, user_data, -ECANCELED, 0, 0);
  return 0;
}

/* The client's message on fd, received: one completion per buffer it fills. */
static int receive(brrr_reactor* r, int fd, brrr_completion* out, int room) {
  null_slot* s = &r->slots[fd];
  const brrr_op* op = &s->read_op;
  int multishot = (op->flags & BRRR_OP_MULTISHOT) != 0;
  int select = (op->flags & BRRR_OP_BUFFER_SELECT) != 0;
  uint64_t left = r->message_size;
  uint32_t part_max = select ? r->buffer_size : op->len;
  int n = 0;
  if (part_max == 0) return 0;
  if (!multishot) left = left < part_max ? left : part_max;
  s->unanswered = left;
  s->waiting = 0;
  while (left > 0 && n < room) {
    uint32_t part = left < part_max ? (uint32_t)left : part_max;
    uint32_t id = 0;
    if (select) {
      if (r->free_count == 0) break;
      id = r->free_buffers[--r->free_count];
    }
    left -= part;
    uint32_t flags = (multishot ? BRRR_COMPLETION_MORE : 0u) | (select ? BRRR_COMPLETION_BUFFER : 0u);
    out[n++] = (brrr_completion){.user_data = op->user_data, .result = (int32_t)part,
                                 .flags = flags, .buffer_id = id};
    if (!multishot) s->has_read = 0;
  }
  /* What did not fit (no room, no buffer) is not sent: the client's message is shorter. */
  s->unanswered -= left;
  return n;
}

static int null_wait(brrr_reactor* r, brrr_completion* out, int max, int64_t timeout_ns) {
  (void)timeout_ns;
  if (max <= 0) return -EINVAL;
  int n = 0;
  while (n < max && r->size > 0) {
    out[n++] = r->queue[r->head];
    r->head = (r->head + 1) & (NULL_QUEUE - 1);
    r->size--;
  }
  size_t kept = 0;
  for (size_t i = 0; i < r->due_count; i++) {
    int fd = r->due[i];
    null_slot* s = &r->slots[fd];
    if (s->waiting && s->has_read && n < max) {
      n += receive(r, fd, out + n, max - n);
    }
    if (s->waiting && s->has_read) {
      r->due[kept++] = fd;
    } else {
      s->listed = 0;
    }
  }
  r->due_count = kept;
  r->counters.completed += (uint64_t)n;
  return n;
}

static int null_wake(brrr_reactor* r) {
  (void)r;
  return 0;
}

static int null_release_fd(brrr_reactor* r, int fd) {
  if (fd < 0 || fd >= NULL_MAX_FD) return 0;
  null_slot* s = &r->slots[fd];
  if (s->has_read) return -EBUSY;
  for (size_t i = 0; i < r->due_count; i++) {
    if (r->due[i] == fd) r->due[i] = r->due[--r->due_count];
  }
  memset(s, 0, sizeof *s);
  return 0;
}

static int null_provide_buffers(brrr_reactor* r, void* base, uint32_t size, uint32_t count) {
  if (r->buffer_count != 0) return -EEXIST;
  if (base == NULL || size == 0 || count == 0) return -EINVAL;
  r->free_buffers = malloc((size_t)count * sizeof *r->free_buffers);
  if (r->free_buffers == NULL) return -ENOMEM;
  for (uint32_t i = 0; i < count; i++) r->free_buffers[i] = count - 1 - i;
  r->free_count = count;
  r->buffer_base = base;
  r->buffer_size = size;
  r->buffer_count = count;
  return 0;
}

static void null_recycle_buffer(brrr_reactor* r, uint32_t id) {
  if (id >= r->buffer_count || r->free_count >= r->buffer_count) abort();
  r->free_buffers[r->free_count++] = id;
}

static void null_counters(const brrr_reactor* r, brrr_reactor_counters* out) { *out = r->counters; }

static const brrr_reactor_plugin kNullPlugin = {
    .abi_version = BRRR_REACTOR_ABI_VERSION,
    .struct_size = sizeof(brrr_reactor_plugin),
    .name = "null",
    .description = "no kernel: every connection a client that answers at once (benchmarks only)",
    .capabilities = BRRR_CAP_MULTISHOT | BRRR_CAP_PROVIDED_BUFFERS | BRRR_CAP_SENDMSG,
    .max_fd = NULL_MAX_FD - 1,
    .create = null_create,
    .destroy = null_destroy,
    .submit = null_submit,
    .cancel = null_cancel,
    .wait = null_wait,
    .wake = null_wake,
    .release_fd = null_release_fd,
    .provide_buffers = null_provide_buffers,
    .recycle_buffer = null_recycle_buffer,
    .counters = null_counters,
};

BRRR_REACTOR_EXPORT const brrr_reactor_plugin* brrr_reactor_entry(void) { return &kNullPlugin; }
