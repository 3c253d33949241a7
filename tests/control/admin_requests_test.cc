// Requests the admin plane refuses, on a real brrr-echo over a real gRPC channel: calls
// without the bearer token when one is set (and an unreadable or empty token file at start),
// and each kind of bad request with its own error code and a message saying what is allowed.
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/raw_call.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
namespace health = grpc::health::v1;
using std::chrono::seconds;

using AdminActionsTest = testing::AdminFixture;

TEST_F(AdminActionsTest, EveryCallNeedsTheBearerTokenWhenOneIsSet) {
  SetToken("s3cret-token");
  Start();
  auto health_stub = health::Health::NewStub(channel_);
  auto call_with = [&](const std::string& authorization) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(10));
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    admin::Stats stats;
    return stub_->GetStats(&context, admin::GetStatsRequest(), &stats);
  };
  auto health_with = [&](const std::string& authorization) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(10));
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    health::HealthCheckResponse response;
    return health_stub->Check(&context, health::HealthCheckRequest(), &response);
  };
  EXPECT_EQ(call_with("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call_with("Bearer wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call_with("Basic s3cret-token").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(call_with("Bearer s3cret-token").ok());
  EXPECT_EQ(health_with("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(health_with("Bearer wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(health_with("Bearer s3cret-token").ok());
  // An action without the token does nothing.
  grpc::ClientContext context;
  admin::DrainResponse drained;
  EXPECT_EQ(stub_->Drain(&context, admin::DrainRequest(), &drained).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(Stats().draining());
}

// A token file that cannot be read, is a directory, holds no token, or holds one that no client
// could send: a control or non-ASCII byte (a gRPC client refuses such metadata, brrrctl's gRPC
// aborted on it) or one too long for a header. Before, the last two started a server nobody
// could administer, and a directory read as an empty file ("holds no token").
TEST(AdminTokenFlagTest, ATokenFileWithoutAUsableTokenIsAnErrorAtStart) {
  std::string dir = std::getenv("TEST_TMPDIR");
  std::ofstream(dir + "/empty.token") << "  \n";
  std::ofstream(dir + "/control.token") << "tok\x01"
                                        << "en\n";
  std::ofstream(dir + "/utf8.token") << "t\xc3\xb8ken\n";
  std::ofstream(dir + "/long.token") << std::string(9000, 'a') << "\n";
  std::ofstream(dir + "/short.token") << std::string(5000, 'a') << "\n";
  ASSERT_EQ(mkdir((dir + "/dir.token").c_str(), 0755), 0);
  struct Case {
    std::string file;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"no-such-file", "no-such-file: cannot read it: No such file or directory"},
           {"empty.token", "empty.token: the file holds no token"},
           {"dir.token", "dir.token: is a directory, not a file"},
           {"control.token", "control.token: the token's byte 4 is 0x01; a token is visible ASCII"},
           {"utf8.token", "utf8.token: the token's byte 2 is 0xc3; a token is visible ASCII"},
           {"long.token", "long.token: the file is longer than 8192 bytes; a token is at most 4096 bytes"},
           {"short.token", "short.token: the token is 5000 bytes long; at most 4096"},
       }) {
    SCOPED_TRACE(c.file);
    testing::Process p(testing::Runfile("server/brrr-echo/brrr-echo"),
                       {"--port=0", "--admin_port=" + std::to_string(testing::PickFreePort()),
                        "--admin_token_file=" + dir + "/" + c.file});
    EXPECT_EQ(p.Wait(seconds(30)), 2);
    EXPECT_NE(p.err().find("brrr-echo: --admin_token_file=" + dir + "/" + c.message), std::string::npos) << p.err();
  }
}

// A token file is read no further than a valid one goes: /dev/zero never ends, and brrr-echo
// read it whole, growing without bound. The child runs with 2 GB of address space, so that a
// brrr-echo that reads on dies of it (SIGABRT) rather than the machine; not under ASan or TSan,
// whose shadow memory alone is terabytes of address space (a brrr-echo that read on would fail
// the 10 s wait there).
TEST(AdminTokenFlagTest, ATokenFileThatNeverEndsIsRefusedUnread) {
  const bool shadow = testing::UnderSanitizer("asan") || testing::UnderSanitizer("tsan");
  testing::Process p("/bin/sh",
                     {"-c", std::string(shadow ? "" : "ulimit -v 2000000 && ") + "exec \"$0\" \"$@\"",
                      testing::Runfile("server/brrr-echo/brrr-echo"), "--port=0",
                      "--admin_port=" + std::to_string(testing::PickFreePort()), "--admin_token_file=/dev/zero"});
  EXPECT_EQ(p.Wait(seconds(10)), 2) << p.err();
  EXPECT_NE(p.err().find("brrr-echo: --admin_token_file=/dev/zero: the file is longer than 8192 bytes; a token is "
                         "at most 4096 bytes"),
            std::string::npos)
      << p.err();
}

// Each kind of bad request gets its own code and a message that says what is allowed.
TEST_F(AdminActionsTest, BadRequestsGetTheirErrorCodes) {
  Start({"--loops=2", "--admin_max_block=1s"});
  struct Case {
    std::string name;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    std::string says;
  };
  auto inject = [&](admin::InjectionKind kind, uint32_t duration_ms, uint32_t count, std::vector<uint32_t> loops) {
    admin::InjectTaskRequest r;
    r.set_kind(kind);
    r.set_duration_ms(duration_ms);
    r.set_count(count);
    for (uint32_t l : loops) r.add_loops(l);
    admin::Injection out;
    return stub_->InjectTask(Context().get(), r, &out);
  };
  auto throttle = [&](std::function<void(admin::SetThrottleRequest&)> fill) {
    admin::SetThrottleRequest r;
    fill(r);
    admin::Throttle out;
    return stub_->SetThrottle(Context().get(), r, &out);
  };
  grpc::GenericStub raw(channel_);
  auto not_a_message = [&](const std::string& method) {
    return testing::RawUnaryCall(raw, Context().get(), method, "\xff\xff\xff");
  };
  std::vector<Case> cases = {
      {"block longer than the maximum", [&] { return inject(admin::BLOCKING_SPIN, 1500, 1, {}); },
       grpc::StatusCode::INVALID_ARGUMENT, "1 to 1000 ms (the server's --admin_max_block)"},
      {"a throttle that is not a message", [&] { return not_a_message("/brrr.admin.v1.Admin/SetThrottle"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "the request is not a valid brrr.admin.v1.SetThrottleRequest: its bytes do not parse as that protobuf message"},
      {"an injection that is not a message", [&] { return not_a_message("/brrr.admin.v1.Admin/InjectTask"); },
       grpc::StatusCode::INVALID_ARGUMENT, "the request is not a valid brrr.admin.v1.InjectTaskRequest"},
      {"no kind", [&] { return inject(admin::INJECTION_KIND_UNSPECIFIED, 10, 1, {}); },
       grpc::StatusCode::INVALID_ARGUMENT, "BLOCKING_SPIN, BLOCKING_SLEEP or NONBLOCKING_SLEEP"},
      {"zero duration", [&] { return inject(admin::NONBLOCKING_SLEEP, 0, 1, {}); }, grpc::StatusCode::INVALID_ARGUMENT,
       "duration_ms=0"},
      {"too many runs", [&] { return inject(admin::NONBLOCKING_SLEEP, 10, 2000000, {}); },
       grpc::StatusCode::INVALID_ARGUMENT, "allowed 1 to 1000000"},
      {"unknown loop", [&] { return inject(admin::BLOCKING_SPIN, 10, 1, {5}); }, grpc::StatusCode::NOT_FOUND,
       "loops 0 to 1"},
      {"rate too low", [&] { return throttle([](auto& r) { r.set_bytes_per_second_per_connection(10); }); },
       grpc::StatusCode::INVALID_ARGUMENT, "0 (unlimited) or 1000 to"},
      {"no connections allowed", [&] { return throttle([](auto& r) { r.set_max_connections(0); }); },
       grpc::StatusCode::INVALID_ARGUMENT, "max_connections=0"},
      {"watch too often",
       [&] {
         admin::WatchStatsRequest r;
         r.set_interval_ms(10);
         auto context = Context();
         auto stream = stub_->WatchStats(context.get(), r);
         admin::Stats s;
         while (stream->Read(&s)) {
         }
         return stream->Finish();
       },
       grpc::StatusCode::INVALID_ARGUMENT, "allowed 50 to"},
      {"unknown injection",
       [&] {
         admin::CancelInjectionRequest r;
         r.set_id(999);
         admin::Injection out;
         return stub_->CancelInjection(Context().get(), r, &out);
       },
       grpc::StatusCode::NOT_FOUND, "no injection 999"},
      {"no injection id",
       [&] {
         admin::Injection out;
         return stub_->CancelInjection(Context().get(), admin::CancelInjectionRequest(), &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "id is required"},
      {"negative fd",
       [&] {
         admin::CloseConnectionRequest r;
         r.set_fd(-1);
         admin::CloseConnectionResponse out;
         return stub_->CloseConnection(Context().get(), r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "fd=-1"},
      {"unknown socket",
       [&] {
         admin::CloseConnectionRequest r;
         r.set_fd(100000);
         admin::CloseConnectionResponse out;
         return stub_->CloseConnection(Context().get(), r, &out);
       },
       grpc::StatusCode::NOT_FOUND, "no connection with fd 100000"},
      {"sockets of an unknown loop",
       [&] {
         admin::ListSocketsRequest r;
         r.set_loop(9);
         admin::ListSocketsResponse out;
         return stub_->ListSockets(Context().get(), r, &out);
       },
       grpc::StatusCode::NOT_FOUND, "no loop 9"},
      {"too many sockets",
       [&] {
         admin::ListSocketsRequest r;
         r.set_limit(1000000);
         admin::ListSocketsResponse out;
         return stub_->ListSockets(Context().get(), r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "allowed 1 to 100000"},
      {"stall threshold zero",
       [&] {
         admin::SetStallThresholdRequest r;
         admin::StallThresholds out;
         return stub_->SetStallThreshold(Context().get(), r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "allowed 1 to 60000"},
  };
  for (const Case& c : cases) {
    grpc::Status s = c.call();
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.says), std::string::npos) << c.name << ": " << s.error_message();
  }
  // Nothing was changed by the rejected requests.
  admin::Stats stats = Stats();
  EXPECT_EQ(stats.injections_size(), 0);
  EXPECT_EQ(stats.throttle().bytes_per_second_per_connection(), 0u);
  EXPECT_EQ(stats.throttle().max_connections(), 100000u);
  EXPECT_DOUBLE_EQ(stats.loops(0).stall_threshold_ms(), 100.0);
}

// README: --admin_max_block is 10 s by default. The accepted 10 s run is cancelled at once
// (a cancelled BLOCKING_SLEEP wakes), so the test does not wait for it.
TEST_F(AdminActionsTest, BlockingInjectionsLastAtMostTenSecondsByDefault) {
  Start();
  auto inject = [&](admin::InjectionKind kind, uint32_t duration_ms, admin::Injection* out) {
    admin::InjectTaskRequest r;
    r.set_kind(kind);
    r.set_duration_ms(duration_ms);
    return stub_->InjectTask(Context().get(), r, out);
  };
  for (admin::InjectionKind kind : {admin::BLOCKING_SPIN, admin::BLOCKING_SLEEP}) {
    admin::Injection refused;
    grpc::Status s = inject(kind, 10'001, &refused);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << admin::InjectionKind_Name(kind);
    EXPECT_NE(s.error_message().find("1 to 10000 ms (the server's --admin_max_block)"), std::string::npos)
        << s.error_message();
  }
  EXPECT_EQ(Stats().injections_size(), 0);

  admin::Injection longest;
  grpc::Status s = inject(admin::BLOCKING_SLEEP, 10'000, &longest);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(longest.duration_ms(), 10'000u);
  admin::CancelInjectionRequest cancel;
  cancel.set_id(longest.id());
  admin::Injection cancelled;
  s = stub_->CancelInjection(Context().get(), cancel, &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelled.state(), admin::Injection::CANCELLED);
}

}  // namespace
}  // namespace brrr
