// An upgrade on one host without a refused connection (issue 13, part 2), with the real
// binary on every backend: brrr-echo A serves (2 loops, a metrics port, an admin port, a
// hand-over socket) while clients open connections continuously, each echoing a unique
// payload; brrr-echo B (3 loops) takes the listeners over with --take_over; A drains and exits
// 0. Every connection attempt succeeded (none refused, none reset), every payload came back
// exactly, the metrics port answered throughout, and after A has gone B alone serves.
//
// The same across a chain of take-overs in quick succession, each from the process that took
// over last while those before it still drain their connections.
//
// The control: the same clients across a plain restart (A drains on SIGTERM, then B binds
// the port) do meet refused connections, which is what the hand-over removes.
//
// And the README's rules on failures and on the side ports: a commit that fails after B
// started accepting ends B (it drains what it accepted, exit 3) while A serves on; a draining
// A refuses to hand over; a metrics port that B does not serve on the same address is closed
// by A when it lets go; an admin port that B serves is answered by B from the hand-over on;
// a readiness check on the metrics port while B starts is answered for the port (by A), never
// "not listening yet".
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/unique_fd.h"
#include "server/listener_handover.h"
#include "tests/testing/backends.h"
#include "tests/testing/http_client.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"
#include "tests/testing/side_ports.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Process;

std::string EchoBinary() { return testing::Runfile("server/brrr-echo/brrr-echo"); }

// Under ThreadSanitizer (--config=tsan) the admin plane stays off: Debian's gRPC is not
// instrumented, and its reports would stop brrr-echo (the tests that need gRPC are "notsan"
// elsewhere). The hand-over itself is brrr's code, which TSan does see.
bool UnderTsan() { return testing::UnderSanitizer("tsan"); }

// A TCP connection to 127.0.0.1:port with 10 s send and receive timeouts, or -errno.
int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  timeval t{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  return fd;
}

// Sends `out` (in two parts, so a connection spans a moment), half-closes, and reads
// everything until the server closes. -errno on failure.
int Exchange(int fd, const std::string& out, std::string* in) {
  size_t half = out.size() / 2;
  for (auto [p, n] : {std::pair<size_t, size_t>{0, half}, {half, out.size() - half}}) {
    size_t sent = 0;
    while (sent < n) {
      ssize_t w = ::send(fd, out.data() + p + sent, n - sent, MSG_NOSIGNAL);
      if (w < 0) return -errno;
      sent += static_cast<size_t>(w);
    }
    if (p == 0) std::this_thread::sleep_for(milliseconds(1));
  }
  ::shutdown(fd, SHUT_WR);
  char buf[8192];
  for (;;) {
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
    if (r == 0) return 0;
    in->append(buf, static_cast<size_t>(r));
  }
}

// Threads that each open connection after connection to the echo port, one payload each,
// and count what happened. Bounded: each thread stops after kMaxPerThread connections.
class EchoClients {
 public:
  static constexpr int kThreads = 4;
  static constexpr int kMaxPerThread = 4000;

  explicit EchoClients(uint16_t port) {
    for (int t = 0; t < kThreads; ++t) threads_.emplace_back([this, port, t] { Run(port, t); });
  }
  ~EchoClients() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }
  // Waits (bounded) until `n` exchanges have succeeded in all.
  bool WaitForSucceeded(int n, std::chrono::seconds timeout = seconds(60)) const {
    for (auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;) {
      if (succeeded.load() >= n) return true;
      if (exhausted_.load() == kThreads) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }
  bool WaitForRefused(std::chrono::seconds timeout) const {
    for (auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;) {
      if (refused.load() > 0) return true;
      std::this_thread::sleep_for(milliseconds(1));
    }
    return false;
  }
  std::string first_failure() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_failure_;
  }
  // Every attempt succeeded: none refused, reset, echoed wrong or failed otherwise (once stopped).
  ::testing::AssertionResult AllSucceeded() const {
    if (refused.load() == 0 && reset.load() == 0 && wrong.load() == 0 && other.load() == 0 &&
        succeeded.load() == attempts.load()) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << attempts.load() << " attempts: " << succeeded.load() << " succeeded, "
                                         << refused.load() << " refused, " << reset.load() << " reset, "
                                         << wrong.load() << " echoed wrong, " << other.load()
                                         << " failed otherwise; the first: " << first_failure();
  }

  std::atomic<int> attempts{0};
  std::atomic<int> succeeded{0};
  std::atomic<int> refused{0};   // ECONNREFUSED at connect
  std::atomic<int> reset{0};     // ECONNRESET or EPIPE
  std::atomic<int> wrong{0};     // the echo differed from what was sent
  std::atomic<int> other{0};     // anything else (a timeout...)

 private:
  void Run(uint16_t port, int thread) {
    for (int i = 0; i < kMaxPerThread && !stop_.load(); ++i) {
      // Unique per connection: who and which, then bytes of every value.
      std::string payload = "client " + std::to_string(thread) + " connection " + std::to_string(i) + ":";
      payload += testing::RandomBytes(512 + (i % 7) * 300, static_cast<uint32_t>(thread * 100000 + i));
      attempts.fetch_add(1);
      int fd = Connect(port);
      if (fd < 0) {
        Fail(fd == -ECONNREFUSED ? refused : other, "connect", -fd);
        // A refused connection is retried soon, as a client would; not so soon that a slow
        // restart (a sanitizer build on a busy machine) uses up every attempt before the new
        // process listens: 4,000 attempts last 40 s of refusals.
        std::this_thread::sleep_for(milliseconds(10));
        continue;
      }
      std::string echoed;
      int r = Exchange(fd, payload, &echoed);
      ::close(fd);
      if (r == -ECONNRESET || r == -EPIPE) {
        Fail(reset, "exchange", -r);
      } else if (r < 0) {
        Fail(other, "exchange", -r);
      } else if (echoed != payload) {
        Fail(wrong, "echo", 0);
      } else {
        succeeded.fetch_add(1);
      }
    }
    exhausted_.fetch_add(1);
  }
  void Fail(std::atomic<int>& count, const char* what, int err) {
    count.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    if (first_failure_.empty()) {
      first_failure_ = std::string(what) + ": " + (err == 0 ? "the echo differs" : std::strerror(err));
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> exhausted_{0};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::string first_failure_;
};

// Asks the metrics port for /healthz again and again on new connections; counts answers
// other than 200.
class HealthPoller {
 public:
  explicit HealthPoller(uint16_t port) : thread_([this, port] { Run(port); }) {}
  ~HealthPoller() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::string first_failure() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_failure_;
  }

 private:
  mutable std::mutex mu_;
  std::string first_failure_;
  void Run(uint16_t port) {
    for (int i = 0; i < 100000 && !stop_.load(); ++i) {
      int fd = Connect(port);
      std::string reply;
      int r = fd < 0 ? fd : Exchange(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &reply);
      if (fd >= 0) ::close(fd);
      if (r == 0 && reply.rfind("HTTP/1.1 200", 0) == 0) {
        ok.fetch_add(1);
      } else if (failed.fetch_add(1) == 0) {
        std::lock_guard<std::mutex> lock(mu_);
        first_failure_ = r < 0 ? std::strerror(-r) : "answer: \"" + reply + "\"";
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
  }
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A short path for the hand-over socket (a UNIX socket path has 107 bytes at most).
class SocketDir {
 public:
  SocketDir() {
    char dir[] = "/tmp/brrr-handover-XXXXXX";
    EXPECT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  ~SocketDir() {
    ::unlink(path().c_str());
    ::rmdir(dir_.c_str());
  }
  std::string path() const { return dir_ + "/echo.sock"; }

 private:
  std::string dir_;
};

// Starts brrr-echo with `args` plus free ports for its metrics and admin planes (made by
// `with_ports`; testing::StartOnFreeSidePorts picks again when another process took one between
// the pick and the bind). Null, with a failure added, if it never started listening.
std::unique_ptr<Process> StartWithFreePorts(
    const std::function<std::vector<std::string>(uint16_t metrics, uint16_t admin)>& with_ports, uint16_t* metrics,
    uint16_t* admin) {
  testing::SidePorts ports;
  std::unique_ptr<Process> p = testing::StartOnFreeSidePorts(
      EchoBinary(), [&](const testing::SidePorts& picked) { return with_ports(picked.metrics, picked.admin); }, &ports);
  *metrics = ports.metrics;
  *admin = ports.admin;
  if (p->ListeningPort() == 0) {
    ADD_FAILURE() << "brrr-echo did not start: " << p->out() << p->err();
    return nullptr;
  }
  return p;
}

// The old side of a hand-over: brrr-echo on epoll, echo port picked by the kernel, with a
// hand-over socket in `dir` and the side ports StartWithFreePorts picks (`side_flags` turns
// them into flags, plus any others), started as far as offering its listeners. Null (with a
// failure added) if it did not get there; else *port is its echo port.
std::unique_ptr<Process> StartOld(const SocketDir& dir,
                                  const std::function<std::vector<std::string>(uint16_t metrics, uint16_t admin)>& side_flags,
                                  uint16_t* metrics, uint16_t* admin, uint16_t* port) {
  std::unique_ptr<Process> old = StartWithFreePorts(
      [&](uint16_t m, uint16_t a) {
        std::vector<std::string> args = {"--backend=epoll", "--port=0", "--handover_socket=" + dir.path()};
        std::vector<std::string> side = side_flags(m, a);
        args.insert(args.end(), side.begin(), side.end());
        return args;
      },
      metrics, admin);
  if (old == nullptr) return nullptr;
  *port = old->ListeningPort();
  if (*port == 0 || !old->WaitForOutput("hand-over socket at ")) {
    ADD_FAILURE() << "the old process did not offer its listeners: " << old->out() << old->err();
    return nullptr;
  }
  return old;
}

// The pid that the admin plane at `target` (127.0.0.1:admin_port for AdminPid) reports (GetServerInfo, through
// `brrrctl info`), or what went wrong. A connect alone would not do: the kernel completes it
// on a listening socket whether or not a process serves it.
std::string AdminPidAt(const std::string& target) {
  Process info(testing::Runfile("control/brrrctl/brrrctl"), {"--target=" + target, "info"});
  std::optional<int> code = info.Wait(seconds(30));
  if (code != 0) return "brrrctl info failed: " + info.out() + info.err();
  std::string out = "\n" + info.out();
  size_t row = out.find("\npid ");
  if (row == std::string::npos) return "no pid in: " + info.out();
  size_t digits = out.find_first_not_of(' ', row + 5);
  return out.substr(digits, out.find('\n', digits) - digits);
}

std::string AdminPid(uint16_t admin_port) { return AdminPidAt("127.0.0.1:" + std::to_string(admin_port)); }

// Both sides of a completed hand-over have said so: `b` took the listeners of `a`, and `a`
// handed them over to `b` (it has stopped accepting by then).
::testing::AssertionResult HandedOver(const Process& a, const Process& b) {
  if (!b.WaitForOutput("took over the listeners of pid " + std::to_string(a.pid()))) {
    return ::testing::AssertionFailure() << "the new process did not take over: " << b.out() << b.err();
  }
  if (!a.WaitForOutput("handed the listeners over to pid " + std::to_string(b.pid()))) {
    return ::testing::AssertionFailure() << "the old process did not let go: " << a.out() << a.err();
  }
  return ::testing::AssertionSuccess();
}

class HandoverTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HandoverTest, ConnectionsOpenedDuringTheHandOverAllSucceedAndEchoExactly) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  SocketDir dir;
  auto common_args = [&](uint16_t metrics, uint16_t admin) {
    std::vector<std::string> args = {"--backend=" + GetParam(), "--metrics_port=" + std::to_string(metrics),
                                     "--handover_socket=" + dir.path()};
    if (!UnderTsan()) args.push_back("--admin_port=" + std::to_string(admin));
    return args;
  };
  uint16_t metrics_port = 0;
  uint16_t admin_port = 0;
  std::unique_ptr<Process> a = StartWithFreePorts(
      [&](uint16_t metrics, uint16_t admin) {
        std::vector<std::string> args = common_args(metrics, admin);
        args.insert(args.end(), {"--port=0", "--loops=2"});
        return args;
      },
      &metrics_port, &admin_port);
  ASSERT_NE(a, nullptr);
  std::vector<std::string> common = common_args(metrics_port, admin_port);
  uint16_t port = a->ListeningPort();
  ASSERT_NE(port, 0) << a->err();
  ASSERT_TRUE(a->WaitForOutput("hand-over socket at " + dir.path())) << a->out() << a->err();

  EchoClients clients(port);
  HealthPoller health(metrics_port);
  ASSERT_TRUE(clients.WaitForSucceeded(300)) << clients.first_failure();

  // B has more loops than A had listeners: one loop binds a new sibling, every one accepts.
  std::vector<std::string> b_args = common;
  b_args.insert(b_args.end(), {"--port=" + std::to_string(port), "--loops=3", "--take_over=" + dir.path()});
  int at_b_start = clients.succeeded.load();
  auto b_started = std::chrono::steady_clock::now();
  Process b(EchoBinary(), b_args);
  ASSERT_TRUE(b.WaitForOutput("took over the listeners of pid " + std::to_string(a->pid()))) << b.out() << b.err();
  std::optional<int> a_code = a->Wait(seconds(30));
  std::printf("%s: %d exchanges between B's start and A's exit (%.0f ms)\n", GetParam().c_str(),
              clients.succeeded.load() - at_b_start,
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b_started).count());
  ASSERT_TRUE(a_code.has_value()) << "A did not drain after the hand-over: " << a->out();
  EXPECT_EQ(*a_code, 0) << a->err();
  EXPECT_NE(a->out().find("handed the listeners over to pid " + std::to_string(b.pid())), std::string::npos)
      << a->out();

  // After A has gone, B alone serves the port, and its metrics port.
  int before = clients.succeeded.load();
  ASSERT_TRUE(clients.WaitForSucceeded(before + 300)) << clients.first_failure();
  int health_before = health.ok.load();
  for (int i = 0; i < 5000 && health.ok.load() < health_before + 3; ++i) std::this_thread::sleep_for(milliseconds(2));
  clients.Stop();
  health.Stop();

  EXPECT_TRUE(clients.AllSucceeded());
  EXPECT_EQ(health.failed.load(), 0) << health.first_failure();
  EXPECT_GE(health.ok.load(), health_before + 3) << "the metrics port stopped answering after the hand-over";
  // The admin port is B's now: its gRPC server answers there.
  if (!UnderTsan()) {
    EXPECT_EQ(AdminPid(admin_port), std::to_string(b.pid()));
  }
  // And B can hand over in turn: it listens on the same path.
  EXPECT_TRUE(b.WaitForOutput("hand-over socket at " + dir.path())) << b.out() << b.err();

  b.Signal(SIGTERM);
  std::optional<int> b_code = b.Wait(seconds(30));
  ASSERT_TRUE(b_code.has_value());
  EXPECT_EQ(*b_code, 0) << b.err();
}

// Waits (bounded: 20 s) until process `pid` runs a thread named `name` (/proc/PID/task/*/comm).
bool WaitForThreadNamed(pid_t pid, const std::string& name) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (int i = 0; i < 20000; ++i) {
    bool found = false;
    if (DIR* dir = ::opendir(tasks.c_str()); dir != nullptr) {
      while (dirent* task = ::readdir(dir)) {
        if (task->d_name[0] == '.') continue;
        std::ifstream comm(tasks + "/" + task->d_name + "/comm");
        std::string line;
        if (std::getline(comm, line) && line == name) found = true;
      }
      ::closedir(dir);
    }
    if (found) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return false;
}

// A balancer's readiness check on the metrics port during a hand-over is answered for the port,
// which is served all along: never "not listening yet". The new process accepted on the port it
// took as soon as its metrics loop ran, before its echo loops had mapped their receive pools
// (about 100 ms with 3 loops: 9 of 1,700 checks 2 ms apart failed by hand, whenever the kernel
// gave it the check rather than the old process), and answered 503 "not ready: not listening
// yet". Now it accepts there once its echo server runs, and the old one answers until then. To
// leave the new process the only one that can accept, the old one is stopped as soon as the new
// one's metrics thread runs (its pools made larger, so that its echo loops are surely still
// starting then), and a check is sent.
TEST_P(HandoverTest, AReadinessCheckWhileTheNewProcessStartsIsNotAnsweredNotListeningYet) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  SocketDir dir;
  uint16_t metrics_port = 0;
  uint16_t admin_port = 0;
  uint16_t port = 0;
  std::unique_ptr<Process> a = StartOld(
      dir, [](uint16_t m, uint16_t) { return std::vector<std::string>{"--metrics_port=" + std::to_string(m)}; },
      &metrics_port, &admin_port, &port);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(testing::HttpGet(metrics_port, "/readyz").status, 200);

  Process b(EchoBinary(), {"--backend=" + GetParam(), "--port=" + std::to_string(port), "--loops=2",
                           "--recv_buffers=4096", "--recv_buffer_size=65536",
                           "--metrics_port=" + std::to_string(metrics_port), "--take_over=" + dir.path()});
  ASSERT_TRUE(WaitForThreadNamed(b.pid(), "brrr-metrics")) << b.out() << b.err();
  a->Signal(SIGSTOP);
  ASSERT_TRUE(a->WaitUntilStopped());
  const bool b_was_listening = b.out().find("listening on") != std::string::npos;
  testing::HttpReply check = testing::HttpGet(metrics_port, "/readyz");
  a->Signal(SIGCONT);
  std::printf("%s: the check, sent %s the new process listened: %d %s\n", GetParam().c_str(),
              b_was_listening ? "after" : "before", check.status, check.body.c_str());
  EXPECT_EQ(check.status, 200) << check.head << check.body;

  ASSERT_TRUE(HandedOver(*a, b));
  std::optional<int> a_code = a->Wait(seconds(30));
  ASSERT_TRUE(a_code.has_value()) << "A did not drain after the hand-over: " << a->out();
  EXPECT_EQ(*a_code, 0) << a->err();
  EXPECT_EQ(testing::HttpGet(metrics_port, "/readyz").status, 200);
  b.Signal(SIGTERM);
  std::optional<int> b_code = b.Wait(seconds(30));
  ASSERT_TRUE(b_code.has_value());
  EXPECT_EQ(*b_code, 0) << b.err();
}

TEST_P(HandoverTest, ConnectionsQueuedForTheOldProcessAreAcceptedByTheNewOne) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  if (UnderTsan()) GTEST_SKIP() << "pauses accepting through the admin plane (gRPC), which TSan runs cannot use";
  SocketDir dir;
  uint16_t unused_metrics_port = 0;
  uint16_t admin_port = 0;
  std::unique_ptr<Process> started = StartWithFreePorts(
      [&](uint16_t, uint16_t admin) {
        return std::vector<std::string>{"--backend=" + GetParam(), "--port=0", "--loops=2",
                                        "--admin_port=" + std::to_string(admin), "--handover_socket=" + dir.path()};
      },
      &unused_metrics_port, &admin_port);
  ASSERT_NE(started, nullptr);
  Process& a = *started;
  uint16_t port = a.ListeningPort();
  ASSERT_NE(port, 0) << a.err();
  ASSERT_TRUE(a.WaitForOutput("hand-over socket at ")) << a.out() << a.err();
  // A stops accepting: new clients wait in its listeners' accept queues (the kernel completes
  // their handshakes), both of them, as SO_REUSEPORT spreads them.
  Process pause(testing::Runfile("control/brrrctl/brrrctl"),
                {"--target=127.0.0.1:" + std::to_string(admin_port), "throttle", "--pause"});
  ASSERT_EQ(pause.Wait(seconds(30)), 0) << pause.out() << pause.err();
  std::vector<int> queued;
  std::vector<std::string> payloads;
  for (int i = 0; i < 32; ++i) {
    int fd = Connect(port);
    ASSERT_GE(fd, 0) << std::strerror(-fd);
    queued.push_back(fd);
    payloads.push_back("queued " + std::to_string(i) + ":" + testing::RandomBytes(700, static_cast<uint32_t>(i)));
    ASSERT_EQ(::send(fd, payloads.back().data(), payloads.back().size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(payloads.back().size()));
    ::shutdown(fd, SHUT_WR);
  }
  // B runs one loop: it accepts on both of A's listeners.
  Process b(EchoBinary(), {"--backend=" + GetParam(), "--port=" + std::to_string(port), "--loops=1",
                           "--admin_port=" + std::to_string(admin_port), "--take_over=" + dir.path()});
  ASSERT_TRUE(b.WaitForOutput("took over the listeners of pid ")) << b.out() << b.err();
  std::optional<int> a_code = a.Wait(seconds(30));
  ASSERT_TRUE(a_code.has_value()) << a.out();
  EXPECT_EQ(*a_code, 0) << a.err();
  EXPECT_NE(a.out().find("0 connections served"), std::string::npos) << "A accepted while paused: " << a.out();
  for (size_t i = 0; i < queued.size(); ++i) {
    char buf[4096];
    std::string echoed;
    for (;;) {
      ssize_t r = ::recv(queued[i], buf, sizeof buf, 0);
      if (r <= 0) {
        EXPECT_EQ(r, 0) << "connection " << i << ": " << std::strerror(errno);
        break;
      }
      echoed.append(buf, static_cast<size_t>(r));
    }
    EXPECT_TRUE(echoed == payloads[i]) << "connection " << i << ": " << echoed.size() << " of " << payloads[i].size()
                                       << " bytes came back, or other bytes";
    ::close(queued[i]);
  }
  b.Signal(SIGTERM);
  std::optional<int> b_code = b.Wait(seconds(30));
  ASSERT_TRUE(b_code.has_value());
  EXPECT_EQ(*b_code, 0) << b.err();
  EXPECT_NE(b.out().find("32 connections served"), std::string::npos) << b.out();
}

// Restarts in quick succession: a chain of take-overs, each new process (with 1, 2 or 3 loops)
// taking over from the one that took over last while those before it still drain, each held
// open by a client. With clients connecting all along, none is refused or reset and every echo
// is exact, the metrics port answers throughout, the held connections are still echoed at the
// end, and once their clients close them every process exits 0.
TEST_P(HandoverTest, AChainOfTakeOversWhileEarlierProcessesStillDrainLosesNothing) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  constexpr int kProcesses = 5;
  SocketDir dir;
  uint16_t metrics_port = 0;
  uint16_t unused_admin_port = 0;
  std::vector<std::string> common = {"--backend=" + GetParam(), "--handover_socket=" + dir.path(),
                                     "--drain_timeout=120s"};
  std::vector<std::unique_ptr<Process>> processes;
  processes.push_back(StartWithFreePorts(
      [&](uint16_t metrics, uint16_t) {
        std::vector<std::string> args = common;
        args.insert(args.end(), {"--port=0", "--loops=2", "--metrics_port=" + std::to_string(metrics)});
        return args;
      },
      &metrics_port, &unused_admin_port));
  ASSERT_NE(processes[0], nullptr);
  const uint16_t port = processes[0]->ListeningPort();
  common.push_back("--port=" + std::to_string(port));
  common.push_back("--metrics_port=" + std::to_string(metrics_port));

  EchoClients clients(port);
  HealthPoller health(metrics_port);
  std::vector<std::unique_ptr<testing::BlockingClient>> held;  // held[i]: processes[i]'s
  for (int i = 1; i < kProcesses; ++i) {
    Process& serving = *processes.back();
    ASSERT_TRUE(serving.WaitForOutput("hand-over socket at " + dir.path())) << serving.out() << serving.err();
    // A connection that keeps a process draining from the hand-over on: `serving`'s, mostly (the
    // process before it may still take it from the backlog as its accept ends: Socket::accept_queued).
    held.push_back(std::make_unique<testing::BlockingClient>(port));
    const std::string hello = "held by process " + std::to_string(i - 1);
    ASSERT_TRUE(held.back()->send_all(hello));
    ASSERT_EQ(held.back()->recv_exact(hello.size()), hello);
    ASSERT_TRUE(clients.WaitForSucceeded(clients.succeeded.load() + 100)) << clients.first_failure();

    std::vector<std::string> args = common;
    args.insert(args.end(), {"--loops=" + std::to_string(1 + i % 3), "--take_over=" + dir.path()});
    processes.push_back(std::make_unique<Process>(EchoBinary(), args));
    ASSERT_TRUE(HandedOver(serving, *processes.back()));
  }
  ASSERT_TRUE(clients.WaitForSucceeded(clients.succeeded.load() + 300)) << clients.first_failure();
  clients.Stop();
  health.Stop();
  EXPECT_TRUE(clients.AllSucceeded());
  EXPECT_EQ(health.failed.load(), 0) << health.first_failure();

  // Every connection held open is still echoed by the process that holds it, and once they have all
  // gone every process that handed over exits 0.
  for (size_t i = 0; i < held.size(); ++i) {
    const std::string line = "still echoed " + std::to_string(i);
    ASSERT_TRUE(held[i]->send_all(line));
    EXPECT_EQ(held[i]->recv_exact(line.size()), line);
  }
  for (auto& client : held) {
    client->shutdown_write();
    EXPECT_EQ(client->recv_until_eof(), "");
  }
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_EQ(processes[i]->Wait(seconds(30)), 0)
        << "process " << i << ": " << processes[i]->out() << processes[i]->err();
  }
  processes.back()->Signal(SIGTERM);
  EXPECT_EQ(processes.back()->Wait(seconds(30)), 0) << processes.back()->err();
}

INSTANTIATE_TEST_SUITE_P(Backends, HandoverTest, ::testing::ValuesIn(testing::AllBackends()), testing::BackendName());

std::string EchoOf(uint16_t port, const std::string& payload) {
  int fd = Connect(port);
  if (fd < 0) return std::string("connect: ") + std::strerror(-fd);
  std::string echoed;
  int r = Exchange(fd, payload, &echoed);
  ::close(fd);
  return r == 0 ? echoed : std::string("exchange: ") + std::strerror(-r);
}

// A take-over that cannot happen ends the new process with exit code 3 and the reason; the
// running one serves on and can still hand over afterwards.
TEST(TakeOverErrorsTest, TheNewProcessExits3AndTheOldOneServesOn) {
  SocketDir dir;
  Process a(EchoBinary(), {"--backend=epoll", "--port=0", "--loops=2", "--handover_socket=" + dir.path()});
  uint16_t port = a.ListeningPort();
  ASSERT_NE(port, 0) << a.err();
  ASSERT_TRUE(a.WaitForOutput("hand-over socket at ")) << a.out() << a.err();
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const Case cases[] = {
      {{"--port=0", "--take_over=" + dir.path() + ".missing"}, "no brrr-echo listens for a hand-over at"},
      {{"--port=" + std::to_string(testing::PickFreePort()), "--take_over=" + dir.path()}, "address mismatch"},
      {{"--port=0", "--host=::1", "--take_over=" + dir.path()}, "address mismatch"},
      // --take_over_or_start starts afresh only where nobody listens: where one runs, a take-over
      // that fails ends the new process with 3 as well, and it binds no port of its own.
      {{"--port=" + std::to_string(testing::PickFreePort()), "--take_over=" + dir.path(), "--take_over_or_start"},
       "address mismatch"},
      // Its own hand-over socket cannot be another live one.
      {{"--port=0", "--handover_socket=" + dir.path()}, "another process listens there"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.push_back("--backend=epoll");
    Process b(EchoBinary(), args);
    std::optional<int> code = b.Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << c.error;
    EXPECT_EQ(*code, 3) << b.out() << b.err();
    EXPECT_NE(b.err().find(c.error), std::string::npos) << b.err();
    EXPECT_EQ(EchoOf(port, "still here"), "still here") << c.error;
  }
  EXPECT_FALSE(a.Wait(milliseconds(0)).has_value()) << "the old process stopped: " << a.out() << a.err();
  // And it hands over when asked properly.
  Process b(EchoBinary(), {"--backend=epoll", "--port=0", "--take_over=" + dir.path()});
  ASSERT_TRUE(b.WaitForOutput("took over the listeners of pid ")) << b.out() << b.err();
  std::optional<int> a_code = a.Wait(seconds(30));
  ASSERT_TRUE(a_code.has_value());
  EXPECT_EQ(*a_code, 0) << a.err();
  EXPECT_EQ(EchoOf(port, "now B"), "now B");
  b.Signal(SIGTERM);
  EXPECT_EQ(b.Wait(seconds(30)), 0);
}

// A stop signal while the new process waits for the running one's answer (here a running
// process that is stopped, so the wait would last its 10 s) ends the new one at once, as the
// signal would, saying so; the running one, its take-over gone, serves on.
TEST(TakeOverErrorsTest, AStopSignalWhileTakingOverEndsTheNewProcessAtOnceAndTheOldOneServesOn) {
  SocketDir dir;
  Process a(EchoBinary(), {"--backend=epoll", "--port=0", "--handover_socket=" + dir.path()});
  uint16_t port = a.ListeningPort();
  ASSERT_NE(port, 0) << a.err();
  ASSERT_TRUE(a.WaitForOutput("hand-over socket at ")) << a.out() << a.err();
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    testing::Stopped frozen(a);
    Process b(EchoBinary(), {"--backend=epoll", "--port=0", "--take_over=" + dir.path()});
    ASSERT_TRUE(b.WaitUntilBlocked(sig)) << "brrr-echo never blocked the stop signals";
    b.Signal(sig);
    std::optional<int> code = b.Wait(seconds(30));
    frozen.Resume();
    ASSERT_TRUE(code.has_value()) << strsignal(sig);
    EXPECT_EQ(*code, -sig) << strsignal(sig) << ": not ended by the signal: " << b.out() << b.err();
    EXPECT_NE(b.out().find(std::string(strsignal(sig)) + " while starting: stopping before serving anything"),
              std::string::npos)
        << b.out() << b.err();
    EXPECT_EQ(EchoOf(port, "still here"), "still here") << strsignal(sig);
  }
  EXPECT_FALSE(a.Wait(milliseconds(0)).has_value()) << "the old process stopped: " << a.out() << a.err();
  a.Signal(SIGTERM);
  EXPECT_EQ(a.Wait(seconds(30)), 0) << a.err();
}

// Each loop's connections_accepted in `brrrctl stats --json` (its loops come first, in order,
// then the total): the first `loops` of them.
std::vector<int> AcceptedPerLoop(const std::string& json, size_t loops) {
  std::vector<int> accepted;
  const std::string key = "\"connections_accepted\":";
  for (size_t at = json.find(key); at != std::string::npos && accepted.size() < loops; at = json.find(key, at + 1)) {
    accepted.push_back(std::atoi(json.c_str() + at + key.size()));
  }
  return accepted;
}

// A TCP port in use: a socket of this process listens on it.
class TakenPort {
 public:
  TakenPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof a;
    if (fd_.valid() && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::listen(fd_.get(), 1) == 0 && ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &size) == 0) {
      port_ = ntohs(a.sin_port);
    }
  }
  uint16_t port() const { return port_; }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
};

// A take-over that fails after the new process has set up its loops, the new one having more
// loops than the old one (here its admin port is taken): the loops without a handed-over
// socket had bound siblings in the port's SO_REUSEPORT group that listened at once, took their
// share of new connections, and reset them as the process exited (15 resets in 5 attempts
// under 3 clients). They listen only after the commit now, so the old one's clients see
// nothing. Then a take-over that succeeds: every one of the new process's loops accepts.
TEST(TakeOverErrorsTest, AFailedTakeOverWithMoreLoopsResetsNoClient) {
  if (UnderTsan()) GTEST_SKIP() << "starts the admin plane (gRPC), which TSan runs cannot use";
  SocketDir dir;
  Process a(EchoBinary(), {"--backend=epoll", "--port=0", "--loops=1", "--handover_socket=" + dir.path()});
  uint16_t port = a.ListeningPort();
  ASSERT_NE(port, 0) << a.err();
  ASSERT_TRUE(a.WaitForOutput("hand-over socket at ")) << a.out() << a.err();
  TakenPort taken;  // the new process's admin port
  ASSERT_NE(taken.port(), 0);
  {
    EchoClients clients(port);
    ASSERT_TRUE(clients.WaitForSucceeded(50));
    for (int attempt = 0; attempt < 5; ++attempt) {
      Process b(EchoBinary(), {"--backend=epoll", "--port=0", "--loops=4", "--take_over=" + dir.path(),
                               "--admin_port=" + std::to_string(taken.port())});
      std::optional<int> code = b.Wait(seconds(30));
      ASSERT_TRUE(code.has_value());
      EXPECT_EQ(*code, 3) << b.out() << b.err();
      EXPECT_NE(b.err().find("Address already in use"), std::string::npos) << b.err();
    }
    int before = clients.succeeded.load();
    EXPECT_TRUE(clients.WaitForSucceeded(before + 50));
    clients.Stop();
    EXPECT_EQ(clients.reset.load(), 0) << clients.first_failure();
    EXPECT_EQ(clients.refused.load(), 0) << clients.first_failure();
    EXPECT_EQ(clients.other.load(), 0) << clients.first_failure();
    EXPECT_EQ(clients.wrong.load(), 0);
  }

  uint16_t admin_port = testing::PickFreePort();
  Process b(EchoBinary(), {"--backend=epoll", "--port=0", "--loops=4", "--take_over=" + dir.path(),
                           "--admin_port=" + std::to_string(admin_port)});
  ASSERT_TRUE(b.WaitForOutput("took over the listeners of pid ")) << b.out() << b.err();
  EXPECT_EQ(a.Wait(seconds(30)), 0) << a.err();
  // Connections spread over the four loops' sockets: each loop accepts some (bounded: 400).
  std::vector<int> per_loop;
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(EchoOf(port, "spread"), "spread");
    if (i % 100 != 99) continue;
    Process stats(testing::Runfile("control/brrrctl/brrrctl"),
                  {"--target=127.0.0.1:" + std::to_string(admin_port), "--json", "stats"});
    ASSERT_EQ(stats.Wait(seconds(30)), 0) << stats.err();
    per_loop = AcceptedPerLoop(stats.out(), 4);
    if (per_loop.size() == 4 && std::count(per_loop.begin(), per_loop.end(), 0) == 0) break;
  }
  ASSERT_EQ(per_loop.size(), 4u);
  for (size_t loop = 0; loop < per_loop.size(); ++loop) EXPECT_GT(per_loop[loop], 0) << "loop " << loop;
  b.Signal(SIGTERM);
  EXPECT_EQ(b.Wait(seconds(30)), 0) << b.err();
}

// A process killed without its drain (SIGKILL, a crash) leaves its hand-over socket behind.
// With --take_over the next start found nobody there and exited 3, so a service manager that
// restarts with the upgrade's command line (deploy/brrr-echo@.service) never brought the
// instance back; with --take_over_or_start it starts afresh, replaces the stale socket, and
// hands over from there as usual.
TEST(TakeOverOrStartTest, AfterAProcessDiedTheNextStartsAfreshAndCanHandOver) {
  SocketDir dir;
  const std::string path = dir.path();
  Process a(EchoBinary(), {"--backend=epoll", "--port=0", "--handover_socket=" + path});
  ASSERT_NE(a.ListeningPort(), 0) << a.err();
  ASSERT_TRUE(a.WaitForOutput("hand-over socket at ")) << a.out() << a.err();
  a.Signal(SIGKILL);
  ASSERT_TRUE(a.Wait(seconds(30)).has_value());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << "the killed process's socket file is gone";
  ASSERT_TRUE(S_ISSOCK(st.st_mode));

  const std::vector<std::string> restart = {"--backend=epoll", "--port=0", "--handover_socket=" + path,
                                            "--take_over=" + path};
  {
    Process b(EchoBinary(), restart);
    std::optional<int> code = b.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 3) << b.out() << b.err();
    EXPECT_NE(b.err().find("no brrr-echo listens for a hand-over at " + path), std::string::npos) << b.err();
  }
  std::vector<std::string> or_start = restart;
  or_start.push_back("--take_over_or_start");
  Process c(EchoBinary(), or_start);
  uint16_t port = c.ListeningPort();
  ASSERT_NE(port, 0) << c.err();
  EXPECT_NE(c.out().find("no brrr-echo listens for a hand-over at " + path + ": starting afresh"), std::string::npos)
      << c.out();
  ASSERT_TRUE(c.WaitForOutput("hand-over socket at " + path)) << c.out() << c.err();
  EXPECT_EQ(EchoOf(port, "back after the crash"), "back after the crash");

  // The same command line takes over from a running one.
  Process d(EchoBinary(), or_start);
  ASSERT_TRUE(d.WaitForOutput("took over the listeners of pid ")) << d.out() << d.err();
  EXPECT_EQ(d.out().find("starting afresh"), std::string::npos) << d.out();
  std::optional<int> c_code = c.Wait(seconds(30));
  ASSERT_TRUE(c_code.has_value());
  EXPECT_EQ(*c_code, 0) << c.err();
  EXPECT_EQ(EchoOf(port, "now D"), "now D");
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(seconds(30)), 0) << d.err();

  Process alone(EchoBinary(), {"--take_over_or_start"});
  EXPECT_EQ(alone.Wait(seconds(30)), 2);
  EXPECT_NE(alone.err().find("--take_over_or_start needs --take_over=PATH"), std::string::npos) << alone.err();
}

// A listening socket on 127.0.0.1 (port 0: a free one), as a process that holds the port.
UniqueFd ListenOn(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd.get(), 8) != 0) return UniqueFd();
  return fd;
}

uint16_t PortOf(int fd) {
  sockaddr_in a{};
  socklen_t size = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size) != 0) return 0;
  return ntohs(a.sin_port);
}

// The file a process killed with its hand-over socket open leaves behind: nobody listens there.
void LeaveAStaleSocket(const std::string& path) {
  ::unlink(path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
}

// The wait a start afresh announces for `at` ("... is still in use: waiting up to N ms"): N, or
// -1 if `out` has no such line. N is what is left of the 2 s when the port is first found in use
// (2000 at once, a little less on a loaded machine).
int AnnouncedWaitMs(const std::string& out, const std::string& at) {
  const std::string line = at + " is still in use: waiting up to ";
  const size_t found = out.find(line);
  if (found == std::string::npos) return -1;
  return std::atoi(out.c_str() + found + line.size());
}

// A process killed during a take-over (io_uring's, whose ring the kernel tears down after the
// process has exited) still holds its listening sockets for 10 to 360 ms after the new process
// found nobody at the hand-over socket: that one, starting afresh, exited 3 ("Address already in
// use") and left the port to nobody. Now a start afresh by --take_over_or_start waits up to 2 s
// while one of its ports is held; a plain start still fails at once. Here the test holds the port.
TEST(TakeOverOrStartTest, AStartAfreshWaitsForTheDeadProcessesPorts) {
  SocketDir dir;
  const std::string path = dir.path();
  UniqueFd held = ListenOn(0);
  ASSERT_TRUE(held.valid());
  const uint16_t port = PortOf(held.get());
  const std::string at = "127.0.0.1:" + std::to_string(port);
  const std::vector<std::string> plain = {"--backend=epoll", "--port=" + std::to_string(port)};
  {
    Process p(EchoBinary(), plain);
    EXPECT_EQ(p.Wait(seconds(30)), 3) << p.out() << p.err();
    EXPECT_NE(p.err().find("Address already in use"), std::string::npos) << p.err();
    EXPECT_EQ(p.out().find("still in use"), std::string::npos) << p.out();
  }
  std::vector<std::string> or_start = plain;
  for (std::string flag : {"--handover_socket=", "--take_over="}) or_start.push_back(flag + path);
  or_start.push_back("--take_over_or_start");
  LeaveAStaleSocket(path);
  {
    // Held for good: given up after the wait, with the bind's own error.
    Process p(EchoBinary(), or_start);
    EXPECT_EQ(p.Wait(seconds(30)), 3) << p.out() << p.err();
    const int announced = AnnouncedWaitMs(p.out(), at);
    EXPECT_GT(announced, 1000) << p.out();
    EXPECT_LE(announced, 2000) << p.out();
    EXPECT_NE(p.err().find("Address already in use"), std::string::npos) << p.err();
  }
  LeaveAStaleSocket(path);
  Process p(EchoBinary(), or_start);
  ASSERT_TRUE(p.WaitForOutput(at + " is still in use: waiting up to ")) << p.out() << p.err();
  held.reset();
  ASSERT_EQ(p.ListeningPort(), port) << p.out() << p.err();
  EXPECT_NE(p.out().find(at + " is free after "), std::string::npos) << p.out();
  EXPECT_EQ(EchoOf(port, "the port was the dead one's"), "the port was the dead one's");
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(seconds(30)), 0) << p.err();
}

// A start afresh opens its hand-over socket only once it holds its ports. "Nobody listens at
// the path" is also what it sees between a running process letting go (which removes its socket
// file first) and its successor listening there; opening the path first, it took the path from
// that successor (which warned that no new process could take over from it), then failed on the
// ports, the successor's, and exited 3: nobody listened at the path after it, and no upgrade
// could follow (a restart soak found it). Here the successor starts on the path while the start
// afresh waits for a held port, stopped there so that the order is certain.
TEST(TakeOverOrStartTest, AStartAfreshOpensTheHandOverPathOnlyOnceItHoldsThePorts) {
  SocketDir dir;
  const std::string path = dir.path();
  UniqueFd held = ListenOn(0);
  ASSERT_TRUE(held.valid());
  const uint16_t held_port = PortOf(held.get());
  Process afresh(EchoBinary(), {"--backend=epoll", "--port=" + std::to_string(held_port), "--handover_socket=" + path,
                                "--take_over=" + path, "--take_over_or_start"});
  ASSERT_TRUE(afresh.WaitForOutput(" is still in use: waiting up to ")) << afresh.out() << afresh.err();
  std::unique_ptr<Process> serving;
  uint16_t port = 0;
  {
    testing::Stopped frozen(afresh);
    serving = std::make_unique<Process>(
        EchoBinary(), std::vector<std::string>{"--backend=epoll", "--port=0", "--handover_socket=" + path});
    port = serving->ListeningPort();
    ASSERT_NE(port, 0) << serving->err();
    ASSERT_TRUE(serving->WaitForOutput("hand-over socket at " + path)) << serving->out() << serving->err();
  }
  // The start afresh never gets its port, and leaves the path to the process serving there.
  EXPECT_EQ(afresh.Wait(seconds(30)), 3) << afresh.out() << afresh.err();
  EXPECT_NE(afresh.err().find("Address already in use"), std::string::npos) << afresh.err();
  EXPECT_EQ(afresh.out().find("hand-over socket at"), std::string::npos) << afresh.out();
  Process next(EchoBinary(), {"--backend=epoll", "--port=0", "--take_over=" + path, "--handover_socket=" + path});
  ASSERT_TRUE(HandedOver(*serving, next));
  EXPECT_EQ(serving->Wait(seconds(30)), 0) << serving->err();
  EXPECT_EQ(EchoOf(port, "an upgrade after the failed start"), "an upgrade after the failed start");
  next.Signal(SIGTERM);
  EXPECT_EQ(next.Wait(seconds(30)), 0) << next.err();
}

TEST(PlainRestartTest, WithoutAHandOverConnectionsAreRefused) {
  std::vector<std::string> args = {"--backend=epoll", "--loops=2"};
  std::vector<std::string> a_args = args;
  a_args.push_back("--port=0");
  Process a(EchoBinary(), a_args);
  uint16_t port = a.ListeningPort();
  ASSERT_NE(port, 0) << a.err();
  EchoClients clients(port);
  ASSERT_TRUE(clients.WaitForSucceeded(300)) << clients.first_failure();
  // The old way: A stops (SIGTERM closes its listeners), then B binds the port.
  a.Signal(SIGTERM);
  EXPECT_TRUE(clients.WaitForRefused(seconds(30)));
  std::optional<int> a_code = a.Wait(seconds(30));
  ASSERT_TRUE(a_code.has_value());
  std::vector<std::string> b_args = args;
  b_args.push_back("--port=" + std::to_string(port));
  Process b(EchoBinary(), b_args);
  ASSERT_EQ(b.ListeningPort(), port) << b.err();
  int before = clients.succeeded.load();
  ASSERT_TRUE(clients.WaitForSucceeded(before + 100)) << clients.first_failure();
  clients.Stop();
  EXPECT_GT(clients.refused.load(), 0);
  b.Signal(SIGTERM);
  EXPECT_TRUE(b.Wait(seconds(30)).has_value());
}

// A take-over from a process that drains is refused, also during its --drain_grace, when it
// still accepts: it is about to close its listeners, and a new process would take sockets it
// is leaving. The new one exits 3 naming the reason; the old one serves out its grace.
// GET `path` on a new connection to the metrics port 127.0.0.1:port: the status line, or what
// went wrong.
std::string StatusLine(uint16_t port, const std::string& path) {
  int fd = Connect(port);
  if (fd < 0) return std::string("connect: ") + std::strerror(-fd);
  std::string reply;
  int r = Exchange(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &reply);
  ::close(fd);
  if (r < 0) return std::string("exchange: ") + std::strerror(-r);
  return reply.substr(0, reply.find("\r\n"));
}

TEST(TakeOverErrorsTest, ADrainingProcessDoesNotHandOver) {
  SocketDir dir;
  uint16_t metrics_port = 0;
  uint16_t unused_admin = 0;
  uint16_t port = 0;
  std::unique_ptr<Process> started = StartOld(
      dir,
      [](uint16_t metrics, uint16_t) {
        return std::vector<std::string>{"--drain_grace=10m", "--metrics_port=" + std::to_string(metrics)};
      },
      &metrics_port, &unused_admin, &port);
  ASSERT_NE(started, nullptr);
  Process& a = *started;
  a.Signal(SIGTERM);
  // /readyz turns once the drain has started (the log line comes just before it): bounded wait.
  std::string ready;
  for (int i = 0; i < 3000; ++i) {
    ready = StatusLine(metrics_port, "/readyz");
    if (ready == "HTTP/1.1 503 Service Unavailable") break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(ready, "HTTP/1.1 503 Service Unavailable") << a.out() << a.err();
  Process b(EchoBinary(), {"--backend=epoll", "--port=0", "--take_over=" + dir.path()});
  std::optional<int> code = b.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "B took over from a draining process: " << b.out() << a.out();
  EXPECT_EQ(*code, 3) << b.out() << b.err();
  EXPECT_NE(b.err().find("draining"), std::string::npos) << b.err();
  EXPECT_EQ(b.out().find("took over the listeners"), std::string::npos) << b.out();
  // Nor does a start afresh happen beside it: a draining process still listens there.
  Process c(EchoBinary(), {"--backend=epoll", "--port=0", "--take_over=" + dir.path(), "--take_over_or_start"});
  code = c.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "C started beside a draining process: " << c.out() << a.out();
  EXPECT_EQ(*code, 3) << c.out() << c.err();
  EXPECT_NE(c.err().find("draining"), std::string::npos) << c.err();
  EXPECT_EQ(c.out().find("starting afresh"), std::string::npos) << c.out();
  // A is in its grace: it still accepts and echoes.
  EXPECT_EQ(EchoOf(port, "in the grace"), "in the grace");
  EXPECT_EQ(a.out().find("handed the listeners over"), std::string::npos) << a.out();
  a.Signal(SIGTERM);  // a second signal ends the grace and the drain
  EXPECT_EQ(a.Wait(seconds(30)), 0) << a.err();
}

// A start afresh waits for each of its ports that a dead process may still hold, not only the
// first: here the echo port is free and the metrics port is held.
TEST(TakeOverOrStartTest, AStartAfreshWaitsForEveryPortItServes) {
  SocketDir dir;
  const std::string path = dir.path();
  UniqueFd held = ListenOn(0);
  ASSERT_TRUE(held.valid());
  const uint16_t metrics_port = PortOf(held.get());
  const std::string at = "127.0.0.1:" + std::to_string(metrics_port);
  LeaveAStaleSocket(path);
  Process p(EchoBinary(), {"--backend=epoll", "--port=" + std::to_string(testing::PickFreePort()),
                           "--metrics_port=" + std::to_string(metrics_port), "--handover_socket=" + path,
                           "--take_over=" + path, "--take_over_or_start"});
  ASSERT_TRUE(p.WaitForOutput(at + " is still in use: waiting up to ")) << p.out() << p.err();
  held.reset();
  ASSERT_TRUE(p.WaitForOutput(at + " is free after ")) << p.out() << p.err();
  ASSERT_NE(p.ListeningPort(), 0) << p.out() << p.err();
  EXPECT_EQ(StatusLine(metrics_port, "/healthz"), "HTTP/1.1 200 OK") << p.out() << p.err();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(seconds(30)), 0) << p.err();
}

// Stands between a new brrr-echo and the old one's hand-over socket, at a path of its own, and
// passes the exchange on (HELLO, the offer and its listeners) until the new process says TAKEN;
// by then it accepts on the listeners and waits for RELEASED. Cut() closes both connections
// instead of passing TAKEN on: to the new process the old one went away before RELEASED, and
// the old one sees a new process that left without taking anything.
class HandoverInterceptor {
 public:
  HandoverInterceptor(const std::string& old_path, std::string path) : path_(std::move(path)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    EXPECT_LT(path_.size(), sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path_.data(), std::min(path_.size(), sizeof addr.sun_path - 1));
    listener_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    EXPECT_EQ(::listen(listener_.get(), 1), 0) << std::strerror(errno);
    thread_ = std::thread([this, old_path] { Report(Run(old_path)); });
  }
  ~HandoverInterceptor() {
    Cut();
    thread_.join();
    ::unlink(path_.c_str());
  }

  // Waits (bounded) for the new process's TAKEN: "" once it came, else what happened instead.
  std::string WaitForTaken() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, seconds(60), [this] { return outcome_.has_value(); })) return "no TAKEN within 60 s";
    return *outcome_;
  }
  // Closes both connections (once the exchange got as far as it would).
  void Cut() {
    std::lock_guard<std::mutex> lock(mu_);
    cut_ = true;
    cv_.notify_all();
  }

 private:
  std::string Run(const std::string& old_path) {
    auto deadline = [] { return MonotonicNanos() + std::chrono::nanoseconds(seconds(30)).count(); };
    pollfd p{.fd = listener_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 30'000) != 1) return "the new process did not connect within 30 s";
    new_ = UniqueFd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!new_.valid()) return std::string("accept: ") + std::strerror(errno);
    old_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, old_path.data(), std::min(old_path.size(), sizeof addr.sun_path - 1));
    if (::connect(old_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return std::string("connect to the old process: ") + std::strerror(errno);
    }
    absl::StatusOr<server::HandoverFrame> hello = server::ReadFrame(new_.get(), deadline());
    if (!hello.ok()) return "hello: " + std::string(hello.status().message());
    if (absl::Status s = server::SendFrame(old_.get(), server::HandoverFrameType::kHello, "", -1, hello->version);
        !s.ok()) {
      return "passing the hello on: " + std::string(s.message());
    }
    absl::StatusOr<server::ListenerSet> offer = server::ReceiveOffer(old_.get(), deadline());
    if (!offer.ok()) return "offer: " + std::string(offer.status().message());
    if (absl::Status s = server::SendOffer(new_.get(), *offer); !s.ok()) {
      return "passing the offer on: " + std::string(s.message());
    }
    absl::StatusOr<server::HandoverFrame> answer = server::ReadFrame(new_.get(), deadline());
    if (!answer.ok()) return "answer: " + std::string(answer.status().message());
    if (answer->type != server::HandoverFrameType::kTaken) {
      return std::string("the new process answered ") + server::HandoverFrameName(answer->type) + " " + answer->payload;
    }
    return "";
  }
  void Report(std::string outcome) {
    std::unique_lock<std::mutex> lock(mu_);
    outcome_ = std::move(outcome);
    cv_.notify_all();
    cv_.wait(lock, [this] { return cut_; });
    new_.reset();
    old_.reset();
  }

  const std::string path_;
  UniqueFd listener_;
  UniqueFd new_;  // the thread's
  UniqueFd old_;  // the thread's
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::string> outcome_;  // guarded by mu_
  bool cut_ = false;                    // guarded by mu_
  std::thread thread_;
};

// brrrctl throttle --pause or --resume on the admin plane at `admin_port`.
void Throttle(uint16_t admin_port, const std::string& how) {
  Process p(testing::Runfile("control/brrrctl/brrrctl"),
            {"--target=127.0.0.1:" + std::to_string(admin_port), "throttle", how});
  EXPECT_EQ(p.Wait(seconds(30)), 0) << how << ": " << p.out() << p.err();
}

// The hand-over fails after B started accepting and before RELEASED (the old process "goes
// away" once B has said TAKEN): B stops accepting at once (its --drain_grace is for balancers,
// not for this), finishes the connection it accepted, and exits 3; A never stopped serving and
// can hand over later.
TEST(TakeOverFailureTest, ACommitThatFailsEndsTheNewProcessWith3AndTheOldOneServesOn) {
  if (UnderTsan()) GTEST_SKIP() << "pauses accepting through the admin plane (gRPC), which TSan runs cannot use";
  SocketDir dir;
  uint16_t unused_metrics_port = 0;
  uint16_t admin_port = 0;
  uint16_t port = 0;
  std::unique_ptr<Process> started = StartOld(
      dir,
      [](uint16_t, uint16_t admin) {
        return std::vector<std::string>{"--loops=2", "--admin_port=" + std::to_string(admin)};
      },
      &unused_metrics_port, &admin_port, &port);
  ASSERT_NE(started, nullptr);
  Process& a = *started;
  // A stops accepting: a connection served from now on is B's.
  Throttle(admin_port, "--pause");

  HandoverInterceptor interceptor(dir.path(), dir.path() + ".between");
  Process b(EchoBinary(), {"--backend=epoll", "--port=" + std::to_string(port), "--loops=1", "--drain_grace=10m",
                           "--take_over=" + dir.path() + ".between"});
  ASSERT_EQ(interceptor.WaitForTaken(), "") << b.out() << b.err();
  // B waits for RELEASED and accepts meanwhile (it has 10 s before it gives up by itself).
  testing::BlockingClient client(port);
  ASSERT_TRUE(client.send_all("accepted by B; "));
  ASSERT_EQ(client.recv_exact(15), "accepted by B; ");

  interceptor.Cut();
  ASSERT_TRUE(b.WaitForError("did not complete")) << b.err();
  // B drains what it accepted: the connection is served to its end.
  ASSERT_TRUE(client.send_all("and finished by B"));
  client.shutdown_write();
  EXPECT_EQ(client.recv_until_eof(), "and finished by B");
  client.close();
  std::optional<int> b_code = b.Wait(seconds(30));
  ASSERT_TRUE(b_code.has_value()) << "B did not stop after the failed hand-over: " << b.out() << b.err();
  EXPECT_EQ(*b_code, 3) << b.err();
  EXPECT_NE(b.out().find("drained in "), std::string::npos) << b.out();
  EXPECT_NE(b.out().find(" 1 connections served"), std::string::npos) << b.out();
  EXPECT_EQ(b.out().find("took over the listeners"), std::string::npos) << b.out();

  // A never stopped: it says so, serves once accepting again, and can still hand over.
  EXPECT_TRUE(a.WaitForError("went away before taking the listeners")) << a.err();
  EXPECT_FALSE(a.Wait(milliseconds(0)).has_value()) << a.out() << a.err();
  Throttle(admin_port, "--resume");
  EXPECT_EQ(EchoOf(port, "A serves on"), "A serves on");
  Process c(EchoBinary(), {"--backend=epoll", "--port=0", "--take_over=" + dir.path()});
  ASSERT_TRUE(c.WaitForOutput("took over the listeners of pid " + std::to_string(a.pid()))) << c.out() << c.err();
  EXPECT_EQ(a.Wait(seconds(30)), 0) << a.err();
  EXPECT_EQ(EchoOf(port, "now C"), "now C");
  c.Signal(SIGTERM);
  EXPECT_EQ(c.Wait(seconds(30)), 0) << c.err();
}

// The admin listener changes hands with the others when B serves the same address: from the
// hand-over on, each new admin call is B's, also while A lives on to drain a connection. A call
// already open on A (a brrrctl watch) goes on until A exits (README): its samples show A's drain
// phase while B serves; then it ends, saying A shut down.
TEST(TakeOverAdminTest, NewAdminCallsAreAnsweredByTheNewProcessWhileTheOldOneDrains) {
  if (UnderTsan()) GTEST_SKIP() << "calls the admin plane (gRPC), which TSan runs cannot use";
  SocketDir dir;
  uint16_t unused_metrics_port = 0;
  uint16_t admin_port = 0;
  uint16_t port = 0;
  std::unique_ptr<Process> a = StartOld(
      dir,
      [](uint16_t, uint16_t admin) {
        return std::vector<std::string>{"--drain_timeout=60s", "--admin_port=" + std::to_string(admin)};
      },
      &unused_metrics_port, &admin_port, &port);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(AdminPid(admin_port), std::to_string(a->pid()));
  // Open on A until the end: A drains it, so A lives on after letting go.
  testing::BlockingClient held(port);
  ASSERT_TRUE(held.send_all("held"));
  ASSERT_EQ(held.recv_exact(4), "held");
  Process watch(testing::Runfile("control/brrrctl/brrrctl"),
                {"--target=127.0.0.1:" + std::to_string(admin_port), "watch", "--json", "--interval=50ms"});
  ASSERT_TRUE(watch.WaitForOutput("\"drain_phase\":\"DRAIN_PHASE_SERVING\"")) << watch.out() << watch.err();

  Process b(EchoBinary(), {"--backend=epoll", "--port=" + std::to_string(port),
                           "--admin_port=" + std::to_string(admin_port), "--take_over=" + dir.path()});
  // A stops accepting on the admin port before it says so.
  ASSERT_TRUE(HandedOver(*a, b));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(AdminPid(admin_port), std::to_string(b.pid())) << "call " << i;
  EXPECT_FALSE(a->Wait(milliseconds(0)).has_value()) << "A should still drain the held connection";
  // The watch goes on, from A, which drains (B serves: its phase is SERVING).
  EXPECT_TRUE(watch.WaitForOutput("\"drain_phase\":\"DRAIN_PHASE_FINISHING\"")) << watch.err();
  EXPECT_FALSE(watch.Wait(milliseconds(0)).has_value()) << "the watch ended while A was still up: " << watch.err();

  held.shutdown_write();
  EXPECT_EQ(held.recv_until_eof(), "");
  held.close();
  EXPECT_EQ(a->Wait(seconds(30)), 0) << a->err();
  EXPECT_EQ(AdminPid(admin_port), std::to_string(b.pid())) << "after A's exit";
  // With A gone its stream ends, and brrrctl says so.
  std::optional<int> watch_code = watch.Wait(seconds(30));
  ASSERT_TRUE(watch_code.has_value()) << "the watch outlived the process it watched";
  EXPECT_NE(*watch_code, 0) << watch.err();
  EXPECT_NE(watch.err().find("this brrr-echo is shutting down: the stream ends here"), std::string::npos)
      << watch.err();
  b.Signal(SIGTERM);
  EXPECT_EQ(b.Wait(seconds(30)), 0) << b.err();
}

// An admin plane on IPv6 loopback (--admin_host=::1, its address written [::1]:PORT) changes
// hands like one on 127.0.0.1: B takes A's admin listener and answers the admin calls at
// [::1]:PORT from the hand-over on.
TEST(TakeOverAdminTest, AnIPv6AdminListenerChangesHandsToo) {
  if (UnderTsan()) GTEST_SKIP() << "calls the admin plane (gRPC), which TSan runs cannot use";
  SocketDir dir;
  uint16_t unused_metrics_port = 0;
  uint16_t admin_port = 0;
  uint16_t port = 0;
  std::unique_ptr<Process> a = StartOld(
      dir,
      [](uint16_t, uint16_t admin) {
        return std::vector<std::string>{"--admin_host=::1", "--admin_port=" + std::to_string(admin)};
      },
      &unused_metrics_port, &admin_port, &port);
  ASSERT_NE(a, nullptr);
  const std::string admin = "[::1]:" + std::to_string(admin_port);
  ASSERT_TRUE(a->WaitForOutput("admin plane on " + admin)) << a->out() << a->err();
  ASSERT_EQ(AdminPidAt(admin), std::to_string(a->pid()));

  Process b(EchoBinary(), {"--backend=epoll", "--port=" + std::to_string(port), "--admin_host=::1",
                           "--admin_port=" + std::to_string(admin_port), "--take_over=" + dir.path()});
  ASSERT_TRUE(HandedOver(*a, b));
  EXPECT_EQ(a->Wait(seconds(30)), 0) << a->err();
  EXPECT_EQ(AdminPidAt(admin), std::to_string(b.pid())) << b.out() << b.err();
  EXPECT_EQ(EchoOf(port, "B serves"), "B serves");
  b.Signal(SIGTERM);
  EXPECT_EQ(b.Wait(seconds(30)), 0) << b.err();
}

// The metrics listener changes hands only when B serves the same address. Otherwise A closes
// its own when it lets go (not only at exit: here A still drains a connection), and B binds
// its own port, or none.
TEST(TakeOverMetricsTest, WithAnotherOrNoMetricsPortTheOldOneClosesItsOwnAtTheHandOver) {
  for (bool b_serves_metrics : {true, false}) {
    SCOPED_TRACE(b_serves_metrics ? "B on another metrics port" : "B without a metrics port");
    SocketDir dir;
    uint16_t a_metrics = 0;
    uint16_t unused_admin = 0;
    uint16_t port = 0;
    std::unique_ptr<Process> a = StartOld(
        dir,
        [](uint16_t metrics, uint16_t) {
          return std::vector<std::string>{"--drain_timeout=60s", "--metrics_port=" + std::to_string(metrics)};
        },
        &a_metrics, &unused_admin, &port);
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(StatusLine(a_metrics, "/healthz"), "HTTP/1.1 200 OK");
    // Open on A until the end: A drains it, so A lives on after letting go.
    testing::BlockingClient held(port);
    ASSERT_TRUE(held.send_all("held"));
    ASSERT_EQ(held.recv_exact(4), "held");

    std::vector<std::string> b_args = {"--backend=epoll", "--port=" + std::to_string(port),
                                       "--take_over=" + dir.path()};
    uint16_t b_metrics = 0;
    std::unique_ptr<Process> b;
    if (b_serves_metrics) {
      b = StartWithFreePorts(
          [&](uint16_t metrics, uint16_t) {
            std::vector<std::string> args = b_args;
            args.push_back("--metrics_port=" + std::to_string(metrics));
            return args;
          },
          &b_metrics, &unused_admin);
      ASSERT_NE(b, nullptr);
    } else {
      b = std::make_unique<Process>(EchoBinary(), b_args);
    }
    ASSERT_TRUE(HandedOver(*a, *b));

    // A's metrics port closes as A lets go (its accept loop ends on the metrics loop: bounded
    // polling), and stays closed while A drains. A connect racing the close itself is reset
    // (ECONNRESET): the port is closing, so poll on until it refuses.
    int metrics_fd = Connect(a_metrics);
    for (int i = 0; i < 1000 && metrics_fd != -ECONNREFUSED; ++i) {
      if (metrics_fd >= 0) ::close(metrics_fd);
      std::this_thread::sleep_for(milliseconds(10));
      metrics_fd = Connect(a_metrics);
    }
    if (metrics_fd >= 0) ::close(metrics_fd);
    EXPECT_EQ(metrics_fd, -ECONNREFUSED) << "A's metrics port still accepts after the hand-over";
    std::this_thread::sleep_for(milliseconds(50));
    metrics_fd = Connect(a_metrics);
    if (metrics_fd >= 0) ::close(metrics_fd);
    EXPECT_EQ(metrics_fd, -ECONNREFUSED) << "A's metrics port opened again while A drains";
    EXPECT_FALSE(a->Wait(milliseconds(0)).has_value()) << "A should still drain the held connection";
    if (b_serves_metrics) {
      EXPECT_NE(b->out().find("metrics on 127.0.0.1:" + std::to_string(b_metrics)), std::string::npos) << b->out();
      EXPECT_EQ(StatusLine(b_metrics, "/healthz"), "HTTP/1.1 200 OK");
    } else {
      EXPECT_EQ(b->out().find("metrics on"), std::string::npos) << b->out();
    }
    EXPECT_EQ(EchoOf(port, "B serves"), "B serves");

    held.shutdown_write();
    EXPECT_EQ(held.recv_until_eof(), "");
    held.close();
    EXPECT_EQ(a->Wait(seconds(30)), 0) << a->err();
    b->Signal(SIGTERM);
    EXPECT_EQ(b->Wait(seconds(30)), 0) << b->err();
  }
}

// README: the old metrics port answers the requests on connections it had accepted and closes
// each after its answer, so a keep-alive scraper reconnects, to the new process; a connection
// that never asks does not hold the old process's exit (it waits 2 s at most).
TEST(TakeOverMetricsTest, AKeepAliveScraperIsAnsweredByTheOldOneThenReconnectsToTheNewOne) {
  SocketDir dir;
  uint16_t metrics = 0;
  uint16_t unused_admin = 0;
  uint16_t port = 0;
  std::unique_ptr<Process> a = StartOld(
      dir,
      [](uint16_t m, uint16_t) {
        return std::vector<std::string>{"--drain_timeout=60s", "--metrics_port=" + std::to_string(m)};
      },
      &metrics, &unused_admin, &port);
  ASSERT_NE(a, nullptr);
  // A scraper that keeps its connection, answered once by A.
  testing::BlockingClient scraper(metrics);
  ASSERT_TRUE(scraper.send_all(testing::HttpRequestText("/readyz")));
  testing::HttpReply first = testing::ReadHttpReply(scraper);
  ASSERT_EQ(first.status, 200) << first.head;
  EXPECT_NE(first.header("Connection"), "close") << first.head;
  // Two more connections that have not asked anything whole: the start of a request line each
  // (the listener defers accepting a connection until its first bytes come). A's one accept
  // loop takes connections in the order they were queued, so once a later one is answered, A
  // has accepted both.
  const std::string request = testing::HttpRequestText("/readyz");
  const size_t line_end = request.find("\r\n") + 2;
  testing::BlockingClient asks_later(metrics);
  ASSERT_TRUE(asks_later.send_all(request.substr(0, line_end)));
  testing::BlockingClient never_asks(metrics);
  ASSERT_TRUE(never_asks.send_all("GET"));
  ASSERT_EQ(StatusLine(metrics, "/healthz"), "HTTP/1.1 200 OK");
  // An echo connection keeps A draining after the hand-over.
  testing::BlockingClient held(port);
  ASSERT_TRUE(held.send_all("held"));
  ASSERT_EQ(held.recv_exact(4), "held");

  Process b(EchoBinary(), {"--backend=epoll", "--port=" + std::to_string(port), "--metrics_port=" + std::to_string(metrics),
                           "--take_over=" + dir.path()});
  ASSERT_TRUE(HandedOver(*a, b));

  // On the scraper's open connection A answers (not ready: it drains) and closes.
  ASSERT_TRUE(scraper.send_all(testing::HttpRequestText("/readyz")));
  testing::HttpReply second = testing::ReadHttpReply(scraper);
  EXPECT_EQ(second.status, 503) << second.head << second.body;
  EXPECT_EQ(second.header("Connection"), "close") << second.head;
  EXPECT_EQ(scraper.recv_until_eof(), "");
  ASSERT_TRUE(asks_later.send_all(request.substr(line_end)));
  EXPECT_EQ(testing::ReadHttpReply(asks_later).status, 503) << "A answers a connection it accepted";
  // Reconnected, the scraper reaches B, which is ready.
  testing::HttpReply third = testing::HttpGet(metrics, "/readyz");
  EXPECT_EQ(third.status, 200) << third.head << third.body;

  // Once its echo connection is gone, A exits: the connection that never asks does not hold it.
  held.shutdown_write();
  EXPECT_EQ(held.recv_until_eof(), "");
  std::optional<int> a_code = a->Wait(seconds(30));
  ASSERT_TRUE(a_code.has_value()) << "a connection that never asks held A's exit";
  EXPECT_EQ(*a_code, 0) << a->err();
  EXPECT_EQ(never_asks.recv_until_eof(), "") << "closed when A exits, with no answer";
  b.Signal(SIGTERM);
  EXPECT_EQ(b.Wait(seconds(30)), 0) << b.err();
}

}  // namespace
}  // namespace brrr
