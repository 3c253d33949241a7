/* kernel_calls.c: see kernel_calls.h. A file of its own, apart from its callers, so that the
 * linker's --wrap can reroute the calls in the fault-injecting test plugins. */
#include "reactors/common/kernel_calls.h"
#include "runtime/hot_path.h"

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

BRRR_HOT_PATH ssize_t rc_recv(int fd, void* buf, size_t len, int flags) { return recv(fd, buf, len, flags); }
ssize_t rc_recvmsg(int fd, struct msghdr* msg, int flags) { return recvmsg(fd, msg, flags); }
BRRR_HOT_PATH ssize_t rc_send(int fd, const void* buf, size_t len, int flags) {
  return send(fd, buf, len, flags);
}
ssize_t rc_sendmsg(int fd, const struct msghdr* msg, int flags) { return sendmsg(fd, msg, flags); }
int rc_accept4(int fd, int flags) { return accept4(fd, NULL, NULL, flags); }
BRRR_HOT_PATH int rc_pselect(int n, fd_set* r, fd_set* w, fd_set* e, struct timespec* timeout,
                             const sigset_t* mask) {
  return pselect(n, r, w, e, timeout, mask);
}
BRRR_HOT_PATH int rc_ppoll(struct pollfd* fds, nfds_t n, struct timespec* timeout, const sigset_t* mask) {
  return ppoll(fds, n, timeout, mask);
}
int rc_epoll_pwait2(int epfd, struct epoll_event* events, int max, struct timespec* timeout) {
  return epoll_pwait2(epfd, events, max, timeout, NULL);
}
int rc_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout_ms) {
  return epoll_wait(epfd, events, max, timeout_ms);
}

#else

/* One system call with up to six arguments, as syscall(2) returns it (-1 with errno on
 * failure). On x86-64 the syscall instruction is issued here, inline: glibc's syscall() is
 * one more call and return around every kernel entry, and its arguments are shuffled once
 * more. That was worth 1.4% more round trips for 1.3% less CPU per message on epoll at one
 * connection (bench/JOURNAL.md, eleventh run). Elsewhere, glibc's syscall(). */
static inline long direct_syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6) {
#if defined(__x86_64__)
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  long result;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  if (result < 0 && result > -4096) {
    errno = (int)-result;
    return -1;
  }
  return result;
#else
  return syscall(number, a1, a2, a3, a4, a5, a6);
#endif
}

BRRR_HOT_PATH ssize_t rc_recv(int fd, void* buf, size_t len, int flags) {
  return (ssize_t)direct_syscall(SYS_recvfrom, (long)fd, (long)buf, (long)len, (long)flags, 0, 0);
}

ssize_t rc_recvmsg(int fd, struct msghdr* msg, int flags) {
  return (ssize_t)direct_syscall(SYS_recvmsg, (long)fd, (long)msg, (long)flags, 0, 0, 0);
}

BRRR_HOT_PATH ssize_t rc_send(int fd, const void* buf, size_t len, int flags) {
  return (ssize_t)direct_syscall(SYS_sendto, (long)fd, (long)buf, (long)len, (long)flags, 0, 0);
}

ssize_t rc_sendmsg(int fd, const struct msghdr* msg, int flags) {
  return (ssize_t)direct_syscall(SYS_sendmsg, (long)fd, (long)msg, (long)flags, 0, 0, 0);
}

int rc_accept4(int fd, int flags) { return (int)direct_syscall(SYS_accept4, (long)fd, 0, 0, (long)flags, 0, 0); }

/* The kernel's signal set is 64 bits (_NSIG / 8 bytes), the front of glibc's sigset_t. */
#define RC_KERNEL_SIGSET_SIZE 8

BRRR_HOT_PATH int rc_pselect(int n, fd_set* r, fd_set* w, fd_set* e, struct timespec* timeout,
                             const sigset_t* mask) {
  /* pselect6's sixth argument: the mask and its size, together. */
  struct {
    const sigset_t* mask;
    size_t size;
  } with_mask = {mask, RC_KERNEL_SIGSET_SIZE};
  return (int)direct_syscall(SYS_pselect6, (long)n, (long)r, (long)w, (long)e, (long)timeout, (long)(mask != NULL ? &with_mask : NULL));
}

BRRR_HOT_PATH int rc_ppoll(struct pollfd* fds, nfds_t n, struct timespec* timeout, const sigset_t* mask) {
  return (int)direct_syscall(SYS_ppoll, (long)fds, (long)n, (long)timeout, (long)mask, (long)(mask != NULL ? RC_KERNEL_SIGSET_SIZE : 0), 0);
}

int rc_epoll_pwait2(int epfd, struct epoll_event* events, int max, struct timespec* timeout) {
#ifdef SYS_epoll_pwait2
  return (int)direct_syscall(SYS_epoll_pwait2, (long)epfd, (long)events, (long)max, (long)timeout, 0, 0);
#else
  (void)epfd, (void)events, (void)max, (void)timeout;
  errno = ENOSYS;
  return -1;
#endif
}

int rc_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout_ms) {
  return (int)direct_syscall(SYS_epoll_pwait, (long)epfd, (long)events, (long)max, (long)timeout_ms, 0, 0);
}

#endif /* RC_THROUGH_GLIBC */
