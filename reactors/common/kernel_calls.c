/* kernel_calls.c: see kernel_calls.h. A file of its own, apart from its callers, so that the
 * linker's --wrap can reroute the calls in the fault-injecting test plugins. */
#include "reactors/common/kernel_calls.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Under AddressSanitizer or ThreadSanitizer the calls go through glibc after all: the
 * sanitizers intercept glibc's wrappers (ASan checks the buffers the kernel reads and writes,
 * TSan the synchronisation that passes through descriptors), and a sanitizer build is not
 * measured. //tests/reactors:plugin_imports_test checks both builds. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RC_THROUGH_GLIBC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RC_THROUGH_GLIBC 1
#endif
#endif

#ifdef RC_THROUGH_GLIBC

ssize_t rc_recv(int fd, void* buf, size_t len, int flags) { return recv(fd, buf, len, flags); }
ssize_t rc_recvmsg(int fd, struct msghdr* msg, int flags) { return recvmsg(fd, msg, flags); }
ssize_t rc_send(int fd, const void* buf, size_t len, int flags) {
  return send(fd, buf, len, flags);
}
ssize_t rc_sendmsg(int fd, const struct msghdr* msg, int flags) { return sendmsg(fd, msg, flags); }
int rc_accept4(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }
int rc_pselect(int n, fd_set* r, fd_set* w, fd_set* e, struct timespec* timeout,
               const sigset_t* mask) {
  return pselect(n, r, w, e, timeout, mask);
}
int rc_ppoll(struct pollfd* fds, nfds_t n, struct timespec* timeout, const sigset_t* mask) {
  return ppoll(fds, n, timeout, mask);
}
int rc_epoll_pwait2(int epfd, struct epoll_event* events, int max, struct timespec* timeout) {
  return epoll_pwait2(epfd, events, max, timeout, NULL);
}
int rc_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout_ms) {
  return epoll_wait(epfd, events, max, timeout_ms);
}

#else

ssize_t rc_recv(int fd, void* buf, size_t len, int flags) {
  return (ssize_t)syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

ssize_t rc_recvmsg(int fd, struct msghdr* msg, int flags) {
  return (ssize_t)syscall(SYS_recvmsg, fd, msg, flags);
}

ssize_t rc_send(int fd, const void* buf, size_t len, int flags) {
  return (ssize_t)syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

ssize_t rc_sendmsg(int fd, const struct msghdr* msg, int flags) {
  return (ssize_t)syscall(SYS_sendmsg, fd, msg, flags);
}

int rc_accept4(int fd, int flags) { return (int)syscall(SYS_accept4, fd, NULL, NULL, flags); }

/* The kernel's signal set is 64 bits (_NSIG / 8 bytes), the front of glibc's sigset_t. */
#define RC_KERNEL_SIGSET_SIZE 8

int rc_pselect(int n, fd_set* r, fd_set* w, fd_set* e, struct timespec* timeout,
               const sigset_t* mask) {
  /* pselect6's sixth argument: the mask and its size, together. */
  struct {
    const sigset_t* mask;
    size_t size;
  } with_mask = {mask, RC_KERNEL_SIGSET_SIZE};
  return (int)syscall(SYS_pselect6, n, r, w, e, timeout, mask != NULL ? &with_mask : NULL);
}

int rc_ppoll(struct pollfd* fds, nfds_t n, struct timespec* timeout, const sigset_t* mask) {
  return (int)syscall(SYS_ppoll, fds, n, timeout, mask, mask != NULL ? RC_KERNEL_SIGSET_SIZE : 0);
}

int rc_epoll_pwait2(int epfd, struct epoll_event* events, int max, struct timespec* timeout) {
#ifdef SYS_epoll_pwait2
  return (int)syscall(SYS_epoll_pwait2, epfd, events, max, timeout, NULL, 0);
#else
  (void)epfd, (void)events, (void)max, (void)timeout;
  errno = ENOSYS;
  return -1;
#endif
}

int rc_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout_ms) {
  return (int)syscall(SYS_epoll_pwait, epfd, events, max, timeout_ms, NULL, 0);
}

#endif /* RC_THROUGH_GLIBC */
