/*
 * ring_limit_shim.c: a kernel that sets up only so many io_uring rings per process, for a test
 * copy of the io_uring backend. Linked with the linker's --wrap, so that the ring set-up
 * ring_setup.c makes (io_uring_queue_init_params) comes here first; the production plugin is
 * unchanged.
 *
 * The first $BRRR_FAULT_RINGS rings a process sets up (default 2) are set up; every later
 * attempt fails with ENOMEM before it reaches the kernel. That is what a kernel that charges
 * rings to RLIMIT_MEMLOCK (per user; this machine's Linux 6.18 does) does to a user without
 * CAP_IPC_LOCK whose rings reach the limit: the first loops of a server start on io_uring and
 * a later one cannot. A test cannot
 * bring that about with the real limit where it runs as root, nor on a kernel that does not
 * charge rings.
 *
 * Threads: any (the count is atomic).
 */
#include <errno.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdlib.h>

int __real_io_uring_queue_init_params(unsigned entries, struct io_uring* ring, struct io_uring_params* p);

static atomic_int rings_set_up;

static int rings_allowed(void) {
  const char* value = getenv("BRRR_FAULT_RINGS");
  return value != NULL ? atoi(value) : 2;
}

int __wrap_io_uring_queue_init_params(unsigned entries, struct io_uring* ring, struct io_uring_params* p) {
  if (atomic_load(&rings_set_up) >= rings_allowed()) return -ENOMEM;
  int rc = __real_io_uring_queue_init_params(entries, ring, p);
  if (rc == 0) atomic_fetch_add(&rings_set_up, 1);
  return rc;
}
