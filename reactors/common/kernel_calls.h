/*
 * kernel_calls.h: the system calls of the backends' data path (select, poll, epoll: the
 * readiness core's receives, sends and accepts, and each backend's wait; io_uring: its sends at
 * once), made directly.
 *
 *   ssize_t n = rc_recv(fd, buf, len, 0);           // as recv(2): -1 with errno on failure
 *   int ready = rc_ppoll(fds, count, &timeout, NULL);  // as ppoll(2)
 *
 * Why not glibc's: its recv, send, recvmsg, sendmsg, accept4, ppoll, pselect, epoll_wait and
 * epoll_pwait2 are cancellation points. In a process with more than one thread (brrr-echo has
 * its admin plane's) each call switches the thread to asynchronous cancellation and back
 * around the kernel entry, two atomic read-modify-writes of the thread's cancel state (1.7% of
 * brrr-poll's CPU at 64 connections, bench/JOURNAL.md, eighth run; a single-threaded peer such as
 * libevent's echo skips them). No brrr thread is ever cancelled, so these enter the kernel
 * themselves (on x86-64 with the syscall instruction inline, elsewhere through syscall(2)), with
 * no such bookkeeping; AddressSanitizer and ThreadSanitizer builds go through glibc after
 * all, so that the sanitizers see the calls (kernel_calls.c). Each returns what the glibc call
 * returns: the result, or -1 with errno set. They are functions of their own (not inline) so
 * that the fault-injecting test copies of the backends can wrap them (tests/reactors/faults).
 * A wait may write the time left into `timeout`, as the kernel does (glibc's wrappers hide
 * it): pass a timespec of the call's own.
 *
 * Threads: any. Ownership: pointers are borrowed for the call.
 */
#ifndef BRRR_REACTORS_COMMON_KERNEL_CALLS_H_
#define BRRR_REACTORS_COMMON_KERNEL_CALLS_H_

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "reactors/common/plugin_util.h"
#include "runtime/reactor_abi.h"

ssize_t rc_recv(int fd, void* buf, size_t len, int flags);
ssize_t rc_recvmsg(int fd, struct msghdr* msg, int flags);
ssize_t rc_send(int fd, const void* buf, size_t len, int flags);
ssize_t rc_sendmsg(int fd, const struct msghdr* msg, int flags);
/* accept4(fd, NULL, NULL, flags). */
int rc_accept4(int fd, int flags);
/* pselect(n, r, w, e, timeout, mask); ppoll(fds, n, timeout, mask); epoll_pwait2(epfd,
 * events, max, timeout, NULL) (-1 with ENOSYS before Linux 5.11); epoll_wait(epfd, events,
 * max, timeout_ms). A NULL timeout waits without a limit; a NULL mask leaves the thread's
 * signal mask as it is during the wait (signal_wake.h passes one). */
int rc_pselect(int n, fd_set* r, fd_set* w, fd_set* e, struct timespec* timeout,
               const sigset_t* mask);
int rc_ppoll(struct pollfd* fds, nfds_t n, struct timespec* timeout, const sigset_t* mask);
int rc_epoll_pwait2(int epfd, struct epoll_event* events, int max, struct timespec* timeout);
int rc_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout_ms);

/* A backend's send at once (the plugin table's try_send): rc_send with MSG_NOSIGNAL |
 * MSG_DONTWAIT, tried again after a passing failure (pu_classify). The bytes sent, -EAGAIN
 * when the socket takes nothing now, or the send's -errno; each attempt counts in *syscalls.
 * Inline, so that its rc_send stays a call the fault-injecting copies can wrap. */
static inline int rc_send_at_once(int fd, const void* buf, uint32_t len, uint64_t* syscalls) {
  for (;;) {
    (*syscalls)++;
    ssize_t n = rc_send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return (int)n;
    int error = errno;
    switch (pu_classify(BRRR_OP_SEND, error)) {
      case PU_RETRY:
        continue;
      case PU_WAIT:
        return -EAGAIN;
      default:
        return -error;
    }
  }
}

#endif /* BRRR_REACTORS_COMMON_KERNEL_CALLS_H_ */
