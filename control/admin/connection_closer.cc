#include "control/admin/connection_closer.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/call_in_loop.h"

namespace brrr::control {

ConnectionCloser::ConnectionCloser(Administered& target, int fd, std::string peer)
    : call_(std::make_shared<Call>(target, fd, std::move(peer))) {}

absl::StatusOr<SocketInfo> ConnectionCloser::CloseOn(uint32_t loop) const {
  if (call_->closed_one.load()) {
    return absl::NotFoundError(
        absl::StrCat("fd ", call_->fd, " on loop ", loop, ": this call closed a connection on another loop already"));
  }
  absl::StatusOr<SocketInfo> answer = call_->target.CloseConnection(loop, call_->fd, call_->peer);
  if (answer.ok()) call_->closed_one.store(true);
  return answer;
}

absl::StatusOr<ClosedConnection> ConnectionCloser::Close(const std::vector<uint32_t>& loops, Duration wait) const {
  const std::vector<EventLoop*> all = call_->target.loops();
  std::vector<EventLoop*> asked;
  for (uint32_t i : loops) asked.push_back(all[i]);
  // Done once the loop that holds the descriptor has answered.
  std::vector<std::optional<absl::StatusOr<SocketInfo>>> answers = CallInLoops(
      asked, [closer = *this, loops](size_t k) { return closer.CloseOn(loops[k]); },
      [](const absl::StatusOr<SocketInfo>& a) { return !absl::IsNotFound(a.status()); }, wait,
      "admin:close_connection");
  // A close made is the answer, whatever another loop said of a newer holder of the descriptor.
  for (size_t k = 0; k < loops.size(); ++k) {
    if (answers[k].has_value() && answers[k]->ok()) return ClosedConnection{loops[k], **std::move(answers[k])};
  }
  for (size_t k = 0; k < loops.size(); ++k) {
    if (answers[k].has_value() && !absl::IsNotFound(answers[k]->status())) return answers[k]->status();
  }
  for (size_t k = 0; k < loops.size(); ++k) {
    // A drained loop has no connection to close.
    if (!answers[k].has_value() && !asked[k]->finished()) return detail::LoopDidNotAnswer(*asked[k], wait);
  }
  return absl::NotFoundError(loops.size() == 1
                                 ? absl::StrCat("no connection with fd ", call_->fd, " on loop ", loops[0])
                                 : absl::StrCat("no connection with fd ", call_->fd, " on any loop"));
}

}  // namespace brrr::control
