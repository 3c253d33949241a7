// A scrape while a loop is blocked: the metrics port runs on a loop of its own and reads the
// echo loops' lock-free snapshots, so it answers while loop 0 spins (the injection is still
// running when the answer arrives) and shows the block: the task running on loop 0, and for
// how long. The block is injected through the admin plane (gRPC: tagged notsan).
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/http_client.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;

double Sample(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + series.size() + 2, nullptr);
}

class MetricsStallTest : public testing::AdminFixture {
 protected:
  admin::Injection Find(uint64_t id) {
    admin::ListInjectionsResponse list;
    grpc::Status s = stub_->ListInjections(Context().get(), admin::ListInjectionsRequest(), &list);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const admin::Injection& i : list.injections()) {
      if (i.id() == id) return i;
    }
    return admin::Injection();
  }
};

TEST_F(MetricsStallTest, AScrapeWhileALoopIsBlockedAnswersAndShowsTheBlock) {
  const uint16_t metrics_port = testing::PickFreePort();
  Start({"--loops=2", "--metrics_port=" + std::to_string(metrics_port)});
  ASSERT_TRUE(server_->WaitForOutput("metrics on 127.0.0.1:" + std::to_string(metrics_port)));

  admin::InjectTaskRequest request;
  request.set_kind(admin::BLOCKING_SPIN);
  request.set_duration_ms(8000);
  request.add_loops(0);
  admin::Injection injection;
  ASSERT_TRUE(stub_->InjectTask(Context().get(), request, &injection).ok());

  // Scrape until a scrape shows the spin running on loop 0 (bounded: the spin lasts 8 s).
  std::string shown;
  for (int i = 0; i < 1000 && shown.empty(); ++i) {
    testing::HttpReply reply = testing::HttpGet(metrics_port, "/metrics");
    ASSERT_EQ(reply.status, 200) << "scrape " << i << " while loop 0 is blocked";
    if (reply.body.find("brrr_current_task_info{loop=\"0\",current_task=\"inject:blocking_spin\"} 1\n") !=
        std::string::npos) {
      shown = reply.body;
    } else {
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  ASSERT_FALSE(shown.empty()) << "no scrape showed the blocking spin on loop 0";
  admin::Injection during = Find(injection.id());
  EXPECT_EQ(during.runs_finished(), 0u) << "the answer came while the loop was still blocked";
  EXPECT_GT(Sample(shown, "brrr_current_task_running_seconds{loop=\"0\"}"), 0) << shown;
  EXPECT_EQ(shown.find("brrr_current_task_info{loop=\"1\",current_task=\"inject:blocking_spin\"}"), std::string::npos)
      << "the spin is on loop 0 only";
  // The admin plane's own figure, from its list like the others.
  EXPECT_EQ(Sample(shown, "brrr_injections_running{loop=\"0\"}"), 1) << shown;
  EXPECT_EQ(Sample(shown, "brrr_injections_running{loop=\"1\"}"), 0) << shown;

  // Once the spin has ended, it is the longest task and a stall in loop 0's figures. The loop
  // records those after the task returns, and only then is the spin no longer its current task
  // (the injection counts the run as finished inside the task, a moment earlier).
  const std::string spin_is_current = "brrr_current_task_info{loop=\"0\",current_task=\"inject:blocking_spin\"}";
  std::string after = shown;
  for (int i = 0; i < 2000 && after.find(spin_is_current) != std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    after = testing::HttpGet(metrics_port, "/metrics").body;
  }
  ASSERT_EQ(after.find(spin_is_current), std::string::npos) << "the spin never ended";
  EXPECT_EQ(Find(injection.id()).state(), admin::Injection::FINISHED);
  EXPECT_GE(Sample(after, "brrr_longest_task_seconds{loop=\"0\"}"), 8.0) << after;
  EXPECT_GE(Sample(after, "brrr_stalls_total{loop=\"0\"}"), 1) << after;
  EXPECT_NE(after.find("brrr_longest_task_info{loop=\"0\",longest_task=\"inject:blocking_spin\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(Sample(after, "brrr_task_duration_seconds_bucket{loop=\"0\",le=\"4.294967296\"}") + 1,
            Sample(after, "brrr_task_duration_seconds_bucket{loop=\"0\",le=\"17.179869184\"}"))
      << "the 8 s task is in the histogram's bucket up to 2^34 ns";
}

}  // namespace
}  // namespace brrr
