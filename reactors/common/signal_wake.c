/* signal_wake.c: see signal_wake.h. */
#include "reactors/common/signal_wake.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "reactors/common/plugin_util.h"
#include "runtime/hot_path.h"

int rc_signal_wake_number(void) { return SIGRTMIN + 4; }

static void on_wake_signal(int sig) { (void)sig; }

static int claimed = -EBUSY; /* set once, by claim_signal */
static pthread_once_t claim_once = PTHREAD_ONCE_INIT;

static void claim_signal(void) {
  const char* setting = getenv("BRRR_WAKE_SIGNAL");
  if (setting != NULL && strcmp(setting, "0") == 0) return;
  struct sigaction old;
  if (sigaction(rc_signal_wake_number(), NULL, &old) != 0) {
    claimed = -errno;
    return;
  }
  if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) return; /* taken: -EBUSY */
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_wake_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  claimed = sigaction(rc_signal_wake_number(), &action, NULL) == 0 ? 0 : -errno;
}

int rc_signal_wake_init(rc_signal_wake* w) {
  pthread_once(&claim_once, claim_signal);
  if (claimed != 0) return claimed;
  atomic_init(&w->pending, 0);
  atomic_init(&w->sleeper, 0);
  w->pid = getpid();
  w->mask_thread = 0;
  sigemptyset(&w->wait_mask);
  return 0;
}

BRRR_HOT_PATH const sigset_t* rc_signal_wake_arm(rc_signal_wake* w) {
  pid_t tid = pu_thread_id();
  if (w->mask_thread != tid) {
    /* First wait on this thread: block the signal here for good, and wait with the mask the
     * thread had, without it. */
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, rc_signal_wake_number());
    sigset_t before;
    if (pthread_sigmask(SIG_BLOCK, &wake, &before) != 0) {
      pu_abort("cannot block the wake-up signal");
    }
    sigdelset(&before, rc_signal_wake_number());
    w->wait_mask = before;
    w->mask_thread = tid;
  }
  atomic_store(&w->sleeper, (int)tid);
  if (atomic_exchange(&w->pending, 0) != 0) return NULL;
  return &w->wait_mask;
}

/* Release, not sequentially consistent (a plain store on x86-64, not an exchange, once per
 * wait): a waker that still reads the thread afterwards only sends a signal too many, which
 * the next wait takes as EINTR and ignores. */
void rc_signal_wake_disarm(rc_signal_wake* w) {
  atomic_store_explicit(&w->sleeper, 0, memory_order_release);
}

int rc_signal_wake_consume(rc_signal_wake* w) { return atomic_exchange(&w->pending, 0) != 0; }

int rc_signal_wake_wake(rc_signal_wake* w) {
  atomic_store(&w->pending, 1);
  int tid = atomic_load(&w->sleeper);
  if (tid == 0) return 0;
  int saved = errno;
  int rc = syscall(SYS_tgkill, w->pid, tid, rc_signal_wake_number()) == 0 ? 0 : -errno;
  errno = saved;
  /* ESRCH: that thread has gone; it no longer waits, and the wake stays pending. */
  return rc == -ESRCH ? 0 : rc;
}
