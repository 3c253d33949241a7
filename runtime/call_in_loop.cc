#include "runtime/call_in_loop.h"

#include <chrono>

namespace brrr::detail {

absl::Status LoopDidNotAnswer(const EventLoop& loop, Duration timeout) {
  LoopStats now = loop.stats();
  std::string why = now.current_task.empty()
                        ? std::string(loop.is_running() ? "it is busy" : "it is not running")
                        : absl::StrCat("it has been running ", now.current_task, " for ",
                                       now.current_task_running_ns / 1'000'000, " ms");
  return absl::UnavailableError(absl::StrCat("loop ", loop.loop_id(), " did not answer within ",
                                             std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count(),
                                             " ms: ", why));
}

}  // namespace brrr::detail
