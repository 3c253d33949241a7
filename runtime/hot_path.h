/*
 * hot_path.h: BRRR_HOT_PATH, the mark on a function that a busy loop runs for every message
 * (or every wait): the loop's iteration, the registry's dispatch, a socket's completion, the
 * receiver and sender, the echo connection's callbacks, and in the backend plugins the wait,
 * the receive and the send.
 *
 *   BRRR_HOT_PATH void Sender::push(Chunk&& chunk) { ... }
 *   BRRR_HOT_PATH int rc_run_read(rc_core* core, int fd, rc_slot* slot) { ... }
 *
 * With optimization, g++ and clang put a marked function in .text.hot, and the linker lays
 * all of them out together: 99% of a busy loop's instructions then run in six or seven 4 KiB
 * pages of code (brrr-echo's and its plugin's) instead of fourteen or fifteen, one or two per
 * source file (bench/instructions.sh counts them). Where every entry to the kernel empties the
 * TLB (page-table isolation without PCID, as on the VM of bench/README.md), each page of code
 * the loop runs between two system calls costs a page walk; bench/JOURNAL.md ("The per-message
 * path on six pages of code") has the measurement: up to 1-2% on poll and select.
 *
 * Mark only what runs per message or per wait: a cold function in .text.hot pushes the hot
 * ones apart. g++ leaves the thunk of an override reached through a second base class in
 * .text, a page apart: keep the hot override's interface the first base (Sender's
 * DeferredFlush); Connection's on_sent() still has one. C and C++ (the plugins are C).
 */
#ifndef BRRR_RUNTIME_HOT_PATH_H_
#define BRRR_RUNTIME_HOT_PATH_H_

#define BRRR_HOT_PATH __attribute__((hot))

#endif /* BRRR_RUNTIME_HOT_PATH_H_ */
