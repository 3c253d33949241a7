#include "runtime/line_output.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_format.h"

namespace brrr {

struct LineOutput::State {
  struct Line {
    OutputStream stream;
    std::string text;
  };

  State(int stdout_fd, int stderr_fd, size_t max_queued_bytes)
      : fds{stdout_fd, stderr_fd}, max_queued_bytes(max_queued_bytes) {}

  const int fds[2];
  const size_t max_queued_bytes;

  std::mutex mu;
  std::condition_variable queued;    // the writer waits on it: a line queued, or stopping
  std::condition_variable progress;  // Flush waits on it: bytes written, a line done
  std::deque<Line> lines;            // guarded by mu, as is everything below
  size_t queued_bytes = 0;
  uint64_t lines_queued = 0;    // ever, dropped ones not counted
  uint64_t lines_done = 0;      // taken from the queue and written, or dropped by a failed write
  uint64_t bytes_written = 0;
  uint64_t dropped[2] = {0, 0};
  uint64_t dropped_unreported = 0;  // dropped for a full queue since the last notice
  bool writer_started = false;
  bool stopping = false;
};

namespace {

// Writes all of `text`; false if a write fails (the line is then lost). `wrote` is told each
// write's count. A descriptor someone made non-blocking is waited on instead of dropped.
template <typename Wrote>
bool WriteAll(int fd, std::string_view text, Wrote wrote) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n > 0) {
      text.remove_prefix(static_cast<size_t>(n));
      wrote(static_cast<uint64_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd writable{fd, POLLOUT, 0};
      ::poll(&writable, 1, -1);
      continue;
    }
    return false;
  }
  return true;
}

std::string DroppedNotice(uint64_t count, size_t max_queued_bytes) {
  return absl::StrFormat(
      "brrr: %u line%s of output dropped here: stdout and stderr were not read while %u bytes of output "
      "waited\n",
      count, count == 1 ? "" : "s", max_queued_bytes);
}

// The process's output, for its fork and exit handlers.
LineOutput* process_output = nullptr;

}  // namespace

LineOutput::LineOutput(int stdout_fd, int stderr_fd, size_t max_queued_bytes)
    : state_(std::make_shared<State>(stdout_fd, stderr_fd, max_queued_bytes)) {}

LineOutput::~LineOutput() {
  Flush(absl::Seconds(1));
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->stopping = true;
  state_->queued.notify_all();
}

LineOutput& LineOutput::Process() {
  static LineOutput* const output = [] {
    process_output = new LineOutput(STDOUT_FILENO, STDERR_FILENO);
    // The lock is held across fork, so the child's copy of the queue is whole; the child
    // starts empty and without a writer (the parent's is not in it).
    ::pthread_atfork([] { process_output->state_->mu.lock(); }, [] { process_output->state_->mu.unlock(); },
                     [] {
                       State& s = *process_output->state_;
                       s.lines.clear();
                       s.queued_bytes = 0;
                       s.lines_done = s.lines_queued;
                       s.dropped_unreported = 0;
                       s.writer_started = false;
                       // The parent's writer may have been waiting on them: fresh ones, unwaited.
                       new (&s.queued) std::condition_variable();
                       new (&s.progress) std::condition_variable();
                       s.mu.unlock();
                     });
    std::atexit([] { process_output->Flush(kExitPatience); });
    return process_output;
  }();
  return *output;
}

void LineOutput::StartWriter(const std::shared_ptr<State>& state) {
  // Every signal blocked in the writer: a signal meant for the process (SIGTERM, which
  // brrr-echo takes with sigwait) must not land on it, and a write to a pipe without a reader
  // fails with EPIPE instead of raising SIGPIPE.
  sigset_t all;
  sigset_t before;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &before);
  try {
    std::thread(WriteLines, state).detach();
    state->writer_started = true;
  } catch (const std::system_error&) {
    // No thread to be had (the process's thread limit): the next line tries again; until
    // then lines wait in the queue.
  }
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

void LineOutput::Write(OutputStream stream, std::string line) {
  if (line.empty() || line.back() != '\n') line.push_back('\n');
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.writer_started) StartWriter(state_);
  if (s.dropped_unreported > 0) {
    std::string notice = DroppedNotice(s.dropped_unreported, s.max_queued_bytes);
    if (s.queued_bytes + notice.size() + line.size() <= s.max_queued_bytes) {
      s.queued_bytes += notice.size();
      s.lines.push_back({OutputStream::kStderr, std::move(notice)});
      ++s.lines_queued;
      s.dropped_unreported = 0;
    }
  }
  if (s.dropped_unreported > 0 || s.queued_bytes + line.size() > s.max_queued_bytes) {
    ++s.dropped[static_cast<int>(stream)];
    ++s.dropped_unreported;
    return;
  }
  s.queued_bytes += line.size();
  s.lines.push_back({stream, std::move(line)});
  ++s.lines_queued;
  s.queued.notify_one();
}

void LineOutput::WriteLines(std::shared_ptr<State> state) {
  State& s = *state;
  std::unique_lock<std::mutex> lock(s.mu);
  for (;;) {
    s.queued.wait(lock, [&] { return !s.lines.empty() || s.stopping; });
    if (s.stopping) return;
    State::Line line = std::move(s.lines.front());
    s.lines.pop_front();
    s.queued_bytes -= line.text.size();
    lock.unlock();
    bool written = WriteAll(s.fds[static_cast<int>(line.stream)], line.text, [&](uint64_t n) {
      std::lock_guard<std::mutex> counting(s.mu);
      s.bytes_written += n;
      s.progress.notify_all();
    });
    lock.lock();
    if (!written) ++s.dropped[static_cast<int>(line.stream)];
    ++s.lines_done;
    s.progress.notify_all();
  }
}

bool LineOutput::Flush(absl::Duration patience) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  const uint64_t target = s.lines_queued;
  while (s.lines_done < target) {
    const uint64_t bytes_before = s.bytes_written;
    const uint64_t done_before = s.lines_done;
    bool moved = s.progress.wait_for(lock, absl::ToChronoNanoseconds(patience), [&] {
      return s.bytes_written != bytes_before || s.lines_done != done_before;
    });
    if (!moved) return false;
  }
  return true;
}

uint64_t LineOutput::dropped(OutputStream stream) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->dropped[static_cast<int>(stream)];
}

}  // namespace brrr
