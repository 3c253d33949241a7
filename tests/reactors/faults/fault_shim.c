/*
 * fault_shim.c: faults on purpose, for tests (libuv's suite does the same). Linked into test
 * copies of the readiness backends (select, poll, epoll) with the linker's --wrap, so that
 * every recv, recvmsg, send, sendmsg, accept4 and wait (pselect, ppoll, epoll_wait,
 * epoll_pwait2) the readiness core and the backend make, through their direct system calls
 * (rc_recv ... in reactors/common/kernel_calls.h), goes through here first. The
 * production plugins are built from the same sources without it and are unchanged.
 *
 * What is injected, each on a share of the calls (1 in N; N from $BRRR_FAULTS):
 *   eintr   the call fails with EINTR before it reaches the kernel (every kind of call);
 *   eagain  a data call fails with EAGAIN although the descriptor is ready (a spurious
 *           readiness report, as poll and select can give);
 *   short   a data call moves fewer bytes than asked (1 to all of them), as the kernel does
 *           near a full buffer or when a signal arrives mid-copy;
 *   dup     a wait reports one of its events twice (the second finds nothing, or less).
 * Edge-triggered epoll (FAULTS_EDGE) gets no spurious EAGAIN and no short receive: with edges,
 * both would stand for "drained" while data is still queued, and no edge would come for it,
 * a promise no kernel breaks. It gets duplicated events instead, and short sends.
 *
 *   BRRR_FAULTS="seed=7,eintr=4,eagain=4,short=3,dup=3"   (the defaults; 0 turns one off)
 *
 * At exit the plugin writes what it injected to stderr (like every readiness plugin it is never
 * unloaded, reactors/BUILD, so its counts and random sequences run on across dlclose):
 *   "brrr faults (epoll): 1234 EINTR, 0 EAGAIN, 567 short transfers, 89 duplicated events"
 * and brrr_faults_injected() gives the same counts to a test that loaded it.
 *
 * Threads: any (one random sequence per thread; counters are atomic).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#ifndef FAULTS_BACKEND
#error "FAULTS_BACKEND must name the backend"
#endif

ssize_t __real_rc_recv(int fd, void* buf, size_t len, int flags);
ssize_t __real_rc_recvmsg(int fd, struct msghdr* msg, int flags);
ssize_t __real_rc_send(int fd, const void* buf, size_t len, int flags);
ssize_t __real_rc_sendmsg(int fd, const struct msghdr* msg, int flags);
int __real_rc_accept4(int fd, int flags);
int __real_rc_pselect(int n, fd_set* r, fd_set* w, fd_set* e, struct timespec* t,
                      const sigset_t* mask);
int __real_rc_ppoll(struct pollfd* fds, nfds_t n, struct timespec* t, const sigset_t* mask);
int __real_rc_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout);
int __real_rc_epoll_pwait2(int epfd, struct epoll_event* events, int max, struct timespec* t);

enum { kEintr, kEagain, kShort, kDup, kKinds };

static struct {
  unsigned every[kKinds]; /* 1 in N calls; 0: never */
  unsigned seed;
} config;
static pthread_once_t configured = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t injected[kKinds];
static atomic_uint thread_counter;
static __thread uint64_t rng_state;

static void configure(void) {
  config.every[kEintr] = 4;
  config.every[kEagain] = 4;
  config.every[kShort] = 3;
  config.every[kDup] = 3;
  config.seed = 7;
#ifdef FAULTS_EDGE
  config.every[kEagain] = 0;
#endif
  const char* spec = getenv("BRRR_FAULTS");
  static const char* const kNames[kKinds] = {"eintr", "eagain", "short", "dup"};
  while (spec != NULL && *spec != '\0') {
    char name[16] = {0};
    unsigned value = 0;
    if (sscanf(spec, "%15[a-z]=%u", name, &value) == 2) {
      if (strcmp(name, "seed") == 0) config.seed = value;
      for (int k = 0; k < kKinds; k++) {
        if (strcmp(name, kNames[k]) == 0) config.every[k] = value;
      }
    }
    spec = strchr(spec, ',');
    if (spec != NULL) spec++;
  }
#ifdef FAULTS_EDGE
  config.every[kEagain] = 0; /* see the top of the file */
#endif
}

static uint64_t next_random(void) {
  pthread_once(&configured, configure);
  if (rng_state == 0) {
    rng_state = (uint64_t)config.seed * 0x9E3779B97F4A7C15ull + atomic_fetch_add(&thread_counter, 1) + 1;
  }
  /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Whether to inject fault `kind` on this call. */
static int inject(int kind) {
  uint64_t r = next_random();
  if (config.every[kind] == 0 || r % config.every[kind] != 0) return 0;
  atomic_fetch_add(&injected[kind], 1);
  return 1;
}

/* A length from 1 to len, for a short transfer. */
static size_t shorter(size_t len) { return len <= 1 ? len : 1 + (size_t)(next_random() % len); }

#ifdef FAULTS_EDGE
static const int kShortReceives = 0;
#else
static const int kShortReceives = 1;
#endif

static int fail(int error) {
  errno = error;
  return -1;
}

/* A copy of msg's iovec array cut to `keep` bytes, in `cut` (room for msg->msg_iovlen). */
static void cut_iov(const struct msghdr* msg, size_t keep, struct msghdr* out, struct iovec* cut) {
  *out = *msg;
  size_t n = 0;
  for (size_t i = 0; i < msg->msg_iovlen && keep > 0; i++) {
    cut[n] = msg->msg_iov[i];
    if (cut[n].iov_len > keep) cut[n].iov_len = keep;
    keep -= cut[n].iov_len;
    n++;
  }
  out->msg_iov = cut;
  out->msg_iovlen = n;
}

static size_t iov_total(const struct msghdr* msg) {
  size_t total = 0;
  for (size_t i = 0; i < msg->msg_iovlen; i++) total += msg->msg_iov[i].iov_len;
  return total;
}

ssize_t __wrap_rc_recv(int fd, void* buf, size_t len, int flags) {
  if (inject(kEintr)) return fail(EINTR);
  if (inject(kEagain)) return fail(EAGAIN);
  if (kShortReceives && len > 1 && inject(kShort)) len = shorter(len);
  return __real_rc_recv(fd, buf, len, flags);
}

ssize_t __wrap_rc_recvmsg(int fd, struct msghdr* msg, int flags) {
  if (inject(kEintr)) return fail(EINTR);
  if (inject(kEagain)) return fail(EAGAIN);
  size_t total = iov_total(msg);
  if (kShortReceives && total > 1 && msg->msg_iovlen <= 64 && inject(kShort)) {
    struct iovec cut[64];
    struct msghdr shorter_msg;
    cut_iov(msg, shorter(total), &shorter_msg, cut);
    ssize_t n = __real_rc_recvmsg(fd, &shorter_msg, flags);
    msg->msg_flags = shorter_msg.msg_flags;
    return n;
  }
  return __real_rc_recvmsg(fd, msg, flags);
}

ssize_t __wrap_rc_send(int fd, const void* buf, size_t len, int flags) {
  if (inject(kEintr)) return fail(EINTR);
  if (inject(kEagain)) return fail(EAGAIN);
  if (len > 1 && inject(kShort)) len = shorter(len);
  return __real_rc_send(fd, buf, len, flags);
}

ssize_t __wrap_rc_sendmsg(int fd, const struct msghdr* msg, int flags) {
  if (inject(kEintr)) return fail(EINTR);
  if (inject(kEagain)) return fail(EAGAIN);
  size_t total = iov_total(msg);
  if (total > 1 && msg->msg_iovlen <= 64 && inject(kShort)) {
    struct iovec cut[64];
    struct msghdr shorter_msg;
    cut_iov(msg, shorter(total), &shorter_msg, cut);
    return __real_rc_sendmsg(fd, &shorter_msg, flags);
  }
  return __real_rc_sendmsg(fd, msg, flags);
}

int __wrap_rc_accept4(int fd, int flags) {
  if (inject(kEintr)) return fail(EINTR);
  if (inject(kEagain)) return fail(EAGAIN);
  return __real_rc_accept4(fd, flags);
}

int __wrap_rc_pselect(int n, fd_set* r, fd_set* w, fd_set* e, struct timespec* t,
                      const sigset_t* mask) {
  if (inject(kEintr)) return fail(EINTR);
  return __real_rc_pselect(n, r, w, e, t, mask);
}

int __wrap_rc_ppoll(struct pollfd* fds, nfds_t n, struct timespec* t, const sigset_t* mask) {
  if (inject(kEintr)) return fail(EINTR);
  return __real_rc_ppoll(fds, n, t, mask);
}

/* Reports one of the n events twice, if there is room. */
static int duplicate_one(struct epoll_event* events, int n, int max) {
  if (n <= 0 || n >= max || !inject(kDup)) return n;
  events[n] = events[next_random() % (uint64_t)n];
  return n + 1;
}

int __wrap_rc_epoll_wait(int epfd, struct epoll_event* events, int max, int timeout) {
  if (inject(kEintr)) return fail(EINTR);
  return duplicate_one(events, __real_rc_epoll_wait(epfd, events, max, timeout), max);
}

int __wrap_rc_epoll_pwait2(int epfd, struct epoll_event* events, int max, struct timespec* t) {
  if (inject(kEintr)) return fail(EINTR);
  return duplicate_one(events, __real_rc_epoll_pwait2(epfd, events, max, t), max);
}

/* For a test that loaded this plugin: the faults injected so far, in the order EINTR,
 * EAGAIN, short transfers, duplicated events. The plugin's one other exported symbol. */
__attribute__((visibility("default"))) void brrr_faults_injected(uint64_t out[4]) {
  for (int k = 0; k < kKinds; k++) out[k] = atomic_load(&injected[k]);
}

__attribute__((destructor)) static void report(void) {
  fprintf(stderr, "brrr faults (%s): %llu EINTR, %llu EAGAIN, %llu short transfers, %llu duplicated events\n",
          FAULTS_BACKEND, (unsigned long long)atomic_load(&injected[kEintr]),
          (unsigned long long)atomic_load(&injected[kEagain]), (unsigned long long)atomic_load(&injected[kShort]),
          (unsigned long long)atomic_load(&injected[kDup]));
}
