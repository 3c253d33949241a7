#include "runtime/plugin_probe.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/plugin_file.h"

extern char** environ;

namespace brrr {
namespace {

// The child's orders: the plugin file to probe, and the parent's pid (the child exits if its
// parent is already gone, and is killed if the parent dies while it runs).
constexpr char kProbeEnv[] = "BRRR_PLUGIN_PROBE";
constexpr char kParentEnv[] = "BRRR_PLUGIN_PROBE_PARENT";

// The first thing the child writes, before it loads the plugin: from here on, a death or an
// exit without an answer is the plugin's doing. A child that never writes it is not a program
// that answers probes (one started through ld.so, where /proc/self/exe is the loader, runs the
// plugin file as a program), and its end says nothing about the plugin.
constexpr absl::string_view kStartedMarker = "brrr-plugin-probe-started/1\n";

// The answer is the last thing the child writes (after anything the plugin printed):
//   MARKER code "\n" capabilities "\n" description "\n" message...
constexpr absl::string_view kAnswerMarker = "\nbrrr-plugin-probe-answer/1\n";

// What the parent keeps of the child's output; the answer is short.
constexpr size_t kMaxOutput = 64 * 1024;

std::string OneLine(absl::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

std::string Encode(const BackendProbe& p) {
  return absl::StrCat(kAnswerMarker, static_cast<int>(p.status.code()), "\n", p.capabilities, "\n",
                      OneLine(p.description), "\n", p.status.message());
}

// Fills `p` from the child's output; false if there is no well-formed answer in it.
bool Decode(absl::string_view output, BackendProbe* p) {
  size_t at = output.rfind(kAnswerMarker);
  if (at == absl::string_view::npos) return false;
  std::vector<absl::string_view> parts =
      absl::StrSplit(output.substr(at + kAnswerMarker.size()), absl::MaxSplits('\n', 3));
  int code = 0;
  uint64_t capabilities = 0;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &code) || !absl::SimpleAtoi(parts[1], &capabilities) ||
      code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return false;
  }
  p->capabilities = capabilities;
  p->description = std::string(parts[2]);
  p->status = absl::Status(static_cast<absl::StatusCode>(code), parts[3]);
  return true;
}

// Writes all of `text` to the child's standard output, or ends the child.
void WriteOrExit(absl::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(126);
    text.remove_prefix(static_cast<size_t>(n));
  }
}

// The last non-empty line of the child's output (after the started marker), for a probe that
// failed without an answer.
std::string LastLine(absl::string_view output) {
  if (size_t at = output.find(kStartedMarker); at != absl::string_view::npos) {
    output.remove_prefix(at + kStartedMarker.size());
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.remove_suffix(1);
  size_t nl = output.rfind('\n');
  absl::string_view line = nl == absl::string_view::npos ? output : output.substr(nl + 1);
  return std::string(line.substr(0, 300));
}

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

std::string DurationText(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? absl::StrCat(d.count() / 1000, " s") : absl::StrCat(d.count(), " ms");
}

std::string NameOf(const std::string& path) {
  std::optional<std::string> name = BackendNameOfFile(path);
  if (name.has_value()) return *name;
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Runs before main() in every program that links this file; see the header.
__attribute__((constructor)) void AnswerProbeIfAsked() {
  const char* path = std::getenv(kProbeEnv);
  if (path == nullptr || *path == '\0') return;
  // Die with the parent rather than outlive it in a plugin that never returns.
  const char* parent = std::getenv(kParentEnv);
  int parent_pid = 0;
  if (parent == nullptr || !absl::SimpleAtoi(parent, &parent_pid) || ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
      ::getppid() != parent_pid) {
    // Set by hand, or the parent is gone: never fall through to main() with these orders.
    static constexpr char kWhy[] =
        "BRRR_PLUGIN_PROBE is set: this program then only answers a plugin probe for the process that "
        "started it; unset BRRR_PLUGIN_PROBE\n";
    ssize_t ignored = ::write(STDERR_FILENO, kWhy, sizeof kWhy - 1);
    (void)ignored;
    ::_exit(125);
  }
  // A crash must be a death by signal that the parent can name, not a sanitizer's report.
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) ::signal(sig, SIG_DFL);
  WriteOrExit(kStartedMarker);
  WriteOrExit(Encode(ProbePluginFileHere(path)));
  // No exit handlers, no leak check, no main(): the parent reads the answer and the exit status.
  ::_exit(0);
}

// The child's environment: ours without stale orders, plus the orders.
std::vector<std::string> ChildEnvironment(const std::string& path) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view entry = *e;
    if (absl::StartsWith(entry, absl::StrCat(kProbeEnv, "=")) ||
        absl::StartsWith(entry, absl::StrCat(kParentEnv, "="))) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.push_back(absl::StrCat(kProbeEnv, "=", path));
  env.push_back(absl::StrCat(kParentEnv, "=", ::getpid()));
  return env;
}

// Starts the child with stdin from /dev/null and stdout and stderr into `out_fd`; no other
// descriptor of ours (listening sockets, the admin plane's) reaches it.
absl::Status Spawn(const std::string& path, int out_fd, pid_t* pid) {
  std::vector<std::string> env = ChildEnvironment(path);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = "brrr-plugin-probe";
  std::string arg1 = path;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  // Signals the parent blocks (a server blocks SIGTERM for its sigwait thread) or ignores
  // (SIGPIPE) must not stay so in the child.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int rc = ::posix_spawn(pid, "/proc/self/exe", &actions, &attr, argv, envp.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::InternalError(absl::StrCat("posix_spawn(/proc/self/exe): ", std::strerror(rc)));
  return absl::OkStatus();
}

// Reads the child's output until it closes it or `deadline`; returns whether it closed it.
bool ReadUntilClosed(int fd, std::chrono::steady_clock::time_point deadline, std::string* output) {
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 1000)));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return true;
    if (output->size() < kMaxOutput) output->append(buf, static_cast<size_t>(n));
  }
}

// Reaps the child, killing it at `deadline`. Returns its wait status, or nullopt if another
// part of the process reaped it first (SIGCHLD set to SIG_IGN).
std::optional<int> Reap(pid_t pid, std::chrono::steady_clock::time_point deadline, bool* killed) {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) break;
    // It has closed its output, so it is exiting: this loop turns once or twice.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  *killed = true;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return std::nullopt;
  }
  return status;
}

}  // namespace

BackendProbe ProbePluginFileHere(const std::string& path) {
  BackendProbe probe;
  probe.path = path;
  probe.name = NameOf(path);
  auto plugin = LoadPluginFile(path);
  probe.answered = true;
  if (!plugin.ok()) {
    probe.status = plugin.status();
    return probe;
  }
  probe.description = (*plugin)->description();
  probe.capabilities = (*plugin)->capabilities();
  auto reactor = Reactor::Create(*plugin);
  probe.status = reactor.ok() ? absl::OkStatus() : reactor.status();
  return probe;
}

BackendProbe ProbePluginFile(const std::string& path, std::chrono::milliseconds timeout) {
  BackendProbe probe;
  probe.path = path;
  probe.name = NameOf(path);
  auto cannot_probe = [&](absl::string_view why) {
    probe.status = absl::UnavailableError(absl::StrCat(path, ": cannot probe: ", why));
    return probe;
  };
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return cannot_probe(absl::StrCat("pipe2: ", std::strerror(errno)));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pid_t pid = -1;
  absl::Status spawned = Spawn(path, fds[1], &pid);
  ::close(fds[1]);
  if (!spawned.ok()) {
    ::close(fds[0]);
    return cannot_probe(spawned.message());
  }
  std::string output;
  bool closed = ReadUntilClosed(fds[0], deadline, &output);
  ::close(fds[0]);
  bool killed = false;
  std::optional<int> status = Reap(pid, closed ? deadline : std::chrono::steady_clock::now(), &killed);
  bool clean_exit = !killed && (!status.has_value() || (WIFEXITED(*status) && WEXITSTATUS(*status) == 0));
  if (clean_exit && Decode(output, &probe)) {
    probe.answered = true;
    return probe;
  }
  std::string last = LastLine(output);
  std::string said = last.empty() ? "" : absl::StrCat(": ", last);
  if (absl::string_view(output).find(kStartedMarker) == absl::string_view::npos) {
    // Not a program that answers probes (or not in time): nothing is known about the plugin.
    std::string why = killed ? absl::StrCat("the probe process did not start within ", DurationText(timeout),
                                            " (it was killed)")
                      : status.has_value() && WIFSIGNALED(*status)
                          ? absl::StrCat("the probe process died of ", SignalName(WTERMSIG(*status)),
                                         " before it loaded the plugin (is /proc/self/exe this program?)")
                      : status.has_value() && WIFEXITED(*status)
                          ? absl::StrCat("the probe process exited with status ", WEXITSTATUS(*status),
                                         " without an answer")
                          : std::string("the probe process ended without an answer");
    return cannot_probe(absl::StrCat(why, said));
  }
  // The child had started on the plugin: how it ended is the plugin's doing, and loading the
  // plugin into a process would end that process the same way.
  probe.fatal = true;
  if (killed) {
    probe.status = absl::DeadlineExceededError(
        absl::StrCat(path, ": the probe did not answer within ", DurationText(timeout),
                     " (loading and starting the plugin in a child process, which was killed)"));
  } else if (status.has_value() && WIFSIGNALED(*status)) {
    probe.status = absl::UnavailableError(
        absl::StrCat(path, ": the probe crashed (", SignalName(WTERMSIG(*status)),
                     ") while loading and starting the plugin in a child process"));
  } else {
    std::string how = status.has_value() && WIFEXITED(*status)
                          ? absl::StrCat("ended the probe process (exit status ", WEXITSTATUS(*status), ")")
                          : std::string("ended the probe process");
    probe.status = absl::UnavailableError(absl::StrCat(
        path, ": the plugin ", how, " while it was loaded and started in a child process, without an answer", said));
  }
  return probe;
}

}  // namespace brrr
