// brrr-bench against brrr-echo: it verifies what comes back, and its exit code says so.
#include <signal.h>

#include <regex>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::Process;

std::string Bench() { return testing::Runfile("bench/brrr-bench"); }
std::string Echo() { return testing::Runfile("server/brrr-echo/brrr-echo"); }

// A number from the JSON line, e.g. JsonNumber(out, "messages").
double JsonNumber(const std::string& out, const std::string& field) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("\"" + field + "\":([0-9.]+)"))) return -1;
  return std::stod(m[1]);
}

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
  Process bench(Bench(), {"--port=" + std::to_string(port), "--connections=8", "--size=1000", "--depth=4",
                          "--duration=1s"});
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
  // What the server echoed is what the generator counted (plus what was in flight at the end).
  ExpectCleanStop(server);
  EXPECT_NE(server.out().find("8 connections served"), std::string::npos) << server.out();
}

TEST(BrrrBenchTest, AServerThatChangesTheBytesFailsTheRun) {
  Process server(Echo(), {"--port=0", "--reply_prefix=X"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(Bench(), {"--port=" + std::to_string(port), "--connections=2", "--duration=1s", "--progress=false"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  EXPECT_NE(bench.out().find("came back different"), std::string::npos) << bench.out();
  EXPECT_NE(bench.out().find("\"ok\":false"), std::string::npos) << bench.out();
  ExpectCleanStop(server);
}

// --busy_poll: the engine that spins on non-blocking sockets instead of sleeping in brrr's loops.
// Two threads, each with a slice of the connections, pipelined, sizes that do not divide the
// receive buffer: every message comes back whole, checked and counted, and the server saw
// every connection end cleanly.
TEST(BrrrBenchTest, BusyPollingMeasuresAndVerifiesAnEchoServer) {
  Process server(Echo(), {"--port=0"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(Bench(), {"--port=" + std::to_string(port), "--busy_poll", "--threads=2", "--connections=7",
                          "--size=1000", "--depth=3", "--duration=2s"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << bench.out() << bench.err();
  std::string out = bench.out();
  EXPECT_NE(out.find("\"backend\":\"busy-poll\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos) << out;
  EXPECT_GT(JsonNumber(out, "messages"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "bytes"), JsonNumber(out, "messages") * 1000) << out;
  EXPECT_GT(JsonNumber(out, "p99_us"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "mismatches"), 0) << out;
  EXPECT_EQ(JsonNumber(out, "lost_connections"), 0) << out;
  EXPECT_NE(bench.err().find("7 connected"), std::string::npos) << "progress lines: " << bench.err();
  ExpectCleanStop(server);
  EXPECT_NE(server.out().find("7 connections served"), std::string::npos) << server.out();
}

TEST(BrrrBenchTest, BusyPollingFailsTheRunWhenTheBytesChange) {
  Process server(Echo(), {"--port=0", "--reply_prefix=X"});
  uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0);
  Process bench(Bench(), {"--port=" + std::to_string(port), "--busy_poll", "--connections=2", "--duration=1s",
                          "--progress=false"});
  std::optional<int> code = bench.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << bench.out() << bench.err();
  EXPECT_NE(bench.out().find("came back different"), std::string::npos) << bench.out();
  EXPECT_NE(bench.out().find("\"backend\":\"busy-poll\""), std::string::npos) << bench.out();
  EXPECT_NE(bench.out().find("\"ok\":false"), std::string::npos) << bench.out();
  EXPECT_GE(JsonNumber(bench.out(), "mismatches"), 1) << bench.out();
  ExpectCleanStop(server);
}

TEST(BrrrBenchTest, ALostConnectionFailsTheRun) {
  auto server = std::make_unique<Process>(Echo(), std::vector<std::string>{"--port=0"});
  uint16_t port = server->ListeningPort();
  ASSERT_NE(port, 0);
  int fds_before = server->OpenFds();
  Process bench(Bench(), {"--port=" + std::to_string(port), "--connections=4", "--duration=60s", "--progress=false"});
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
  Process bench(Bench(), {"--connections=0"});
  std::optional<int> code = bench.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(bench.err().find("--connections must be from 1 to 1000000"), std::string::npos) << bench.err();
  Process busy(Bench(), {"--busy_poll", "--rate=100"});
  code = busy.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(busy.err().find("--busy_poll never waits"), std::string::npos) << busy.err();
}

}  // namespace
}  // namespace brrr
