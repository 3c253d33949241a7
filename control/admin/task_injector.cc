#include "control/admin/task_injector.h"

#include <algorithm>
#include <condition_variable>

#include "absl/strings/str_cat.h"
#include "runtime/async.h"

namespace brrr::control {

namespace {

const char* RunName(InjectionKind kind) {
  switch (kind) {
    case InjectionKind::kBlockingSpin:
      return "inject:blocking_spin";
    case InjectionKind::kBlockingSleep:
      return "inject:blocking_sleep";
    case InjectionKind::kNonblockingSleep:
      return "inject:nonblocking_sleep";
  }
  return "inject";
}

int64_t Millis(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// The blocking runs, each in a function of its own that is never inlined, so that the stack
// a stall report shows names what the loop is stuck in.
[[gnu::noinline]] void InjectedBlockingSpin(TimePoint deadline, const std::atomic<bool>& cancelled) {
  while (Clock::now() < deadline && !cancelled.load(std::memory_order_relaxed)) {
  }
  asm volatile("" ::: "memory");  // keeps this frame: no tail call out of it
}

// Waits on `wake` rather than sleeping so that cancelling ends the run early.
[[gnu::noinline]] void InjectedBlockingSleep(TimePoint deadline, std::mutex& mu, std::condition_variable& wake,
                                             const std::atomic<bool>& cancelled) {
  std::unique_lock<std::mutex> lock(mu);
  wake.wait_until(lock, deadline, [&cancelled] { return cancelled.load(); });
  asm volatile("" ::: "memory");
}

}  // namespace

// One target loop's share of an injection. Touched only on that loop's thread.
struct TaskInjector::LoopRuns {
  EventLoop* loop = nullptr;
  uint32_t runs_started = 0;
  TimerHandle next;                // the next run's timer
  std::vector<Future<>> sleeping;  // NonblockingSleep runs, some finished since the last sweep
  size_t swept_size = 0;           // sleeping.size() after the last sweep of finished runs
};

// An injection and everything its runs need; runs hold it by shared_ptr, so it outlives the
// injector if a loop is still in the middle of a run.
struct TaskInjector::Injection {
  uint64_t id = 0;
  InjectionSpec spec;
  int64_t injected_at_ns = 0;
  std::atomic<bool> cancelled{false};
  std::atomic<uint64_t> runs_started{0};
  std::atomic<uint64_t> runs_finished{0};
  std::mutex wake_mu;  // a BlockingSleep run waits on `wake` so that cancelling ends it early
  std::condition_variable wake;
  std::vector<LoopRuns> per_loop;  // one per spec.loops entry
  std::shared_ptr<std::vector<std::atomic<uint64_t>>> running;

  uint64_t total_runs() const { return uint64_t{spec.count} * spec.loops.size(); }
  bool done() const { return runs_finished.load() >= total_runs(); }
};

TaskInjector::TaskInjector(std::vector<EventLoop*> loops, Duration max_block)
    : loops_(std::move(loops)),
      max_block_(max_block),
      running_(std::make_shared<std::vector<std::atomic<uint64_t>>>(loops_.size())) {}

TaskInjector::~TaskInjector() {
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, injection] : active_) ids.push_back(id);
  }
  for (uint64_t id : ids) (void)Cancel(id);
}

absl::StatusOr<InjectionStatus> TaskInjector::Inject(InjectionSpec spec) {
  absl::StatusOr<InjectionSpec> checked = CheckInjectionSpec(std::move(spec), max_block_, loops_.size());
  if (!checked.ok()) return checked.status();

  auto injection = std::make_shared<Injection>();
  injection->spec = *std::move(checked);
  injection->injected_at_ns = MonotonicNanos();
  injection->running = running_;
  for (uint32_t loop : injection->spec.loops) injection->per_loop.push_back(LoopRuns{.loop = loops_[loop]});
  {
    std::lock_guard<std::mutex> lock(mu_);
    Retire();
    if (active_.size() >= kMaxActive) {
      return absl::ResourceExhaustedError(absl::StrCat(
          kMaxActive, " injections are active already; cancel some (CancelInjection) or let them finish"));
    }
    if (absl::Status fits = FitsLiveRunLimit(injection->spec); !fits.ok()) return fits;
    injection->id = next_id_++;
    active_[injection->id] = injection;
  }
  for (size_t slot = 0; slot < injection->per_loop.size(); ++slot) {
    injection->per_loop[slot].loop->call_soon_threadsafe(
        [injection, slot] { Schedule(injection, slot, Clock::now()); }, "inject:schedule");
  }
  return StatusOf(*injection);
}

absl::Status TaskInjector::FitsLiveRunLimit(const InjectionSpec& spec) const {
  uint64_t wanted = LiveRunsAtMost(spec);
  if (wanted == 0) return absl::OkStatus();
  for (uint32_t loop : spec.loops) {
    uint64_t held = 0;
    for (const auto& [id, other] : active_) {
      if (std::binary_search(other->spec.loops.begin(), other->spec.loops.end(), loop)) {
        held += LiveRunsAtMost(other->spec);
      }
    }
    if (held + wanted <= kMaxLiveRuns) continue;
    return absl::ResourceExhaustedError(absl::StrCat(
        "NONBLOCKING_SLEEP runs of ", Millis(spec.duration), " ms every ", Millis(spec.interval), " ms, count=",
        spec.count, ", could keep ", wanted, " alive at once on loop ", loop, ", where active injections may keep ",
        held, ": the limit is ", kMaxLiveRuns,
        " live runs per loop; lower count, raise interval_ms or shorten duration_ms (runs overlap at most "
        "duration_ms / interval_ms + 1 at a time), or cancel an injection"));
  }
  return absl::OkStatus();
}

uint64_t TaskInjector::LiveRunsAtMost(const InjectionSpec& spec) {
  if (spec.kind != InjectionKind::kNonblockingSleep) return 0;
  if (spec.interval <= Duration::zero()) return spec.count;
  return std::min<uint64_t>(spec.count, static_cast<uint64_t>(spec.duration / spec.interval) + 1);
}

void TaskInjector::Schedule(const std::shared_ptr<Injection>& injection, size_t slot, TimePoint due) {
  LoopRuns& runs = injection->per_loop[slot];
  runs.next = runs.loop->call_at(due, [injection, slot] { StartRun(injection, slot); },
                                 RunName(injection->spec.kind));
}

void TaskInjector::StartRun(const std::shared_ptr<Injection>& injection, size_t slot) {
  Injection& in = *injection;
  if (in.cancelled.load()) return;
  LoopRuns& runs = in.per_loop[slot];
  std::atomic<uint64_t>& running = (*in.running)[runs.loop->loop_id()];
  if (in.spec.kind == InjectionKind::kNonblockingSleep && running.load() >= kMaxLiveRuns) {
    // Rare: the check at Inject keeps the loop below the limit (see Bounds in the header).
    runs.next = runs.loop->call_later(std::chrono::milliseconds(1), [injection, slot] { StartRun(injection, slot); },
                                      RunName(in.spec.kind));
    return;
  }
  TimePoint start = Clock::now();
  ++runs.runs_started;
  in.runs_started.fetch_add(1);
  // The next run is due one interval after this one started, however long this one holds
  // the loop: the timer's lateness then shows how late the loop got to it.
  if (runs.runs_started < in.spec.count) Schedule(injection, slot, start + in.spec.interval);
  running.fetch_add(1);
  TimePoint deadline = start + in.spec.duration;
  switch (in.spec.kind) {
    case InjectionKind::kBlockingSpin:
      InjectedBlockingSpin(deadline, in.cancelled);
      break;
    case InjectionKind::kBlockingSleep:
      InjectedBlockingSleep(deadline, in.wake_mu, in.wake, in.cancelled);
      break;
    case InjectionKind::kNonblockingSleep: {
      // Swept when it has doubled since the last sweep: linear in the runs, however many sleep.
      if (runs.sleeping.size() >= std::max<size_t>(64, 2 * runs.swept_size)) {
        std::erase_if(runs.sleeping, [](const Future<>& f) { return f.done(); });
        runs.swept_size = runs.sleeping.size();
      }
      // The run finishes when the coroutine does (its frame's Finisher), even if cancelled.
      // It sleeps until its start plus the duration, not for the duration from its first
      // step, so that a busy loop cannot stretch it (the Bounds arithmetic counts on that).
      auto sleeper = [](std::shared_ptr<Injection> injection, size_t slot, TimePoint deadline) -> Task<> {
        struct Finisher {
          ~Finisher() { FinishRun(*injection, slot); }
          std::shared_ptr<Injection> injection;
          size_t slot;
        } finisher{injection, slot};
        co_await sleep(deadline - Clock::now());
      };
      runs.sleeping.push_back(create_task(*runs.loop, sleeper(injection, slot, deadline), RunName(in.spec.kind)));
      return;
    }
  }
  FinishRun(in, slot);
}

void TaskInjector::FinishRun(Injection& injection, size_t slot) {
  (*injection.running)[injection.per_loop[slot].loop->loop_id()].fetch_sub(1);
  injection.runs_finished.fetch_add(1);
}

absl::StatusOr<InjectionStatus> TaskInjector::Cancel(uint64_t id) {
  std::shared_ptr<Injection> injection;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Retire();
    auto it = active_.find(id);
    if (it == active_.end()) {
      for (const InjectionStatus& f : finished_) {
        if (f.id != id) continue;
        return absl::FailedPreconditionError(absl::StrCat(
            "injection ", id, " has ", f.state == InjectionStatus::State::kCancelled ? "been cancelled" : "finished",
            " already"));
      }
      return absl::NotFoundError(absl::StrCat("no injection ", id, " (ListInjections shows the known ones)"));
    }
    injection = it->second;
    active_.erase(it);
    injection->cancelled.store(true);
    InjectionStatus status = StatusOf(*injection);
    status.state = InjectionStatus::State::kCancelled;
    finished_.push_front(status);
    if (finished_.size() > kFinishedKept) finished_.pop_back();
  }
  {
    // Wakes a BlockingSleep run; a BlockingSpin run sees the flag at once.
    std::lock_guard<std::mutex> lock(injection->wake_mu);
    injection->wake.notify_all();
  }
  for (size_t slot = 0; slot < injection->per_loop.size(); ++slot) {
    injection->per_loop[slot].loop->call_soon_threadsafe(
        [injection, slot] {
          LoopRuns& runs = injection->per_loop[slot];
          runs.next.cancel();
          for (Future<>& f : runs.sleeping) f.cancel();
        },
        "inject:cancel");
  }
  InjectionStatus status = StatusOf(*injection);
  status.state = InjectionStatus::State::kCancelled;
  return status;
}

std::vector<InjectionStatus> TaskInjector::List() {
  std::vector<InjectionStatus> out = Active();
  std::lock_guard<std::mutex> lock(mu_);
  out.insert(out.end(), finished_.begin(), finished_.end());
  return out;
}

std::vector<InjectionStatus> TaskInjector::Active() {
  std::lock_guard<std::mutex> lock(mu_);
  Retire();
  std::vector<InjectionStatus> out;
  for (auto it = active_.rbegin(); it != active_.rend(); ++it) out.push_back(StatusOf(*it->second));
  return out;
}

AdminLoopStats TaskInjector::figures(uint32_t loop) const {
  AdminLoopStats s;
  s.injections_running = loop < running_->size() ? (*running_)[loop].load() : 0;
  return s;
}

InjectionStatus TaskInjector::StatusOf(const Injection& injection) {
  InjectionStatus s;
  s.id = injection.id;
  s.spec = injection.spec;
  s.runs_started = injection.runs_started.load();
  s.runs_finished = injection.runs_finished.load();
  s.injected_at_ns = injection.injected_at_ns;
  s.state = injection.cancelled.load() ? InjectionStatus::State::kCancelled
            : injection.done()         ? InjectionStatus::State::kFinished
                                       : InjectionStatus::State::kActive;
  return s;
}

void TaskInjector::Retire() {
  for (auto it = active_.begin(); it != active_.end();) {
    if (!it->second->done()) {
      ++it;
      continue;
    }
    finished_.push_front(StatusOf(*it->second));
    if (finished_.size() > kFinishedKept) finished_.pop_back();
    it = active_.erase(it);
  }
}

}  // namespace brrr::control
