/*
 * busy_ring_shim.c: a kernel that refuses io_uring waits now and then, for a test copy of the
 * io_uring backend. Linked with the linker's --wrap, so that the waits completion.c makes
 * (io_uring_submit_and_wait[_timeout]) come here first; the production plugin is unchanged.
 *
 * Of every four waits the first fails with EBUSY and the third with EAGAIN, before they reach
 * the kernel: nothing is submitted and nothing waited for. io_uring_enter(2) returns EBUSY when
 * the CQ overflow list cannot be flushed into a full CQ ring (kernels before 5.19 refuse the
 * submission then), EAGAIN when it has no memory for a request; either way "wait for some
 * completions and try again", and neither is a timeout or a wake-up. A real overflow that old
 * kernels refuse needs more completions at once than the CQ ring holds, which a test cannot
 * bring about on a current kernel.
 *
 * Threads: any (the count is atomic).
 */
#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdatomic.h>

int __real_io_uring_submit_and_wait(struct io_uring* ring, unsigned wait_nr);
int __real_io_uring_submit_and_wait_timeout(struct io_uring* ring, struct io_uring_cqe** cqe, unsigned wait_nr,
                                            struct __kernel_timespec* ts, sigset_t* sigmask);

static atomic_uint waits;

/* 0 to let this wait through, else the error that refuses it. */
static int refusal(void) {
  switch (atomic_fetch_add(&waits, 1) % 4) {
    case 0:
      return -EBUSY;
    case 2:
      return -EAGAIN;
    default:
      return 0;
  }
}

int __wrap_io_uring_submit_and_wait(struct io_uring* ring, unsigned wait_nr) {
  int error = refusal();
  return error != 0 ? error : __real_io_uring_submit_and_wait(ring, wait_nr);
}

int __wrap_io_uring_submit_and_wait_timeout(struct io_uring* ring, struct io_uring_cqe** cqe, unsigned wait_nr,
                                            struct __kernel_timespec* ts, sigset_t* sigmask) {
  int error = refusal();
  return error != 0 ? error : __real_io_uring_submit_and_wait_timeout(ring, cqe, wait_nr, ts, sigmask);
}
