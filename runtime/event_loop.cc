#include "runtime/event_loop.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "runtime/blocking_pool.h"
#include "runtime/future.h"
#include "runtime/hot_path.h"
#include "runtime/line_output.h"
#include "runtime/plugin_loader.h"
#include "runtime/task_context.h"

namespace brrr {
namespace {

thread_local EventLoop* t_current_loop = nullptr;

// Sets the thread's current loop for a scope, restoring the previous one (loops may nest
// only across threads, but run_until_complete inside a callback must not corrupt it).
class CurrentLoopScope {
 public:
  explicit CurrentLoopScope(EventLoop* loop) : previous_(t_current_loop) { t_current_loop = loop; }
  ~CurrentLoopScope() { t_current_loop = previous_; }

 private:
  EventLoop* previous_;
};

constexpr int64_t kNoTimeout = -1;

}  // namespace

bool TimerHandle::cancel() { return loop_ != nullptr && loop_->cancel_timer(id_); }
bool TimerHandle::pending() const { return loop_ != nullptr && loop_->timer_pending(id_); }

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(EventLoopOptions options) {
  if (options.idle_poll < Duration::zero() || options.idle_poll > EventLoopOptions::kMaxIdlePoll) {
    auto us = [](Duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
    return absl::InvalidArgumentError(absl::StrCat("idle_poll must be from 0 to ", us(EventLoopOptions::kMaxIdlePoll),
                                                   " us, not ", us(options.idle_poll), " us"));
  }
  PluginLoader loader = PluginLoader::Default(options.plugin_dir);
  std::vector<std::string> passed_over;
  auto reactor = loader.CreateReactor(options.backend, options.reactor, &passed_over, options.auto_skip);
  if (!reactor.ok()) return reactor.status();
  auto loop = std::make_unique<EventLoop>(*std::move(reactor), std::move(options));
  loop->backends_passed_over_ = std::move(passed_over);
  return loop;
}

EventLoop::EventLoop(std::unique_ptr<Reactor> reactor, EventLoopOptions options)
    : options_(std::move(options)),
      manual_clock_(options_.manual_clock),
      reactor_(std::move(*reactor)),
      backend_name_(reactor_->name()),
      max_fd_(reactor_->plugin().max_fd()),
      inbox_([this] { reactor_->wake(); }),
      stall_detector_(options_.loop_id, options_.stall_threshold.count(), options_.stall_sink),
      task_clock_(manual_clock_),
      started_at_ns_(now_ns()),
      io_batch_time_ns_(started_at_ns_),
      watchdog_(MakeWatchdog()) {
  // Virtual time moved: a timer may be due now.
  if (manual_clock_ != nullptr) manual_clock_waker_ = manual_clock_->attach([this] { reactor_->wake(); });
}

EventLoop::~EventLoop() {
  // Destruction is exclusive: whoever destroys the loop (often the thread that joined its
  // runner) owns it now.
  owner_.bind_to_current_thread();
  CurrentLoopScope scope(this);
  destroying_ = true;  // a run from here on aborts (begin_run); the pool refuses (blocking_pool)
  watchdog_.reset();   // first: it reads the current task, the figures and the detector
  if (manual_clock_ != nullptr) manual_clock_->detach(manual_clock_waker_);
  // No more posts from other threads; then let pool work already running finish (a thread
  // cannot be interrupted) while nothing it posts is accepted.
  inbox_.close();
  // Shut down, not reset: what reaches the pool from here on (a dropped job's capture whose
  // destructor awaits run_blocking) finds it refusing, not a null pointer that would make a new
  // pool, with threads, during the loop's destruction.
  if (blocking_pool_ != nullptr) blocking_pool_->shut_down();
  // The backend next: it cancels every operation and returns once the kernel will touch no
  // buffer again (io_uring writes into them asynchronously), so the coroutine frames and
  // sockets that own those buffers can then be freed safely.
  reactor_.reset();
  if (receive_buffers_) receive_buffers_->detach_reactor();
  drop_unfinished_work();
  // Sockets closed while operations were in flight: no completion will come for them now.
  sockets_.finish_closing_at_shutdown();
}

void EventLoop::drop_unfinished_work() {
  // Unfinished tasks first: destroying their frames runs their awaits' destructors, which
  // release timers and close sockets (directly, now that the backend is gone). Then the timers
  // and the ready queue, without running them. What any of these destructors schedules
  // (call_soon, call_later, create_task) is dropped in turn, until nothing is left: none of it
  // outlives the loop, or meets it half destroyed.
  for (;;) {
    if (tasks_head_ != nullptr) {
      tasks_head_->destroy_unfinished();
    } else if (timers_.size() != 0) {
      timers_.clear();
    } else if (!ready_.empty()) {
      ready_.clear();
    } else {
      break;
    }
  }
}

EventLoop* EventLoop::current() { return t_current_loop; }

void EventLoop::call_soon(Callback fn, TaskLabel label) {
  owner_.check("EventLoop::call_soon");
  ready_.push(ReadyTask{std::move(fn), label});
  publish_ready_depth();
}

TimerHandle EventLoop::call_later(Duration delay, Callback fn, TaskLabel label) {
  return call_at(FromNanos(DeadlineAfter(now_ns(), delay)), std::move(fn), label);
}

TimerHandle EventLoop::call_at(TimePoint when, Callback fn, TaskLabel label) {
  owner_.check("EventLoop::call_at");
  // A time before the clock's start is its start: due at once, and every difference the loop
  // takes with a deadline (its wait, the timer's lateness) stays within the clock's range.
  TimerId id = timers_.schedule(std::max<int64_t>(0, ToNanos(when)), std::move(fn), label);
  published_.pending_timers.store(timers_.size());
  return TimerHandle(this, id);
}

bool EventLoop::cancel_timer(TimerId id) {
  owner_.check("TimerHandle::cancel");
  bool cancelled = timers_.cancel(id);
  published_.pending_timers.store(timers_.size());
  return cancelled;
}

bool EventLoop::timer_pending(TimerId id) const { return timers_.is_pending(id); }

bool EventLoop::call_soon_threadsafe(Callback fn, TaskLabel label) {
  return inbox_.push(ReadyTask{std::move(fn), label});
}

void EventLoop::finish() {
  owner_.check("EventLoop::finish");
  std::vector<ReadyTask> posted = inbox_.close_and_take();
  finished_.store(true, std::memory_order_release);
  CurrentLoopScope scope(this);
  for (ReadyTask& t : posted) run_task(t.fn, t.label, task_clock_.end());
}

void EventLoop::stop() {
  stop_requested_.store(true, std::memory_order_release);
  if (!owner_.is_current()) reactor_->wake();
}

void EventLoop::stop_once_sockets_closed(Duration limit) {
  owner_.check("EventLoop::stop_once_sockets_closed");
  // A closing socket waits for one completion of the backend's, due at its next wait.
  stop_when_sockets_closed(DeadlineAfter(now_ns(), limit));
}

void EventLoop::stop_when_sockets_closed(int64_t until_ns) {
  if (!sockets_.has_closing() || now_ns() >= until_ns) {
    stop();
    return;
  }
  call_later(std::chrono::milliseconds(1), [this, until_ns] { stop_when_sockets_closed(until_ns); },
             "loop:stop_once_sockets_closed");
}

void EventLoop::register_task(TaskContext* task) {
  task->prev_task_ = nullptr;
  task->next_task_ = tasks_head_;
  if (tasks_head_ != nullptr) tasks_head_->prev_task_ = task;
  tasks_head_ = task;
  published_.live_tasks.add(1);
}

void EventLoop::unregister_task(TaskContext* task) {
  if (task->prev_task_ != nullptr) {
    task->prev_task_->next_task_ = task->next_task_;
  } else {
    tasks_head_ = task->next_task_;
  }
  if (task->next_task_ != nullptr) task->next_task_->prev_task_ = task->prev_task_;
  task->prev_task_ = task->next_task_ = nullptr;
  published_.live_tasks.store(published_.live_tasks.load() - 1);
}

BufferPool* EventLoop::receive_buffers() {
  owner_.check("EventLoop::receive_buffers");
  if (!receive_buffers_tried_ && reactor_ && reactor_->has(kCapProvidedBuffers)) {
    receive_buffers_tried_ = true;
    auto pool = BufferPool::Create(*reactor_, options_.receive_buffer_size, options_.receive_buffer_count);
    if (pool.ok()) {
      receive_buffers_ = *std::move(pool);
      published_.receive_buffers.store(options_.receive_buffer_count);
    } else {
      PrintToStderr("brrr: loop %u: no receive buffer pool (%s); receiving into heap blocks", options_.loop_id,
                    pool.status().message());
    }
  }
  return receive_buffers_.get();
}

BlockingPool& EventLoop::blocking_pool() {
  owner_.check("EventLoop::blocking_pool");
  if (!blocking_pool_) {
    blocking_pool_ = std::make_unique<BlockingPool>(options_.blocking_threads);
    // First reached as the loop is destroyed: a pool that refuses, and never starts a thread.
    if (destroying_) blocking_pool_->shut_down();
  }
  return *blocking_pool_;
}

void EventLoop::run_forever() {
  begin_run("run_forever");
  check_one_runner();
  owner_.bind_to_current_thread();
  cpu_.follow_current_thread();
  CurrentLoopScope scope(this);
  if (options_.receive_buffers_at_first_run) receive_buffers();  // once: it is tried once
  StallWatchdog::Running watched(watchdog_.get());
  time_.run_from(task_clock_.end());  // running from here, but for its waits
  run_deferred_flushes();  // what was deferred outside a run (each iteration runs its own)
  // At least one iteration, as asyncio's loop: a stop() made before the run still lets what was
  // ready when it came run (a stop pending makes the iteration's wait for I/O a poll).
  do {
    run_iteration(kNoTimeout);
  } while (!stop_requested_.load(std::memory_order_acquire));
  time_.stop_at(task_clock_.end());
  cpu_.stop_following();
  stop_requested_.store(false, std::memory_order_relaxed);  // spent: it ended this run
  running_.store(false);
}

void EventLoop::run_until_complete(FutureBase& future) {
  if (future.done()) return;
  // The callback stops this run only: if the run stops early, the future may finish during a
  // later run, which it must not end.
  auto this_run = std::make_shared<bool>(true);
  future.add_done_callback([this, this_run] {
    if (*this_run) stop();
  });
  run_forever();
  *this_run = false;
}

void EventLoop::run_once(Duration max_wait) {
  begin_run("run_once");
  check_one_runner();
  owner_.bind_to_current_thread();
  cpu_.follow_current_thread();  // nothing to do once this thread is followed
  CurrentLoopScope scope(this);
  if (options_.receive_buffers_at_first_run) receive_buffers();  // once: it is tried once
  StallWatchdog::Running watched(watchdog_.get());
  time_.run_from(task_clock_.end());
  run_deferred_flushes();  // what was deferred outside a run (each iteration runs its own)
  run_iteration(max_wait.count() < 0 ? 0 : max_wait.count());
  time_.stop_at(task_clock_.end());
  // A stop() made before or during this iteration is spent: the run returns after it anyway,
  // and a stop left pending would end a later run_forever (or run_until_complete) at once.
  stop_requested_.store(false, std::memory_order_relaxed);
  running_.store(false);
}

void EventLoop::begin_run(const char* how) {
  if (destroying_) {
    // A destructor of what the destruction drops, running the loop: its backend may be gone
    // already, and what the run would run is being dropped.
    std::fprintf(stderr, "brrr: EventLoop::%s: this loop is being destroyed\n", how);
    std::abort();
  }
  if (!running_.exchange(true)) return;
  // A task of this loop running it again would run the tasks its iteration has yet to run
  // (and leave that iteration popping an empty queue); another thread would race its runner.
  std::fprintf(stderr, "brrr: EventLoop::%s: this loop is already running\n", how);
  std::abort();
}

void EventLoop::check_one_runner() {
  if (!options_.reactor.one_thread) return;
  std::thread::id self = std::this_thread::get_id();
  if (one_runner_ == std::thread::id()) one_runner_ = self;
  if (one_runner_ == self) return;
  std::fprintf(stderr,
               "brrr: loop %u is made for one thread (EventLoopOptions::reactor.one_thread) and a "
               "second thread runs it; run it only where it first ran, or make it without one_thread\n",
               options_.loop_id);
  std::abort();
}

std::unique_ptr<StallWatchdog> EventLoop::MakeWatchdog() {
  if (!options_.stall_watchdog || manual_clock_ != nullptr) return nullptr;
  if (absl::Status installed = StackSampler::Install(); !installed.ok()) {
    PrintToStderr("brrr: loop %u: no stall watchdog: %s", options_.loop_id, installed.message());
    return nullptr;
  }
  return std::make_unique<StallWatchdog>(StallWatchdog::Watched{.current = &current_,
                                                                .tasks_run = &published_.tasks_run,
                                                                .detector = &stall_detector_,
                                                                .sampler = &sampler_,
                                                                .thread_times = &cpu_});
}

BRRR_HOT_PATH void EventLoop::run_iteration(int64_t max_wait_ns) {
  // The clock is read exactly (a system clock read, ~25 ns here) once per iteration, as the
  // wait for I/O ends; the other readings extrapolate from it with the TSC (task_clock.h).
  inbox_.drain_into(ready_);
  wait_for_io(wait_timeout_ns(max_wait_ns));
  inbox_.drain_into(ready_);
  if (auto_advance_to_ns_ != 0) {
    if (idle_in_virtual_time()) manual_clock_->advance_to(auto_advance_to_ns_);
    auto_advance_to_ns_ = 0;
  }
  publish_ready_depth();
  // One clock read per task: each task's end is the next one's start.
  run_ready(run_due_timers(task_clock_.end()));
  current_.clear();
  // What this iteration's tasks deferred goes out now, not after the next wake-up: a loop that
  // stops here (or a run_once caller) must not keep a queued send back.
  if (!flushes_.empty()) run_deferred_flushes();
  published_.iterations.add(1);
}

bool EventLoop::idle_in_virtual_time() const {
  // A blocking job posts its result before it stops counting as unfinished, so a job seen
  // finished here has its result in the inbox: the pool is asked first, in one look (a job
  // taken from the queue between two looks would be in neither), and the inbox after it.
  if (!ready_.empty() || io_.in_flight() != 0) return false;
  if (blocking_pool_ != nullptr && blocking_pool_->unfinished() != 0) return false;
  return inbox_.depth() == 0;
}

BRRR_HOT_PATH int64_t EventLoop::wait_timeout_ns(int64_t cap_ns) {
  if (!ready_.empty() || stop_requested_.load(std::memory_order_relaxed)) return 0;
  int64_t timeout = kNoTimeout;
  // A timer that is never due (a delay past the clock's range) is no reason to wake up.
  if (std::optional<int64_t> next = timers_.next_deadline(); next.has_value() && *next != kNeverNanos) {
    timeout = std::max<int64_t>(0, *next - now_ns());
    // In virtual time a timer not yet due waits for advance(), which wakes the loop, or, on
    // an auto-advancing clock, for the loop to find itself idle (run_iteration).
    if (manual_clock_ != nullptr && timeout > 0) {
      if (manual_clock_->auto_advance() && io_.in_flight() == 0) {
        auto_advance_to_ns_ = *next;
        timeout = 0;
      } else {
        timeout = kNoTimeout;
      }
    }
  }
  if (cap_ns >= 0 && (timeout < 0 || timeout > cap_ns)) timeout = cap_ns;
  return timeout;
}

BRRR_HOT_PATH void EventLoop::wait_for_io(int64_t timeout_ns) {
  // Nothing can complete and nothing needs waiting for: skip the system call. (A wake-up
  // that arrives meanwhile stays pending in the backend and ends a later wait early.)
  if (timeout_ns == 0 && io_.in_flight() == 0) return;
  int64_t before = task_clock_.end();
  time_.wait_from(before);
  if (watchdog_) watchdog_->loop_idle();
  // What the loop holds as it goes to sleep: an idle loop's figure is its level while idle.
  if (receive_buffers_ != nullptr) published_.receive_buffers_in_use.store(receive_buffers_->in_use());
  absl::StatusOr<int> n = poll_then_wait(timeout_ns);
  if (watchdog_) watchdog_->loop_busy();
  io_batch_time_ns_ = task_clock_.anchor();
  // `before` may be a TSC extrapolation up to ~100 ns ahead of the exact anchor (task_clock.h),
  // so a wait that returned at once can measure below zero: LoopTime counts it as none.
  time_.run_from(io_batch_time_ns_);
  published_.io_waits.add(1);
  if (!n.ok()) {
    // The backend lost its kernel object (EBADF, EINVAL...): the loop cannot make progress.
    std::fprintf(stderr, "brrr: loop %u: %s\n", options_.loop_id,
                 std::string(n.status().message()).c_str());
    std::abort();
  }
  for (int i = 0; i < *n; ++i) {
    try {
      io_.dispatch(completions_[i], *reactor_);
    } catch (...) {
      report_escaped_exception("an I/O completion's handler");
    }
  }
  run_deferred_flushes();
  published_.io_completions.add(static_cast<uint64_t>(*n));
  published_.io_in_flight.store(io_.in_flight());
  ReactorCounters c = reactor_->counters();
  published_.backend_waits.store(c.waits);
  published_.backend_syscalls.store(c.syscalls);
  published_.backend_submitted.store(c.submitted);
  published_.backend_completed.store(c.completed);
  published_.backend_recv_bundles.store(c.recv_bundles);
}

BRRR_HOT_PATH absl::StatusOr<int> EventLoop::poll_then_wait(int64_t timeout_ns) {
  int64_t window = options_.idle_poll.count();
  if (window <= 0 || timeout_ns == 0 || manual_clock_ != nullptr) return reactor_->wait(completions_, timeout_ns);
  if (timeout_ns > 0) window = std::min(window, timeout_ns);
  // Anything a poll can find ends the window: completions, a post from another thread (its
  // wake-up is consumed by the poll that sees it, so the inbox is what says so), a stop.
  int64_t from = task_clock_.end();
  int64_t polled = 0;
  do {
    absl::StatusOr<int> n = reactor_->wait(completions_, 0);
    if (!n.ok() || *n > 0 || inbox_.depth() > 0 || stop_requested_.load(std::memory_order_relaxed)) return n;
    polled = task_clock_.end() - from;
  } while (polled < window);
  return reactor_->wait(completions_, timeout_ns < 0 ? timeout_ns : std::max<int64_t>(0, timeout_ns - polled));
}

BRRR_HOT_PATH int64_t EventLoop::run_due_timers(int64_t t) {
  if (!timers_.may_have_due(t)) return t;  // most iterations
  // Only timers due when the phase began, and scheduled before it: one that keeps rescheduling
  // itself at zero delay waits for the next iteration instead of spinning here (in virtual time
  // too, where the clock does not move while timers run).
  const int64_t due_by = t;
  const uint64_t scheduled_before = timers_.next_sequence();
  DueTimer due;
  while (timers_.pop_due(due_by, &due, scheduled_before)) {
    published_.pending_timers.store(timers_.size());
    timer_lateness_.record(t - due.deadline_ns);
    t = run_task(due.fn, due.label, t);
    due.fn.reset();
  }
  return t;
}

BRRR_HOT_PATH int64_t EventLoop::run_ready(int64_t t) {
  for (size_t n = ready_.size(); n > 0; --n) {
    ReadyTask task = ready_.pop();
    publish_ready_depth();
    t = run_task(task.fn, task.label, t);
  }
  return t;
}

int64_t EventLoop::run_task(Callback& fn, const TaskLabel& label, int64_t start_ns) {
  current_.publish(label, start_ns);
  try {
    fn();
  } catch (...) {
    report_escaped_exception(absl::StrCat("<", label.ToString(), ">"));
  }
  int64_t end = task_clock_.end();
  int64_t took = end - start_ns;
  uint64_t before = published_.tasks_run.load();
  published_.tasks_run.store(before + 1);
  task_duration_.record_counted_elsewhere(took);  // counted in tasks_run, maximum in longest_task_ns_
  if (took > longest_task_ns_.load()) {
    longest_name_.store(label.name());
    longest_where_.store(label.where());
    longest_task_ns_.store(took);
  }
  // A task the watchdog sampled is a stall though the threshold was raised past it meanwhile:
  // its samples went out with the sequence its end takes.
  if (took >= stall_detector_.threshold_ns() || stall_detector_.was_sampled(start_ns)) {
    // The slow path: the thread's times (a /proc read) only for a stall.
    stall_detector_.report(label, took, before, end,
                           {.cpu_ns = cpu_.total_ns(), .run_queue_wait_ns = cpu_.run_queue_wait_ns()});
  }
  return end;
}

BRRR_HOT_PATH void EventLoop::run_deferred_flushes() {
  flushes_.run([this] { report_escaped_exception("a deferred flush"); });
}

void EventLoop::report_escaped_exception(std::string_view where) {
  published_.callback_errors.add(1);
  try {
    throw;
  } catch (const std::exception& e) {
    PrintToStderr("brrr: loop %u: exception escaped %s: %s", options_.loop_id, where, e.what());
  } catch (...) {
    PrintToStderr("brrr: loop %u: exception escaped %s", options_.loop_id, where);
  }
}

LoopStats EventLoop::stats() const {
  LoopStats s;
  s.loop_id = options_.loop_id;
  s.backend = backend_name_;
  s.started_at_ns = started_at_ns_;
#define BRRR_LOAD_FIGURE(...) BRRR_FIGURE_LOAD(s, published_, __VA_ARGS__)
  BRRR_LOOP_FIGURES(BRRR_LOAD_FIGURE)
#undef BRRR_LOAD_FIGURE
  // Each histogram NAME is recorded into the member NAME_ and read by snapshot_NAME().
#define BRRR_LOAD_HISTOGRAM(name, unit, help) s.name = snapshot_##name();
  BRRR_LOOP_HISTOGRAMS(BRRR_LOAD_HISTOGRAM)
#undef BRRR_LOAD_HISTOGRAM
  return s;
}

LogHistogram::Snapshot EventLoop::snapshot_timer_lateness() const { return timer_lateness_.snapshot(); }

LogHistogram::Snapshot EventLoop::snapshot_task_duration() const {
  return task_duration_.snapshot_counted_elsewhere(published_.tasks_run, longest_task_ns_.load());
}

void EventLoop::derive_threadsafe_queue_depth(LoopStats& s) const { s.threadsafe_queue_depth = inbox_.depth(); }
void EventLoop::derive_sockets(LoopStats& s) const { s.sockets = sockets_.size(); }
void EventLoop::derive_read_set_size(LoopStats& s) const { s.read_set_size = sockets_.read_set_size(); }
void EventLoop::derive_write_set_size(LoopStats& s) const { s.write_set_size = sockets_.write_set_size(); }
void EventLoop::derive_stall_threshold(LoopStats& s) const { s.stall_threshold_ns = stall_detector_.threshold_ns(); }
void EventLoop::derive_stalls(LoopStats& s) const { s.stalls = stall_detector_.stalls_seen(); }

void EventLoop::derive_cpu(LoopStats& s) const { s.cpu_ns = cpu_.total_ns(); }

void EventLoop::derive_run_queue_wait(LoopStats& s) const { s.run_queue_wait_ns = cpu_.run_queue_wait_ns(); }

void EventLoop::derive_running(LoopStats& s) const { s.running_ns = time_.totals(now_ns()).running_ns; }
void EventLoop::derive_waiting(LoopStats& s) const { s.waiting_ns = time_.totals(now_ns()).waiting_ns; }

void EventLoop::derive_longest_task(LoopStats& s) const {
  s.longest_task_ns = longest_task_ns_.load();
  if (s.longest_task_ns > 0) s.longest_task = TaskLabel(longest_name_.load(), longest_where_.load()).ToString();
}

void EventLoop::derive_current_task_running(LoopStats& s) const {
  if (std::optional<CurrentTask::Snapshot> task = current_.read()) {
    s.current_task_running_ns = std::max<int64_t>(0, now_ns() - task->start_ns);
    s.current_task = task->label.ToString();
  }
}

}  // namespace brrr
