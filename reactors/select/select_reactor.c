/*
 * select_reactor.c: the select(2) backend.
 *
 * Level-triggered over two fd_sets, the tutorial's read and write lists. select(2) cannot
 * represent a descriptor >= FD_SETSIZE (writing one corrupts memory), so this backend
 * declares max_fd = FD_SETSIZE - 1 and the core refuses such a descriptor with -ERANGE before
 * it gets anywhere near an fd_set; the runtime turns that into an error that names the limit.
 * Waits use pselect, with nanosecond timeouts (rc_pselect: not glibc's cancellation point)
 * and the wake-up signal's mask (signal_wake.h: no eventfd in the sets).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "reactors/common/kernel_calls.h"
#include "reactors/common/readiness_core.h"
#include "runtime/hot_path.h"

typedef struct select_backend {
  fd_set read_set;
  fd_set write_set;
  int max_watched; /* highest descriptor in either set, or -1 */
  fd_set ready_read; /* scratch for one wait */
  fd_set ready_write;
  unsigned rotation; /* where the next wait's walk starts */
} select_backend;

static int select_set_interest(void* backend, int fd, uint32_t previous, uint32_t interest) {
  (void)previous;
  select_backend* be = backend;
  if (fd < 0 || fd >= FD_SETSIZE) return -ERANGE;
  if (interest & RC_READ) FD_SET(fd, &be->read_set); else FD_CLR(fd, &be->read_set);
  if (interest & RC_WRITE) FD_SET(fd, &be->write_set); else FD_CLR(fd, &be->write_set);
  if (interest != 0 && fd > be->max_watched) be->max_watched = fd;
  if (interest == 0 && fd == be->max_watched) {
    while (be->max_watched >= 0 && !FD_ISSET(be->max_watched, &be->read_set) &&
           !FD_ISSET(be->max_watched, &be->write_set)) {
      be->max_watched--;
    }
  }
  return 0;
}

BRRR_HOT_PATH static int select_backend_wait(void* backend, rc_core* core, int64_t timeout_ns,
                                             const sigset_t* mask) {
  select_backend* be = backend;
  struct timespec ts;
  be->ready_read = be->read_set;
  be->ready_write = be->write_set;
  int n = rc_pselect(be->max_watched + 1, &be->ready_read, &be->ready_write, NULL,
                     rc_timespec(timeout_ns, &ts), mask);
  if (n < 0) return -errno;
  /* Each wait starts its walk one descriptor further on, so that when more descriptors are
   * ready than a wait() serves, no descriptor is always among the last. The sets are this
   * wait's copies: a descriptor rc_on_ready stops watching is still walked, harmlessly. */
  int seen = 0;
  int count = be->max_watched + 1;
  if (count <= 0) return n;
  int fd = (int)(be->rotation++ % (unsigned)count);
  for (int k = 0; k < count && seen < n; k++, fd = fd + 1 == count ? 0 : fd + 1) {
    uint32_t ready = 0;
    if (FD_ISSET(fd, &be->ready_read)) ready |= RC_READ, seen++;
    if (FD_ISSET(fd, &be->ready_write)) ready |= RC_WRITE, seen++;
    if (ready) rc_on_ready(core, fd, ready, 0);
  }
  return n;
}

static int select_backend_open(void** backend, char* err, size_t err_size) {
  select_backend* be = calloc(1, sizeof *be);
  if (be == NULL) return pu_fail(err, err_size, "allocating the select backend", -ENOMEM, NULL);
  FD_ZERO(&be->read_set);
  FD_ZERO(&be->write_set);
  be->max_watched = -1;
  *backend = be;
  return 0;
}

static void select_backend_destroy(void* backend) { free(backend); }

static const rc_backend_ops kSelectOps = {
    .open = select_backend_open,
    .set_interest = select_set_interest,
    .wait = select_backend_wait,
    .destroy = select_backend_destroy,
    .mode = RC_LEVEL,
    .wake_by_signal = 1,
};

RC_DEFINE_PLUGIN(kSelectOps, "select",
                 "select(2), level-triggered, descriptors below FD_SETSIZE only",
                 FD_SETSIZE - 1)
