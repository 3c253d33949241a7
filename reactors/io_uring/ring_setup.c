/* ring_setup.c: setting up the ring (dropping setup flags the kernel does not know, shrinking
 * under RLIMIT_MEMLOCK) and probing the kernel's features. See io_uring_reactor.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "reactors/common/plugin_util.h"
#include "reactors/io_uring/io_uring_internal.h"

#define UR_DEFAULT_DEPTH 256u
#define UR_MIN_DEPTH 8u
#define UR_MAX_DEPTH 4096u

/* On -ENOMEM: halve the ring down to this, then pause 5, 10, 20, 40, 80 ms. */
#define UR_ENOMEM_MIN_DEPTH 32u
#define UR_ENOMEM_RETRIES 5
#define UR_ENOMEM_FIRST_PAUSE_NS 5000000L

/* Why io_uring_queue_init failed, when we can tell. */
static const char* explain_setup_error(int error, char* buf, size_t size) {
  switch (error) {
    case -EPERM: {
      FILE* f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
      int value = -1;
      if (f != NULL) {
        if (fscanf(f, "%d", &value) != 1) value = -1;
        fclose(f);
      }
      if (value == 2) {
        snprintf(buf, size, "io_uring is disabled: sysctl kernel.io_uring_disabled=2");
      } else if (value == 1) {
        snprintf(buf, size,
                 "io_uring is restricted to CAP_SYS_ADMIN and kernel.io_uring_group: sysctl "
                 "kernel.io_uring_disabled=1, or blocked by seccomp/container policy");
      } else if (value == 0) {
        snprintf(buf, size,
                 "sysctl kernel.io_uring_disabled=0, so blocked by seccomp/container policy");
      } else {
        snprintf(buf, size,
                 "io_uring is disabled: sysctl kernel.io_uring_disabled=N, or blocked by "
                 "seccomp/container policy");
      }
      return buf;
    }
    case -ENOSYS:
      return "the kernel has no io_uring (or seccomp blocks it)";
    case -ENOMEM: {
      struct rlimit limit;
      if (getrlimit(RLIMIT_MEMLOCK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        snprintf(buf, size,
                 "the rings' locked memory exceeds RLIMIT_MEMLOCK (ulimit -l: %llu KiB, shared "
                 "by all of this user's rings; closed rings are released asynchronously), or "
                 "out of memory",
                 (unsigned long long)(limit.rlim_cur / 1024));
        return buf;
      }
      return "out of memory";
    }
    case -EMFILE:
    case -ENFILE:
      return "out of file descriptors";
    case -EINVAL:
      return "the kernel rejected the ring parameters";
    default:
      return NULL;
  }
}

/* UR_ONE_THREAD_ENV=0: the ring of a reactor that may change threads, even for one that
 * will not, to compare or to test. */
static int one_thread_turned_off(void) {
  const char* value = getenv(UR_ONE_THREAD_ENV);
  return value != NULL && strcmp(value, "0") == 0;
}

/* io_uring_queue_init with `entries`, dropping optional setup flags the kernel does not know
 * (newest first); the one-thread flags only when `one_thread`. 0 or -errno. */
static int init_ring(brrr_reactor* r, uint32_t entries, int one_thread) {
  static const uint32_t kOneThread =
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED; /* 6.1 */
  static const uint32_t kAttempts[] = {
      kOneThread | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE, /* 5.19 */
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,                             /* 5.18 */
      IORING_SETUP_CQSIZE,                                                       /* 5.5 */
      0,
  };
  int rc = -EINVAL;
  for (size_t i = one_thread ? 0 : 1; i < sizeof kAttempts / sizeof kAttempts[0]; i++) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = kAttempts[i];
    if (params.flags & IORING_SETUP_CQSIZE) params.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &r->ring, &params);
    if (rc == 0) r->one_thread_ring = (params.flags & IORING_SETUP_SINGLE_ISSUER) != 0;
    if (rc != -EINVAL) break;
  }
  r->ring_enabled = !r->one_thread_ring;
  return rc;
}

/* Sets up the ring. -ENOMEM usually means RLIMIT_MEMLOCK: without CAP_IPC_LOCK the rings
 * count against it, per user and across processes, and the kernel releases a closed ring's
 * share asynchronously. So on -ENOMEM: smaller rings (the SQ only holds what is queued
 * between two waits; a CQ overflow is kept by the kernel), then a few short pauses. */
static int setup_ring(brrr_reactor* r, uint32_t depth, int one_thread, char* err,
                      size_t err_size) {
  uint32_t entries = depth;
  int rc = init_ring(r, entries, one_thread);
  while (rc == -ENOMEM && entries > UR_ENOMEM_MIN_DEPTH) {
    entries /= 2;
    if (entries < UR_ENOMEM_MIN_DEPTH) entries = UR_ENOMEM_MIN_DEPTH;
    rc = init_ring(r, entries, one_thread);
  }
  for (int i = 0; rc == -ENOMEM && i < UR_ENOMEM_RETRIES; i++) {
    struct timespec pause = {0, (long)(UR_ENOMEM_FIRST_PAUSE_NS << i)};
    nanosleep(&pause, NULL);
    rc = init_ring(r, entries, one_thread);
  }
  if (rc != 0) {
    char why[256];
    return pu_fail(err, err_size, "io_uring_queue_init", rc,
                   explain_setup_error(rc, why, sizeof why));
  }
  r->ring_ready = 1;
  return 0;
}

/* UR_BUNDLES_ENV=0: the per-buffer receives of kernels before 6.10, to compare or to test. */
static int bundles_turned_off(void) {
  const char* value = getenv(UR_BUNDLES_ENV);
  return value != NULL && strcmp(value, "0") == 0;
}

static int probe_features(brrr_reactor* r, char* err, size_t err_size) {
  struct io_uring_probe* probe = io_uring_get_probe_ring(&r->ring);
  if (probe == NULL) {
    return pu_fail(err, err_size, "io_uring_register(IORING_REGISTER_PROBE)", -ENOTSUP,
                   "the kernel is older than 5.6: its io_uring lacks IORING_OP_SEND and "
                   "IORING_OP_RECV");
  }
  static const struct {
    int op;
    const char* name;
  } kRequired[] = {
      {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},   {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
      {IORING_OP_SEND, "IORING_OP_SEND"},       {IORING_OP_RECV, "IORING_OP_RECV"},
      {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"}, {IORING_OP_READ, "IORING_OP_READ"},
      {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
  };
  for (size_t i = 0; i < sizeof kRequired / sizeof kRequired[0]; i++) {
    if (!io_uring_opcode_supported(probe, kRequired[i].op)) {
      io_uring_free_probe(probe);
      char what[128];
      snprintf(what, sizeof what, "io_uring probe: %s", kRequired[i].name);
      return pu_fail(err, err_size, what, -ENOTSUP, "the kernel is too old; Linux 5.6 or later");
    }
  }
  /* Features without an opcode of their own, dated by opcodes of the same release. */
  r->ms_accept = (uint8_t)io_uring_opcode_supported(probe, IORING_OP_SOCKET);   /* 5.19 */
  r->cancel_any = (uint8_t)io_uring_opcode_supported(probe, IORING_OP_SOCKET);  /* 5.19 */
  r->ms_recv = (uint8_t)io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);    /* 6.0 */
  io_uring_free_probe(probe);
  r->cqe_skip = (r->ring.features & IORING_FEAT_CQE_SKIP) != 0; /* 5.17 */
  r->buf_ring_ok = (uint8_t)ur_buf_ring_supported(r);
  r->bundles = r->ms_recv && r->buf_ring_ok &&
               (r->ring.features & IORING_FEAT_RECVSEND_BUNDLE) != 0 && !bundles_turned_off();
  r->recv_cap = r->bundles; /* no flag says a kernel takes it: the first receive finds out */
  return 0;
}

static uint32_t config_depth(const brrr_reactor_config* config) {
  uint32_t depth = 0;
  if (config != NULL &&
      config->struct_size >= offsetof(brrr_reactor_config, queue_depth) + sizeof(uint32_t)) {
    depth = config->queue_depth;
  }
  if (depth == 0) depth = UR_DEFAULT_DEPTH;
  if (depth < UR_MIN_DEPTH) depth = UR_MIN_DEPTH;
  if (depth > UR_MAX_DEPTH) depth = UR_MAX_DEPTH;
  return depth;
}

/* The runtime promised one thread (BRRR_REACTOR_ONE_THREAD) and the environment does not
 * turn the one-thread ring off. */
static int wants_one_thread(const brrr_reactor_config* config) {
  if (config == NULL ||
      config->struct_size < offsetof(brrr_reactor_config, flags) + sizeof(uint32_t)) {
    return 0;
  }
  return (config->flags & BRRR_REACTOR_ONE_THREAD) != 0 && !one_thread_turned_off();
}

int ur_open_ring(brrr_reactor* r, const brrr_reactor_config* config, char* err,
                 size_t err_size) {
  int rc = setup_ring(r, config_depth(config), wants_one_thread(config), err, err_size);
  return rc == 0 ? probe_features(r, err, err_size) : rc;
}

int ur_claim_ring(brrr_reactor* r) {
  if (r->ring_enabled) return 0;
  r->counters.syscalls++;
  /* Debian's liburing.so.2 (2.3) declares io_uring_enable_rings() but does not export it. */
  if (syscall(__NR_io_uring_register, r->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) <
      0) {
    return -errno;
  }
  r->ring_enabled = 1;
  r->issuer = pu_thread_id();
  return 0;
}

int ur_may_enter(const brrr_reactor* r) {
  if (!r->ring_enabled) return 0;
  /* The kernel's thread, not a pthread_t: a thread made after the issuer ended may have its
   * pthread_t, and the kernel would refuse it (EEXIST). */
  return !r->one_thread_ring || pu_thread_id() == r->issuer;
}
