/*
 * full_sq_shim.c: a kernel that never takes a flush of the io_uring submission queue (SQ), for
 * a test copy of the io_uring backend. Linked with the linker's --wrap, so that the flushes
 * submission.c and completion.c make with io_uring_submit come here first; the production
 * plugin is unchanged.
 *
 * Every such flush fails with EAGAIN before it reaches the kernel: nothing is submitted, and
 * the queue stays as full as it was. The backend flushes that way only when it needs an SQE
 * and the SQ is full (and, to start what is queued, in a wait that returns at once). The
 * waits' own submissions (io_uring_submit_and_wait[_timeout], io_uring_submit_and_get_events)
 * go through, so whatever found the SQ full waits for the next one to make room: a cancel, a
 * re-arm, the read of the wake-up eventfd. io_uring_enter(2) returns EAGAIN when the kernel has
 * no memory for a request (EBUSY, before Linux 5.19, when its CQ overflow list does not fit
 * into a full CQ ring): a test cannot bring either about on purpose, nor make the flush of
 * one SQ fail while the next wait's goes through.
 *
 * Threads: any (no state).
 */
#include <errno.h>
#include <liburing.h>

int __wrap_io_uring_submit(struct io_uring* ring) {
  (void)ring;
  return -EAGAIN;
}
