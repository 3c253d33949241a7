#include "tests/testing/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

namespace brrr::testing {

std::string Runfile(const std::string& path) {
  const char* root = std::getenv("TEST_SRCDIR");
  return std::string(root != nullptr ? root : ".") + "/brrr/" + path;
}

std::string RunInForkedChild(const std::function<int()>& body, std::chrono::seconds limit) {
  pid_t child = fork();
  if (child < 0) return std::string("fork: ") + std::strerror(errno);
  if (child == 0) {
    alarm(static_cast<unsigned>(limit.count()));
    _exit(body());
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child) return std::string("waitpid: ") + std::strerror(errno);
  if (WIFEXITED(status)) return WEXITSTATUS(status) == 0 ? "" : "exited " + std::to_string(WEXITSTATUS(status));
  std::string how = "killed by signal " + std::to_string(WTERMSIG(status));
  return WTERMSIG(status) == SIGALRM ? how + ": its time limit ran out" : how;
}

Process::Process(const std::string& binary, const std::vector<std::string>& args, ProcessOptions options) {
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    std::perror("pipe2");
    std::abort();
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The child's environment, made before fork: after it, only async-signal-safe calls.
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& o : options.env) replaced |= o.substr(0, o.find('=')) == name;
    if (!replaced) environment.push_back(entry);
  }
  for (const std::string& o : options.env) {
    if (o.find('=') != std::string::npos) environment.push_back(o);
  }
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(options.output_fd >= 0 ? options.output_fd : out[1], 1);
    dup2(options.output_fd >= 0 ? options.output_fd : err[1], 2);
    if (options.max_open_files > 0) {
      rlimit r{options.max_open_files, options.max_open_files};
      setrlimit(RLIMIT_NOFILE, &r);
    }
    if (options.own_network_namespace && unshare(CLONE_NEWNET) != 0) {
      static const char kMessage[] = "unshare(CLONE_NEWNET) failed: no network namespace of its own\n";
      ssize_t ignored = write(2, kMessage, sizeof kMessage - 1);
      (void)ignored;
      _exit(kNoNetworkNamespace);
    }
    // Signals blocked in the test (gtest threads) must not stay blocked in the child.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (options.standard_descriptors_closed) {
      close(0);
      close(1);
      close(2);
    }
    execve(binary.c_str(), argv.data(), envp.data());
    std::fprintf(stderr, "exec %s failed\n", binary.c_str());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  out_reader_ = std::thread([this, fd = out[0]] { Collect(fd, &out_); });
  err_reader_ = std::thread([this, fd = err[0]] { Collect(fd, &err_); });
}

Process::~Process() {
  if (!exit_code_.has_value() && pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(30));
  }
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

void Process::Collect(int fd, std::string* into) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    std::lock_guard<std::mutex> lock(mu_);
    into->append(buf, static_cast<size_t>(n));
  }
  close(fd);
}

std::string Process::out() const {
  std::lock_guard<std::mutex> lock(mu_);
  return out_;
}

std::string Process::err() const {
  std::lock_guard<std::mutex> lock(mu_);
  return err_;
}

bool Process::Exited() const {
  // Not exit_code_: Wait may be setting it on another thread. Once reaped, waitid no longer
  // sees the child: reaped_ says it exited.
  if (reaped_.load()) return true;
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_;
}

bool Process::WaitFor(const std::string& text, Duration timeout, std::string (Process::*stream)() const) const {
  TimePoint give_up = Clock::now() + timeout;
  bool exited = false;
  while (Clock::now() < give_up) {
    if ((this->*stream)().find(text) != std::string::npos) return true;
    if (!exited && Exited()) {
      // Its pipes are closing: what it wrote is read within a moment, then nothing more comes.
      exited = true;
      give_up = std::min(give_up, Clock::now() + std::chrono::seconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return (this->*stream)().find(text) != std::string::npos;
}

bool Process::WaitForOutput(const std::string& text, Duration timeout) const {
  return WaitFor(text, timeout, &Process::out);
}

bool Process::WaitForError(const std::string& text, Duration timeout) const {
  return WaitFor(text, timeout, &Process::err);
}

uint16_t Process::ListeningPort(Duration timeout) const {
  if (!WaitForOutput("listening on ", timeout)) return 0;
  std::smatch m;
  std::string o = out();
  if (!std::regex_search(o, m, std::regex(R"(listening on \[?[0-9a-f.:]*\]?:(\d+))"))) return 0;
  return static_cast<uint16_t>(std::stoi(m[1]));
}

void Process::Signal(int sig) const { kill(pid_, sig); }

std::optional<int> Process::Wait(Duration timeout) {
  if (exit_code_.has_value()) return exit_code_;
  TimePoint give_up = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      reaped_.store(true);
      // Everything the child wrote is read before its exit is reported: its pipes close
      // with it, so the readers end.
      if (out_reader_.joinable()) out_reader_.join();
      if (err_reader_.joinable()) err_reader_.join();
      return exit_code_;
    }
    if (Clock::now() >= give_up) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int Process::OpenFds() const {
  DIR* d = opendir(("/proc/" + std::to_string(pid_) + "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

namespace {

// A signal mask from /proc/PID/status ("ShdPnd:", "SigBlk:"...): a hexadecimal mask, bit N-1
// for signal N; 0 if the process is gone.
uint64_t StatusMask(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(field.size()), nullptr, 16);
  }
  return 0;
}

// Polls `holds` every 5 ms until it is true or `timeout` has passed; returns the last answer.
bool PollUntil(const std::function<bool()>& holds, Duration timeout) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  do {
    if (holds()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } while (std::chrono::steady_clock::now() < give_up);
  return false;
}

// Whether no thread of process `pid` can run its code: each is stopped (state T in
// /proc/PID/task/TID/stat) or gone. io_uring's kernel workers (iou-wrk-*, iou-sqp-*) aside:
// they run no code of the process.
bool AllThreadsStopped(pid_t pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(tasks.c_str());
  if (d == nullptr) return true;  // gone
  bool stopped = true;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream stat(tasks + "/" + e->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;  // the thread has just ended
    // "TID (NAME) STATE ...": the name may hold spaces and parentheses, so the last ')' ends it.
    size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= line.size()) continue;
    if (line.compare(open + 1, 4, "iou-") == 0) continue;
    char state = line[close + 2];
    if (state != 'T' && state != 'Z' && state != 'X') {
      stopped = false;
      break;
    }
  }
  closedir(d);
  return stopped;
}

}  // namespace

Stopped::Stopped(const Process& process) : process_(process) {
  process_.Signal(SIGSTOP);
  if (!process_.WaitUntilStopped()) {
    std::fprintf(stderr, "process %d did not stop within 30 s of SIGSTOP\n", static_cast<int>(process_.pid()));
    std::abort();
  }
}

bool Process::WaitUntilStopped(Duration timeout) const {
  return PollUntil([&] { return AllThreadsStopped(pid_); }, timeout);
}

void Stopped::Resume() {
  if (stopped_) process_.Signal(SIGCONT);
  stopped_ = false;
}

bool Process::WaitUntilTaken(int sig, Duration timeout) const {
  const uint64_t bit = uint64_t{1} << (sig - 1);
  // ShdPnd: the signals pending for the whole process.
  return PollUntil([&] { return (StatusMask(pid_, "ShdPnd:") & bit) == 0; }, timeout);
}

bool Process::WaitUntilBlocked(int sig, Duration timeout) const {
  const uint64_t bit = uint64_t{1} << (sig - 1);
  return PollUntil([&] { return (StatusMask(pid_, "SigBlk:") & bit) != 0; }, timeout);
}

uint64_t Process::RssBytes() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

double Process::CpuSeconds() const {
  std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which is in parentheses and may contain spaces).
  std::istringstream rest(content.substr(content.rfind(')') + 2));
  std::string field;
  uint64_t utime = 0;
  uint64_t stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::vector<std::string> StdoutOnAFullDisk(const std::string& program, const std::vector<std::string>& args) {
  std::vector<std::string> shell = {"-c", "exec \"$0\" \"$@\" >/dev/full", program};
  shell.insert(shell.end(), args.begin(), args.end());
  return shell;
}

}  // namespace brrr::testing
