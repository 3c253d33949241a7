/*
 * plugin_util.h: small helpers every backend plugin (select, poll, epoll, io_uring) shares, so
 * that all of them judge an error, read the clock and report a failure alike.
 *
 *   if (fd < 0) return pu_fail(err, err_size, "epoll_create1", -errno, NULL);
 *   switch (pu_classify(BRRR_OP_RECV, errno)) {
 *     case PU_WAIT:  ... wait for readiness, then try again ...
 *     case PU_RETRY: ... try again at once ...
 *     case PU_DONE:  ... complete the operation with -errno ...
 *   }
 *
 * Linked statically into each plugin (hidden visibility: a plugin still exports one symbol and
 * needs libc only).
 * Threads: all of it may be called from any thread; pu_eventfd_signal() is also
 * async-signal-safe. Ownership: nothing is kept; pointers are borrowed for the call.
 */
#ifndef BRRR_REACTORS_COMMON_PLUGIN_UTIL_H_
#define BRRR_REACTORS_COMMON_PLUGIN_UTIL_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a socket operation that failed with an errno calls for. */
typedef enum pu_next {
  PU_DONE = 0, /* the operation is over: its completion carries -errno */
  PU_RETRY,    /* a passing failure (a signal, one dead connection): try again at once */
  PU_WAIT,     /* it would block: try again once the descriptor is ready */
} pu_next;

/* For the data operations ACCEPT, RECV, SEND and SENDMSG: EAGAIN waits; EINTR retries, and
 * so do the errors accept reports for one dead connection (ECONNABORTED, EPROTO, EPERM: the
 * listener itself is fine); anything else ends the operation (for accept: EMFILE, ENFILE,
 * ENOBUFS..., so the runtime decides when to try again). */
pu_next pu_classify(uint32_t opcode, int error);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t pu_monotonic_ns(void);

/* The calling thread's kernel id (gettid), read once per thread. Unlike a pthread_t, which
 * glibc gives to a new thread once a joined one has left its stack, it names one thread only
 * (until the kernel's ids wrap around): the one the kernel holds to its rules. Right in a
 * child forked after the parent's thread read it too. */
pid_t pu_thread_id(void);

/* Writes "what: strerror(-error)" and, when `why` is not NULL, " (why)" into err, a
 * caller-owned buffer of err_size bytes (create()'s failure reason). Returns error, a negative
 * errno. */
int pu_fail(char* err, size_t err_size, const char* what, int error, const char* why);

/* For broken promises to the runtime only (no memory to keep a completion, a buffer id the
 * runtime does not own): prints "brrr reactor: <message>" to stderr and aborts. */
void pu_abort(const char* format, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Grows `table`, an array of *count elements of item_size bytes indexed by descriptor, so
 * that it holds element `fd` (fd >= *count): doubles it from 256 on, zeroes the new elements,
 * updates *count and returns the new array (the old one is gone). NULL without memory: the
 * old array and *count stay as they were. */
void* pu_grow_fd_table(void* table, size_t* count, size_t item_size, int fd);

/* A backend's wake(): adds 1 to the eventfd `fd`. 0 or -errno; a saturated counter is a
 * pending wake-up already, so it counts as done. Thread-safe and async-signal-safe. */
int pu_eventfd_signal(int fd);

#endif /* BRRR_REACTORS_COMMON_PLUGIN_UTIL_H_ */
