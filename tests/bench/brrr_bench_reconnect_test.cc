// brrr-bench --reconnect across a restart of brrr-echo on the same port: the old server drains
// (its deadline closes every connection cleanly), a new one has joined the port
// (--share_port), and the load goes on against it. The report counts the clean closes and the
// messages sent again, and no corruption, reset or refused connect: every message came back
// whole, and the bytes it reports sent are exactly what the two servers received (read, or
// read and discarded after the drain's end of stream). The server runs on every backend.
#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/bench/bench_report.h"
#include "tests/testing/backends.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::BenchBinary;
using testing::JsonNumber;
using testing::Process;

std::string Echo() { return testing::Runfile("server/brrr-echo/brrr-echo"); }

// What a brrr-echo's summary line says it received: bytes in plus bytes discarded; -1 if the
// line is not there.
double ReceivedBytes(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(, (\d+) bytes in, .* (\d+) bytes discarded after the end of stream)"))) {
    return -1;
  }
  return std::stod(m[1]) + std::stod(m[2]);
}

// How many progress lines ("[  1.0s] 4 connected, ...") brrr-bench has written to stderr.
size_t ProgressLines(const std::string& err) {
  size_t lines = 0;
  for (size_t at = err.find(" connected, "); at != std::string::npos; at = err.find(" connected, ", at + 1)) ++lines;
  return lines;
}

class BrrrBenchReconnectTest : public ::testing::TestWithParam<std::string> {
 protected:
  static constexpr int kConnections = 4;

  void SetUp() override { BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam()); }

  // Where a restart under load starts: the old server, a --reconnect load of kConnections on it
  // (ended when the test says, SIGINT, not at --duration), and a new server joined to its port
  // (--share_port).
  void StartALoadAndANewServer() {
    old_server_ = std::make_unique<Process>(
        Echo(), std::vector<std::string>{"--backend=" + GetParam(), "--port=0", "--drain_timeout=300ms"});
    const uint16_t port = old_server_->ListeningPort();
    ASSERT_NE(port, 0) << old_server_->err();
    bench_ = std::make_unique<Process>(
        BenchBinary(), std::vector<std::string>{"--port=" + std::to_string(port), "--reconnect",
                                                "--connections=" + std::to_string(kConnections), "--size=1000",
                                                "--depth=8", "--duration=10m"});
    ASSERT_TRUE(bench_->WaitForError(std::to_string(kConnections) + " connected")) << bench_->err();
    new_server_ = std::make_unique<Process>(
        Echo(), std::vector<std::string>{"--backend=" + GetParam(), "--port=" + std::to_string(port), "--share_port"});
    ASSERT_EQ(new_server_->ListeningPort(), port) << new_server_->err();
  }

  std::unique_ptr<Process> old_server_;
  std::unique_ptr<Process> bench_;
  std::unique_ptr<Process> new_server_;
};

TEST_P(BrrrBenchReconnectTest, ALoadOutlivesARestartOnTheSamePortAndEveryMessageComesBack) {
  ASSERT_NO_FATAL_FAILURE(StartALoadAndANewServer());
  Process& old_server = *old_server_;
  Process& bench = *bench_;
  Process& new_server = *new_server_;
  old_server.Signal(SIGTERM);
  std::optional<int> old_code = old_server.Wait(seconds(30));
  ASSERT_TRUE(old_code.has_value()) << old_server.out();
  EXPECT_EQ(*old_code, 0);
  EXPECT_NE(
      old_server.out().find("at the deadline " + std::to_string(kConnections) + " closed cleanly, 0 with a reset"),
      std::string::npos)
      << old_server.out();

  // Every connection has read its end of stream (the old server waited for that); what it
  // had not got back is sent again to the new server, even as the run ends.
  bench.Signal(SIGINT);
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  std::string out = bench.out();
  EXPECT_EQ(*code, 0) << out << bench.err();
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  EXPECT_EQ(JsonNumber(out, "clean_closes"), kConnections) << out;
  EXPECT_EQ(JsonNumber(out, "reconnects"), kConnections) << out;
  EXPECT_GT(JsonNumber(out, "resent_messages"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "resets"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "refused_connects"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "mismatches"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "lost_connections"), 0) << out;
  EXPECT_NE(out.find("reconnect: " + std::to_string(kConnections) + " clean closes, 0 resets"), std::string::npos)
      << out;

  new_server.Signal(SIGTERM);
  std::optional<int> new_code = new_server.Wait(seconds(30));
  ASSERT_TRUE(new_code.has_value());
  EXPECT_EQ(*new_code, 0);
  EXPECT_NE(new_server.out().find(std::to_string(kConnections) + " connections served"), std::string::npos)
      << new_server.out();
  // Every byte sent reached one of the servers, the resent ones twice (once discarded).
  ASSERT_GT(ReceivedBytes(old_server.out()), 0) << old_server.out();
  ASSERT_GT(ReceivedBytes(new_server.out()), 0) << new_server.out();
  EXPECT_EQ(JsonNumber(out, "bytes_sent"), ReceivedBytes(old_server.out()) + ReceivedBytes(new_server.out()))
      << out << old_server.out() << new_server.out();
  EXPECT_NE(out.find(" bytes sent"), std::string::npos) << out;
}

// A load stopped past the old server's drain deadline and its linger (a stalled client): the
// server has closed every connection by the time the load goes on, so what the load sends on
// them next is answered with a reset it does not see (it reads the echoes and the end of stream
// first, and sends those messages again to the new server). bytes_sent counted those bytes too,
// which no server received; it counts what a server's kernel took (a restart soak found it).
TEST_P(BrrrBenchReconnectTest, BytesSentLeaveOutWhatAServerThatHadClosedRefused) {
  ASSERT_NO_FATAL_FAILURE(StartALoadAndANewServer());
  Process& old_server = *old_server_;
  Process& bench = *bench_;
  Process& new_server = *new_server_;
  {
    testing::Stopped stalled(bench);
    old_server.Signal(SIGTERM);
    std::optional<int> old_code = old_server.Wait(seconds(30));  // its deadline, then its linger
    ASSERT_TRUE(old_code.has_value()) << old_server.out();
    EXPECT_EQ(*old_code, 0) << old_server.err();
  }
  // Two more progress lines (one a second): time for every connection to read its end of
  // stream and go on against the new server.
  const size_t lines_before = ProgressLines(bench.err());
  for (int i = 0; i < 300 && ProgressLines(bench.err()) < lines_before + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  bench.Signal(SIGINT);
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  std::string out = bench.out();
  EXPECT_EQ(*code, 0) << out << bench.err();
  EXPECT_EQ(JsonNumber(out, "mismatches"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "lost_connections"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "reconnects"), kConnections) << out << bench.err();
  new_server.Signal(SIGTERM);
  ASSERT_EQ(new_server.Wait(seconds(30)), 0) << new_server.err();
  ASSERT_GT(ReceivedBytes(old_server.out()), 0) << old_server.out();
  ASSERT_GE(ReceivedBytes(new_server.out()), 0) << new_server.out();
  EXPECT_EQ(JsonNumber(out, "bytes_sent"), ReceivedBytes(old_server.out()) + ReceivedBytes(new_server.out()))
      << out << old_server.out() << new_server.out();
}

TEST(BrrrBenchReconnectFlagTest, WithoutItACleanCloseLosesTheConnection) {
  Process server(Echo(), {"--port=0", "--drain_timeout=300ms"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0) << server.err();
  Process bench(BenchBinary(), {"--port=" + std::to_string(port), "--connections=2", "--depth=4", "--duration=10m"});
  ASSERT_TRUE(bench.WaitForError("2 connected")) << bench.err();
  server.Signal(SIGTERM);
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "every connection was lost: the run ends";
  EXPECT_EQ(*code, 1);
  EXPECT_NE(bench.out().find("2 lost connections"), std::string::npos) << bench.out();
  EXPECT_EQ(bench.out().find("clean_closes"), std::string::npos) << "the report is as before: " << bench.out();
  ASSERT_TRUE(server.Wait(seconds(30)).has_value());
}

// A server that drains and never comes back: each connection's reconnect is refused (again
// every 50 ms, for the 10 s connect timeout) until it gives up. A refused connect fails the run.
TEST(BrrrBenchReconnectFlagTest, AServerThatDoesNotComeBackFailsTheRun) {
  Process server(Echo(), {"--port=0", "--drain_timeout=300ms"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0) << server.err();
  Process bench(BenchBinary(),
                {"--port=" + std::to_string(port), "--reconnect", "--connections=2", "--depth=4", "--duration=10m"});
  ASSERT_TRUE(bench.WaitForError("2 connected")) << bench.err();
  server.Signal(SIGTERM);
  std::optional<int> server_code = server.Wait(seconds(30));
  ASSERT_TRUE(server_code.has_value()) << server.out();
  EXPECT_EQ(*server_code, 0) << server.err();
  // Every connection gives up on its own: the run ends without a signal.
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "still reconnecting after 60 s: " << bench.err();
  std::string out = bench.out();
  EXPECT_EQ(*code, 1) << out << bench.err();
  EXPECT_NE(out.find("\"ok\":false"), std::string::npos) << out;
  EXPECT_GT(JsonNumber(out, "refused_connects"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "lost_connections"), 2) << out;
  EXPECT_EQ(JsonNumber(out, "mismatches"), 0) << out;
}

INSTANTIATE_TEST_SUITE_P(Backends, BrrrBenchReconnectTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
