// The admin plane's actions on a server under load, at random, while clients of every kind run
// (testing::MixedClients) on every backend: an operator thread closes connections
// (CloseConnection, with the peer named), sets and lifts rates, pauses accepting for a moment,
// injects blocking and non-blocking tasks, and lists the sockets. Every client still gets its
// whole echo byte for byte (a connection the operator closed may end early, but never with a
// wrong byte), no connection holds more than the high-water mark allows, and afterwards the
// figures account for every connection: none left, every one accepted, each successful close
// counted as the admin plane's. BRRR_MIXED_CLIENTS_SEED and BRRR_MIXED_CLIENTS_SECONDS as in
// tests/server/mixed_clients_test.cc.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/mixed_clients.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kHighWater = 65536;
constexpr uint64_t kReceiveBuffer = 16384;  // brrr-echo's default --recv_buffer_size

// The client ports of the connections the operator asked to close: a client's failure on one is
// excused (its whole echo cannot be promised), and they are told apart by the port alone.
class ClosedOnPurpose {
 public:
  void Add(uint16_t port) {
    std::lock_guard<std::mutex> lock(mu_);
    ports_.insert(port);
  }
  bool Contains(uint16_t port) const {
    std::lock_guard<std::mutex> lock(mu_);
    return ports_.count(port) > 0;
  }

 private:
  mutable std::mutex mu_;
  std::set<uint16_t> ports_;  // guarded by mu_
};

// The port of a "127.0.0.1:PORT" address, or 0.
uint16_t PortOf(const std::string& address) {
  uint32_t port = 0;
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port > 65535) return 0;
  return static_cast<uint16_t>(port);
}

// One admin action after another, picked at random, each every 20-200 ms, until stopped; what
// went wrong is kept. Uses its own stub (gRPC stubs are thread-safe; the fixture's is the
// test thread's).
class Operator {
 public:
  Operator(admin::Admin::Stub& stub, uint64_t seed, ClosedOnPurpose& closed)
      : stub_(stub), rng_(seed), closed_(closed), thread_([this] { Run(); }) {}
  ~Operator() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  uint64_t closes() const { return closes_; }  // CloseConnection calls that closed one
  uint64_t actions() const { return actions_; }
  std::vector<std::string> failures() const { return failures_; }  // after Stop

 private:
  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + seconds(30));
    return context;
  }
  size_t Uniform(size_t low, size_t high) { return std::uniform_int_distribution<size_t>(low, high)(rng_); }
  void Check(const grpc::Status& status, const std::string& what) {
    if (!status.ok()) failures_.push_back(absl::StrCat(what, ": ", status.error_message()));
  }

  void Run() {
    while (!stop_.load()) {
      std::this_thread::sleep_for(milliseconds(Uniform(20, 200)));
      switch (Uniform(0, 4)) {
        case 0:
          CloseOne();
          break;
        case 1:
          SetRates();
          break;
        case 2:
          PauseAMoment();
          break;
        case 3:
          Inject();
          break;
        default:
          CheckQueues();
      }
      actions_++;
    }
    admin::Throttle lifted;  // every rate lifted, accepting resumed
    admin::SetThrottleRequest lift;
    lift.set_bytes_per_second_per_connection(0);
    lift.set_bytes_per_second_total(0);
    lift.set_accepting_paused(false);
    Check(stub_.SetThrottle(Context().get(), lift, &lifted), "lifting the throttles");
  }

  // A random connection, closed with its peer named (so a descriptor number given out again is
  // refused, not closed).
  void CloseOne() {
    admin::ListSocketsResponse list;
    Check(stub_.ListSockets(Context().get(), admin::ListSocketsRequest(), &list), "ListSockets");
    std::vector<const admin::SocketInfo*> connections;
    for (const admin::SocketInfo& s : list.sockets()) {
      if (s.kind() == "connection") connections.push_back(&s);
    }
    if (connections.empty()) return;
    const admin::SocketInfo& victim = *connections[Uniform(0, connections.size() - 1)];
    closed_.Add(PortOf(victim.peer()));  // before the call: the client may see the close at once
    admin::CloseConnectionRequest close;
    close.set_fd(victim.fd());
    close.set_peer(victim.peer());
    admin::CloseConnectionResponse closed;
    grpc::Status status = stub_.CloseConnection(Context().get(), close, &closed);
    // Gone meanwhile (its client closed it): NOT_FOUND, or FAILED_PRECONDITION once another took the number.
    if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
        status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      return;
    }
    Check(status, "CloseConnection");
    if (status.ok()) closes_++;
  }

  // Per-connection and total rates of 4 to 64 MB/s, or none.
  void SetRates() {
    admin::SetThrottleRequest set;
    set.set_bytes_per_second_per_connection(Uniform(0, 2) == 0 ? 0 : Uniform(4, 64) * 1000 * 1000);
    set.set_bytes_per_second_total(Uniform(0, 2) == 0 ? 0 : Uniform(16, 64) * 1000 * 1000);
    admin::Throttle now;
    Check(stub_.SetThrottle(Context().get(), set, &now), "SetThrottle (rates)");
  }

  // Accepting paused for up to 300 ms: new clients wait in the backlog meanwhile.
  void PauseAMoment() {
    admin::SetThrottleRequest pause;
    pause.set_accepting_paused(true);
    admin::Throttle now;
    Check(stub_.SetThrottle(Context().get(), pause, &now), "SetThrottle (pause)");
    std::this_thread::sleep_for(milliseconds(Uniform(10, 300)));
    admin::SetThrottleRequest resume;
    resume.set_accepting_paused(false);
    Check(stub_.SetThrottle(Context().get(), resume, &now), "SetThrottle (resume)");
  }

  // A blocking spin or sleep of 1-30 ms on the loops, once to three times, or a coroutine's sleep.
  void Inject() {
    admin::InjectTaskRequest inject;
    inject.set_kind(std::array{admin::BLOCKING_SPIN, admin::BLOCKING_SLEEP, admin::NONBLOCKING_SLEEP}[Uniform(0, 2)]);
    inject.set_duration_ms(static_cast<uint32_t>(Uniform(1, 30)));
    inject.set_count(static_cast<uint32_t>(Uniform(1, 3)));
    inject.set_interval_ms(static_cast<uint32_t>(Uniform(0, 50)));
    admin::Injection injected;
    Check(stub_.InjectTask(Context().get(), inject, &injected), "InjectTask");
  }

  // No connection holds more echo than the high-water mark and one receive let in.
  void CheckQueues() {
    admin::ListSocketsResponse list;
    Check(stub_.ListSockets(Context().get(), admin::ListSocketsRequest(), &list), "ListSockets");
    for (const admin::SocketInfo& s : list.sockets()) {
      if (s.bytes_queued() > kHighWater + kReceiveBuffer) {
        failures_.push_back(absl::StrCat("a connection holds ", s.bytes_queued(), " bytes to send, more than ",
                                         kHighWater + kReceiveBuffer, ": ", s.ShortDebugString()));
      }
    }
  }

  admin::Admin::Stub& stub_;
  std::mt19937_64 rng_;
  ClosedOnPurpose& closed_;
  std::atomic<bool> stop_{false};
  uint64_t closes_ = 0;   // the operator's thread's until Stop
  uint64_t actions_ = 0;  // likewise
  std::vector<std::string> failures_;
  std::thread thread_;
};

class AdminUnderLoadTest : public testing::AdminFixture, public ::testing::WithParamInterface<std::string> {};

TEST_P(AdminUnderLoadTest, EveryActionKeepsEveryClientsEchoAndTheAccountsAgree) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  Start({"--backend=" + GetParam(), "--loops=2", "--high_water=" + std::to_string(kHighWater), "--low_water=16384"});
  const uint64_t seed = testing::MixedClientsSeed();

  ClosedOnPurpose closed;
  testing::MixedClients clients({.port = port_,
                                 .seed = seed,
                                 .queue_bound = kHighWater + kReceiveBuffer,
                                 .closed_on_purpose = [&](uint16_t port) { return closed.Contains(port); }});
  {
    Operator op(*stub_, seed, closed);
    clients.Start(Clock::now() + testing::MixedClientsDuration());
    clients.Join();
    op.Stop();
    for (const std::string& f : op.failures()) ADD_FAILURE() << f;
    for (const std::string& f : clients.Failures()) ADD_FAILURE() << f;
    const testing::ClientTally& t = clients.tally();
    std::printf(
        "%llu connections, %llu bytes sent, %llu echo bytes checked; %llu admin actions, %llu closes, "
        "%llu client failures excused by them\n",
        static_cast<unsigned long long>(t.connects.load()), static_cast<unsigned long long>(t.bytes_sent.load()),
        static_cast<unsigned long long>(t.bytes_checked.load()), static_cast<unsigned long long>(op.actions()),
        static_cast<unsigned long long>(op.closes()), static_cast<unsigned long long>(t.excused.load()));

    // Once the clients are gone the figures account for every connection. One that connected
    // while accepting was paused, and went before the operator's last resume, is accepted from the
    // backlog only after that resume: the wait is for it too.
    const uint64_t connects = t.connects.load();
    admin::Stats stats = StatsWhen([connects](const admin::Stats& s) {
      return s.total().connections_active() == 0 && s.total().connections_accepted() >= connects;
    });
    EXPECT_EQ(stats.total().connections_accepted(), connects);
    EXPECT_EQ(stats.total().connections_closed_by_admin(), op.closes());
    EXPECT_LE(stats.total().bytes_in(), t.bytes_sent.load()) << "the server read more than was sent";
    EXPECT_GE(stats.total().bytes_out(), t.bytes_checked.load()) << "the clients checked more than was sent";
    EXPECT_EQ(stats.throttle().bytes_per_second_per_connection(), 0u);
    EXPECT_FALSE(stats.throttle().accepting_paused());
  }
  // TearDown: SIGTERM, exit 0.
}

INSTANTIATE_TEST_SUITE_P(Backends, AdminUnderLoadTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
