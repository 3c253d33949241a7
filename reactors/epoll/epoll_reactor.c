/*
 * epoll_reactor.c: the epoll(7) backend.
 *
 * Edge-triggered, registered once. A descriptor is added with EPOLLIN | EPOLLPRI | EPOLLOUT |
 * EPOLLRDHUP | EPOLLET the first time it gets an operation and removed at release_fd(). Why edge rather than level triggering: level triggering would need an
 * epoll_ctl(MOD) every time the set of operations in flight changes (a recv posted, a send
 * finished), a system call per message in an echo server. With edges the kernel reports each
 * change of readiness once; the shared core caches it per direction and runs an operation at
 * once when its descriptor is known to be ready, and it keeps reading or accepting until
 * EAGAIN (or a short read, which for a stream socket means the queue was drained: new data
 * brings a new edge), so no edge is lost. Hang-up and error conditions (EPOLLRDHUP,
 * EPOLLHUP, EPOLLERR) are sticky, because no further edge announces an end of stream that a
 * short read left behind; so is TCP urgent data (EPOLLPRI, until the next EAGAIN), because a
 * receive stops short at its mark with the bytes after it already queued. The cost is one
 * epoll_ctl(DEL) per descriptor at close.
 *
 * Waits use epoll_pwait2 (Linux 5.11, nanosecond timeouts) and fall back to epoll_wait with
 * the timeout rounded up to whole milliseconds; both through kernel_calls.h's direct calls,
 * not glibc's cancellation points.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "reactors/common/kernel_calls.h"
#include "reactors/common/readiness_core.h"
#include "runtime/hot_path.h"

#define EPOLL_EVENTS_PER_WAIT 256

typedef struct epoll_backend {
  int epfd;
  int use_pwait2;
  struct epoll_event events[EPOLL_EVENTS_PER_WAIT];
} epoll_backend;

static int epoll_set_interest(void* backend, int fd, uint32_t previous, uint32_t interest) {
  epoll_backend* be = backend;
  if (interest == 0) {
    return epoll_ctl(be->epfd, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : -errno;
  }
  struct epoll_event ev = {0};
  ev.events = EPOLLET | EPOLLRDHUP | ((interest & RC_READ) ? EPOLLIN | EPOLLPRI : 0u) |
              ((interest & RC_WRITE) ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  int op = previous == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  return epoll_ctl(be->epfd, op, fd, &ev) == 0 ? 0 : -errno;
}

BRRR_HOT_PATH static int epoll_backend_wait(void* backend, rc_core* core, int64_t timeout_ns,
                                            const sigset_t* mask) {
  (void)mask; /* always NULL: epoll keeps the eventfd, which costs its waits nothing */
  epoll_backend* be = backend;
  int n = -1;
  if (be->use_pwait2) {
    struct timespec ts;
    n = rc_epoll_pwait2(be->epfd, be->events, EPOLL_EVENTS_PER_WAIT, rc_timespec(timeout_ns, &ts));
    if (n < 0 && errno == ENOSYS) be->use_pwait2 = 0;
  }
  if (!be->use_pwait2) {
    n = rc_epoll_wait(be->epfd, be->events, EPOLL_EVENTS_PER_WAIT, rc_timeout_ms(timeout_ns));
  }
  if (n < 0) return -errno;
  for (int i = 0; i < n; i++) {
    uint32_t e = be->events[i].events;
    uint32_t ready = 0;
    uint32_t closed = 0;
    if (e & EPOLLIN) ready |= RC_READ;
    if (e & EPOLLPRI) ready |= RC_URGENT;
    if (e & EPOLLOUT) ready |= RC_WRITE;
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) closed |= RC_READ;
    if (e & (EPOLLHUP | EPOLLERR)) closed |= RC_WRITE;
    rc_on_ready(core, be->events[i].data.fd, ready, closed);
  }
  return n;
}

static int epoll_backend_open(void** backend, char* err, size_t err_size) {
  epoll_backend* be = calloc(1, sizeof *be);
  if (be == NULL) return pu_fail(err, err_size, "allocating the epoll backend", -ENOMEM, NULL);
  be->use_pwait2 = 1;
  be->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (be->epfd < 0) {
    int rc = pu_fail(err, err_size, "epoll_create1", -errno, NULL);
    free(be);
    return rc;
  }
  *backend = be;
  return 0;
}

static void epoll_backend_destroy(void* backend) {
  epoll_backend* be = backend;
  if (be->epfd >= 0) close(be->epfd);
  free(be);
}

static const rc_backend_ops kEpollOps = {
    .open = epoll_backend_open,
    .set_interest = epoll_set_interest,
    .wait = epoll_backend_wait,
    .destroy = epoll_backend_destroy,
    .mode = RC_EDGE,
};

RC_DEFINE_PLUGIN(kEpollOps, "epoll", "epoll(7), edge-triggered, readiness plus system call", -1)
