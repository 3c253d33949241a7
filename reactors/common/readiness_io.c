/* readiness_io.c: performing the operations of a ready descriptor (see readiness_internal.h).
 *
 * The system call of each operation runs here, when the backend (or the edge-mode cache) says
 * the descriptor is ready (made directly, not through glibc's cancellation points: see rc_recv
 * in kernel_calls.h); its outcome becomes completions on the core's queue. pu_classify decides
 * what an error calls for: wait for the next readiness, retry at once, or complete. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "reactors/common/kernel_calls.h"
#include "reactors/common/plugin_util.h"
#include "reactors/common/readiness_internal.h"
#include "runtime/hot_path.h"

/* The system call of the op on `direction` (RC_READ or RC_WRITE) failed with `error`. Returns
 * 1 to try again at once. Otherwise the op waits for the descriptor's next readiness (the
 * edge-mode cache forgets it was ready), or it is over: completed with -error. */
static int retry_after_failure(rc_core* core, rc_slot* slot, uint32_t direction, int error) {
  brrr_op* op = direction == RC_READ ? &slot->read_op : &slot->write_op;
  switch (pu_classify(op->opcode, error)) {
    case PU_RETRY:
      return 1;
    case PU_WAIT:
      slot->ready &= (uint8_t)~direction;
      if (direction == RC_READ) slot->urgent = 0;
      return 0;
    default:
      if (direction == RC_READ) slot->has_read = 0; else slot->has_write = 0;
      rc_complete(core, op, -error, 0, 0);
      return 0;
  }
}

/* Takes `count` buffers off the free list into ids[], in address order: buffers recycled
 * together (the pieces of one message, sent on and handed back in order) come back as
 * neighbours, so a receive into them is one span for the kernel, and what it brings can leave
 * in one plain send (runtime/sender.cc joins chunks that lie back to back). The free list is
 * a stack, whose pops give such neighbours in the reverse order. */
static void take_buffers_in_address_order(rc_core* core, uint32_t* ids, int count) {
  for (int k = 0; k < count; k++) {
    uint32_t id = core->free_buffers[--core->free_count];
    int at = k;
    for (; at > 0 && ids[at - 1] > id; at--) ids[at] = ids[at - 1];
    ids[at] = id;
  }
}

/* Receives into iov[0..count) (count > 1), as few spans as the buffers allow: neighbours in
 * memory are joined, and a single span is read with recv instead of recvmsg. */
static ssize_t receive_into(int fd, const struct iovec* iov, int count) {
  struct iovec spans[RC_SCATTER];
  int n_spans = 0;
  for (int k = 0; k < count; k++) {
    if (n_spans > 0 && (char*)spans[n_spans - 1].iov_base + spans[n_spans - 1].iov_len == (char*)iov[k].iov_base) {
      spans[n_spans - 1].iov_len += iov[k].iov_len;
    } else {
      spans[n_spans++] = iov[k];
    }
  }
  if (n_spans == 1) return rc_recv(fd, spans[0].iov_base, spans[0].iov_len, 0);
  struct msghdr msg = {.msg_iov = spans, .msg_iovlen = (size_t)n_spans};
  return rc_recvmsg(fd, &msg, 0);
}

/* What a receive's outcome means for the read loop of rc_run_read. */
enum { RECEIVE_STOP = 0, RECEIVE_AGAIN = 1 };

/* A receive that brought `received` > 0 bytes of the `asked` it had room for: notes the size
 * (RC_SMALL_READS), ends a single-shot op, and says whether the socket may hold more. A short
 * read drained it: new data brings a new edge. Not so once the peer has closed its side (no
 * edge will announce the end of stream left behind), nor while TCP urgent data is pending (a
 * receive stops at the urgent mark, the bytes after it already queued): those read on. */
static int after_data(rc_slot* slot, int multishot, int select, size_t received, size_t first_size,
                      size_t asked) {
  if (select) {
    if (received >= first_size) {
      slot->small_reads = 0;
    } else if (slot->small_reads < UINT8_MAX) {
      slot->small_reads++;
    }
  }
  if (!multishot) slot->has_read = 0;
  if (received < asked && !(slot->closed & RC_READ) && !slot->urgent) {
    slot->ready &= (uint8_t)~RC_READ;
    return RECEIVE_STOP;
  }
  return RECEIVE_AGAIN;
}

/* A receive that brought no data: 0 is the end of stream (the op's final completion), else
 * `error` decides (retry_after_failure). */
static int after_no_data(rc_core* core, rc_slot* slot, brrr_op* op, ssize_t n, int error) {
  if (n == 0) {
    slot->has_read = 0;
    rc_complete(core, op, 0, 0, 0);
    return RECEIVE_STOP;
  }
  return retry_after_failure(core, slot, RC_READ, error) ? RECEIVE_AGAIN : RECEIVE_STOP;
}

static uint32_t receive_flags(int multishot, int select) {
  return (multishot ? BRRR_COMPLETION_MORE : 0u) | (select ? BRRR_COMPLETION_BUFFER : 0u);
}

/* One receive into one buffer (the op's own, or one pool buffer), with recv: the path of
 * every small message, kept free of the scatter's arrays and loops. */
static int receive_one(rc_core* core, int fd, rc_slot* slot, brrr_op* op, int multishot, int select,
                       int* buffers_filled) {
  uint32_t id = 0;
  char* at = op->buf;
  size_t size = op->len;
  if (select) {
    id = core->free_buffers[--core->free_count];
    at = (char*)core->buffer_base + (size_t)id * core->buffer_size;
    size = op->len != 0 && op->len < core->buffer_size ? op->len : core->buffer_size;
  }
  core->counters.syscalls++;
  ssize_t n = rc_recv(fd, at, size, 0);
  if (n <= 0) {
    int error = n < 0 ? errno : 0;
    if (select) core->free_buffers[core->free_count++] = id; /* unused: back on top */
    return after_no_data(core, slot, op, n, error);
  }
  if (select) core->buffer_out[id] = 1;
  rc_complete(core, op, (int32_t)n, receive_flags(multishot, select), id);
  *buffers_filled += 1;
  return after_data(slot, multishot, select, (size_t)n, size, size);
}

/* One receive into `count` (> 1) pool buffers, taken in address order and read as few spans
 * as they make; each buffer with data becomes its own completion. */
BRRR_HOT_PATH static int receive_scatter(rc_core* core, int fd, rc_slot* slot, brrr_op* op, int multishot, int count,
                                         int* buffers_filled) {
  struct iovec iov[RC_SCATTER];
  uint32_t ids[RC_SCATTER];
  take_buffers_in_address_order(core, ids, count);
  for (int k = 0; k < count; k++) {
    iov[k].iov_base = core->buffer_base + (size_t)ids[k] * core->buffer_size;
    iov[k].iov_len = core->buffer_size;
  }
  size_t asked = (size_t)count * core->buffer_size;
  core->counters.syscalls++;
  ssize_t n = receive_into(fd, iov, count);
  int error = n < 0 ? errno : 0;
  size_t received = n > 0 ? (size_t)n : 0;
  int used = (int)((received + core->buffer_size - 1) / core->buffer_size);
  /* Unused buffers go back highest address first: the free list is a stack, and the next
   * receive should get the same (cache-warm) buffers. */
  for (int k = count - 1; k >= used; k--) core->free_buffers[core->free_count++] = ids[k];
  if (n <= 0) return after_no_data(core, slot, op, n, error);
  size_t left = received;
  for (int k = 0; k < used; k++) {
    size_t part = left < core->buffer_size ? left : core->buffer_size;
    core->buffer_out[ids[k]] = 1;
    rc_complete(core, op, (int32_t)part, receive_flags(multishot, 1), ids[k]);
    left -= part;
  }
  *buffers_filled += used;
  return after_data(slot, multishot, 1, received, core->buffer_size, asked);
}

BRRR_HOT_PATH int rc_run_read(rc_core* core, int fd, rc_slot* slot) {
  brrr_op* op = &slot->read_op;
  int multishot = (op->flags & BRRR_OP_MULTISHOT) != 0;
  int buffers_filled = 0;
  for (int i = 0; i < RC_BATCH && buffers_filled < RC_BATCH && slot->has_read; i++) {
    switch (op->opcode) {
      case BRRR_OP_POLL_READABLE:
        slot->has_read = 0;
        rc_complete(core, op, 0, 0, 0);
        return 0;
      case BRRR_OP_ACCEPT: {
        core->counters.syscalls++;
        int client = rc_accept4(fd, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client >= 0) {
          if (!multishot) slot->has_read = 0;
          rc_complete_accepted(core, op, client, multishot ? BRRR_COMPLETION_MORE : 0);
          continue;
        }
        if (retry_after_failure(core, slot, RC_READ, errno)) continue;
        return 0;
      }
      case BRRR_OP_RECV: {
        int select = (op->flags & BRRR_OP_BUFFER_SELECT) != 0;
        int count = 1;
        if (select) {
          if (core->free_count == 0) {
            slot->has_read = 0;
            rc_complete(core, op, -ENOBUFS, 0, 0);
            return 0;
          }
          /* A multishot receive without a length cap fills up to RC_SCATTER buffers per call
           * (each becomes its own completion), unless its descriptor has been receiving small
           * messages (RC_SMALL_READS); a capped or single receive fills one. */
          if (multishot && op->len == 0 && slot->small_reads < RC_SMALL_READS) {
            count = RC_SCATTER;
            if ((uint32_t)count > core->free_count) count = (int)core->free_count;
            if (count > RC_BATCH - buffers_filled) count = RC_BATCH - buffers_filled;
          }
        }
        int next = count > 1 ? receive_scatter(core, fd, slot, op, multishot, count, &buffers_filled)
                             : receive_one(core, fd, slot, op, multishot, select, &buffers_filled);
        if (next == RECEIVE_AGAIN) continue;
        return 0;
      }
      default:
        slot->has_read = 0;
        rc_complete(core, op, -EINVAL, 0, 0);
        return 0;
    }
  }
  return slot->has_read && multishot;
}

void rc_run_write(rc_core* core, int fd, rc_slot* slot) {
  brrr_op* op = &slot->write_op;
  switch (op->opcode) {
    case BRRR_OP_POLL_WRITABLE:
      slot->has_write = 0;
      rc_complete(core, op, 0, 0, 0);
      return;
    case BRRR_OP_CONNECT: {
      int so_error = 0;
      socklen_t size = sizeof so_error;
      core->counters.syscalls++;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &size) != 0) so_error = errno;
      slot->has_write = 0;
      slot->connecting = 0;
      rc_complete(core, op, -so_error, 0, 0);
      return;
    }
    case BRRR_OP_SEND:
    case BRRR_OP_SENDMSG:
      for (;;) {
        core->counters.syscalls++;
        ssize_t n;
        if (op->opcode == BRRR_OP_SEND) {
          n = rc_send(fd, op->buf, op->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
          n = rc_sendmsg(fd, (const struct msghdr*)op->buf, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n >= 0) {
          slot->has_write = 0;
          rc_complete(core, op, (int32_t)n, 0, 0);
          return;
        }
        if (retry_after_failure(core, slot, RC_WRITE, errno)) continue;
        return;
      }
    default:
      slot->has_write = 0;
      rc_complete(core, op, -EINVAL, 0, 0);
      return;
  }
}
