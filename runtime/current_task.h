// current_task.h: the task a loop is running now, published for other threads.
//
// The loop publishes each task's label and start before running it and clears the start
// when its batch of tasks is done; statistics (current_task_running) and the stall
// watchdog read it from their own threads:
//
//   CurrentTask current;
//   current.publish(label, start_ns);     // loop thread, before each task
//   current.clear();                      // loop thread, after the last one
//   if (auto t = current.read()) ...      // any thread: t->start_ns, t->label
//
// Threads: publish/clear from the loop thread only; read from any. No locks: the label is
// written before the start, and a reader that sees the same start before and after reading
// the label knows the label belongs to it. The start is stored with release and read with
// acquire (plain moves on x86-64), so a reader that sees a task's start (or the clear after
// it) also sees everything the loop did before: the watchdog relies on seeing a stall's end
// reported once it sees the next task.
#ifndef BRRR_RUNTIME_CURRENT_TASK_H_
#define BRRR_RUNTIME_CURRENT_TASK_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <source_location>

#include "runtime/single_writer.h"
#include "runtime/task_label.h"

namespace brrr {

class CurrentTask {
 public:
  struct Snapshot {
    int64_t start_ns = 0;
    TaskLabel label;
  };

  void publish(const TaskLabel& label, int64_t start_ns) {
    name_.store(label.name());
    where_.store(label.where());
    start_ns_.store(start_ns, std::memory_order_release);
  }
  void clear() { start_ns_.store(0, std::memory_order_release); }

  // The running task, or nullopt between tasks (or when the label kept changing under us).
  std::optional<Snapshot> read() const {
    for (int attempt = 0; attempt < 3; ++attempt) {
      int64_t start = start_ns_.load(std::memory_order_acquire);
      if (start == 0) return std::nullopt;
      TaskLabel label(name_.load(), where_.load());
      if (start_ns_.load(std::memory_order_acquire) == start) return Snapshot{start, label};
    }
    return std::nullopt;
  }

 private:
  std::atomic<int64_t> start_ns_{0};  // 0: no task
  SingleWriter<const char*> name_;
  SingleWriter<std::source_location> where_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_CURRENT_TASK_H_
