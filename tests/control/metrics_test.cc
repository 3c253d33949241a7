// brrr-echo's metrics port, on a real brrr-echo: the exposition holds every figure of the lists
// per loop with the bytes the clients really sent, promtool (Debian's prometheus package)
// accepts it, /readyz answers 503 while the server drains, the admin token guards the port,
// the port's connections are in the descriptor reserve and capped by --metrics_max_connections,
// and its flags are checked.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/admin/admin_figures.h"
#include "control/admin/metrics_exporter.h"
#include "gtest/gtest.h"
#include "runtime/loop_stats.h"
#include "server/server_stats.h"
#include "tests/testing/http_client.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::BlockingClient;
using testing::HttpGet;
using testing::HttpReply;
using testing::Process;

constexpr char kPromtool[] = "/usr/bin/promtool";

class MetricsTest : public ::testing::Test {
 protected:
  // brrr-echo with its metrics port on a free port, and `extra` flags.
  void Start(std::vector<std::string> extra = {}, testing::ProcessOptions options = {}) {
    metrics_port_ = testing::PickFreePort();
    std::vector<std::string> args = {"--port=0", "--metrics_port=" + std::to_string(metrics_port_)};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<Process>(testing::Runfile("server/brrr-echo/brrr-echo"), args, options);
    port_ = server_->ListeningPort();
    ASSERT_NE(port_, 0) << server_->err();
    ASSERT_TRUE(server_->WaitForOutput("metrics on 127.0.0.1:" + std::to_string(metrics_port_)))
        << server_->out() << server_->err();
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    if (!server_->Wait(milliseconds(0)).has_value()) server_->Signal(SIGTERM);
    std::optional<int> code = server_->Wait(std::chrono::seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << server_->err();
  }

  // Echoes `size` bytes on a new connection and reads them back.
  void Echo(size_t size) {
    BlockingClient client(port_);
    std::string data = testing::RandomBytes(size, static_cast<uint32_t>(size));
    ASSERT_TRUE(client.send_all(data));
    ASSERT_EQ(client.recv_exact(size), data);
  }

  // The value of the sample `series` (name and labels, as in the text) or -1.
  static double Sample(const std::string& text, const std::string& series) {
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::strtod(text.c_str() + at + series.size() + 2, nullptr);
  }

  uint16_t metrics_port_ = 0;
  uint16_t port_ = 0;
  std::unique_ptr<Process> server_;
};

// select watches descriptors below 1024 only, and a scrape's socket comes after every echo
// connection's: the metrics port runs on poll then, so that it answers at peak load too (on
// select it closed every scrape past about 1,012 echo connections, "Empty reply from server").
TEST_F(MetricsTest, WithSelectTheMetricsPortAnswersPastAThousandConnections) {
  constexpr int kClients = 1100;
  ASSERT_GE(testing::RaiseFdLimit(4 * kClients), static_cast<uint64_t>(4 * kClients));
  Start({"--backend=select"});
  EXPECT_NE(server_->out().find("on the poll backend: select watches descriptors below 1024 only"), std::string::npos)
      << server_->out();
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(std::make_unique<BlockingClient>(port_));
  // The echo side takes all it may (select's 1024 at most, the reserve kept) and the rest wait.
  ASSERT_TRUE(server_->WaitForError("descriptors of its budget; new connections wait in the backlog"))
      << server_->err();
  for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
    HttpReply reply = HttpGet(metrics_port_, path);
    EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
  }
  HttpReply metrics = HttpGet(metrics_port_, "/metrics");
  EXPECT_GT(Sample(metrics.body, "brrr_connections_accepted_total{loop=\"0\"}"), 900) << metrics.body;
}

TEST_F(MetricsTest, TheExpositionHoldsEveryListedFigurePerLoopAndPromtoolAcceptsIt) {
  Start({"--loops=2"});
  // Enough connections that both loops (SO_REUSEPORT spreads them) are likely to serve some.
  size_t sent = 0;
  for (size_t i = 1; i <= 16; ++i) {
    Echo(1000 * i);
    sent += 1000 * i;
  }
  HttpReply reply = HttpGet(metrics_port_, "/metrics");
  ASSERT_EQ(reply.status, 200) << reply.head;
  const std::string& text = reply.body;
  for (const char* loop : {"0", "1"}) {
    const std::string labels = std::string("{loop=\"") + loop + "\"}";
    for (const FigureInfo& f : kLoopFigures) {
      EXPECT_GE(Sample(text, control::PrometheusName(f) + labels), 0) << f.name << " on loop " << loop;
    }
    for (const FigureInfo& f : server::kEchoFigures) {
      EXPECT_GE(Sample(text, control::PrometheusName(f) + labels), 0) << f.name << " on loop " << loop;
    }
    for (const FigureInfo& f : control::kAdminFigures) {  // 0 without an admin plane
      EXPECT_EQ(Sample(text, control::PrometheusName(f) + labels), 0) << f.name << " on loop " << loop;
    }
    for (const HistogramInfo& h : kLoopHistograms) {
      EXPECT_GE(Sample(text, control::PrometheusName(h) + "_bucket{loop=\"" + loop + "\",le=\"+Inf\"}"), 0)
          << h.name << " on loop " << loop;
    }
  }
  for (const FigureInfo& f : kLoopFigures) {
    EXPECT_NE(text.find("# HELP " + control::PrometheusName(f) + " " + f.help + "\n"), std::string::npos) << f.name;
  }
  EXPECT_EQ(Sample(text, "brrr_bytes_in_total{loop=\"0\"}") + Sample(text, "brrr_bytes_in_total{loop=\"1\"}"),
            static_cast<double>(sent));
  EXPECT_EQ(Sample(text, "brrr_connections_accepted_total{loop=\"0\"}") +
                Sample(text, "brrr_connections_accepted_total{loop=\"1\"}"),
            16);
  EXPECT_EQ(Sample(text, "brrr_build_info{version=\"0.1.0\"}"), 1);
  EXPECT_EQ(Sample(text, "brrr_draining"), 0);
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Sample(text, "process_open_fds"), 5);

  ASSERT_EQ(::access(kPromtool, X_OK), 0) << kPromtool << " is missing: install Debian's prometheus (tools/bootstrap.sh)";
  const std::string dir = std::getenv("TEST_TMPDIR");
  std::ofstream(dir + "/metrics.txt") << text;
  const std::string command = std::string(kPromtool) + " check metrics < " + dir + "/metrics.txt > " + dir +
                              "/promtool.out 2>&1";
  int promtool = std::system(command.c_str());
  std::ifstream out(dir + "/promtool.out");
  std::string said((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(promtool, 0) << "promtool check metrics: " << said << "\n" << text;
  EXPECT_EQ(said, "") << "promtool's lint found problems";
}

TEST_F(MetricsTest, ReadyzAnswers503WhileTheServerDrains) {
  Start({"--drain_timeout=60s"});
  EXPECT_EQ(HttpGet(metrics_port_, "/readyz").status, 200);
  BlockingClient open(port_);  // keeps the drain going until it closes
  ASSERT_TRUE(open.send_all("x"));
  ASSERT_EQ(open.recv_exact(1), "x");
  server_->Signal(SIGTERM);
  // The signal thread prints that it drains, then starts the drain: poll (bounded) for it.
  HttpReply ready;
  for (int i = 0; i < 3000 && ready.status != 503; ++i) {
    if (i > 0) std::this_thread::sleep_for(milliseconds(10));
    ready = HttpGet(metrics_port_, "/readyz");
    ASSERT_NE(ready.status, 0) << "the metrics port stopped answering during the drain";
  }
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body, "not ready: draining\n");
  EXPECT_EQ(HttpGet(metrics_port_, "/healthz").status, 200) << "alive while draining";
  EXPECT_EQ(Sample(HttpGet(metrics_port_, "/metrics").body, "brrr_draining"), 1);
  open.close();  // the drain ends; TearDown expects exit status 0
}

TEST_F(MetricsTest, TheAdminTokenGuardsTheMetricsPort) {
  const std::string token_file = std::string(std::getenv("TEST_TMPDIR")) + "/admin.token";
  std::ofstream(token_file) << "t0ken\n";
  Start({"--admin_token_file=" + token_file});
  EXPECT_TRUE(server_->WaitForOutput("/readyz; bearer token required)"));
  for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
    EXPECT_EQ(HttpGet(metrics_port_, path).status, 401) << path;
    EXPECT_EQ(HttpGet(metrics_port_, path, {"Authorization: Bearer t0ken"}).status, 200) << path;
  }
}

// Echo clients that would take every descriptor leave the metrics port its connections: with
// RLIMIT_NOFILE at 128 and 200 echo clients the echo side stops at its budget, and every one
// of --metrics_max_connections is accepted and answered, each scrape whole (process_open_fds,
// which opens /proc/self/fd for each scrape, included) while all of them are open.
TEST_F(MetricsTest, EchoClientsThatWouldTakeEveryDescriptorLeaveTheMetricsPortItsConnections) {
  // UBSan's vptr check needs a pipe (two descriptors) of its own, which the reserve does not
  // hold: with none free it reports a false "invalid vptr" (echo_server_test's
  // OutOfDescriptorsItKeepsServingAndDoesNotSpin says more). The other configurations cover it.
  if (testing::UnderSanitizer("ubsan")) GTEST_SKIP() << "UBSan's runtime needs free descriptors for its vptr check";
  constexpr int kMetricsConnections = 3;
  testing::ProcessOptions limited;
  limited.max_open_files = 128;
  Start({"--metrics_max_connections=" + std::to_string(kMetricsConnections)}, limited);
  // Its connections, and the file a scrape reads.
  const std::string reserve = std::to_string(kMetricsConnections + 1);
  EXPECT_TRUE(server_->WaitForOutput(reserve + " kept for the admin plane and metrics port)")) << server_->out();
  std::vector<std::unique_ptr<BlockingClient>> echo_clients;
  for (int i = 0; i < 200; ++i) {
    echo_clients.push_back(std::make_unique<BlockingClient>(port_));
    ASSERT_TRUE(echo_clients.back()->send_all("x"));
  }
  ASSERT_TRUE(server_->WaitForError("descriptors of its budget")) << server_->err();
  std::vector<std::unique_ptr<BlockingClient>> scrapers;
  for (int i = 0; i < kMetricsConnections; ++i) {
    scrapers.push_back(std::make_unique<BlockingClient>(metrics_port_));
    ASSERT_TRUE(scrapers.back()->send_all(testing::HttpRequestText("/metrics")));
    HttpReply reply = testing::ReadHttpReply(*scrapers.back());
    ASSERT_EQ(reply.status, 200) << "connection " << i << ": " << reply.head << server_->err();
  }
  for (int i = 0; i < kMetricsConnections; ++i) {  // all of them open now
    ASSERT_TRUE(scrapers[i]->send_all(testing::HttpRequestText("/metrics")));
    HttpReply reply = testing::ReadHttpReply(*scrapers[i]);
    ASSERT_EQ(reply.status, 200) << "connection " << i << ": " << reply.head << server_->err();
    EXPECT_GT(Sample(reply.body, "process_open_fds"), 128 - 10)
        << "connection " << i << ": the scrape could not count the descriptors\n" << reply.body;
  }
}

// --metrics_max_connections=N: N connections take every place, each with a request head that
// has not come whole; the next waits in the backlog (said once on stderr) until one has waited
// a second for its head, and that one is closed for it. README: an idle scraper or a silent
// connection holds a place for a second at most once others wait.
TEST_F(MetricsTest, PastMaxConnectionsANewConnectionWaitsForOneSlowToAsk) {
  constexpr int kMax = 3;
  Start({"--metrics_max_connections=" + std::to_string(kMax)});
  std::vector<std::unique_ptr<BlockingClient>> held;
  for (int i = 0; i < kMax; ++i) {
    held.push_back(std::make_unique<BlockingClient>(metrics_port_));
    ASSERT_TRUE(held.back()->send_all("GET /healthz HTTP/1.1\r\n"));  // a head not yet complete
  }
  BlockingClient next(metrics_port_);  // its receive gives up after 30 s
  ASSERT_TRUE(next.send_all(testing::HttpRequestText("/healthz")));
  HttpReply answered = testing::ReadHttpReply(next);
  EXPECT_EQ(answered.status, 200) << answered.head << server_->err();
  EXPECT_EQ(answered.body, "ok\n");
  EXPECT_EQ(held.front()->recv_until_eof(), "") << "the one that waited longest for its head was closed";
  EXPECT_TRUE(server_->WaitForError("metrics port: all 3 connections are in use; new ones wait in the backlog"))
      << server_->err();
  EXPECT_TRUE(server_->WaitForError("metrics port: closed a connection that sent no whole request in 1 s"))
      << server_->err();
  ASSERT_TRUE(held[1]->send_all("\r\n"));
  EXPECT_EQ(testing::ReadHttpReply(*held[1]).status, 200) << "a slow head kept its place while no one waited";
}

TEST(MetricsFlagsTest, OutOfRangeValuesExitWithStatus2) {
  for (const char* flag : {"--metrics_port=70000", "--metrics_port=-1", "--metrics_max_connections=0",
                           "--metrics_max_connections=1001"}) {
    Process p(testing::Runfile("server/brrr-echo/brrr-echo"), {"--port=0", flag});
    std::optional<int> code = p.Wait(std::chrono::seconds(30));
    ASSERT_TRUE(code.has_value()) << flag;
    EXPECT_EQ(*code, 2) << flag << ": " << p.err();
  }
  Process bad_host(testing::Runfile("server/brrr-echo/brrr-echo"),
                   {"--port=0", "--metrics_port=9", "--metrics_host=nowhere"});
  EXPECT_EQ(bad_host.Wait(std::chrono::seconds(30)), 2);
  EXPECT_NE(bad_host.err().find("--metrics_host=nowhere: not an IP address"), std::string::npos) << bad_host.err();
}

}  // namespace
}  // namespace brrr
