// admin_fixture.h: a real brrr-echo with its admin plane on free ports, and a real gRPC
// channel to it, for the admin-plane tests.
//
//   TEST_F(AdminFixture, Foo) {
//     Start({"--loops=2"});                      // extra brrr-echo flags (and ProcessOptions)
//     admin::Stats s = Stats();
//     grpc::Status st = stub_->GetThrottle(Context().get(), {}, &throttle);
//
// With SetToken() before Start(), the server requires that token and Context() sends it.
// TearDown sends SIGTERM (unless the server has exited already) and expects exit status 0.
#ifndef BRRR_TESTS_CONTROL_ADMIN_FIXTURE_H_
#define BRRR_TESTS_CONTROL_ADMIN_FIXTURE_H_

#include <signal.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/control/admin_probes.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/side_ports.h"

namespace brrr::testing {

class AdminFixture : public ::testing::Test {
 protected:
  // brrr-echo with its admin plane on a free port; `options` for the child (a descriptor limit,
  // where its output goes).
  void Start(std::vector<std::string> extra = {}, ProcessOptions options = {}) {
    auto args_with = [&](uint16_t admin_port, uint16_t port) {
      std::vector<std::string> args = {"--port=" + std::to_string(port), "--admin_port=" + std::to_string(admin_port)};
      if (!token_.empty()) {
        std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/admin.token";
        std::ofstream(path) << token_ << "\n";
        args.push_back("--admin_token_file=" + path);
      }
      args.insert(args.end(), extra.begin(), extra.end());
      return args;
    };
    if (options.output_fd >= 0) {
      // Its output goes where the test said, unread here: it is up once both ports accept.
      admin_port_ = PickFreePort();
      port_ = PickFreePort();
      Connect();
      server_ =
          std::make_unique<Process>(Runfile("server/brrr-echo/brrr-echo"), args_with(admin_port_, port_), options);
      ASSERT_TRUE(WaitUntilAccepting(port_) && WaitUntilAccepting(admin_port_));
      return;
    }
    SidePorts ports;
    server_ = StartOnFreeSidePorts(
        Runfile("server/brrr-echo/brrr-echo"), [&](const SidePorts& p) { return args_with(p.admin, 0); }, &ports,
        options);
    admin_port_ = ports.admin;
    // The channel before the checks: a test that goes on past a failed start gets failed calls, not a crash.
    Connect();
    port_ = server_->ListeningPort();
    ASSERT_NE(port_, 0) << server_->out() << server_->err();
    ASSERT_TRUE(server_->WaitForOutput("admin plane on 127.0.0.1:" + std::to_string(admin_port_)))
        << server_->out() << server_->err();
  }

  void SetToken(std::string token) { token_ = std::move(token); }

  void TearDown() override {
    if (server_ == nullptr) return;
    if (!server_->Wait(std::chrono::milliseconds(0)).has_value()) server_->Signal(SIGTERM);
    std::optional<int> code = server_->Wait(std::chrono::seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << server_->err();
  }

  // A channel and a stub to the admin plane at admin_port_ (a started server or not: calls on it
  // fail until one listens there).
  void Connect() {
    channel_ = grpc::CreateChannel(AdminAddress(), grpc::InsecureChannelCredentials());
    stub_ = brrr::admin::v1::Admin::NewStub(channel_);
  }

  // "127.0.0.1:PORT" of the admin plane.
  std::string AdminAddress() const { return "127.0.0.1:" + std::to_string(admin_port_); }

  // A call context with a deadline (10 s, or longer for a stream that waits for events), carrying
  // the token if the test set one.
  std::unique_ptr<grpc::ClientContext> Context(std::chrono::seconds deadline = std::chrono::seconds(10)) const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + deadline);
    if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
    return context;
  }

  brrr::admin::v1::Stats Stats() {
    brrr::admin::v1::Stats stats;
    grpc::Status s = stub_->GetStats(Context().get(), brrr::admin::v1::GetStatsRequest(), &stats);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return stats;
  }

  // "up to N for echo connections" from brrr-echo's start-up line, or 0. That line comes after
  // "admin plane on", which is all that Start() waits for.
  uint64_t EchoBudget() const {
    const std::string marker = "descriptors: up to ";
    if (!server_->WaitForOutput(" for echo connections (limit ")) return 0;
    std::string out = server_->out();
    size_t at = out.find(marker);
    return at == std::string::npos ? 0 : std::stoull(out.substr(at + marker.size()));
  }

  // Stats once `ready` holds for them (polled, bounded: 30 s). If it never holds, the test
  // fails here, saying so with the last stats read (which are returned).
  brrr::admin::v1::Stats StatsWhen(const std::function<bool(const brrr::admin::v1::Stats&)>& ready) {
    brrr::admin::v1::Stats stats;
    for (int i = 0; i < 3000; ++i) {
      stats = Stats();
      if (ready(stats)) return stats;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the stats never showed what the test waited for within 30 s; the last: "
                  << stats.ShortDebugString();
    return stats;
  }

  // Blocks `loop` with a BLOCKING_SLEEP of `duration_ms` through InjectTask, and returns the
  // injection once its run has started (the test fails if it is refused or never starts).
  brrr::admin::v1::Injection BlockLoop(uint32_t loop, uint32_t duration_ms) {
    brrr::admin::v1::InjectTaskRequest block;
    block.set_kind(brrr::admin::v1::BLOCKING_SLEEP);
    block.set_duration_ms(duration_ms);
    block.add_loops(loop);
    brrr::admin::v1::Injection blocking;
    grpc::Status injected = stub_->InjectTask(Context().get(), block, &blocking);
    EXPECT_TRUE(injected.ok()) << injected.error_message();
    StatsWhen([](const brrr::admin::v1::Stats& s) {
      return s.injections_size() == 1 && s.injections(0).runs_started() == 1;
    });
    return blocking;
  }

  // Cancels what BlockLoop(loop, ...) returned and waits until `loop` is free again.
  void Unblock(uint32_t loop, const brrr::admin::v1::Injection& blocking) {
    brrr::admin::v1::CancelInjectionRequest cancel;
    cancel.set_id(blocking.id());
    brrr::admin::v1::Injection cancelled;
    grpc::Status status = stub_->CancelInjection(Context().get(), cancel, &cancelled);
    EXPECT_TRUE(status.ok()) << status.error_message();
    StatsWhen([loop](const brrr::admin::v1::Stats& s) {
      return s.loops(static_cast<int>(loop)).current_task() != "inject:blocking_sleep";
    });
  }

  // Sets a socket option with an int value (SO_SNDBUF, SO_RCVBUF...) on the server's end of
  // `client`'s connection, found through ListSockets once the server has accepted it (polled,
  // bounded: 30 s). "" on success, else what failed.
  std::string SetServerSocketOption(const BlockingClient& client, int level, int option, int value) {
    brrr::admin::v1::ListSocketsResponse list;
    const brrr::admin::v1::SocketInfo* s = nullptr;
    for (int i = 0; i < 3000 && s == nullptr; ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      list.Clear();
      grpc::Status listed = stub_->ListSockets(Context().get(), brrr::admin::v1::ListSocketsRequest(), &list);
      if (!listed.ok()) return "ListSockets: " + listed.error_message();
      s = FindPeer(list, LocalAddress(client.fd()));
    }
    if (s == nullptr) return "the client was not listed within 30 s: " + list.ShortDebugString();
    return SetSocketOptionOf(server_->pid(), s->fd(), level, option, value);
  }

  // One echoed client on each of the server's first `loops` loops (SO_REUSEPORT spreads
  // connections by their addresses), found through ListSockets: entry i is on loop i. The test
  // fails (and the result is empty) if 200 clients never reach one of them.
  std::vector<std::unique_ptr<BlockingClient>> OneClientOnEachLoop(uint32_t loops) {
    std::vector<std::unique_ptr<BlockingClient>> on_loop(loops);
    uint32_t found = 0;
    for (int tries = 0; tries < 200 && found < loops; ++tries) {
      auto client = std::make_unique<BlockingClient>(port_, false, 60000);
      EXPECT_GE(EchoRoundTripMs(*client), 0);  // accepted: ListSockets shows it
      brrr::admin::v1::ListSocketsResponse list;
      EXPECT_TRUE(stub_->ListSockets(Context().get(), brrr::admin::v1::ListSocketsRequest(), &list).ok());
      const brrr::admin::v1::SocketInfo* s = FindPeer(list, LocalAddress(client->fd()));
      if (s == nullptr || s->loop() >= loops) {
        ADD_FAILURE() << "the client is not listed on a loop below " << loops << ": " << list.ShortDebugString();
        return {};
      }
      if (on_loop[s->loop()] == nullptr) {
        on_loop[s->loop()] = std::move(client);
        ++found;
      }
    }
    if (found < loops) {
      ADD_FAILURE() << "200 clients reached only " << found << " of " << loops << " loops";
      return {};
    }
    return on_loop;
  }

  uint16_t admin_port_ = 0;
  uint16_t port_ = 0;
  std::string token_;
  std::unique_ptr<Process> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<brrr::admin::v1::Admin::Stub> stub_;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_CONTROL_ADMIN_FIXTURE_H_
