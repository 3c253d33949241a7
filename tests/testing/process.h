// process.h: runs a program (a brrr binary under test) as a child process, for integration
// tests: arguments, an optional descriptor limit, its output collected in the background,
// signals, bounded waits, and what /proc says about it.
#ifndef BRRR_TESTS_TESTING_PROCESS_H_
#define BRRR_TESTS_TESTING_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/clock.h"

namespace brrr::testing {

// The path of a binary in the test's runfiles, e.g. Runfile("server/brrr-echo/brrr-echo").
std::string Runfile(const std::string& path);

// Runs `body` in a forked child of this process, without an exec (the child has this process's
// memory and one thread, the caller's: for tests of what a forked child inherits), which exits
// with what `body` returns; SIGALRM ends it after `limit`. Returns "" if it exited 0, else how
// it ended ("exited 3", "killed by signal 14: its time limit ran out"). Call it while no other
// thread of the process holds a lock the child may need.
//
//   EXPECT_EQ(RunInForkedChild([] { return LoopIsWoken() ? 0 : 1; }, std::chrono::seconds(20)), "");
std::string RunInForkedChild(const std::function<int()>& body, std::chrono::seconds limit);

// The arguments for /bin/sh that run `program args...` with its stdout on /dev/full, where
// every write fails with ENOSPC, as on a full disk:
//   Process p("/bin/sh", StdoutOnAFullDisk(Runfile("runtime/brrr-backends"), {"--json"}));
std::vector<std::string> StdoutOnAFullDisk(const std::string& program, const std::vector<std::string>& args);

struct ProcessOptions {
  uint64_t max_open_files = 0;  // RLIMIT_NOFILE for the child; 0: inherited
  // "NAME=value" entries for the child's environment, replacing inherited ones of that name;
  // "NAME" alone removes it.
  std::vector<std::string> env;
  // Runs the child in a network namespace of its own (unshare(CLONE_NEWNET); needs root or
  // CAP_SYS_ADMIN): it can listen on 0.0.0.0 with no interface but its own loopback (which is
  // down), so nothing outside this machine, or outside the child, can reach it. If the
  // namespace cannot be made, the child exits with kNoNetworkNamespace.
  bool own_network_namespace = false;
  // Starts the child with descriptors 0, 1 and 2 closed (as `prog <&- >&- 2>&-` would); out()
  // and err() then stay empty.
  bool standard_descriptors_closed = false;
  // When >= 0: the child's stdout and stderr are this descriptor (a pipe the test reads as it
  // likes, or never) instead of pipes collected into out() and err(), which then stay empty.
  int output_fd = -1;
};

class Process;

// A child stopped (SIGSTOP) for as long as this lives, or until Resume(): continued (SIGCONT)
// however the test ends, since a stopped child would hold up the SIGTERM that ends it. The
// constructor returns once every thread has stopped (WaitUntilStopped); it aborts the test if
// that takes more than 30 s.
//   { testing::Stopped frozen(server); ... frozen.Resume(); ... }
class Stopped {
 public:
  explicit Stopped(const Process& process);
  ~Stopped() { Resume(); }
  Stopped(const Stopped&) = delete;
  Stopped& operator=(const Stopped&) = delete;
  void Resume();

 private:
  const Process& process_;
  bool stopped_ = true;
};

// The exit code of a child that could not get a network namespace of its own.
inline constexpr int kNoNetworkNamespace = 125;

class Process {
 public:
  Process(const std::string& binary, const std::vector<std::string>& args, ProcessOptions options = {});
  ~Process();  // kills the child if it still runs
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Output so far (stdout, stderr).
  std::string out() const;
  std::string err() const;
  // Waits (bounded) until stdout contains `text`; returns whether it did. Gives up early, a
  // moment after the child has exited (what it wrote by then is read first).
  bool WaitForOutput(const std::string& text, Duration timeout = std::chrono::seconds(30)) const;
  // The same for stderr.
  bool WaitForError(const std::string& text, Duration timeout = std::chrono::seconds(30)) const;
  // The port from a "listening on HOST:PORT" line (waits for it), or 0.
  uint16_t ListeningPort(Duration timeout = std::chrono::seconds(30)) const;

  void Signal(int sig) const;
  // Waits (bounded) until a signal sent to the process as a whole is no longer pending: a thread
  // has taken it (sigwait) or it was delivered. Returns whether that happened within `timeout`.
  bool WaitUntilTaken(int sig, Duration timeout = std::chrono::seconds(30)) const;
  // Waits (bounded) until the process's main thread blocks `sig` (a signal sent from then on
  // stays pending until a thread takes it). Returns whether it did within `timeout`.
  bool WaitUntilBlocked(int sig, Duration timeout = std::chrono::seconds(30)) const;
  // Waits (bounded) until no thread of the process runs: each is stopped (a SIGSTOP has taken
  // effect) or gone. Not at once after Signal(SIGSTOP): the kernel hands the stop to one thread,
  // which must run to stop the others; meanwhile they go on. Returns whether it happened
  // within `timeout`.
  bool WaitUntilStopped(Duration timeout = std::chrono::seconds(30)) const;
  // The exit code once it exits within `timeout`; -signal if killed by one; nullopt if still running.
  // Once it returns an exit code, out() and err() hold everything the child wrote.
  std::optional<int> Wait(Duration timeout = std::chrono::seconds(30));

  // From /proc/PID.
  int OpenFds() const;
  uint64_t RssBytes() const;
  double CpuSeconds() const;  // user + system

 private:
  void Collect(int fd, std::string* into);
  // Until `stream` holds `text`, for at most `timeout` or a moment after the child has exited.
  bool WaitFor(const std::string& text, Duration timeout, std::string (Process::*stream)() const) const;
  // Whether the child has exited (reaped by Wait or not).
  bool Exited() const;

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::atomic<bool> reaped_{false};  // set by Wait once exit_code_ is; read by any thread
  mutable std::mutex mu_;
  std::string out_;  // guarded by mu_
  std::string err_;  // guarded by mu_
  std::thread out_reader_;
  std::thread err_reader_;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_PROCESS_H_
