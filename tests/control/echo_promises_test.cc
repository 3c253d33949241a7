// brrr-echo's promises that only its figures can show, read through the admin plane of the real
// binary: every loop of --loops serves, a client that never reads is stopped at --high_water,
// --recv_buffer_size bounds each receive, --stall_threshold decides what a stall is, and the
// admin plane's addresses (--admin_host=::1, the warning for a non-loopback one, [::1]:PORT in
// GetServerInfo), and the same warning for a non-loopback --metrics_host. The first three run
// on every backend.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"
#include "tests/testing/skips.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

// "127.0.0.1:PORT" of a client socket: the peer the server sees.
std::string LocalAddress(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

class EchoPromisesTest : public testing::AdminFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam()); }

  void StartOnBackend(std::vector<std::string> extra) {
    extra.insert(extra.begin(), "--backend=" + GetParam());
    Start(extra);
  }

  // Sends `payload` on a new connection and reads the echo concurrently.
  std::string EchoOf(const std::string& payload) {
    testing::BlockingClient c(port_);
    std::thread writer([&] {
      EXPECT_TRUE(c.send_all(payload));
      c.shutdown_write();
    });
    std::string echoed = c.recv_until_eof();
    writer.join();
    return echoed;
  }
};

// --loops=3: three loops, each with its own listener on the port; the kernel spreads new
// connections over them (SO_REUSEPORT hashes each connection's addresses), so after enough
// clients every loop has accepted and echoed some. Bounded: 300 clients, for a spread where
// a loop is missed with probability 3 * (2/3)^300.
TEST_P(EchoPromisesTest, EveryLoopServesConnections) {
  StartOnBackend({"--loops=3"});
  auto every_loop_served = [](const admin::Stats& s) {
    if (s.loops_size() != 3) return false;
    for (const admin::LoopStats& l : s.loops()) {
      if (l.connections_accepted() == 0 || l.bytes_out() == 0) return false;
    }
    return true;
  };
  admin::Stats stats;
  int clients = 0;
  for (; clients < 300 && !every_loop_served(stats); ++clients) {
    std::string payload = testing::RandomBytes(1000, static_cast<uint32_t>(clients));
    ASSERT_TRUE(EchoOf(payload) == payload) << "client " << clients;
    // The echo is back before the loop has counted the send's completion: wait for it.
    stats = StatsWhen([&](const admin::Stats& s) { return s.total().bytes_out() == 1000u * (clients + 1); });
  }
  ASSERT_EQ(stats.loops_size(), 3);
  uint64_t accepted = 0;
  for (const admin::LoopStats& l : stats.loops()) {
    EXPECT_GT(l.connections_accepted(), 0u) << "loop " << l.loop();
    EXPECT_EQ(l.bytes_in(), 1000u * l.connections_accepted()) << "loop " << l.loop();
    EXPECT_EQ(l.bytes_out(), l.bytes_in()) << "loop " << l.loop();
    accepted += l.connections_accepted();
  }
  EXPECT_EQ(accepted, static_cast<uint64_t>(clients));
  std::printf("%d clients until every loop had served: %llu, %llu, %llu\n", clients,
              static_cast<unsigned long long>(stats.loops(0).connections_accepted()),
              static_cast<unsigned long long>(stats.loops(1).connections_accepted()),
              static_cast<unsigned long long>(stats.loops(2).connections_accepted()));
}

// A client that sends and never reads: the server queues its echo up to --high_water, stops
// reading it (reads_paused), keeps what it holds within the bound, and serves everyone else.
TEST_P(EchoPromisesTest, AClientThatNeverReadsIsStoppedAtHighWaterAndOthersAreServed) {
  // The loop's receive-buffer pool is fixed memory that traffic touches page by page (on
  // io_uring the kernel cycles through all of it), so keep it small next to the RSS bound
  // below: 256 x 16 KiB = 4 MiB.
  StartOnBackend({"--high_water=65536", "--low_water=16384", "--recv_buffers=256"});
  testing::BlockingClient hog(port_);
  hog.set_receive_buffer(4096);
  int flags = fcntl(hog.fd(), F_GETFL);
  fcntl(hog.fd(), F_SETFL, flags | O_NONBLOCK);
  uint64_t rss_before = server_->RssBytes();
  std::atomic<uint64_t> pushed{0};
  std::atomic<bool> stop{false};
  // The most the server (its bound: --high_water plus the default --recv_buffer_size) and this
  // kernel's buffers can take from the hog; reaching it means the server never stopped.
  const size_t max_pushed = testing::MostANeverReaderCanSend(65536 + 16384, 4096);
  std::thread flood([&] {
    // Sends whenever the kernel takes more; bounded by the stop flag, max_pushed and 60 s.
    std::string block(65536, 'h');
    TimePoint give_up = Clock::now() + seconds(60);
    while (!stop.load() && pushed.load() < max_pushed && Clock::now() < give_up) {
      ssize_t n = ::send(hog.fd(), block.data(), block.size(), MSG_NOSIGNAL);
      if (n > 0) {
        pushed += static_cast<uint64_t>(n);
      } else {
        std::this_thread::sleep_for(milliseconds(1));
      }
    }
  });
  // It reached the mark and was stopped.
  admin::Stats paused = StatsWhen([](const admin::Stats& s) { return s.total().reads_paused() >= 1; });
  EXPECT_GE(paused.total().reads_paused(), 1u);
  // Someone else is served meanwhile.
  std::string payload = testing::RandomBytes(100000, 5);
  EXPECT_TRUE(EchoOf(payload) == payload);
  // Once the hog's own sends block, the server holds its socket out of the read set with the
  // echo queued: more than --low_water (else it would read again) and no more than
  // --high_water + --recv_buffer_size (the bound). Polled, bounded: 3,000 rounds of 10 ms.
  const admin::SocketInfo* hog_info = nullptr;
  admin::ListSocketsResponse list;
  for (int round = 0; round < 3000; ++round) {
    grpc::Status s = stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &list);
    ASSERT_TRUE(s.ok()) << s.error_message();
    hog_info = nullptr;
    for (const admin::SocketInfo& i : list.sockets()) {
      if (i.peer() == LocalAddress(hog.fd())) hog_info = &i;
    }
    if (hog_info != nullptr && !hog_info->in_read_set() && hog_info->bytes_queued() > 16384) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_NE(hog_info, nullptr) << list.DebugString();
  EXPECT_FALSE(hog_info->in_read_set()) << hog_info->DebugString();
  EXPECT_TRUE(hog_info->in_write_set()) << hog_info->DebugString();
  EXPECT_GT(hog_info->bytes_queued(), 16384u) << hog_info->DebugString();
  EXPECT_LE(hog_info->bytes_queued(), 65536u + 16384u) << hog_info->DebugString();
  uint64_t rss_after = server_->RssBytes();
  stop = true;
  flood.join();
  EXPECT_LT(pushed.load(), max_pushed) << "the server never stopped reading the hog";
  // A resource bound where the bound is the feature: what the hog pushed (megabytes) sits in
  // kernel buffers, not in the server, which holds about --high_water.
  if (testing::ResidentMemoryMeasuresHoldings()) {
    EXPECT_LT(rss_after, rss_before + (8u << 20)) << "server memory grew by " << (rss_after - rss_before) << " bytes";
  }
  hog.close();
}

// Idle connections hold no receive buffer: 200 open connections, each echoed once, leave the
// loop's pool with none in use (receive_buffers_in_use), however few buffers it has (here 16,
// fewer than the connections); a client that never reads holds some while its echo waits, so
// the figure is not simply always 0.
TEST_P(EchoPromisesTest, IdleConnectionsHoldNoReceiveBuffer) {
  StartOnBackend({"--recv_buffers=16", "--recv_buffer_size=4096", "--high_water=65536", "--low_water=16384"});
  std::vector<std::unique_ptr<testing::BlockingClient>> idle;
  for (int i = 0; i < 200; ++i) {
    idle.push_back(std::make_unique<testing::BlockingClient>(port_));
    std::string hello = "hello " + std::to_string(i);
    ASSERT_TRUE(idle.back()->send_all(hello));
    ASSERT_EQ(idle.back()->recv_exact(hello.size()), hello);
  }
  admin::Stats quiet = StatsWhen([](const admin::Stats& s) {
    return s.total().connections_active() == 200 && s.total().receive_buffers_in_use() == 0;
  });
  EXPECT_EQ(quiet.total().connections_active(), 200u);
  EXPECT_EQ(quiet.total().receive_buffers_in_use(), 0u) << quiet.total().ShortDebugString();

  // A client that sends and never reads: its echo waits in the server, in pool buffers.
  testing::BlockingClient hog(port_);
  hog.set_receive_buffer(4096);
  int flags = fcntl(hog.fd(), F_GETFL);
  fcntl(hog.fd(), F_SETFL, flags | O_NONBLOCK);
  std::string block(65536, 'h');
  admin::Stats held;
  for (int round = 0; round < 3000; ++round) {  // bounded: 3,000 rounds of a send and a look
    (void)::send(hog.fd(), block.data(), block.size(), MSG_NOSIGNAL);
    held = Stats();
    if (held.total().receive_buffers_in_use() > 0 && held.total().reads_paused() > 0) break;
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_GT(held.total().receive_buffers_in_use(), 0u) << held.total().ShortDebugString();
  EXPECT_LE(held.total().receive_buffers_in_use(), 16u);
  // Once it has gone, every buffer is back.
  hog.close();
  admin::Stats after = StatsWhen([](const admin::Stats& s) {
    return s.total().connections_active() == 200 && s.total().receive_buffers_in_use() == 0;
  });
  EXPECT_EQ(after.total().receive_buffers_in_use(), 0u) << after.total().ShortDebugString();
}

// --recv_buffer_size is the most one receive takes: each receive completion (messages_in)
// carries at most 1,024 bytes here, so a mebibyte takes at least 1,024 of them. (At the
// default 16 KiB it would take about 64.)
TEST_P(EchoPromisesTest, EachReceiveTakesAtMostRecvBufferSize) {
  StartOnBackend({"--recv_buffer_size=1024"});
  std::string payload = testing::RandomBytes(1 << 20, 21);
  EXPECT_TRUE(EchoOf(payload) == payload);
  admin::Stats stats = StatsWhen([&](const admin::Stats& s) { return s.total().bytes_out() == payload.size(); });
  EXPECT_EQ(stats.total().bytes_in(), payload.size());
  EXPECT_GE(stats.total().messages_in(), payload.size() / 1024);
}

INSTANTIATE_TEST_SUITE_P(Backends, EchoPromisesTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

using StallFlagTest = testing::AdminFixture;

admin::Injection Spin(admin::Admin::Stub& stub, std::unique_ptr<grpc::ClientContext> context, uint32_t ms) {
  admin::InjectTaskRequest request;
  request.set_kind(admin::BLOCKING_SPIN);
  request.set_duration_ms(ms);
  admin::Injection injection;
  grpc::Status s = stub.InjectTask(context.get(), request, &injection);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return injection;
}

// --stall_threshold=20ms: a 60 ms task is a stall (at the 100 ms default it would not be).
// Under a sanitizer on a loaded machine another task may pass 20 ms too, so the spin's own
// stall is looked for among those the loop reports, the recent ones first (it may have ended
// before the stream began); bounded by 100 stalls and the call's 60 s deadline.
TEST_F(StallFlagTest, ALowerStallThresholdCountsShorterTasks) {
  Start({"--stall_threshold=20ms"});
  EXPECT_DOUBLE_EQ(Stats().loops(0).stall_threshold_ms(), 20.0);
  Spin(*stub_, Context(), 60);
  auto context = Context(std::chrono::seconds(60));
  admin::WatchStallsRequest watch;
  watch.set_include_recent(true);
  auto stream = stub_->WatchStalls(context.get(), watch);
  admin::Stall stall;
  bool found = false;
  for (int i = 0; i < 100 && !found && stream->Read(&stall); ++i) found = stall.task() == "inject:blocking_spin";
  context->TryCancel();
  stream->Finish();
  ASSERT_TRUE(found) << "the 60 ms spin was not reported as a stall; the last stall read: " << stall.ShortDebugString();
  EXPECT_GE(stall.duration_ms(), 60.0);
}

// --stall_threshold=10s: a 500 ms task is no stall (at the default it would be one). Checked
// once the injection has finished (its run ended, so it was measured).
TEST_F(StallFlagTest, AHigherStallThresholdIgnoresLongerTasks) {
  Start({"--stall_threshold=10s"});
  EXPECT_DOUBLE_EQ(Stats().loops(0).stall_threshold_ms(), 10000.0);
  admin::Injection spin = Spin(*stub_, Context(), 500);
  admin::Stats after = StatsWhen([](const admin::Stats& s) {
    return s.injections_size() == 0 && s.loops(0).longest_task() == "inject:blocking_spin";
  });
  EXPECT_GE(after.loops(0).longest_task_ms(), 500.0);
  EXPECT_EQ(after.total().stalls(), 0u);
}

// --admin_host=::1: the admin plane listens on IPv6 loopback, says so as [::1]:PORT, answers
// there, and draws no warning.
TEST(AdminAddressTest, AdminHostIPv6Loopback) {
  uint16_t admin_port = testing::PickFreePort();
  testing::Process server(testing::Runfile("server/brrr-echo/brrr-echo"),
                          {"--port=0", "--admin_port=" + std::to_string(admin_port), "--admin_host=::1"});
  if (server.Wait(milliseconds(0)).has_value() || !server.WaitForOutput("admin plane on ", seconds(30))) {
    std::optional<int> code = server.Wait(seconds(30));
    if (server.err().find("Cannot assign requested address") != std::string::npos ||
        server.err().find("Address family not supported") != std::string::npos) {
      BRRR_SKIP_OR_FAIL("ipv6", "no IPv6 loopback here: " + server.err());
    }
    FAIL() << "exit " << code.value_or(-1) << ": " << server.err();
  }
  std::string address = "[::1]:" + std::to_string(admin_port);
  EXPECT_NE(server.out().find("admin plane on " + address + " "), std::string::npos) << server.out();
  auto stub = admin::Admin::NewStub(grpc::CreateChannel("ipv6:" + address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  admin::ServerInfo info;
  grpc::Status s = stub->GetServerInfo(&context, admin::GetServerInfoRequest(), &info);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(static_cast<pid_t>(info.pid()), server.pid());
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(seconds(30)), 0) << server.err();
  EXPECT_EQ(server.err().find("warning"), std::string::npos) << server.err();  // all of it, once exited
}

// Any admin address but a loopback one draws a warning. The server runs in a network
// namespace of its own, where 0.0.0.0 reaches nothing but that namespace (tests listen on
// loopback only).
TEST(AdminAddressTest, ANonLoopbackAdminHostDrawsAWarning) {
  uint16_t admin_port = testing::PickFreePort();
  testing::Process server(testing::Runfile("server/brrr-echo/brrr-echo"),
                          {"--host=0.0.0.0", "--port=0", "--admin_port=" + std::to_string(admin_port),
                           "--admin_host=0.0.0.0"},
                          {.own_network_namespace = true});
  if (!server.WaitForOutput("admin plane on ", seconds(30))) {
    std::optional<int> code = server.Wait(seconds(30));
    if (code == testing::kNoNetworkNamespace) BRRR_SKIP_OR_FAIL("netns", server.err());
    FAIL() << "exit " << code.value_or(-1) << ": " << server.err();
  }
  std::string address = "0.0.0.0:" + std::to_string(admin_port);
  EXPECT_TRUE(server.WaitForError("brrr-echo: warning: the admin plane listens on " + address +
                                  ", which is not a loopback address: anyone who can reach it can read the statistics "
                                  "and act on the server (drain it, close connections, throttle, inject blocking "
                                  "tasks) (no --admin_token_file)"))
      << server.err();
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(seconds(30)), 0) << server.err();
}

// With a token, the warning says who can act (whoever has the token) and that it travels in
// clear text.
TEST(AdminAddressTest, WithATokenTheWarningSaysTheTokenTravelsInClearText) {
  const std::string token_file = std::string(std::getenv("TEST_TMPDIR")) + "/warning.token";
  std::ofstream(token_file) << "t0ken\n";
  uint16_t admin_port = testing::PickFreePort();
  testing::Process server(testing::Runfile("server/brrr-echo/brrr-echo"),
                          {"--host=0.0.0.0", "--port=0", "--admin_port=" + std::to_string(admin_port),
                           "--admin_host=0.0.0.0", "--admin_token_file=" + token_file},
                          {.own_network_namespace = true});
  if (!server.WaitForOutput("admin plane on ", seconds(30))) {
    std::optional<int> code = server.Wait(seconds(30));
    if (code == testing::kNoNetworkNamespace) BRRR_SKIP_OR_FAIL("netns", server.err());
    FAIL() << "exit " << code.value_or(-1) << ": " << server.err();
  }
  EXPECT_TRUE(server.WaitForError("0.0.0.0:" + std::to_string(admin_port) +
                                  ", which is not a loopback address: whoever can reach it and has the token can read "
                                  "the statistics and act on the server (drain it, close connections, throttle, "
                                  "inject blocking tasks); the token travels in clear text (no TLS): keep the network "
                                  "private"))
      << server.err();
  EXPECT_EQ(server.err().find("anyone who can reach it"), std::string::npos) << server.err();
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(seconds(30)), 0) << server.err();
}

// The metrics port is under the same rule as the admin plane: anything but loopback warns.
TEST(MetricsAddressTest, ANonLoopbackMetricsHostDrawsAWarning) {
  uint16_t metrics_port = testing::PickFreePort();
  testing::Process server(testing::Runfile("server/brrr-echo/brrr-echo"),
                          {"--host=0.0.0.0", "--port=0", "--metrics_port=" + std::to_string(metrics_port),
                           "--metrics_host=0.0.0.0"},
                          {.own_network_namespace = true});
  if (!server.WaitForOutput("metrics on ", seconds(30))) {
    std::optional<int> code = server.Wait(seconds(30));
    if (code == testing::kNoNetworkNamespace) BRRR_SKIP_OR_FAIL("netns", server.err());
    FAIL() << "exit " << code.value_or(-1) << ": " << server.err();
  }
  std::string address = "0.0.0.0:" + std::to_string(metrics_port);
  EXPECT_TRUE(server.WaitForError("brrr-echo: warning: the metrics port listens on " + address +
                                  ", which is not a loopback address: anyone who can reach it can read the statistics "
                                  "(no --admin_token_file)"))
      << server.err();
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(seconds(30)), 0) << server.err();
}

// And a loopback one does not.
TEST(MetricsAddressTest, ALoopbackMetricsHostDrawsNoWarning) {
  uint16_t metrics_port = testing::PickFreePort();
  testing::Process server(testing::Runfile("server/brrr-echo/brrr-echo"),
                          {"--port=0", "--metrics_port=" + std::to_string(metrics_port)});
  ASSERT_TRUE(server.WaitForOutput("metrics on 127.0.0.1:" + std::to_string(metrics_port), seconds(30)))
      << server.err();
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(seconds(30)), 0) << server.err();
  EXPECT_EQ(server.err().find("warning: the metrics port"), std::string::npos) << server.err();
}

// GetServerInfo writes an IPv6 listening address as [::1]:PORT, the form a client can use.
using ServerInfoTest = testing::AdminFixture;

TEST_F(ServerInfoTest, IPv6ListenersAreWrittenInBrackets) {
  {
    int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int error = probe < 0 ? errno : ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
    if (probe >= 0) ::close(probe);
    if (error == EAFNOSUPPORT || error == EADDRNOTAVAIL) {
      BRRR_SKIP_OR_FAIL("ipv6", std::string("no IPv6 loopback here: ") + std::strerror(error));
    }
  }
  Start({"--host=::1"});
  admin::ServerInfo info;
  grpc::Status s = stub_->GetServerInfo(Context().get(), admin::GetServerInfoRequest(), &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(info.listening_addresses_size(), 1);
  EXPECT_EQ(info.listening_addresses(0), "[::1]:" + std::to_string(port_));
  testing::BlockingClient client(port_, /*ipv6=*/true);
  ASSERT_TRUE(client.send_all("six"));
  EXPECT_EQ(client.recv_exact(3), "six");
}

}  // namespace
}  // namespace brrr
