/*
 * signal_wake.h: the cross-thread wake-up of a wait that scans its descriptors (poll, select),
 * made with a signal instead of a descriptor of its own.
 *
 * poll(2) and select(2) register on every watched descriptor's wait queue and look at each
 * one again on every call, so a wake-up eventfd in the set costs each wait a descriptor's
 * work: at one connection it is one descriptor in three, 3-5% of poll's CPU per message
 * (bench/JOURNAL.md, tenth run). Instead the wait runs with the wake signal (SIGRTMIN+4)
 * blocked except during the kernel wait itself, which ppoll and pselect unblock atomically;
 * a waker sets `pending` and, if a thread is (about to be) asleep, sends it the signal,
 * which ends the wait with EINTR. The signal's handler does nothing.
 *
 *   rc_signal_wake w;
 *   if (rc_signal_wake_init(&w) != 0) { ... use an eventfd instead ... }
 *   // loop thread, around a blocking wait:
 *   const sigset_t* mask = rc_signal_wake_arm(&w);   // NULL: a wake is pending, do not block
 *   int n = ppoll(fds, count, mask ? timeout : &zero, mask);
 *   rc_signal_wake_disarm(&w);
 *   if (n < 0 && errno == EINTR && (mask == NULL || rc_signal_wake_consume(&w))) { ... woken ... }
 *   // any thread:
 *   rc_signal_wake_wake(&w);
 *
 * A wake is never lost: the sleeper publishes its thread before it looks at `pending`, the
 * waker publishes `pending` before it looks for a sleeper (both sequentially consistent), so
 * either the wait sees the wake before it blocks or the waker signals a thread that has the
 * signal blocked until its wait unblocks it. Like the eventfd it replaces, a wake that finds no
 * waiter stays pending and ends the next wait at once.
 *
 * The process's handler for the signal is installed once, by the first init, and stays: a
 * plugin that links this is never unloaded (-z nodelete, reactors/BUILD), so the handler's code
 * outlives dlclose. init fails with -EBUSY (the caller falls back to an eventfd) when the
 * signal is not at its default action (another program's handler, an ignored signal, or another
 * plugin's copy of this file: of poll and select loaded together, the second uses an eventfd),
 * or when BRRR_WAKE_SIGNAL=0 is in the environment. A thread's wait mask is the mask it had at
 * its first wait, without the wake signal, which stays blocked in that thread from then on.
 * A waker that read a sleeper just before it woke may signal that thread once it no longer
 * waits: the next wait then starts with EINTR and waits again (rc_signal_wake_consume says it
 * was no wake).
 *
 * Threads: init, arm, disarm and consume on the thread that waits (one at a time); wake from
 * any thread, async-signal-safe. Ownership: plain data, no resources.
 */
#ifndef BRRR_REACTORS_COMMON_SIGNAL_WAKE_H_
#define BRRR_REACTORS_COMMON_SIGNAL_WAKE_H_

#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>

typedef struct rc_signal_wake {
  atomic_int pending; /* woken since a wait last consumed it */
  atomic_int sleeper; /* the thread (tid) between arm and disarm, 0 when none */
  pid_t pid;          /* this process, for tgkill */
  pid_t mask_thread;  /* the thread wait_mask was made for, 0 when none yet */
  sigset_t wait_mask; /* that thread's mask without the wake signal */
} rc_signal_wake;

/* The wake signal: SIGRTMIN + 4 (SIGRTMIN + 3 is the stall sampler's, runtime/stack_sampler.h). */
int rc_signal_wake_number(void);

/* Claims the wake signal for this process (the first call installs its handler) and clears *w:
 * 0, or -EBUSY when the signal is taken or BRRR_WAKE_SIGNAL=0, or -errno. */
int rc_signal_wake_init(rc_signal_wake* w);

/* Waiting thread, just before a wait that may block: the mask to wait with (ppoll, pselect),
 * or NULL when a wake is pending (consumed now): then wait without blocking. */
const sigset_t* rc_signal_wake_arm(rc_signal_wake* w);

/* Waiting thread, after that wait returned (whatever it returned). */
void rc_signal_wake_disarm(rc_signal_wake* w);

/* Waiting thread, after a wait ended with EINTR: 1 when a wake ended it (consumed now), 0 for
 * any other signal (wait again). */
int rc_signal_wake_consume(rc_signal_wake* w);

/* Any thread, async-signal-safe: ends the current or the next wait. 0 or -errno. */
int rc_signal_wake_wake(rc_signal_wake* w);

#endif /* BRRR_REACTORS_COMMON_SIGNAL_WAKE_H_ */
