// loop_stats.h: every figure an event loop publishes, declared once (see runtime/figures.h),
// and what is made from the list: the snapshot other threads read (LoopStats), the loop's
// published storage (LoopCounters), the sum over loops, and run-time descriptions.
//
//   LoopStats s = loop.stats();           // any thread, no lock
//   total += s;                           // the sum over loops, as each figure's kind says
//   for (const FigureInfo& f : kLoopFigures) ...   // name, kind, unit, help
//   ForEachFigure(s, [](const FigureInfo& f, double value) { ... });   // and ForEachLabel,
//                                                                       // ForEachHistogram
//
// To add a figure: one line in BRRR_LOOP_FIGURES (and, for a Stored one, the loop's store; for a
// Derived one, EventLoop::derive_NAME), then the field in admin.proto's LoopStats: the admin
// plane, brrrctl and the Prometheus exposition follow, and //tests/control:figures_test fails
// until the proto has it. A histogram: one line in BRRR_LOOP_HISTOGRAMS, the loop's LogHistogram
// NAME_ and EventLoop::snapshot_NAME, and a Lateness field of that name in admin.proto.
//
// Threads: LoopStats is a value; LoopCounters is written by the loop thread only.
#ifndef BRRR_RUNTIME_LOOP_STATS_H_
#define BRRR_RUNTIME_LOOP_STATS_H_

#include <cstdint>
#include <string>

#include "runtime/figures.h"
#include "runtime/log_histogram.h"

// F(name, kind, unit, source, help)
#define BRRR_LOOP_FIGURES(F)                                                                              \
  /* Now. */                                                                                              \
  F(ready_queue_depth, Gauge, Count, Stored, "Tasks ready to run: the loop's queue depth.")                \
  F(threadsafe_queue_depth, Gauge, Count, Derived, "Calls from other threads not yet picked up by the loop.") \
  F(pending_timers, Gauge, Count, Stored, "Timers scheduled and not yet run or cancelled.")                 \
  F(live_tasks, Gauge, Count, Stored, "Coroutine tasks created and not yet finished.")                      \
  F(io_in_flight, Gauge, Count, Stored, "I/O operations submitted to the backend and not yet finished.")    \
  F(sockets, Gauge, Count, Derived, "Open sockets (connections and listeners).")                            \
  F(read_set_size, Gauge, Count, Derived, "Sockets with a receive (or accept) pending: the read set.")      \
  F(write_set_size, Gauge, Count, Derived, "Sockets with bytes queued to send: the write set.")             \
  F(receive_buffers, Gauge, Count, Stored,                                                                 \
    "Receive buffers in the loop's pool, mapped as it starts (0: it has none, and receives into heap "     \
    "blocks: a backend without provided buffers, or a pool that could not be made).")                     \
  F(receive_buffers_in_use, Gauge, Count, Stored,                                                          \
    "Pool receive buffers holding received bytes not yet sent on (an idle connection holds none).")       \
  /* Totals since the loop started. */                                                                    \
  F(iterations, Counter, Count, Stored, "Loop iterations (one wait for I/O or timers each).")               \
  F(tasks_run, Counter, Count, Stored, "Tasks (callbacks and coroutine steps) run.")                        \
  F(io_waits, Counter, Count, Stored, "Waits for I/O (io_completions / io_waits = completions per wait).")  \
  F(io_completions, Counter, Count, Stored, "I/O completions handed to their handlers.")                    \
  F(callback_errors, Counter, Count, Stored,                                                              \
    "Exceptions that escaped a task or an I/O handler (each is logged).")                                 \
  F(running, Counter, Seconds, Derived,                                                                    \
    "Time spent running tasks and handling I/O, the task running now included.")                           \
  F(waiting, Counter, Seconds, Derived,                                                                    \
    "Time spent waiting for I/O or timers, the wait in progress included (iterations counts a wait once "   \
    "it has ended).")                                                                                      \
  F(cpu, Counter, Seconds, Derived,                                                                        \
    "CPU time (user and system) of the thread running the loop: its system calls too, which running "      \
    "leaves out where the backend makes them while it waits (io_uring).")                                 \
  F(run_queue_wait, Counter, Seconds, Derived,                                                             \
    "Time the thread running the loop was ready to run but waited for a core (the kernel's run queue): "   \
    "a loop starved of CPU by other threads or processes, or by more loops than cores. 0 where the "        \
    "kernel keeps no schedstats.")                                                                         \
  F(backend_waits, Counter, Count, Stored, "Waits the backend made for its kernel object.")                 \
  F(backend_syscalls, Counter, Count, Stored, "System calls the backend made (waits, submissions, I/O).")   \
  F(backend_submitted, Counter, Count, Stored, "Operations submitted to the backend.")                      \
  F(backend_completed, Counter, Count, Stored, "Completions the backend delivered.")                        \
  F(backend_recv_bundles, Counter, Count, Stored, "Receives that filled several buffers at once (io_uring bundles).") \
  /* Stalls. */                                                                                           \
  F(stall_threshold, Setting, Millis, Derived, "A task running this long is reported as a stall.")          \
  F(stalls, Counter, Count, Derived,                                                                       \
    "Tasks that ran longer than the stall threshold (one still running, once the watchdog has seen it).")  \
  F(longest_task, Max, Millis, Derived, "The longest task so far.")                                          \
  F(current_task_running, Max, Millis, Derived, "How long the task running now has run (0 while waiting).")

// L(name, figure, figure_unit, help)
#define BRRR_LOOP_LABELS(L)                                                            \
  L(longest_task, longest_task, Millis, "The longest task's name or call site.")      \
  L(current_task, current_task_running, Millis, "The task running now; empty while the loop waits.")

// H(name, unit, help)
#define BRRR_LOOP_HISTOGRAMS(H)                                                    \
  H(timer_lateness, Seconds, "How late timers ran after their deadline (loop lag).") \
  H(task_duration, Seconds, "How long each task (a callback or a coroutine step) ran.")

namespace brrr {

// A consistent-enough picture of one loop, taken from any thread without locking the loop (or
// the sum over several loops: see operator+=).
struct LoopStats {
  uint32_t loop_id = 0;
  std::string backend;
  int64_t started_at_ns = 0;  // monotonic clock
  // How many loops were added into this one (operator+=); 0 for one loop's own snapshot.
  uint32_t summed = 0;

  BRRR_LOOP_FIGURES(BRRR_FIGURE_SNAPSHOT_MEMBER)
#define BRRR_LOOP_LABEL_MEMBER(name, figure, figure_unit, help) std::string name;
  BRRR_LOOP_LABELS(BRRR_LOOP_LABEL_MEMBER)
#undef BRRR_LOOP_LABEL_MEMBER
#define BRRR_LOOP_HISTOGRAM_MEMBER(name, unit, help) LogHistogram::Snapshot name;
  BRRR_LOOP_HISTOGRAMS(BRRR_LOOP_HISTOGRAM_MEMBER)
#undef BRRR_LOOP_HISTOGRAM_MEMBER

  // Adds another loop's figures, each as its kind says (counters and gauges summed, the
  // longest task the longest of both with its label, histograms merged, a setting kept while
  // every loop added has the same and 0 once one differs). Sum from an empty LoopStats.
  LoopStats& operator+=(const LoopStats& other);
};

// The figures the loop stores as it goes (the Stored ones); written by the loop thread only.
struct LoopCounters {
  BRRR_LOOP_FIGURES(BRRR_FIGURE_STORAGE)
};

inline constexpr FigureInfo kLoopFigures[] = {BRRR_LOOP_FIGURES(BRRR_FIGURE_INFO)};
inline constexpr LabelInfo kLoopLabels[] = {BRRR_LOOP_LABELS(BRRR_LABEL_INFO)};
inline constexpr HistogramInfo kLoopHistograms[] = {BRRR_LOOP_HISTOGRAMS(BRRR_HISTOGRAM_INFO)};

// Calls fn(const FigureInfo&, double value) for every figure of `s`, in list order, with
// durations in seconds.
template <typename Fn>
void ForEachFigure(const LoopStats& s, Fn&& fn) {
  BRRR_LOOP_FIGURES(BRRR_FIGURE_VISIT)
}

// Calls fn(const LabelInfo&, const std::string& text) for every label of `s`, in list order.
template <typename Fn>
void ForEachLabel(const LoopStats& s, Fn&& fn) {
#define BRRR_VISIT(name, figure, figure_unit, help) fn(::brrr::LabelInfo{#name, #figure, help}, s.name);
  BRRR_LOOP_LABELS(BRRR_VISIT)
#undef BRRR_VISIT
}

// Calls fn(const HistogramInfo&, const LogHistogram::Snapshot&) for every histogram of `s`,
// in list order.
template <typename Fn>
void ForEachHistogram(const LoopStats& s, Fn&& fn) {
#define BRRR_VISIT(name, unit, help) fn(::brrr::HistogramInfo{#name, ::brrr::FigureUnit::k##unit, help}, s.name);
  BRRR_LOOP_HISTOGRAMS(BRRR_VISIT)
#undef BRRR_VISIT
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_LOOP_STATS_H_
