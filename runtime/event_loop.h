// event_loop.h: one thread's event loop: a queue of ready tasks, timers, cross-thread calls,
// and I/O through a backend plugin.
//
// The tutorial's loop is `while tasks: task = tasks.popleft(); task()`. This one adds what a
// server needs around that, in the order one iteration (run_once) goes:
//
//   1. Wait for I/O, for as long as nothing else can happen: not at all when tasks are ready,
//      else until the next timer is due, else until I/O or a wake-up. I/O completions are
//      handed to their handlers (which usually queue a coroutine to resume); then the work
//      they deferred to the batch's end runs (defer_flush: a socket's queued sends go out in
//      one gathered send). Work deferred by tasks runs as the iteration ends (step 5).
//   2. Calls posted from other threads (call_soon_threadsafe) join the ready queue.
//   3. Due timers run, earliest deadline first; equal deadlines in the order scheduled.
//   4. Tasks that were ready when this step began run, first in first out. What they schedule
//      runs in the next iteration, so a task that reschedules itself cannot starve I/O.
//   5. The work those tasks deferred runs, so that a loop that stops (or a run_once) returns
//      with no send held back.
//
// Every task (ready task or timer) is measured: its run time feeds the statistics (the
// task_duration histogram among them) and the stall detector, and another thread can see how
// long the current one has been running. The loop's stall watchdog (stall_watchdog.h, a thread
// started when the loop first runs) samples the stack of a task that runs past the stall
// threshold, while it still runs.
//
//   auto loop = EventLoop::Create({.backend = "epoll"});
//   (*loop)->call_soon([] { std::puts("hello"); });
//   (*loop)->call_later(std::chrono::milliseconds(10), [&] { (*loop)->stop(); });
//   (*loop)->run_forever();
//
// Coroutines (Task<T>, create_task, sleep, gather...) build on this; see runtime/async.h.
//
// Threads: a loop belongs to the thread that constructed it until run_forever() is called on
// another thread, which takes it over. Loop-thread-only methods check this in debug builds.
// A loop made with options.reactor.one_thread is run by one thread only, the first to run
// it: a second runner aborts with a message (it may still be built and destroyed elsewhere).
// call_soon_threadsafe(), stop(), stats() and stall_detector() may be used from any thread.
#ifndef BRRR_RUNTIME_EVENT_LOOP_H_
#define BRRR_RUNTIME_EVENT_LOOP_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/buffer_pool.h"
#include "runtime/callback.h"
#include "runtime/clock.h"
#include "runtime/current_task.h"
#include "runtime/deferred_flush.h"
#include "runtime/io_registry.h"
#include "runtime/log_histogram.h"
#include "runtime/loop_stats.h"
#include "runtime/loop_time.h"
#include "runtime/manual_clock.h"
#include "runtime/reactor.h"
#include "runtime/ready_queue.h"
#include "runtime/single_writer.h"
#include "runtime/socket_table.h"
#include "runtime/stack_sampler.h"
#include "runtime/stall_detector.h"
#include "runtime/stall_watchdog.h"
#include "runtime/task_clock.h"
#include "runtime/task_label.h"
#include "runtime/thread_cpu_clock.h"
#include "runtime/thread_owner.h"
#include "runtime/threadsafe_queue.h"
#include "runtime/timer_queue.h"

namespace brrr {

class BlockingPool;
class EventLoop;
class FutureBase;
class TaskContext;

struct EventLoopOptions {
  // A backend name ("epoll"), a plugin path, or "auto" (see PluginLoader).
  std::string backend = "auto";
  // With "auto": backends to pass over without trying them, by name, each with the reason
  // backends_passed_over() gives for it (PluginLoader::AutoSkip).
  std::map<std::string, std::string, std::less<>> auto_skip;
  // Searched before the default plugin directories when not empty.
  std::string plugin_dir;
  // Names this loop in statistics and stall reports.
  uint32_t loop_id = 0;
  // A task that runs at least this long is reported as a stall.
  Duration stall_threshold = std::chrono::milliseconds(100);
  // Receives printed stall reports; empty: stderr.
  StallDetector::Sink stall_sink;
  // Sample where a task running past the stall threshold is, while it runs (a watchdog
  // thread per loop that signals the loop thread with SIGRTMIN+3: stall_watchdog.h). Off on
  // a ManualClock, whose virtual time a watchdog cannot follow.
  bool stall_watchdog = true;
  // Threads for run_blocking(), started on first use.
  size_t blocking_threads = 4;
  // The receive buffer pool lent to the backend (see receive_buffers()).
  uint32_t receive_buffer_size = 16384;
  uint32_t receive_buffer_count = 1024;  // 1 to kMaxProvidedBuffers (runtime/reactor.h)
  // Map and fault in that pool as the loop first runs, on its thread, before its first task
  // (instead of at its first receive): the cost, tens of ms and a few hundred on a loaded
  // machine, is then paid before the loop serves anything and outside any task, so that it is
  // no stall.
  bool receive_buffers_at_first_run = false;
  // Idle polling: when the loop runs out of work, it asks the backend for new events without
  // waiting, again and again, for up to this long (or until the next timer is due), and only
  // then sleeps in the kernel. An event that arrives meanwhile is served without the sleep and
  // the wake-up (two context switches, and an interrupt to the loop's core), which at low load
  // are most of a message's round trip; the price is the loop's core kept busy (100% of it
  // while events keep coming within the window). The polling counts as waiting in the loop's
  // statistics (waiting_ns), each poll as a backend wait. Zero (the default): sleep at once. At
  // most kMaxIdlePoll; ignored on a ManualClock (virtual time cannot time the window).
  Duration idle_poll = Duration::zero();
  static constexpr Duration kMaxIdlePoll = std::chrono::milliseconds(10);
  // The backend's settings; reactor.one_thread when one thread runs the loop for its life.
  ReactorConfig reactor;
  // Tests: virtual time instead of the monotonic clock (see manual_clock.h). Not owned; it
  // must outlive the loop.
  ManualClock* manual_clock = nullptr;
};

// A scheduled timer. Copyable; cancelling one that already ran or was cancelled is a no-op.
class TimerHandle {
 public:
  TimerHandle() = default;
  TimerHandle(EventLoop* loop, TimerId id) : loop_(loop), id_(id) {}

  // Loop thread only. True if the timer was pending and will now never run.
  bool cancel();
  bool pending() const;

 private:
  EventLoop* loop_ = nullptr;
  TimerId id_;
};

// Page-aligned: the fields a busy loop reads per wait (its queues, registry, deferred flushes,
// batch time and counters) then lie on the object's first page, wherever the heap put it; on a
// machine where each system call empties the TLB every page between two calls costs a walk
// (hot_path.h; bench/JOURNAL.md, nineteenth run).
class alignas(4096) EventLoop {
 public:
  // Loads and starts the backend named in `options`, then builds a loop on it.
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(EventLoopOptions options = {});

  EventLoop(std::unique_ptr<Reactor> reactor, EventLoopOptions options);
  // Waits for run_blocking() work already running (refusing what it posts back; pool work not
  // yet started is dropped), then destroys unfinished coroutine tasks (their awaits release
  // timers and I/O; a frame whose locals that work used outlives it), then drops queued work
  // (timers, then ready work) without running it.
  //
  // What the destructors of what it drops do to the loop, on the destroying thread: call_soon,
  // call_later and create_task work, and what they schedule is dropped in turn (a task made then
  // is destroyed unfinished, its future cancelled), until nothing is left; call_soon_threadsafe
  // returns false; run_blocking work is dropped unrun, as the pool's queued work (the pool has
  // shut down and starts no thread), and its task is destroyed unfinished with the others;
  // run_forever and run_once (and run_until_complete of a future not done) abort with a
  // message, as running a loop that is already running does.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // The loop running on this thread (inside run_forever/run_until_complete), else nullptr.
  static EventLoop* current();

  // ---- Scheduling: loop thread. ----
  void call_soon(Callback fn, TaskLabel label = std::source_location::current());
  // A delay past the clock's range (Duration::max()) makes a timer that never comes due. A
  // deadline already passed is due at once; one before the clock's start (TimePoint::min(),
  // Duration::min()) counts as the clock's start, in order with the others scheduled there.
  TimerHandle call_later(Duration delay, Callback fn,
                         TaskLabel label = std::source_location::current());
  TimerHandle call_at(TimePoint when, Callback fn,
                      TaskLabel label = std::source_location::current());

  // ---- Any thread. ----
  // Queues fn and wakes the loop. False (fn dropped) once the loop has finished (finish()) or
  // is being destroyed.
  bool call_soon_threadsafe(Callback fn, TaskLabel label = std::source_location::current());
  // Whether finish() has been called: the loop will not run again.
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  // Ends the loop's run after its current iteration: run_forever() returns, and so does
  // run_until_complete(), its future perhaps still pending. Made while the loop is not running
  // (another thread may stop a loop that has not started yet), it ends the next run as asyncio's
  // does: that run goes through one iteration, in which it polls for I/O without waiting and
  // runs the timers due and the tasks ready, then returns. A stop is spent by the run it ends, or
  // by a run_once() it comes before or during: it never ends a later run.
  void stop();
  // Loop thread: stop() once no socket is still closing (closed while an operation was in
  // flight, its descriptor waits for the backend to let go): what its close sends, an end of
  // stream or a reset, then goes out now, not when the loop is destroyed, which may be much
  // later (a server destroys its loops once all have stopped). Stops anyway after `limit`.
  void stop_once_sockets_closed(Duration limit = std::chrono::seconds(1));

  // ---- Running: the calling thread becomes the loop's thread. ----
  // Each aborts with a message when the loop is already running (run from one of its own
  // tasks, or from a second thread).
  void run_forever();
  // Runs until `future` is done, or until stopped (stop()): it then returns with the future
  // still pending, which the caller sees in future.done(); the Task<T> form
  // (runtime/create_task.h) throws. A future left pending by a run that stopped early does not
  // stop a later run.
  void run_until_complete(FutureBase& future);
  // One iteration; returns after at most `max_wait` of waiting for I/O. Mostly for tests. It
  // spends a pending stop().
  void run_once(Duration max_wait);
  bool is_running() const { return running_.load(std::memory_order_relaxed); }
  // The loop's thread, once run_forever() has returned for the last time: says the loop will
  // not run again. Other threads' calls then get false from call_soon_threadsafe() instead of
  // waiting for a loop that is gone, and the ones posted before finish() run here, in order
  // (a server's loop that has drained still answers the admin plane's questions: no sockets).
  void finish();

  // ---- Introspection: any thread. ----
  LoopStats stats() const;
  StallDetector& stall_detector() { return stall_detector_; }
  // The stall watchdog (its thread starts when the loop first runs), or null when off.
  const StallWatchdog* stall_watchdog() const { return watchdog_.get(); }
  uint32_t loop_id() const { return options_.loop_id; }
  const std::string& backend() const { return backend_name_; }
  // With backend "auto" (EventLoopOptions::backend): why each backend auto tries before this
  // one was passed over here (PluginLoader::CreateReactor), for the program to say so. Empty
  // otherwise.
  const std::vector<std::string>& backends_passed_over() const { return backends_passed_over_; }
  // Loop thread: every open socket of this loop, as the admin plane's ListSockets shows them.
  std::vector<SocketInfo> socket_infos() const { return sockets_.list(now_ns()); }
  // Whether the backend can watch descriptor `fd` (select(2) stops below FD_SETSIZE).
  bool can_watch(int fd) const { return max_fd_ < 0 || fd <= max_fd_; }
  // The highest descriptor the backend can watch, or -1 for no limit.
  int max_fd() const { return max_fd_; }
  bool in_loop_thread() const { return owner_.is_current(); }

  // The loop's clock: the monotonic clock, or its ManualClock. Any thread.
  TimePoint now() const { return FromNanos(now_ns()); }
  int64_t now_ns() const { return manual_clock_ != nullptr ? manual_clock_->now_ns() : MonotonicNanos(); }
  // Loop thread: now_ns() as the loop last came back from waiting for I/O (before the loop's
  // first wait: its creation). Every completion of a batch is handed out at about that time,
  // so bookkeeping that tolerates a batch's age (an idle timeout) reads this instead of the
  // clock, as libuv's uv_now(): one clock read per batch, not one per message.
  int64_t io_batch_time_ns() const { return io_batch_time_ns_; }
  // Loop thread: maps and faults in the receive-buffer pool now (a fixed cost of the loop)
  // instead of at the first receive (EventLoopOptions::receive_buffers_at_first_run does it as
  // the loop first runs).
  void reserve_receive_buffers() { receive_buffers(); }

 private:
  // The runtime's own layers reach what follows through runtime/internal/loop_internals.h.
  friend class LoopInternals;
  friend class TimerHandle;
  // stop_once_sockets_closed's look, again every millisecond until `until_ns`.
  void stop_when_sockets_closed(int64_t until_ns);
  // The pool for run_blocking(), made on first use; shut down (refusing) once destruction began.
  BlockingPool& blocking_pool();
  // The destructor's: unfinished tasks, timers and ready work, and what their destructors schedule.
  void drop_unfinished_work();
  BufferPool* receive_buffers();
  bool cancel_timer(TimerId id);
  bool timer_pending(TimerId id) const;
  void register_task(TaskContext* task);
  void unregister_task(TaskContext* task);

  void run_iteration(int64_t max_wait_ns);
  int64_t wait_timeout_ns(int64_t cap_ns);
  // On an auto-advancing ManualClock: nothing left to do but wait for the next timer.
  bool idle_in_virtual_time() const;
  // Anchors task_clock_ as the wait ends (io_batch_time_ns_); the time it took is the loop's
  // waiting (time_).
  void wait_for_io(int64_t timeout_ns);
  // The backend's wait, after idle polling (EventLoopOptions::idle_poll) when it may sleep.
  absl::StatusOr<int> poll_then_wait(int64_t timeout_ns);
  // Both take the time their first task starts and return when their last task ended.
  int64_t run_due_timers(int64_t t);
  int64_t run_ready(int64_t t);
  // Runs one task that started at start_ns; returns when it ended.
  int64_t run_task(Callback& fn, const TaskLabel& label, int64_t start_ns);
  // The sends (and other work) deferred to the end of a batch (DeferredFlushList).
  void run_deferred_flushes();
  // In a catch block: counts the exception (callback_errors) and prints it with `where` it
  // escaped from. The loop goes on: what threw may be left stuck, but nothing else is.
  void report_escaped_exception(std::string_view where);
  void publish_ready_depth() { published_.ready_queue_depth.store(ready_.size()); }
  // The watchdog, unless the options turn it off or its signal is taken.
  std::unique_ptr<StallWatchdog> MakeWatchdog();
  // With options_.reactor.one_thread: records the first runner, aborts for any other.
  void check_one_runner();
  // Marks the loop running, or aborts (with `how`, the run_* called) if it already is.
  void begin_run(const char* how);
  // The Derived figures of BRRR_LOOP_FIGURES: each fills its figure (and its label) in `s`.
  void derive_threadsafe_queue_depth(LoopStats& s) const;
  void derive_sockets(LoopStats& s) const;
  void derive_read_set_size(LoopStats& s) const;
  void derive_write_set_size(LoopStats& s) const;
  void derive_stall_threshold(LoopStats& s) const;
  void derive_stalls(LoopStats& s) const;
  void derive_longest_task(LoopStats& s) const;
  void derive_current_task_running(LoopStats& s) const;
  void derive_cpu(LoopStats& s) const;
  void derive_run_queue_wait(LoopStats& s) const;
  void derive_running(LoopStats& s) const;
  void derive_waiting(LoopStats& s) const;
  // The histograms of BRRR_LOOP_HISTOGRAMS, one snapshot_NAME each.
  LogHistogram::Snapshot snapshot_timer_lateness() const;
  LogHistogram::Snapshot snapshot_task_duration() const;

  EventLoopOptions options_;
  ManualClock* const manual_clock_;
  uint64_t manual_clock_waker_ = 0;
  int64_t auto_advance_to_ns_ = 0;  // the next timer, when this iteration may jump to it
  // Held here, not behind a pointer: the loop's first page then holds the calls a busy loop
  // makes into the backend per message (recycle_buffer, try_send, submit), where a Reactor of
  // its own lay wherever the heap put it, a page that one backend's layout shared with other
  // hot data and another's did not (bench/JOURNAL.md, twenty-first run). Empty once destroyed.
  std::optional<Reactor> reactor_;
  const std::string backend_name_;
  const int max_fd_;
  ThreadOwner owner_;
  std::thread::id one_runner_;  // with options_.reactor.one_thread, once it has run
  ReadyQueue ready_;
  TimerQueue timers_;
  ThreadsafeQueue inbox_;
  IoRegistry io_;
  SocketTable sockets_;
  DeferredFlushList flushes_;
  StallDetector stall_detector_;
  std::unique_ptr<BlockingPool> blocking_pool_;
  bool destroying_ = false;                      // from the destructor's start: no run, and blocking_pool() refuses
  std::unique_ptr<BufferPool> receive_buffers_;  // outlives reactor_ (the backend borrows it)
  bool receive_buffers_tried_ = false;
  TaskContext* tasks_head_ = nullptr;  // intrusive list of live coroutine tasks
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};
  std::atomic<bool> finished_{false};
  TaskClock task_clock_;
  const int64_t started_at_ns_;
  int64_t io_batch_time_ns_;

  // Published for other threads (see runtime/loop_stats.h): the Stored figures, and what the
  // Derived ones need beyond other components' own counters.
  LoopCounters published_;
  LoopTime time_;  // the `running` and `waiting` figures, written a few times per iteration
  SingleWriter<int64_t> longest_task_ns_;
  SingleWriter<const char*> longest_name_;
  SingleWriter<std::source_location> longest_where_;
  CurrentTask current_;
  // What the backend's wait() fills. After the fields a busy loop reads per wait (above) and
  // before the large ones it seldom reads (below): the loop's own state and a batch's first
  // completions then lie on one or two pages of memory, not three (runtime/hot_path.h).
  std::array<Completion, 256> completions_;
  // The histograms of BRRR_LOOP_HISTOGRAMS, each NAME recorded into NAME_. Task durations
  // under 1 us are not counted per task but from tasks_run (record_counted_elsewhere).
  LogHistogram timer_lateness_;
  LogHistogram task_duration_;
  std::vector<std::string> backends_passed_over_;  // set by Create, then constant; off the hot pages
  ThreadCpuClock cpu_;                             // the runner's CPU time (the `cpu` figure)

  // Declared last, so destroyed first: the watchdog reads the figures above.
  StackSampler sampler_;
  std::unique_ptr<StallWatchdog> watchdog_;  // reset first in the destructor
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_EVENT_LOOP_H_
