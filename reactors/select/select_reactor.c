/*
 * select_reactor.c: the select(2) backend.
 *
 * Level-triggered over two fd_sets, the tutorial's read and write lists. select(2) cannot
 * represent a descriptor >= FD_SETSIZE (writing one corrupts memory), so this backend
 * declares max_fd = FD_SETSIZE - 1 and the core refuses such a descriptor with -ERANGE before
 * it gets anywhere near an fd_set; the runtime turns that into an error that names the limit.
 * Waits use pselect, with nanosecond timeouts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "reactors/common/readiness_core.h"

typedef struct select_backend {
  fd_set read_set;
  fd_set write_set;
  int max_watched; /* highest descriptor in either set, or -1 */
  fd_set ready_read; /* scratch for one wait */
  fd_set ready_write;
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

static int select_backend_wait(void* backend, rc_core* core, int64_t timeout_ns) {
  select_backend* be = backend;
  struct timespec ts;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
  }
  be->ready_read = be->read_set;
  be->ready_write = be->write_set;
  int n = pselect(be->max_watched + 1, &be->ready_read, &be->ready_write, NULL,
                  timeout_ns >= 0 ? &ts : NULL, NULL);
  if (n < 0) return -errno;
  int seen = 0;
  for (int fd = 0; fd <= be->max_watched && seen < n; fd++) {
    uint32_t ready = 0;
    if (FD_ISSET(fd, &be->ready_read)) ready |= RC_READ, seen++;
    if (FD_ISSET(fd, &be->ready_write)) ready |= RC_WRITE, seen++;
    if (ready) rc_on_ready(core, fd, ready, 0);
  }
  return n;
}

static void select_backend_destroy(void* backend) { free(backend); }

static const rc_backend_ops kSelectOps = {
    .set_interest = select_set_interest,
    .wait = select_backend_wait,
    .destroy = select_backend_destroy,
};

static int select_create_reactor(const brrr_reactor_config* config, brrr_reactor** out,
                                 char* err, size_t err_size) {
  (void)config;
  select_backend* be = calloc(1, sizeof *be);
  if (be == NULL) return rc_fail(err, err_size, "allocating the select backend", -ENOMEM);
  FD_ZERO(&be->read_set);
  FD_ZERO(&be->write_set);
  be->max_watched = -1;
  rc_core* core;
  int rc = rc_create(&kSelectOps, be, RC_LEVEL, FD_SETSIZE - 1, &core, err, err_size);
  if (rc != 0) return rc;
  *out = (brrr_reactor*)core;
  return 0;
}

static const brrr_reactor_plugin kSelectPlugin = {
    .abi_version = BRRR_REACTOR_ABI_VERSION,
    .struct_size = sizeof(brrr_reactor_plugin),
    .name = "select",
    .description = "select(2), level-triggered, descriptors below FD_SETSIZE only",
    .capabilities = BRRR_CAP_MULTISHOT | BRRR_CAP_PROVIDED_BUFFERS | BRRR_CAP_SENDMSG,
    .max_fd = FD_SETSIZE - 1,
    .create = select_create_reactor,
    .destroy = rc_destroy,
    .submit = rc_submit,
    .cancel = rc_cancel,
    .wait = rc_wait,
    .wake = rc_wake,
    .release_fd = rc_release_fd,
    .provide_buffers = rc_provide_buffers,
    .recycle_buffer = rc_recycle_buffer,
    .counters = rc_counters,
};

BRRR_REACTOR_EXPORT const brrr_reactor_plugin* brrr_reactor_entry(void) {
  return &kSelectPlugin;
}
