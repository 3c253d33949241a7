// task_label.h: what a queued task is called in stall reports and statistics.
//
// A label is either a name ("echo:conn", "inject:blocking_spin") or, by default, the call
// site that scheduled the work, captured with std::source_location at no run-time cost:
//
//   loop.call_soon(fn);                     // labelled "runtime/foo.cc:42 (void foo())"
//   loop.call_soon(fn, "metrics:flush");     // labelled "metrics:flush"
//   create_task(serve(conn), TaskLabel(InternTaskName(name)));
//
// A name must have static storage duration (a string literal, or InternTaskName's result):
// the loop publishes the current task's label to other threads, which may read it after the
// task has finished, so a label never owns memory.
//
// Threads: TaskLabel is a value; InternTaskName is thread-safe.
#ifndef BRRR_RUNTIME_TASK_LABEL_H_
#define BRRR_RUNTIME_TASK_LABEL_H_

#include <source_location>
#include <string>
#include "absl/strings/string_view.h"

namespace brrr {

class TaskLabel {
 public:
  constexpr TaskLabel() = default;

  // Labels work by where it was scheduled.
  constexpr TaskLabel(std::source_location where)  // NOLINT(google-explicit-constructor)
      : where_(where) {}

  // Labels work by name. `static_name` must outlive the process's use of it (see above).
  constexpr TaskLabel(const char* static_name,  // NOLINT(google-explicit-constructor)
                      std::source_location where = std::source_location::current())
      : name_(static_name), where_(where) {}

  const char* name() const { return name_; }
  const std::source_location& where() const { return where_; }

  // "name" when named, else "file:line (function)", or "unlabelled".
  std::string ToString() const;

 private:
  const char* name_ = nullptr;
  std::source_location where_;
};

// Returns a copy of `name` that lives until the process exits; equal names share one copy.
const char* InternTaskName(absl::string_view name);

}  // namespace brrr

#endif  // BRRR_RUNTIME_TASK_LABEL_H_
