// A drain loses no connection that was accepted: on every backend, a client connects and sends
// while its loop is held by a blocking task, and SIGTERM arrives during the same block. When
// the loop runs again the drain comes before the accept's completion is handed to the accept
// loop; the connection must still be served whole, and the server exit 0 afterwards.
#include <signal.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::seconds;

class DrainRaceTest : public testing::AdminFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam()); }
};

TEST_P(DrainRaceTest, AConnectionAcceptedAsTheDrainStartsIsServedWhole) {
  Start({"--backend=" + GetParam(), "--drain_timeout=20s"});
  admin::InjectTaskRequest request;
  request.set_kind(admin::BLOCKING_SLEEP);
  request.set_duration_ms(1000);
  admin::Injection injection;
  grpc::Status injected = stub_->InjectTask(Context().get(), request, &injection);
  ASSERT_TRUE(injected.ok()) << injected.error_message();
  admin::Stats blocked = StatsWhen([](const admin::Stats& s) { return s.loops(0).current_task() == "inject:blocking_sleep"; });
  ASSERT_EQ(blocked.loops(0).current_task(), "inject:blocking_sleep");

  // While the loop sleeps: the kernel completes the handshake and takes the bytes, and the
  // drain is queued for the loop.
  testing::BlockingClient client(port_);
  std::string payload = testing::RandomBytes(32 * 1024, 11);
  ASSERT_TRUE(client.send_all(payload));
  client.shutdown_write();
  server_->Signal(SIGTERM);
  ASSERT_TRUE(server_->WaitForOutput("draining"));

  EXPECT_TRUE(client.recv_until_eof() == payload);
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server_->out().find("1 connections served"), std::string::npos) << server_->out();
  EXPECT_NE(server_->out().find(std::to_string(payload.size()) + " bytes in"), std::string::npos) << server_->out();
}

INSTANTIATE_TEST_SUITE_P(Backends, DrainRaceTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
