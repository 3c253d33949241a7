#include "control/brrrctl/output.h"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "control/brrrctl/message_json.h"

namespace brrr::control {
namespace {

// The process's first failed write.
struct Failure {
  std::mutex mu;
  absl::Status status ABSL_GUARDED_BY(mu);
};

Failure& TheFailure() {
  static Failure* const failure = new Failure;
  return *failure;
}

// Keeps the first failure; `error` is its errno, or 0 when that is not known.
void RememberFailure(std::FILE* stream, int error) {
  Failure& failure = TheFailure();
  std::lock_guard<std::mutex> lock(failure.mu);
  if (!failure.status.ok()) return;
  std::string what = absl::StrCat("cannot write to ", stream == stdout ? "standard output" : "the output");
  if (error != 0) absl::StrAppend(&what, ": ", std::strerror(error));
  failure.status = absl::Status(error != 0 ? absl::ErrnoToStatusCode(error) : absl::StatusCode::kUnknown, what);
}

}  // namespace

void WriteOut(std::FILE* stream, absl::string_view text) {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), stream) != text.size() || std::fflush(stream) != 0) {
    RememberFailure(stream, errno);
  }
}

absl::Status OutputStatus() {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) RememberFailure(stdout, errno);
  Failure& failure = TheFailure();
  std::lock_guard<std::mutex> lock(failure.mu);
  return failure.status;
}

Output::Output(bool json, std::FILE* stream)
    : json_(json), write_([stream](absl::string_view text) { WriteOut(stream, text); }) {}

Output::Output(bool json, std::string target, Writer write, Observer observer)
    : json_(json), target_(std::move(target)), write_(std::move(write)), observer_(std::move(observer)) {}

void Output::Result(const google::protobuf::Message& message, absl::string_view text) {
  if (json_) {
    Json(message);
    return;
  }
  if (observer_) observer_(message);
  Text(text);
}

void Output::Json(const google::protobuf::Message& message) {
  if (observer_) observer_(message);
  std::string line = target_.empty()
                         ? MessageToJsonLine(message)
                         : absl::StrCat("{\"target\":", JsonString(target_), ",\"result\":", MessageToJsonLine(message), "}");
  line += '\n';
  Text(line);
}

void Output::Text(absl::string_view text) { write_(text); }

}  // namespace brrr::control
