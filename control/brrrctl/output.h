// output.h: where brrrctl's results go. With --json each result is one JSON object on one line
// (message_json.h); otherwise text for people. Every write is flushed at once, so a pipe or a
// script reading a stream (watch, stalls) sees each line as it comes.
//
//   Output out(absl::GetFlag(FLAGS_json));
//   if (out.json()) out.Json(stats); else out.Text(FormatStats(stats));
//
// Threads: one thread writes.
#ifndef BRRR_CONTROL_OUTPUT_H_
#define BRRR_CONTROL_OUTPUT_H_

#include <cstdio>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace brrr::control {

class Output {
 public:
  explicit Output(bool json, std::FILE* stream = stdout) : json_(json), stream_(stream) {}

  bool json() const { return json_; }
  // The message as one JSON line.
  void Json(const google::protobuf::Message& message);
  // Text as given (end it with '\n').
  void Text(absl::string_view text);

 private:
  bool json_;
  std::FILE* stream_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_OUTPUT_H_
