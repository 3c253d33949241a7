// line_output.h: what brrr prints to stdout and stderr, written by a thread of its own, so that
// printing never makes the printing thread wait for whoever reads the output.
//
// A loop thread that writes a stall report or an accept error straight to stderr waits in
// write() for as long as the reader of that stream does not read: a supervisor that stopped
// reading its pipe, `brrr-echo | less` scrolled back, a terminal paused with Ctrl-S. The loop
// then serves nothing, and a loop stuck like that never drains. LineOutput takes the line,
// queues it and returns; its writer thread writes the queue, both streams in one order, so
// lines come out in the order they were printed. The queue holds at most max_queued_bytes: a
// line that does not fit is dropped and counted, and once there is room again a line on stderr
// says how many were dropped at that place. A line whose write fails (EPIPE: the reader has
// gone; ENOSPC) is dropped and counted too. As HAProxy does with a log on a descriptor: output a
// stalled reader cannot take is lost, serving is not.
//
//   PrintToStderr("brrr: loop %u: %s\n", id, why);  // the process's output, descriptors 1 and 2
//   LineOutput::Process().Flush(absl::Seconds(2));  // what exit() does as well (kExitPatience)
//
// A line that must be out before the process dies (why it aborts) is written directly, not
// here: a queued line dies with the process.
//
// Threads: every method from any thread. The writer thread has every signal blocked. A forked
// child of a process that used LineOutput::Process() starts with that queue empty (what was
// queued is the parent's to write) and starts a writer of its own at its first line; other
// LineOutput objects are not for use in a forked child.
#ifndef BRRR_RUNTIME_LINE_OUTPUT_H_
#define BRRR_RUNTIME_LINE_OUTPUT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace brrr {

enum class OutputStream { kStdout = 0, kStderr = 1 };

class LineOutput {
 public:
  static constexpr size_t kDefaultMaxQueuedBytes = 256 * 1024;
  // How long exit() waits for the process's output while its writer writes nothing.
  static constexpr absl::Duration kExitPatience = absl::Seconds(2);

  // Writes to `stdout_fd` and `stderr_fd`, which must stay open while this object lives.
  LineOutput(int stdout_fd, int stderr_fd, size_t max_queued_bytes = kDefaultMaxQueuedBytes);
  // Flushes as Flush(absl::Seconds(1)) does, then ends the writer: at once if it is idle, else
  // once the write it is blocked in returns (what is still queued then is not written, and
  // nothing more is written to the descriptors).
  ~LineOutput();
  LineOutput(const LineOutput&) = delete;
  LineOutput& operator=(const LineOutput&) = delete;

  // The process's output: descriptors 1 and 2, kDefaultMaxQueuedBytes. Made at first use and
  // never destroyed; exit() flushes it (kExitPatience).
  static LineOutput& Process();

  // Queues `line` for `stream`, with a '\n' added if it does not end in one, and returns
  // without waiting for any write. The writer thread starts at the first line.
  void Write(OutputStream stream, std::string line);

  // Waits until every line queued before the call is written or dropped. Gives up once the
  // writer has written nothing for `patience` (its reader does not read). Returns whether
  // every one of those lines is out of the queue.
  bool Flush(absl::Duration patience);

  // Lines dropped so far on `stream`: the queue was full, or the write failed.
  uint64_t dropped(OutputStream stream) const;

 private:
  struct State;
  static void StartWriter(const std::shared_ptr<State>& state);
  static void WriteLines(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
};

// absl::StrFormat(format, args...) as a line on the process's stdout or stderr
// (LineOutput::Process()); a '\n' is added if the format does not end in one.
template <typename... Args>
void PrintToStdout(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LineOutput::Process().Write(OutputStream::kStdout, absl::StrFormat(format, args...));
}
template <typename... Args>
void PrintToStderr(const absl::FormatSpec<Args...>& format, const Args&... args) {
  LineOutput::Process().Write(OutputStream::kStderr, absl::StrFormat(format, args...));
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_LINE_OUTPUT_H_
