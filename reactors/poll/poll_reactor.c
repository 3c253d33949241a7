/*
 * poll_reactor.c: the poll(2) backend.
 *
 * Level-triggered: the pollfd array holds exactly the descriptors with an operation in
 * flight, with the directions they wait for. A descriptor's index in the array is kept per
 * descriptor, so adding, changing and removing an entry are O(1) (removal moves the last
 * entry into the hole). Waits use ppoll, with nanosecond timeouts (rc_ppoll: not glibc's
 * cancellation point) and the wake-up signal's mask (signal_wake.h: no eventfd in the set).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reactors/common/kernel_calls.h"
#include "reactors/common/readiness_core.h"
#include "runtime/hot_path.h"

typedef struct poll_backend {
  struct pollfd* fds;
  size_t size;
  size_t capacity;
  int* index_of; /* descriptor -> index in fds, or -1 */
  size_t index_capacity;
  size_t rotation; /* where the next wait's walk starts */
} poll_backend;

static int ensure_index(poll_backend* be, int fd) {
  if ((size_t)fd < be->index_capacity) return 0;
  size_t capacity = be->index_capacity ? be->index_capacity : 256;
  while (capacity <= (size_t)fd) capacity *= 2;
  int* index_of = realloc(be->index_of, capacity * sizeof *index_of);
  if (index_of == NULL) return -ENOMEM;
  for (size_t i = be->index_capacity; i < capacity; i++) index_of[i] = -1;
  be->index_of = index_of;
  be->index_capacity = capacity;
  return 0;
}

static short poll_events(uint32_t interest) {
  return (short)(((interest & RC_READ) ? POLLIN : 0) | ((interest & RC_WRITE) ? POLLOUT : 0));
}

static int poll_set_interest(void* backend, int fd, uint32_t previous, uint32_t interest) {
  (void)previous;
  poll_backend* be = backend;
  if (ensure_index(be, fd) != 0) return -ENOMEM;
  int at = be->index_of[fd];
  if (interest == 0) {
    if (at < 0) return 0;
    be->fds[at] = be->fds[--be->size];
    be->index_of[be->fds[at].fd] = at;
    be->index_of[fd] = -1;
    return 0;
  }
  if (at < 0) {
    if (be->size == be->capacity) {
      size_t capacity = be->capacity ? be->capacity * 2 : 64;
      struct pollfd* fds = realloc(be->fds, capacity * sizeof *fds);
      if (fds == NULL) return -ENOMEM;
      be->fds = fds;
      be->capacity = capacity;
    }
    at = (int)be->size++;
    be->fds[at].fd = fd;
    be->index_of[fd] = at;
  }
  be->fds[at].events = poll_events(interest);
  be->fds[at].revents = 0;
  return 0;
}

BRRR_HOT_PATH static int poll_backend_wait(void* backend, rc_core* core, int64_t timeout_ns,
                                           const sigset_t* mask) {
  poll_backend* be = backend;
  struct timespec ts;
  int n = rc_ppoll(be->fds, be->size, rc_timespec(timeout_ns, &ts), mask);
  if (n < 0) return -errno;
  /* Walk backwards: rc_on_ready only records an entry, but when it cannot (out of memory) it
   * serves it at once, which may remove the entry and move the last one into its place (then
   * not seen in this wait if the walk has not reached it yet: level-triggered, the next poll
   * reports it again). Each wait starts one entry further on, so that when more descriptors
   * are ready than a wait() serves, no descriptor is always among the last. */
  int seen = 0;
  size_t size = be->size;
  if (size == 0) return n;
  size_t i = be->rotation++ % size;
  for (size_t k = 0; k < size && seen < n; k++, i = i == 0 ? size - 1 : i - 1) {
    if (i >= be->size) continue; /* the array shrank behind the walk */
    short revents = be->fds[i].revents;
    if (revents == 0) continue;
    seen++;
    be->fds[i].revents = 0;
    uint32_t ready = 0;
    if (revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) ready |= RC_READ;
    if (revents & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) ready |= RC_WRITE;
    rc_on_ready(core, be->fds[i].fd, ready, 0);
  }
  return n;
}

static int poll_backend_open(void** backend, char* err, size_t err_size) {
  poll_backend* be = calloc(1, sizeof *be);
  if (be == NULL) return pu_fail(err, err_size, "allocating the poll backend", -ENOMEM, NULL);
  *backend = be;
  return 0;
}

static void poll_backend_destroy(void* backend) {
  poll_backend* be = backend;
  free(be->fds);
  free(be->index_of);
  free(be);
}

static const rc_backend_ops kPollOps = {
    .open = poll_backend_open,
    .set_interest = poll_set_interest,
    .wait = poll_backend_wait,
    .destroy = poll_backend_destroy,
    .mode = RC_LEVEL,
    .wake_by_signal = 1,
};

RC_DEFINE_PLUGIN(kPollOps, "poll", "poll(2), level-triggered, readiness plus system call", -1)
