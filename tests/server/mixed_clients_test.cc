// brrr-echo (two loops; every backend, and the copies whose system calls fail now and then)
// under clients that behave differently at once, picked at random for a few seconds: plain
// echoes with odd send and receive sizes, pipelines read only after everything is sent,
// half-closes, resets while sending and while receiving, clients that never read (and some that
// then read everything back), slow readers, storms of short connections, idle ones. Each
// behaviour has its own test elsewhere; this one is for what they do to each other. It asserts
// the server's promises together:
// - every byte of every echo a client waited for comes back, in order, and ends as the client
//   ended (an end of stream only after the whole echo of a half-closed connection);
// - a client that never reads gets no more taken from it than the high-water mark allows;
// - the metrics port answers throughout;
// - once the clients are gone every descriptor comes back and no connection is left;
// - the drain exits 0, and its summary accounts for every connection the clients made and no
//   more bytes than they sent and received;
// - a drain that starts halfway refuses new connections and lets every open one (and every one
//   waiting in the backlog) finish as it would have without it.
// The clients are testing::MixedClients. The seed is printed; BRRR_MIXED_CLIENTS_SEED replays
// one, BRRR_MIXED_CLIENTS_SECONDS runs longer (a soak: `bazel test -c opt
// //tests/server:mixed_clients_test --test_env=BRRR_MIXED_CLIENTS_SECONDS=120`).
#include "tests/testing/mixed_clients.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/server/echo_server_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/http_client.h"
#include "tests/testing/process.h"
#include "tests/testing/side_ports.h"

namespace brrr {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The server's bound on what it holds per connection (flags below), which a client that never
// reads must meet.
constexpr size_t kHighWater = 65536;
constexpr size_t kReceiveBuffer = 16384;  // brrr-echo's default --recv_buffer_size

// Scrapes the metrics port every 250 ms until stopped, keeping what each answer other than a
// 200 was.
class Scraper {
 public:
  explicit Scraper(uint16_t port)
      : thread_([this, port] {
          while (!stop_.load()) {
            testing::HttpReply reply = testing::HttpGet(port, "/metrics");
            if (reply.status != 200) {
              std::lock_guard<std::mutex> lock(mu_);
              failures_.push_back(absl::StrCat("/metrics answered ", reply.status, ": ", reply.head));
            }
            scrapes_++;
            std::this_thread::sleep_for(milliseconds(250));
          }
        }) {}
  ~Scraper() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  int scrapes() const { return scrapes_.load(); }
  std::vector<std::string> Failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> scrapes_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;  // guarded by mu_
  std::thread thread_;
};

// The sum over the loops of a figure in a /metrics text (`name{loop="N"} value` lines).
double SumOverLoops(const std::string& text, const std::string& name) {
  double sum = 0;
  const std::string start = "\n" + name + "{loop=\"";
  for (size_t at = text.find(start); at != std::string::npos; at = text.find(start, at + 1)) {
    size_t value = text.find("} ", at);
    if (value != std::string::npos) sum += std::strtod(text.c_str() + value + 2, nullptr);
  }
  return sum;
}

// The figures of brrr-echo's last line, after its drain.
struct DrainSummary {
  unsigned long long served = 0, at_deadline = 0, by_signal = 0, bytes_in = 0, bytes_out = 0;
  unsigned long long clean = 0, reset = 0, discarded = 0, reset_in_backlog = 0;

  // From the server's output; false if the line is not there.
  bool Read(const std::string& out) {
    size_t at = out.find("brrr-echo: drained in ");
    if (at == std::string::npos) return false;
    double seconds = 0, up = 0;
    return std::sscanf(out.c_str() + at,
                       "brrr-echo: drained in %lf s: %llu connections served, %llu closed at the drain deadline, "
                       "%llu closed by a second signal, %llu bytes in, %llu bytes out, up %lf s; at the deadline "
                       "%llu closed cleanly, %llu with a reset, %llu bytes discarded after the end of stream; "
                       "%llu clients reset",
                       &seconds, &served, &at_deadline, &by_signal, &bytes_in, &bytes_out, &up, &clean, &reset,
                       &discarded, &reset_in_backlog) == 11;
  }
};

// On every backend, and on the copies of the readiness backends whose system calls fail now and
// then (testing::FaultyBackends: EINTR, spurious EAGAIN, short transfers, duplicated events).
class MixedClientsTest : public testing::EchoServerTest {
 protected:
  void SetUp() override {
    if (!testing::IsFaulty(GetParam())) EchoServerTest::SetUp();
  }

  // brrr-echo with two loops, the high-water mark above and a metrics port.
  void StartServer() {
    server_ = testing::StartOnFreeSidePorts(
        testing::EchoBinary(),
        [&](const testing::SidePorts& p) {
          std::vector<std::string> args = BackendFlags();
          args.insert(args.end(),
                      {"--port=0", "--loops=2", "--high_water=" + std::to_string(kHighWater), "--low_water=16384",
                       "--drain_timeout=120s", "--metrics_port=" + std::to_string(p.metrics)});
          return args;
        },
        &ports_);
    port_ = server_->ListeningPort();
    ASSERT_NE(port_, 0) << server_->err();
  }

  // Runs the clients for testing::MixedClientsDuration(), the metrics port scraped until
  // `midway` (if any) runs on this thread halfway through; then each failure is the test's.
  void RunClients(const std::function<void()>& midway = nullptr) {
    const seconds duration = testing::MixedClientsDuration();
    clients_ = std::make_unique<testing::MixedClients>(testing::MixedClientsOptions{
        .port = port_, .seed = testing::MixedClientsSeed(), .queue_bound = kHighWater + kReceiveBuffer});
    Scraper scraper(ports_.metrics);
    clients_->Start(Clock::now() + duration);
    if (midway) {
      std::this_thread::sleep_for(duration / 2);
      scraper.Stop();  // the metrics port closes when the server exits, which may come first
      midway();
    }
    clients_->Join();
    scraper.Stop();
    EXPECT_GT(scraper.scrapes(), 0);
    for (const std::string& f : scraper.Failures()) ADD_FAILURE() << f;
    for (const std::string& f : clients_->Failures()) ADD_FAILURE() << f;
    const testing::ClientTally& t = clients_->tally();
    std::printf("%llu connections, %llu bytes sent, %llu echo bytes checked, %d scrapes\n",
                static_cast<unsigned long long>(t.connects.load()),
                static_cast<unsigned long long>(t.bytes_sent.load()),
                static_cast<unsigned long long>(t.bytes_checked.load()), scraper.scrapes());
  }

  // The server's exit status, which must come within 30 s (it has no connection left then), and
  // its summary, whose accounts must agree with what the clients did.
  void ExpectAnExitWhoseAccountsAgree() {
    std::optional<int> code = server_->Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << "no exit 30 s after the last client went";
    EXPECT_EQ(*code, 0) << server_->err();
    DrainSummary summary;
    ASSERT_TRUE(summary.Read(server_->out())) << server_->out();
    const testing::ClientTally& t = clients_->tally();
    EXPECT_EQ(summary.served + summary.reset_in_backlog, t.connects.load()) << server_->out();
    EXPECT_EQ(summary.at_deadline, 0u) << server_->out();
    EXPECT_LE(summary.bytes_out, summary.bytes_in) << server_->out();
    EXPECT_LE(summary.bytes_in + summary.discarded, t.bytes_sent.load()) << "the server read more than was sent";
    EXPECT_GE(summary.bytes_out, t.bytes_checked.load()) << "the clients checked more echo than the server sent";
  }

  std::unique_ptr<testing::Process> server_;
  testing::SidePorts ports_;
  uint16_t port_ = 0;
  std::unique_ptr<testing::MixedClients> clients_;

 private:
  // The flags that pick the backend: a faulty copy by its directory (.../faults/NAME/libbrrr_reactor_NAME.so).
  std::vector<std::string> BackendFlags() const {
    if (!testing::IsFaulty(GetParam())) return {"--backend=" + GetParam()};
    const std::string dir = GetParam().substr(0, GetParam().rfind('/'));
    return {"--backend=" + dir.substr(dir.rfind('/') + 1), "--plugin_dir=" + dir};
  }
};

TEST_P(MixedClientsTest, EveryClientGetsWhatItWasPromisedAndNothingIsLeftBehind) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const int fds_at_rest = SettledOpenFds(*server_);
  RunClients();
  // Every connection ends on the server's side too: its descriptors come back, no connection
  // is left open in its figures.
  EXPECT_EQ(WaitForOpenFds(*server_, fds_at_rest), fds_at_rest) << "descriptors left open after every client went";
  testing::HttpReply metrics = testing::HttpGet(ports_.metrics, "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.head;
  EXPECT_EQ(SumOverLoops(metrics.body, "brrr_connections_active"), 0) << metrics.body;
  EXPECT_EQ(SumOverLoops(metrics.body, "brrr_connections_accepted_total"),
            static_cast<double>(clients_->tally().connects.load()))
      << metrics.body;
  server_->Signal(SIGTERM);
  ExpectAnExitWhoseAccountsAgree();
}

// SIGTERM halfway through: from then on connections are refused, and every one already made
// (or waiting in the backlog) is served to its end as it would have been without the drain.
TEST_P(MixedClientsTest, ADrainHalfwayLetsEveryConnectionFinishAsPromised) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  RunClients([&] {
    clients_->StartDraining();
    server_->Signal(SIGTERM);
  });
  ExpectAnExitWhoseAccountsAgree();
}

INSTANTIATE_TEST_SUITE_P(Backends, MixedClientsTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
INSTANTIATE_TEST_SUITE_P(Faulty, MixedClientsTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
