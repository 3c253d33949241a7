// brrr-echo, the real binary on every backend, told to stop: SIGTERM with data in flight loses
// no byte, SIGHUP drains too, connections still open at --drain_timeout are closed, a second signal closes
// everything at once, signals while several loops are busy lose nothing, only the loop
// threads take the stall sampler's signal, and every client has seen its end once the process
// has exited.
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "tests/server/echo_server_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/drain_traffic.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"
#include "tests/testing/side_ports.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::BlockingClient;
using testing::EchoServerTest;
using testing::EndReadableNow;

TEST_P(EchoServerTest, SigtermWithDataInFlightLosesNoByte) {
  auto server = Start({"--drain_timeout=20s"});
  BlockingClient c(port_);
  std::string payload = testing::RandomBytes(4 << 20, 8);
  // The connection is accepted before the signal (the helper has its first bytes come back), so
  // what is checked is the drain serving an open connection, not the accept of a queued one
  // (drain_grace_test), and 2 MiB fit in the kernel's buffers of a connection nobody has accepted.
  std::string echoed = testing::EchoAcrossASigterm(*server, c, payload);
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
  std::optional<int> code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server->out().find("drained in"), std::string::npos) << server->out();
  EXPECT_NE(server->out().find("1 connections served"), std::string::npos) << server->out();
}

// SIGHUP (the terminal went away) drains as SIGTERM does: nothing in flight is lost.
TEST_P(EchoServerTest, SighupDrainsAsSigtermDoes) {
  auto server = Start({"--drain_timeout=20s"});
  BlockingClient c(port_);
  ASSERT_TRUE(c.send_all("before"));
  ASSERT_EQ(c.recv_exact(6), "before");
  server->Signal(SIGHUP);
  ASSERT_TRUE(server->WaitForOutput("Hangup: draining")) << server->out() << server->err();
  ASSERT_TRUE(c.send_all("during"));
  EXPECT_EQ(c.recv_exact(6), "during");
  c.shutdown_write();
  EXPECT_EQ(c.recv_until_eof(), "");
  std::optional<int> code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server->err();
  EXPECT_NE(server->out().find("1 connections served"), std::string::npos) << server->out();
}

// A drain whose connections all finish before --drain_timeout says nothing of a deadline: the
// line "drain: deadline: closing N open connections" is for a deadline that passed, on any loop.
TEST_P(EchoServerTest, ADrainFinishedInTimeSaysNothingOfTheDeadline) {
  auto server = Start({"--drain_timeout=60s", "--loops=2"});
  BlockingClient c(port_);
  ASSERT_TRUE(c.send_all("a"));
  ASSERT_EQ(c.recv_exact(1), "a");
  server->Signal(SIGTERM);
  ASSERT_TRUE(server->WaitForOutput("draining")) << server->out();
  c.shutdown_write();
  EXPECT_EQ(c.recv_until_eof(), "");
  std::optional<int> code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server->out().find("drained in"), std::string::npos) << server->out();
  EXPECT_EQ(server->out().find("deadline:"), std::string::npos) << server->out();
  EXPECT_NE(server->out().find("0 closed at the drain deadline"), std::string::npos) << server->out();
}

TEST_P(EchoServerTest, ConnectionsStillOpenAtTheDrainDeadlineAreClosed) {
  auto server = Start({"--drain_timeout=200ms"});
  BlockingClient idle(port_);
  ASSERT_TRUE(idle.send_all("a"));
  ASSERT_EQ(idle.recv_exact(1), "a");
  std::optional<int> code;
  server->Signal(SIGTERM);
  code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server->out().find("1 closed at the drain deadline"), std::string::npos) << server->out();
  EXPECT_EQ(idle.recv_until_eof(), "") << "the client sees an orderly close";
}

TEST_P(EchoServerTest, ASecondSignalClosesEverythingAndTheSummarySaysSo) {
  auto server = Start({"--drain_timeout=60s"});
  BlockingClient a(port_);
  BlockingClient b(port_);
  ASSERT_TRUE(a.send_all("a"));
  ASSERT_EQ(a.recv_exact(1), "a");
  ASSERT_TRUE(b.send_all("b"));
  ASSERT_EQ(b.recv_exact(1), "b");
  server->Signal(SIGTERM);
  ASSERT_TRUE(server->WaitForOutput("draining"));
  server->Signal(SIGTERM);
  std::optional<int> code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "a second signal must end the drain at once";
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server->out().find("closing every connection now"), std::string::npos) << server->out();
  EXPECT_NE(server->out().find("0 closed at the drain deadline, 2 closed by a second signal"), std::string::npos)
      << server->out();
  EXPECT_EQ(a.recv_until_eof(), "");
  EXPECT_EQ(b.recv_until_eof(), "");
}

// Signals while four loops are busy with eight clients: SIGUSR1 (which brrr-echo also uses
// inside, to end its signal thread) changes nothing, and SIGINT drains. Each client is
// mid-stream at each signal (it sends its next third only after the signal), gets every byte
// back in order, and the server exits 0 having counted them all. Every wait is bounded.
TEST_P(EchoServerTest, SignalsWhileSeveralLoopsAreBusyLoseNoByte) {
  auto server = Start({"--loops=4", "--drain_timeout=60s"});
  constexpr int kClients = 8;
  constexpr size_t kSize = 3 << 20;
  constexpr size_t kThird = kSize / 3;
  std::vector<std::string> payloads;
  std::vector<std::string> echoed(kClients);
  std::vector<std::unique_ptr<BlockingClient>> clients;
  auto received = std::make_unique<std::atomic<size_t>[]>(kClients);
  std::atomic<int> phase{0};  // 1: after the SIGUSR1s, 2: after SIGINT
  auto until = [](const std::function<bool()>& holds) {
    TimePoint give_up = Clock::now() + seconds(60);
    while (!holds() && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(1));
    return holds();
  };
  auto all_received = [&](size_t at_least) {
    return [&, at_least] {
      for (int i = 0; i < kClients; ++i) {
        if (received[i].load() < at_least) return false;
      }
      return true;
    };
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    payloads.push_back(testing::RandomBytes(kSize, 100 + i));
    clients.push_back(std::make_unique<BlockingClient>(port_, false, 60000));
  }
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      BlockingClient& c = *clients[i];
      EXPECT_TRUE(c.send_all(payloads[i].substr(0, kThird)));
      EXPECT_TRUE(until([&] { return phase.load() >= 1; }));
      EXPECT_TRUE(c.send_all(payloads[i].substr(kThird, kThird)));
      EXPECT_TRUE(until([&] { return phase.load() >= 2; }));
      EXPECT_TRUE(c.send_all(payloads[i].substr(2 * kThird)));
      c.shutdown_write();
    });
    threads.emplace_back([&, i] {
      char buffer[65536];
      for (;;) {
        ssize_t n = ::recv(clients[i]->fd(), buffer, sizeof buffer, 0);
        if (n <= 0) break;  // end of stream, or 60 s without a byte (a failure, seen below)
        echoed[i].append(buffer, static_cast<size_t>(n));
        received[i].store(echoed[i].size());
      }
    });
  }
  EXPECT_TRUE(until(all_received(kThird))) << "every client's first third is echoed";
  for (int i = 0; i < 3; ++i) {
    server->Signal(SIGUSR1);
    EXPECT_TRUE(server->WaitUntilTaken(SIGUSR1)) << "SIGUSR1 " << i << " stayed pending";
  }
  phase = 1;
  EXPECT_TRUE(until(all_received(2 * kThird))) << "still serving after SIGUSR1";
  EXPECT_FALSE(server->Wait(milliseconds(0)).has_value()) << "SIGUSR1 ended the server: " << server->err();
  EXPECT_EQ(server->out().find("draining"), std::string::npos) << server->out();
  server->Signal(SIGINT);
  EXPECT_TRUE(server->WaitForOutput("brrr-echo: Interrupt: draining")) << server->out();
  phase = 2;
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(echoed[i].size(), kSize) << "client " << i;
    EXPECT_TRUE(echoed[i] == payloads[i]) << "client " << i << ": the echo differs";
  }
  std::optional<int> code = server->Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "the drain did not end once every client had left";
  EXPECT_EQ(*code, 0) << server->err();
  // SIGINT's is the only line that says draining (none "already draining", no "again").
  const std::string out = server->out();
  size_t first = out.find("draining");
  EXPECT_TRUE(first != std::string::npos && out.find("draining", first + 1) == std::string::npos) << out;
  EXPECT_NE(server->out().find("8 connections served"), std::string::npos) << server->out();
  EXPECT_NE(server->out().find(std::to_string(kClients * kSize) + " bytes in, " + std::to_string(kClients * kSize) +
                               " bytes out"),
            std::string::npos)
      << server->out();
}

// One thread of a process, from /proc/PID/task/TID.
struct ThreadSignals {
  std::string comm;  // its name
  bool blocks = false;  // whether SigBlk has the signal asked about
  bool operator==(const ThreadSignals&) const = default;
};

// Each thread of `pid` by id, and whether it blocks `signal`. Threads that end while they are
// read are left out.
std::map<pid_t, ThreadSignals> ThreadsBlocking(pid_t pid, int signal) {
  std::map<pid_t, ThreadSignals> threads;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(tasks.c_str());
  if (dir == nullptr) return threads;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const std::string task = tasks + "/" + entry->d_name;
    std::ifstream comm_file(task + "/comm");
    std::ifstream status(task + "/status");
    ThreadSignals t;
    std::string line;
    bool read = false;
    if (!std::getline(comm_file, t.comm)) continue;
    while (std::getline(status, line)) {
      if (line.rfind("SigBlk:", 0) != 0) continue;
      uint64_t mask = std::strtoull(line.c_str() + 7, nullptr, 16);
      t.blocks = ((mask >> (signal - 1)) & 1) != 0;
      read = true;
    }
    if (read) threads[static_cast<pid_t>(std::atoi(entry->d_name))] = t;
  }
  ::closedir(dir);
  return threads;
}

// SIGRTMIN+3 is the stall sampler's, for loop threads only (README, "Using the runtime"):
// brrr-echo blocks it in every other thread (main, the signal thread, each loop's stall
// watchdog, the admin plane's gRPC threads, the hand-over socket's), so one sent to the process
// never lands in any of those. The echo loops' threads have no name of their own (they are
// "brrr-echo", as main is), so they are told by their number: once every thread has started
// and served, exactly --loops of them take the signal, and the metrics port's loop thread
// ("brrr-metrics", a loop with its own watchdog).
TEST_P(EchoServerTest, OnlyTheLoopThreadsTakeTheStallSignal) {
  constexpr int kLoops = 2;
  const int stall_signal = SIGRTMIN + 3;
  // gRPC is not instrumented for ThreadSanitizer: there the admin plane stays off (the
  // handover and control tests do the same).
  const bool with_admin = !testing::UnderSanitizer("tsan");
  char dir[] = "/tmp/brrr-signals-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string handover_socket = std::string(dir) + "/echo.sock";
  testing::SidePorts ports;
  std::unique_ptr<testing::Process> server = testing::StartOnFreeSidePorts(
      testing::EchoBinary(),
      [&](const testing::SidePorts& p) {
        std::vector<std::string> args = {"--backend=" + GetParam(), "--port=0", "--loops=" + std::to_string(kLoops),
                                         "--metrics_port=" + std::to_string(p.metrics),
                                         "--handover_socket=" + handover_socket};
        if (with_admin) args.push_back("--admin_port=" + std::to_string(p.admin));
        return args;
      },
      &ports);
  const uint16_t admin_port = ports.admin;
  const uint16_t metrics_port = ports.metrics;
  port_ = server->ListeningPort();
  ASSERT_NE(port_, 0) << server->err();
  ASSERT_TRUE(server->WaitForOutput("hand-over socket at ")) << server->out() << server->err();
  // Every part at work, so that the threads it starts on demand are there too.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(EchoOf("echo " + std::to_string(i)), "echo " + std::to_string(i));
  {
    BlockingClient metrics(metrics_port);
    ASSERT_TRUE(metrics.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(metrics.recv_until_eof().rfind("HTTP/1.1 200", 0), 0u);
  }
  if (with_admin) {
    testing::Process info(testing::Runfile("control/brrrctl/brrrctl"),
                          {"--target=127.0.0.1:" + std::to_string(admin_port), "info"});
    EXPECT_EQ(info.Wait(seconds(30)), 0) << info.out() << info.err();
  }
  // The verdict on the threads once they have stopped changing (bounded).
  std::map<pid_t, ThreadSignals> threads = ThreadsBlocking(server->pid(), stall_signal);
  int same_readings = 0;
  TimePoint give_up = Clock::now() + seconds(10);
  while (same_readings < 20 && Clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(10));
    std::map<pid_t, ThreadSignals> now = ThreadsBlocking(server->pid(), stall_signal);
    same_readings = now == threads ? same_readings + 1 : 0;
    threads = std::move(now);
  }
  std::string listing;
  std::map<std::string, int> taking;  // by thread name
  for (const auto& [tid, t] : threads) {
    listing += "\n  " + std::to_string(tid) + " " + t.comm + (t.blocks ? ": blocks it" : ": takes it");
    if (!t.blocks) ++taking[t.comm];
  }
  // Main, the signal thread, the watchdogs, the hand-over socket's thread...
  EXPECT_GT(threads.size(), static_cast<size_t>(kLoops) + 4) << listing;
  const std::map<std::string, int> loop_threads = {{"brrr-echo", kLoops}, {"brrr-metrics", 1}};
  EXPECT_EQ(taking, loop_threads) << "threads of brrr-echo and signal " << stall_signal << " (SIGRTMIN+3):"
                                  << listing;
  EXPECT_EQ(Stop(*server), 0);
  ::rmdir(dir);
}

// Duplicates, in this process, of every io_uring ring that process `pid` has open (none on
// another backend): a ring lives on while a duplicate does.
std::vector<int> HoldRings(pid_t pid, std::string* error) {
  std::vector<int> held;
  const int process = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (process < 0) {
    *error = std::string("pidfd_open: ") + std::strerror(errno);
    return held;
  }
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = ::opendir(dir.c_str()); d != nullptr) {
    while (dirent* e = ::readdir(d)) {
      char target[256] = {};
      if (::readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1) <= 0) continue;
      if (std::string(target).find("io_uring") == std::string::npos) continue;
      const int copy = static_cast<int>(::syscall(SYS_pidfd_getfd, process, std::atoi(e->d_name), 0));
      if (copy < 0) {
        *error = std::string("pidfd_getfd: ") + std::strerror(errno);
        continue;
      }
      held.push_back(copy);
    }
    ::closedir(d);
  }
  ::close(process);
  return held;
}

// The errno of a connect to 127.0.0.1:port (0: it connected).
int ConnectErrno(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  int result = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
  ::close(fd);
  return result;
}

// Once the process has exited after a drain, every client has seen its end: the echo side's,
// and the metrics port's, whose listener refuses connections too. On io_uring the kernel frees
// what a ring's requests still hold (their sockets) only as it tears the ring down, after the
// process closed it, later still when the process's last thread exits with it open: a server
// whose loop left requests in a ring had their clients wait for their ends after it had gone.
// This test holds a duplicate of each of the server's rings while it looks, so that such a
// teardown comes only after the look, and whatever a ring still held shows.
TEST_P(EchoServerTest, EveryClientHasItsEndOnceTheProcessHasExited) {
  testing::SidePorts ports;
  std::unique_ptr<testing::Process> server = testing::StartOnFreeSidePorts(
      testing::EchoBinary(),
      [&](const testing::SidePorts& p) {
        return std::vector<std::string>{"--backend=" + GetParam(), "--port=0",
                                        "--metrics_port=" + std::to_string(p.metrics)};
      },
      &ports);
  port_ = server->ListeningPort();
  ASSERT_NE(port_, 0) << server->err();
  BlockingClient echo(port_);
  ASSERT_TRUE(echo.send_all("a"));
  ASSERT_EQ(echo.recv_exact(1), "a");
  // A scraper keeps its connection after an answer (HTTP/1.1 keep-alive).
  BlockingClient metrics(ports.metrics);
  ASSERT_TRUE(metrics.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string answer = metrics.recv_exact(std::string("HTTP/1.1 200").size());
  ASSERT_EQ(answer, "HTTP/1.1 200");
  std::string why_not;
  std::vector<int> rings = HoldRings(server->pid(), &why_not);
  if (GetParam() == "io_uring") {
    ASSERT_FALSE(rings.empty()) << "no ring of the server's held: " << why_not;
  }

  server->Signal(SIGTERM);
  ASSERT_TRUE(server->WaitForOutput("draining")) << server->out() << server->err();
  echo.shutdown_write();
  std::optional<int> code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server->err();
  EXPECT_TRUE(EndReadableNow(echo.fd())) << "the echo client has no end of stream from a process that has exited";
  // Past the rest of its answer: the end of stream, or nothing yet.
  for (char c; ::recv(metrics.fd(), &c, 1, MSG_DONTWAIT | MSG_PEEK) == 1;) (void)::recv(metrics.fd(), &c, 1, 0);
  EXPECT_TRUE(EndReadableNow(metrics.fd())) << "the scraper has no end of stream from a process that has exited";
  EXPECT_EQ(ConnectErrno(ports.metrics), ECONNREFUSED) << "the metrics port of a process that has exited";
  for (int ring : rings) ::close(ring);
}

INSTANTIATE_TEST_SUITE_P(Backends, EchoServerTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
