// output.h: where brrrctl's results go. With --json each result is one JSON object on one line
// (message_json.h); otherwise text for people. Every write is flushed at once, so a pipe or a
// script reading a stream (watch, stalls) sees each line as it comes.
//
//   Output out(absl::GetFlag(FLAGS_json));
//   out.Result(stats, StatsText(stats));   // the JSON line, or the text
//
// With several targets (fleet_run.h) each target has an Output of its own that writes through
// a function (into a buffer, or to stdout under a lock), wraps each JSON line as
// {"target":"HOST:PORT","result":{...}}, and hands every result message to an observer, which
// keeps it for the total over the targets.
//
// A write that fails (a full disk, an I/O error) is remembered for the process (WriteOut):
// streams stop at their next message, and brrrctl then exits kOutputFailed, saying why, whatever
// the command returned. A reader that has gone (a closed pipe) raises SIGPIPE, which ends
// brrrctl as it ends any filter.
//
// Threads: one thread writes to an Output; WriteOut and OutputStatus from any thread.
#ifndef BRRR_CONTROL_OUTPUT_H_
#define BRRR_CONTROL_OUTPUT_H_

#include <cstdio>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace brrr::control {

// Writes `text` to `stream` and flushes it; a failure is remembered (OutputStatus). Whatever
// brrrctl prints on stdout goes through here.
void WriteOut(std::FILE* stream, absl::string_view text);

// The first write that failed ("cannot write to standard output: No space left on device");
// OK while none has. Flushes stdout first and reads its error flag, which catches a write made
// elsewhere too.
absl::Status OutputStatus();

class Output {
 public:
  using Writer = std::function<void(absl::string_view)>;
  using Observer = std::function<void(const google::protobuf::Message&)>;

  // Writes to `stream`: brrrctl on one target.
  explicit Output(bool json, std::FILE* stream = stdout);
  // One target of several: writes through `write`, JSON lines wrapped with `target`, every
  // result message shown to `observer` (may be empty).
  Output(bool json, std::string target, Writer write, Observer observer);

  bool json() const { return json_; }
  // A command's result: with --json the message as one JSON line, otherwise `text` (end it
  // with '\n').
  void Result(const google::protobuf::Message& message, absl::string_view text);
  // The message as one JSON line.
  void Json(const google::protobuf::Message& message);
  // Text as given (end it with '\n').
  void Text(absl::string_view text);

 private:
  bool json_;
  std::string target_;  // empty: one target, JSON lines are the messages themselves
  Writer write_;
  Observer observer_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_OUTPUT_H_
