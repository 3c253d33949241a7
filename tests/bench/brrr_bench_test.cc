// brrr-bench against brrr-echo: it verifies what comes back, and its exit code says so.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/bench/bench_report.h"
#include "tests/testing/process.h"
#include "tests/testing/skips.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::BenchBinary;
using testing::JsonNumber;
using testing::Process;

std::string Echo() { return testing::Runfile("server/brrr-echo/brrr-echo"); }

// SIGTERM stops brrr-echo, which exits 0.
void ExpectCleanStop(Process& server) {
  server.Signal(SIGTERM);
  std::optional<int> code = server.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server.err();
}

TEST(BrrrBenchTest, MeasuresAndVerifiesAnEchoServer) {
  Process server(Echo(), {"--port=0"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(BenchBinary(),
                {"--port=" + std::to_string(port), "--connections=8", "--size=1000", "--depth=4", "--duration=1s"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << bench.out() << bench.err();
  std::string out = bench.out();
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  EXPECT_GT(JsonNumber(out, "messages"), 0) << out;
  EXPECT_GT(JsonNumber(out, "messages_per_second"), 0) << out;
  EXPECT_GT(JsonNumber(out, "p99_us"), 0) << out;
  EXPECT_GE(JsonNumber(out, "p999_us"), JsonNumber(out, "p50_us")) << out;
  EXPECT_EQ(JsonNumber(out, "mismatches"), 0) << out;
  EXPECT_NE(bench.err().find("connected"), std::string::npos) << "progress lines: " << bench.err();
  EXPECT_EQ(out.find("server_busy"), std::string::npos) << "a server CPU figure nobody asked for: " << out;
  // What the server echoed is what the generator counted (plus what was in flight at the end).
  ExpectCleanStop(server);
  EXPECT_NE(server.out().find("8 connections served"), std::string::npos) << server.out();
}

// What a brrr-echo's summary line says it received: bytes in plus bytes discarded; -1 if the
// line is not there.
double ReceivedBytes(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(, (\d+) bytes in, .* (\d+) bytes discarded after the end of stream)"))) {
    return -1;
  }
  return std::stod(m[1]) + std::stod(m[2]);
}

// SIGTERM, as SIGINT, ends a run early with its report, and the JSON line has bytes_sent
// without --reconnect too: every byte the kernel took, which is what the server received.
TEST(BrrrBenchTest, SigtermEndsARunEarlyWithItsReport) {
  Process server(Echo(), {"--port=0"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(BenchBinary(),
                {"--port=" + std::to_string(port), "--connections=3", "--size=1000", "--depth=4", "--duration=10m"});
  ASSERT_TRUE(bench.WaitForError("3 connected")) << bench.err();
  bench.Signal(SIGTERM);
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "SIGTERM did not end the run: " << bench.err();
  std::string out = bench.out();
  EXPECT_EQ(*code, 0) << out << bench.err();
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  EXPECT_GT(JsonNumber(out, "messages"), 0) << out;
  EXPECT_EQ(out.find("\"reconnect\""), std::string::npos) << out;
  ASSERT_GT(JsonNumber(out, "bytes_sent"), 0) << out;
  ExpectCleanStop(server);
  EXPECT_EQ(JsonNumber(out, "bytes_sent"), ReceivedBytes(server.out())) << out << server.out();
}

// The busy-polling engine's JSON line has bytes_sent too, and SIGTERM ends its run as well.
TEST(BrrrBenchTest, SigtermEndsABusyPollingRunWithBytesSent) {
  Process server(Echo(), {"--port=0"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(BenchBinary(), {"--port=" + std::to_string(port), "--busy_poll", "--connections=2", "--duration=10m"});
  ASSERT_TRUE(bench.WaitForError("2 connected")) << bench.err();
  bench.Signal(SIGTERM);
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "SIGTERM did not end the run: " << bench.err();
  std::string out = bench.out();
  EXPECT_EQ(*code, 0) << out << bench.err();
  EXPECT_NE(out.find("\"backend\":\"busy-poll\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  ASSERT_GT(JsonNumber(out, "bytes_sent"), 0) << out;
  ExpectCleanStop(server);
  EXPECT_EQ(JsonNumber(out, "bytes_sent"), ReceivedBytes(server.out())) << out << server.out();
}

TEST(BrrrBenchTest, AServerThatChangesTheBytesFailsTheRun) {
  Process server(Echo(), {"--port=0", "--reply_prefix=X"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(BenchBinary(),
                {"--port=" + std::to_string(port), "--connections=2", "--duration=1s", "--progress=false"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  EXPECT_NE(bench.out().find("came back different"), std::string::npos) << bench.out();
  EXPECT_NE(bench.out().find("\"ok\":false"), std::string::npos) << bench.out();
  ExpectCleanStop(server);
}

// A stand-in server on 127.0.0.1 that takes one connection, echoes its first `echoed` bytes,
// reads and drops the rest, and closes when the client has half-closed: every byte it sends
// back is right, but messages are missing.
class EchoesThenDrops {
 public:
  explicit EchoesThenDrops(size_t echoed) : echoed_(echoed) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(listener_, 4) == 0 &&
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~EchoesThenDrops() {
    thread_.join();
    ::close(listener_);
  }
  uint16_t port() const { return port_; }

 private:
  void Serve() {
    const auto give_up = std::chrono::steady_clock::now() + seconds(30);
    pollfd waiting{.fd = listener_, .events = POLLIN, .revents = 0};
    if (port_ == 0 || ::poll(&waiting, 1, 30'000) != 1) return;
    int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    size_t sent = 0;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < give_up) {
      pollfd readable{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&readable, 1, 100) != 1) continue;
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;  // the client's end of stream (or an error)
      size_t back = std::min(static_cast<size_t>(n), echoed_ - std::min(sent, echoed_));
      if (back > 0 && ::send(fd, buffer, back, MSG_NOSIGNAL) != static_cast<ssize_t>(back)) break;
      sent += back;
    }
    ::close(fd);
  }

  const size_t echoed_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A server that answers the first message and then closes at the end of the run without the
// others fails the run: every byte that came back was right, but bytes are missing. (A paced
// run, so that the window never fills and the run ends by its half-close, not its timeout.)
TEST(BrrrBenchTest, AServerThatLeavesMessagesUnansweredFailsTheRun) {
  EchoesThenDrops server(/*echoed=*/64);
  ASSERT_NE(server.port(), 0);
  Process bench(BenchBinary(), {"--port=" + std::to_string(server.port()), "--connections=1", "--size=64", "--depth=64",
                                "--rate=20", "--duration=1s", "--progress=false"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << bench.out() << bench.err();
  EXPECT_NE(bench.out().find("messages unanswered"), std::string::npos) << bench.out() << bench.err();
  EXPECT_NE(bench.out().find("\"ok\":false"), std::string::npos) << bench.out();
}

// brrr-bench with a spinning engine (`engine`: --busy_poll or --busy_ring) and `args` against
// brrr-echo, with `connections` connections of `size` byte messages: it exits 0, every message
// came back whole, checked and counted, and the server saw every connection end cleanly.
// Returns brrr-bench's progress lines (stderr). If the engine cannot run here (--busy_ring
// where io_uring is refused: exit 3, "needs io_uring"), sets *refused to why and checks no more.
std::string ExpectSpinningRunIsExact(const std::string& engine, int connections, int size,
                                     std::vector<std::string> args, std::string* refused = nullptr) {
  Process server(Echo(), {"--port=0"});
  uint16_t port = server.ListeningPort();
  EXPECT_NE(port, 0);
  args.insert(args.end(), {"--port=" + std::to_string(port), engine, "--connections=" + std::to_string(connections),
                           "--size=" + std::to_string(size)});
  Process bench(BenchBinary(), args);
  std::optional<int> code = bench.Wait(seconds(60));
  if (refused != nullptr && code == 3 && bench.err().find("needs io_uring") != std::string::npos) {
    *refused = bench.err();
    ExpectCleanStop(server);
    return "";
  }
  EXPECT_EQ(code, 0) << bench.out() << bench.err();
  std::string out = bench.out();
  std::string backend = engine == "--busy_ring" ? "busy-ring" : "busy-poll";
  EXPECT_NE(out.find("\"backend\":\"" + backend + "\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  EXPECT_GT(JsonNumber(out, "messages"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "bytes"), JsonNumber(out, "messages") * size) << out;
  EXPECT_GT(JsonNumber(out, "p99_us"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "mismatches"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "lost_connections"), 0) << out;
  ExpectCleanStop(server);
  EXPECT_NE(server.out().find(std::to_string(connections) + " connections served"), std::string::npos) << server.out();
  return bench.err();
}

// --busy_poll: the engine that spins on non-blocking sockets instead of sleeping in brrr's loops.
// Two threads, each with a slice of the connections, pipelined, a size that does not divide
// the receive buffer.
TEST(BrrrBenchTest, BusyPollingMeasuresAndVerifiesAnEchoServer) {
  std::string progress =
      ExpectSpinningRunIsExact("--busy_poll", 7, 1000, {"--threads=2", "--depth=3", "--duration=2s"});
  EXPECT_NE(progress.find("7 connected"), std::string::npos) << "progress lines: " << progress;
}

// Past 64 connections a busy-polling thread asks epoll which connections have data instead of
// calling recv on each: the same exact echo, counted the same way.
TEST(BrrrBenchTest, BusyPollingManyConnectionsOnOneThread) {
  ExpectSpinningRunIsExact("--busy_poll", 100, 100, {"--depth=2", "--duration=1s", "--progress=false"});
}

// A spinning engine's run against a server that changes the bytes fails, and says where.
void ExpectSpinningRunFailsWhenTheBytesChange(const std::string& engine, const std::string& backend) {
  Process server(Echo(), {"--port=0", "--reply_prefix=X"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(BenchBinary(),
                {"--port=" + std::to_string(port), engine, "--connections=2", "--duration=1s", "--progress=false"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  if (engine == "--busy_ring" && *code == 3 && bench.err().find("needs io_uring") != std::string::npos) {
    ExpectCleanStop(server);
    BRRR_SKIP_OR_FAIL("backends", bench.err());
  }
  EXPECT_EQ(*code, 1) << bench.out() << bench.err();
  EXPECT_NE(bench.out().find("came back different"), std::string::npos) << bench.out();
  EXPECT_NE(bench.out().find("\"backend\":\"" + backend + "\""), std::string::npos) << bench.out();
  EXPECT_NE(bench.out().find("\"ok\":false"), std::string::npos) << bench.out();
  EXPECT_GE(JsonNumber(bench.out(), "mismatches"), 1) << bench.out();
  ExpectCleanStop(server);
}

TEST(BrrrBenchTest, BusyPollingFailsTheRunWhenTheBytesChange) {
  ExpectSpinningRunFailsWhenTheBytesChange("--busy_poll", "busy-poll");
}

// --busy_ring: the engine that spins on io_uring (a multishot receive per connection, one enter
// per pass). Two threads, pipelined, a size that does not divide the receive buffer.
TEST(BrrrBenchTest, BusyRingMeasuresAndVerifiesAnEchoServer) {
  std::string refused;
  std::string progress =
      ExpectSpinningRunIsExact("--busy_ring", 7, 1000, {"--threads=2", "--depth=3", "--duration=2s"}, &refused);
  if (!refused.empty()) BRRR_SKIP_OR_FAIL("backends", refused);
  EXPECT_NE(progress.find("7 connected"), std::string::npos) << "progress lines: " << progress;
}

// Many connections on one ring: many completions per pass, the same exact echo.
TEST(BrrrBenchTest, BusyRingManyConnectionsOnOneThread) {
  std::string refused;
  ExpectSpinningRunIsExact("--busy_ring", 300, 100, {"--depth=2", "--duration=1s", "--progress=false"}, &refused);
  if (!refused.empty()) BRRR_SKIP_OR_FAIL("backends", refused);
}

// Messages larger than what the socket takes at once (4 MiB here: a send without MSG_WAITALL
// completes with part of it): each send completes only once the kernel took all of it, and an
// echo comes back over many receives. 3 s, not 1: under ThreadSanitizer a whole second can pass
// before the first 4 MiB echo is back (then some 60 a second follow), and a run must count one.
TEST(BrrrBenchTest, BusyRingLargeMessages) {
  std::string refused;
  ExpectSpinningRunIsExact("--busy_ring", 2, 4 << 20, {"--depth=2", "--duration=3s", "--progress=false"}, &refused);
  if (!refused.empty()) BRRR_SKIP_OR_FAIL("backends", refused);
}

TEST(BrrrBenchTest, BusyRingFailsTheRunWhenTheBytesChange) {
  ExpectSpinningRunFailsWhenTheBytesChange("--busy_ring", "busy-ring");
}

// --server_pid: the server's CPU time over the measured period, per message and as a share of a
// core. The server's share is above zero (it echoed messages in that period) and per message it
// agrees with the rates; an idle process given instead (sleep) shows about none, so it is that
// process that is read. Not a minimum share: on a loaded machine the server gets what the
// busy-polling client and everything else leave it (1% of a core, 1,367 messages in the
// second, on one run of the suite).
TEST(BrrrBenchTest, ReportsTheServersCpuTimePerMessage) {
  Process server(Echo(), {"--port=0"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process idle("/bin/sleep", {"60"});
  auto run = [port](pid_t pid) {
    Process bench(BenchBinary(), {"--port=" + std::to_string(port), "--busy_poll", "--connections=8", "--duration=1s",
                                  "--warmup=200ms", "--progress=false", "--server_pid=" + std::to_string(pid)});
    std::optional<int> code = bench.Wait(seconds(60));
    EXPECT_TRUE(code.has_value() && *code == 0) << bench.out() << bench.err();
    return bench.out();
  };
  std::string out = run(server.pid());
  double busy = JsonNumber(out, "server_busy");
  double per_message = JsonNumber(out, "server_cpu_us_per_msg");
  const double messages_per_second = JsonNumber(out, "messages_per_second");
  EXPECT_GT(JsonNumber(out, "messages"), 0) << out;
  EXPECT_GT(busy, 0) << out;
  EXPECT_LE(busy, std::thread::hardware_concurrency() + 0.1) << out;
  // The same CPU over the messages: within 1%, and within the JSON's rounding of the share (4
  // places: half the last one), which at a share of 0.14% is 4% of it.
  EXPECT_NEAR(per_message, busy * 1e6 / messages_per_second, per_message * 0.01 + 0.00005 * 1e6 / messages_per_second)
      << out;
  EXPECT_NE(out.find("server CPU"), std::string::npos) << out;
  std::string idle_out = run(idle.pid());
  EXPECT_GE(JsonNumber(idle_out, "server_busy"), 0) << idle_out;
  EXPECT_LT(JsonNumber(idle_out, "server_busy"), 0.02) << idle_out;
  idle.Signal(SIGKILL);
  idle.Wait(seconds(30));
  ExpectCleanStop(server);
}

TEST(BrrrBenchTest, ALostConnectionFailsTheRun) {
  auto server = std::make_unique<Process>(Echo(), std::vector<std::string>{"--port=0"});
  uint16_t port = server->ListeningPort();
  ASSERT_NE(port, 0);
  int fds_before = server->OpenFds();
  Process bench(BenchBinary(),
                {"--port=" + std::to_string(port), "--connections=4", "--duration=60s", "--progress=false"});
  // Killed once the four connections are open on its side (bounded: 30 s), whatever the load.
  TimePoint give_up = Clock::now() + seconds(30);
  while (server->OpenFds() < fds_before + 4 && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(server->OpenFds(), fds_before + 4);
  server->Signal(SIGKILL);
  EXPECT_EQ(server->Wait(seconds(30)), -SIGKILL);
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  EXPECT_NE(bench.out().find("lost connections"), std::string::npos) << bench.out();
}

TEST(BrrrBenchTest, BadOptionsAreRefused) {
  Process bench(BenchBinary(), {"--connections=0"});
  std::optional<int> code = bench.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(bench.err().find("brrr-bench: --connections=0: must be from 1 to 1000000"), std::string::npos)
      << bench.err();
  Process busy(BenchBinary(), {"--busy_poll", "--rate=100"});
  code = busy.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(busy.err().find("--busy_poll never waits"), std::string::npos) << busy.err();
  Process ring(BenchBinary(), {"--busy_ring", "--reconnect"});
  code = ring.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(ring.err().find("--busy_ring never waits"), std::string::npos) << ring.err();
  Process both(BenchBinary(), {"--busy_ring", "--busy_poll"});
  code = both.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(both.err().find("--busy_poll and --busy_ring are two load engines: pick one"), std::string::npos)
      << both.err();
  // A value after a boolean flag is a word of its own: refused, not ignored.
  Process word(BenchBinary(), {"--port=5000", "--busy_poll", "true"});
  code = word.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(word.err().find("brrr-bench: unexpected argument \"true\""), std::string::npos) << word.err();
  Process dir(BenchBinary(), {"--port=5000", "--plugin_dir=/nonexistent/brrr"});
  code = dir.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(dir.err().find("--plugin_dir: /nonexistent/brrr: No such file or directory"), std::string::npos)
      << dir.err();
  Process no_server(BenchBinary(), {"--server_pid=2147483647"});
  code = no_server.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(no_server.err().find("--server_pid=2147483647: cannot read its CPU time: no process"), std::string::npos)
      << no_server.err();
  // A rate or a time that is no number, or one whose end the clock cannot hold: it ran, with
  // "rate":inf in the JSON, or stopped at once after overflowing (exit 1).
  for (const auto& [arg, says] : std::vector<std::pair<std::string, std::string>>{
           {"--rate=inf", "--rate must be a number of messages per second"},
           {"--rate=nan", "--rate must be a number of messages per second"},
           {"--duration=inf", "--duration=inf: must be from 1ns to 720h"},
           {"--duration=0s", "--duration=0: must be from 1ns to 720h"},
           {"--warmup=inf", "--warmup=inf: must be from 0 to 720h"},
           {"--warmup=-1s", "--warmup=-1s: must be from 0 to 720h"}}) {
    Process refused(BenchBinary(), {"--port=5000", arg});
    code = refused.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2) << arg << ": " << refused.out();
    EXPECT_NE(refused.err().find(says), std::string::npos) << refused.err();
  }
  // What absl itself refuses is a bad option too (2), not a failed run (1).
  for (const auto& [arg, says] : std::vector<std::pair<std::string, std::string>>{
           {"--connections=abc", "Illegal value 'abc' specified for flag 'connections'"},
           {"--no_such_flag", "Unknown command line flag 'no_such_flag'"}}) {
    Process refused(BenchBinary(), {arg});
    code = refused.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2) << arg;
    EXPECT_NE(refused.err().find(says), std::string::npos) << refused.err();
  }
}

// Every whole-number flag: a value outside its range is refused (exit 2) naming the flag, the
// value as given and the range, whatever the value: negative, or past what any 64-bit type holds
// (absl's unsigned and 32-bit flag types refused those as malformed, without the range). --help
// states each range, and the two durations' ranges too.
TEST(BrrrBenchTest, EveryWholeNumberOutsideItsRangeExitsTwoNamingTheRange) {
  const std::vector<std::pair<std::string, std::string>> flags = {
      {"port", "1 to 65535"}, {"connections", "1 to 1000000"}, {"size", "1 byte to 16 MiB (16777216 bytes)"},
      {"depth", "1 to 4096"}, {"threads", "1 to 256"},         {"server_pid", "0 to 2147483647 (0: not measured)"},
  };
  for (const auto& [flag, range] : flags) {
    for (const std::string value : {"-1", "-9223372036854775809", "18446744073709551616"}) {
      Process p(BenchBinary(), {"--" + flag + "=" + value});
      std::optional<int> code = p.Wait(seconds(30));
      ASSERT_TRUE(code.has_value());
      EXPECT_EQ(*code, 2) << flag << "=" << value << ": " << p.err();
      const std::string says = "brrr-bench: --" + flag + "=" + value + ": must be from " + range + "\n";
      EXPECT_NE(p.err().find(says), std::string::npos) << says << "\n" << p.err();
    }
  }
  // What is not a whole number stays a syntax error (exit 2 too).
  Process fraction(BenchBinary(), {"--size=1.5"});
  EXPECT_EQ(fraction.Wait(seconds(30)), 2) << fraction.err();
  EXPECT_NE(fraction.err().find("Illegal value '1.5' specified for flag 'size'; expected a whole number"),
            std::string::npos)
      << fraction.err();

  Process help(BenchBinary(), {"--help"});
  EXPECT_EQ(help.Wait(seconds(30)), 0) << help.err();
  // The help is wrapped: compare with single spaces.
  std::string flat;
  for (char c : help.out() + help.err()) {
    bool space = c == ' ' || c == '\n';
    if (!space || (!flat.empty() && flat.back() != ' ')) flat += space ? ' ' : c;
  }
  std::vector<std::pair<std::string, std::string>> with_durations = flags;
  with_durations.insert(with_durations.end(), {{"duration", "1ns to 720h"}, {"warmup", "0 to 720h"}});
  for (const auto& [flag, range] : with_durations) {
    size_t start = flat.find(" --" + flag + " (");
    ASSERT_NE(start, std::string::npos) << flag << ": " << flat;
    std::string text = flat.substr(start, flat.find("; default: ", start) - start);
    EXPECT_NE(text.find(range), std::string::npos) << "--" << flag << " does not say " << range << ": " << text;
  }
}

TEST(BrrrBenchTest, HelpExitsZero) {
  Process help(BenchBinary(), {"--help"});
  EXPECT_EQ(help.Wait(seconds(30)), 0) << help.err();
  EXPECT_NE((help.out() + help.err()).find("--connections"), std::string::npos) << help.out();
  // --version says the program and brrr's version (it said the build type, and exited 2).
  Process version(BenchBinary(), {"--version"});
  EXPECT_EQ(version.Wait(seconds(30)), 0) << version.err();
  EXPECT_EQ(version.out(), "brrr-bench 0.1.0\n") << version.err();
  // Beside a flag that does not exist each is a usage error, exit 2 (they printed and exited 0).
  for (const char* asked : {"--help", "--version"}) {
    Process bad(BenchBinary(), {asked, "--conections=8"});
    EXPECT_EQ(bad.Wait(seconds(30)), 2) << asked << ": " << bad.err();
    EXPECT_NE(bad.err().find("brrr-bench: unknown flag --conections=8"), std::string::npos) << bad.err();
    EXPECT_EQ(bad.out(), "") << asked;
  }
}

// A report that cannot be written (stdout on a full disk) says so and exits 6: the run's result
// is lost, so it must not look like a run that passed (it exited 0). --help likewise.
TEST(BrrrBenchTest, AReportThatCannotBeWrittenExits6) {
  Process server(Echo(), {"--port=0"});
  const uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--port=" + std::to_string(port), "--connections=2", "--duration=200ms", "--json"}, {"--help"}}) {
    Process bench("/bin/sh", testing::StdoutOnAFullDisk(BenchBinary(), args));
    EXPECT_EQ(bench.Wait(seconds(60)), 6) << args.back() << ": " << bench.err();
    EXPECT_NE(bench.err().find("brrr-bench: cannot write to standard output: No space left on device"),
              std::string::npos)
        << args.back() << ": " << bench.err();
  }
  ExpectCleanStop(server);
}

// A paced run ends at its --duration, however long a connection waits for its next message:
// at one message in ten seconds per connection it waited for that message, ran 20 s and
// failed ("no echo within the finish timeout") against a working server.
TEST(BrrrBenchTest, APacedRunEndsAtItsDuration) {
  Process server(Echo(), {"--port=0"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(BenchBinary(), {"--port=" + std::to_string(port), "--connections=2", "--rate=0.5", "--duration=1s"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << bench.out() << bench.err();
  EXPECT_NE(bench.out().find("\"rate\":0.5,"), std::string::npos) << "the rate as given: " << bench.out();
  ExpectCleanStop(server);
}

// Only echoes within the measured period count: a run of a nanosecond, where one round trip
// takes microseconds, counts at most the one in flight. It counted every echo until the
// generator noticed the end (537 messages: 537,000,000,000 msg/s).
TEST(BrrrBenchTest, OnlyEchoesWithinTheMeasuredPeriodCount) {
  Process server(Echo(), {"--port=0"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(BenchBinary(), {"--port=" + std::to_string(port), "--connections=1", "--duration=1ns"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << bench.out() << bench.err();
  EXPECT_LE(JsonNumber(bench.out(), "messages"), 1) << bench.out();
  EXPECT_GE(JsonNumber(bench.out(), "messages"), 0) << bench.out();
  ExpectCleanStop(server);
}

}  // namespace
}  // namespace brrr
