// What the admin plane cannot be made to do, on a real brrr-echo over real gRPC calls:
// injections that could keep too many runs alive, more than 100 active injections, injections
// while the server drains, and a call that carries two authorization entries.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
namespace health = grpc::health::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

class AdminBoundsTest : public testing::AdminFixture {
 protected:
  // Starts the server with a client whose connection keeps a drain going (and the server up)
  // until it leaves; null (a test failure) if that client got no echo.
  std::unique_ptr<testing::BlockingClient> StartWithAConnectionThatHoldsADrain() {
    Start({"--drain_timeout=30s"});
    auto client = std::make_unique<testing::BlockingClient>(port_);
    EXPECT_TRUE(client->send_all("hold"));
    if (client->recv_exact(4) != "hold") {
      ADD_FAILURE() << "no echo from the server";
      return nullptr;
    }
    return client;
  }

  grpc::Status Inject(admin::InjectionKind kind, uint32_t duration_ms, uint32_t count, uint32_t interval_ms,
                      admin::Injection* injection = nullptr) {
    admin::InjectTaskRequest request;
    request.set_kind(kind);
    request.set_duration_ms(duration_ms);
    request.set_count(count);
    request.set_interval_ms(interval_ms);
    admin::Injection ignored;
    return stub_->InjectTask(Context().get(), request, injection != nullptr ? injection : &ignored);
  }

  grpc::Status Cancel(uint64_t id) {
    admin::CancelInjectionRequest request;
    request.set_id(id);
    admin::Injection cancelled;
    return stub_->CancelInjection(Context().get(), request, &cancelled);
  }
};

bool Says(const grpc::Status& s, const std::string& text) { return s.error_message().find(text) != std::string::npos; }

// The example (a million one-hour sleeps at interval 0 grew toward a million live
// tasks) is refused before anything starts; what fits runs, and the loop's live tasks never
// pass the limit however the injections add up.
TEST_F(AdminBoundsTest, NonBlockingSleepsThatCouldPassTheLiveRunLimitAreRefused) {
  Start();
  const uint64_t baseline = Stats().loops(0).live_tasks();

  grpc::Status million = Inject(admin::NONBLOCKING_SLEEP, 3'600'000, 1'000'000, 0);
  EXPECT_EQ(million.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << million.error_message();
  EXPECT_TRUE(Says(million, "the limit is 10000 live runs per loop")) << million.error_message();
  EXPECT_TRUE(Says(million, "could keep 1000000 alive at once on loop 0")) << million.error_message();
  // At an interval the runs overlap by duration / interval + 1: a minute's sleep started every
  // millisecond could keep 60,001 alive, however many runs it asks for.
  grpc::Status overlapping = Inject(admin::NONBLOCKING_SLEEP, 60'000, 1'000'000, 1);
  EXPECT_EQ(overlapping.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << overlapping.error_message();
  EXPECT_TRUE(Says(overlapping, "could keep 60001 alive at once on loop 0")) << overlapping.error_message();
  admin::Stats after_refusal = Stats();
  EXPECT_EQ(after_refusal.injections_size(), 0);
  EXPECT_EQ(after_refusal.loops(0).live_tasks(), baseline);

  // 6,000 at interval 0 are all alive at once, and fit.
  admin::Injection first;
  grpc::Status fits = Inject(admin::NONBLOCKING_SLEEP, 60'000, 6'000, 0, &first);
  ASSERT_TRUE(fits.ok()) << fits.error_message();
  admin::Stats full = StatsWhen([&](const admin::Stats& s) { return s.loops(0).live_tasks() == baseline + 6'000; });
  EXPECT_EQ(full.loops(0).live_tasks(), baseline + 6'000);

  // 6,000 more would pass the limit beside them.
  grpc::Status second = Inject(admin::NONBLOCKING_SLEEP, 60'000, 6'000, 0);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << second.error_message();
  EXPECT_TRUE(Says(second, "where active injections may keep 6000")) << second.error_message();
  // A long stream of runs that overlap little fits: 10 ms every 5 ms, at most 3 at a time.
  admin::Injection stream;
  grpc::Status spread = Inject(admin::NONBLOCKING_SLEEP, 10, 1'000'000, 5, &stream);
  ASSERT_TRUE(spread.ok()) << spread.error_message();
  uint64_t most = 0;
  for (int i = 0; i < 20; ++i) {
    most = std::max<uint64_t>(most, Stats().loops(0).live_tasks());
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_LE(most, baseline + 6'000 + 3);
  EXPECT_GE(most, baseline + 6'000);

  // Cancelling gives the share back at once.
  ASSERT_TRUE(Cancel(first.id()).ok());
  grpc::Status again = Inject(admin::NONBLOCKING_SLEEP, 60'000, 6'000, 0, &first);
  EXPECT_TRUE(again.ok()) << again.error_message();
  admin::Stats refilled = StatsWhen([&](const admin::Stats& s) {
    return s.injections_size() == 2 && s.injections(0).runs_started() == 6'000;
  });
  EXPECT_LE(refilled.loops(0).live_tasks(), baseline + 6'000 + 3);
  ASSERT_TRUE(Cancel(first.id()).ok());
  ASSERT_TRUE(Cancel(stream.id()).ok());
  admin::Stats idle = StatsWhen([&](const admin::Stats& s) { return s.loops(0).live_tasks() == baseline; });
  EXPECT_EQ(idle.loops(0).live_tasks(), baseline);
}

// README: "at most 100 active at once". Hour-long sleeps stay active; one live run each keeps
// them far below the live-run limit, so only the count of active injections refuses the 101st.
TEST_F(AdminBoundsTest, AtMostOneHundredInjectionsAreActiveAtOnce) {
  Start();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 100; ++i) {
    admin::Injection injection;
    grpc::Status s = Inject(admin::NONBLOCKING_SLEEP, 3'600'000, 1, 0, &injection);
    ASSERT_TRUE(s.ok()) << "injection " << i + 1 << ": " << s.error_message();
    ids.push_back(injection.id());
  }
  EXPECT_EQ(Stats().injections_size(), 100);

  grpc::Status refused = Inject(admin::NONBLOCKING_SLEEP, 3'600'000, 1, 0);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_TRUE(Says(refused, "100 injections are active already")) << refused.error_message();
  grpc::Status blocking = Inject(admin::BLOCKING_SPIN, 1, 1, 0);
  EXPECT_EQ(blocking.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << "the limit holds for every kind";
  EXPECT_EQ(Stats().injections_size(), 100);

  // Cancelling one makes room for exactly one more.
  ASSERT_TRUE(Cancel(ids.back()).ok());
  ids.pop_back();
  admin::Injection replacement;
  grpc::Status room = Inject(admin::NONBLOCKING_SLEEP, 3'600'000, 1, 0, &replacement);
  ASSERT_TRUE(room.ok()) << room.error_message();
  ids.push_back(replacement.id());
  EXPECT_EQ(Inject(admin::NONBLOCKING_SLEEP, 3'600'000, 1, 0).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  for (uint64_t id : ids) EXPECT_TRUE(Cancel(id).ok()) << "injection " << id;
  EXPECT_EQ(Stats().injections_size(), 0);
}

TEST_F(AdminBoundsTest, NoInjectionWhileTheServerDrains) {
  std::unique_ptr<testing::BlockingClient> client = StartWithAConnectionThatHoldsADrain();
  ASSERT_NE(client, nullptr);
  admin::DrainResponse drained;
  ASSERT_TRUE(stub_->Drain(Context().get(), admin::DrainRequest(), &drained).ok());

  grpc::Status s = Inject(admin::BLOCKING_SPIN, 10, 1, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_TRUE(Says(s, "draining")) << s.error_message();
  s = Inject(admin::NONBLOCKING_SLEEP, 10, 1, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(Stats().injections_size(), 0);
  client->close();
}

// A drain cannot be taken back: GetThrottle says the server is draining, and a SetThrottle that
// would resume accepting is refused (FAILED_PRECONDITION, nothing changed). Other throttles
// still apply to the connections finishing.
TEST_F(AdminBoundsTest, AcceptingCannotResumeWhileTheServerDrains) {
  std::unique_ptr<testing::BlockingClient> client = StartWithAConnectionThatHoldsADrain();
  ASSERT_NE(client, nullptr);
  admin::Throttle before;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &before).ok());
  EXPECT_FALSE(before.draining());
  admin::DrainResponse drained;
  ASSERT_TRUE(stub_->Drain(Context().get(), admin::DrainRequest(), &drained).ok());

  admin::Throttle now;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &now).ok());
  EXPECT_TRUE(now.draining());
  admin::SetThrottleRequest resume;
  resume.set_accepting_paused(false);
  resume.set_bytes_per_second_total(5'000'000);
  admin::Throttle answer;
  grpc::Status s = stub_->SetThrottle(Context().get(), resume, &answer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_TRUE(Says(s, "a drain cannot be taken back")) << s.error_message();
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &now).ok());
  EXPECT_EQ(now.bytes_per_second_total(), 0u) << "a refused call changed a throttle";
  admin::SetThrottleRequest rate;
  rate.set_bytes_per_second_total(5'000'000);
  s = stub_->SetThrottle(Context().get(), rate, &answer);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(answer.bytes_per_second_total(), 5'000'000u);
  EXPECT_TRUE(answer.draining());
  client->close();
}

// Whichever entry came first would decide; a call that carries two is refused outright.
TEST_F(AdminBoundsTest, TwoAuthorizationEntriesAreUnauthenticated) {
  SetToken("s3cret-token");
  Start();
  auto health_stub = health::Health::NewStub(channel_);
  auto context_with = [](const std::vector<std::string>& entries) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + seconds(10));
    for (const std::string& e : entries) context->AddMetadata("authorization", e);
    return context;
  };
  for (const std::vector<std::string>& entries : std::vector<std::vector<std::string>>{
           {"Bearer s3cret-token", "Bearer wrong"},
           {"Bearer wrong", "Bearer s3cret-token"},
           {"Bearer s3cret-token", "Bearer s3cret-token"}}) {
    admin::Stats stats;
    grpc::Status s = stub_->GetStats(context_with(entries).get(), admin::GetStatsRequest(), &stats);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << entries[0] << ", " << entries[1];
    EXPECT_TRUE(Says(s, "carries 2 \"authorization\" metadata entries; send exactly one")) << s.error_message();
    health::HealthCheckResponse response;
    EXPECT_EQ(health_stub->Check(context_with(entries).get(), health::HealthCheckRequest(), &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  admin::Stats stats;
  EXPECT_TRUE(stub_->GetStats(context_with({"Bearer s3cret-token"}).get(), admin::GetStatsRequest(), &stats).ok());
}

int ThreadsOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// A health Watch stream held open, as a client that watches for the drain holds it.
struct HeldWatch {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<health::HealthCheckResponse>> reader;
  health::HealthCheckResponse first;
  grpc::Status status;  // once the stream has ended

  // Opens the stream and reads its first message: false when the server ended it instead.
  bool Open(health::Health::Stub& stub) {
    context.set_deadline(std::chrono::system_clock::now() + seconds(60));
    reader = stub.Watch(&context, health::HealthCheckRequest());
    if (reader->Read(&first)) return true;
    status = reader->Finish();
    return false;
  }
  void Close() {
    context.TryCancel();
    status = reader->Finish();
  }
};

// README: each admin call in progress holds a gRPC thread, a stream for its whole life, so at
// most --admin_max_calls are in progress at once, however many one connection opens; a further
// call is answered RESOURCE_EXHAUSTED, and once one ends, calls get in again. (Unbounded, 300
// Watch streams on one connection made 300 threads.)
TEST_F(AdminBoundsTest, CallsInProgressAreBoundedHoweverManyStreamsOneConnectionOpens) {
  Start({"--admin_max_calls=8"});
  auto health_stub = health::Health::NewStub(channel_);
  const int threads_before = ThreadsOf(server_->pid());
  std::vector<std::unique_ptr<HeldWatch>> watches;
  int held = 0;
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    auto watch = std::make_unique<HeldWatch>();
    if (watch->Open(*health_stub)) {
      ++held;
      EXPECT_EQ(watch->first.status(), health::HealthCheckResponse::SERVING);
      watches.push_back(std::move(watch));
      continue;
    }
    ++refused;
    EXPECT_EQ(watch->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << watch->status.error_message();
    EXPECT_TRUE(Says(watch->status, "the admin plane is at its limit of 8 calls in progress (--admin_max_calls"))
        << watch->status.error_message();
  }
  EXPECT_EQ(held, 8);
  EXPECT_EQ(refused, 192);
  // A unary call is a call too.
  admin::Stats stats;
  grpc::Status full = stub_->GetStats(Context().get(), admin::GetStatsRequest(), &stats);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << full.error_message();
  // The threads: the 8 held calls and gRPC's few spare ones, not one per stream asked for.
  // (Threads started for refused calls exit once gRPC has more than it keeps spare.)
  int threads = 0;
  for (int i = 0; i < 600; ++i) {  // 30 s at most
    threads = ThreadsOf(server_->pid());
    if (threads <= threads_before + 8 + 4) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_LE(threads, threads_before + 8 + 4) << "threads before the streams: " << threads_before;

  // One stream ends: a call gets in again.
  watches.back()->Close();
  watches.pop_back();
  grpc::Status again;
  for (int i = 0; i < 600; ++i) {  // 30 s at most
    again = stub_->GetStats(Context().get(), admin::GetStatsRequest(), &stats);
    if (again.ok()) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(again.ok()) << again.error_message();
  for (auto& watch : watches) watch->Close();
}

// A stream whose client stopped reading (a `brrrctl watch` suspended in a terminal) held its
// call slot and a gRPC thread for as long as its client lived: with --admin_max_calls taken so,
// every other call was RESOURCE_EXHAUSTED for good. Now its Write, blocked by HTTP/2 flow
// control, is cancelled after --admin_unread_timeout; a client that reads keeps its stream.
TEST_F(AdminBoundsTest, AStreamWhoseClientStoppedReadingIsEndedAndItsSlotIsFreed) {
  Start({"--admin_max_calls=2", "--admin_unread_timeout=1s"});
  admin::WatchStatsRequest every_50ms;
  every_50ms.set_interval_ms(50);
  // The reading client, on the fixture's channel: it takes every message as it comes.
  grpc::ClientContext reading_context;
  std::unique_ptr<grpc::ClientReader<admin::Stats>> reading = stub_->WatchStats(&reading_context, every_50ms);
  admin::Stats stats;
  // A stream holds its slot once its first message is in (its handler runs).
  if (!reading->Read(&stats)) FAIL() << "the reading stream ended: " << reading->Finish().error_message();
  std::atomic<int> read{0};
  std::thread reader([&] {
    admin::Stats next;
    while (reading->Read(&next)) read.fetch_add(1);
  });
  // On any way out, the reading stream ends and its thread is joined.
  struct EndReading {
    grpc::ClientContext& context;
    std::thread& thread;
    ~EndReading() {
      context.TryCancel();
      if (thread.joinable()) thread.join();
    }
  } end_reading{reading_context, reader};
  // The client that stops reading, on a channel of its own whose receive window stays at
  // HTTP/2's 64 KiB (no BDP probing): the server's Write waits once that is full.
  grpc::ChannelArguments no_bdp;
  no_bdp.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto unread_channel = grpc::CreateCustomChannel(AdminAddress(), grpc::InsecureChannelCredentials(), no_bdp);
  auto unread_stub = admin::Admin::NewStub(unread_channel);
  grpc::ClientContext unread_context;
  std::unique_ptr<grpc::ClientReader<admin::Stats>> unread = unread_stub->WatchStats(&unread_context, every_50ms);
  // Its first message, and then no more reads until the slot is back.
  ASSERT_TRUE(unread->Read(&stats)) << "the unread stream ended: " << unread->Finish().error_message();

  // Both streams hold the two slots. (Its window of 64 KiB takes seconds of messages to fill.)
  grpc::Status full = stub_->GetStats(Context().get(), admin::GetStatsRequest(), &stats);
  ASSERT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << full.error_message() << "; a message is " << stats.ByteSizeLong() << " bytes\n"
      << server_->err();
  // Once the unread stream's window is full and a Write has waited 1 s, it ends, and a call gets in.
  grpc::Status in;
  const auto give_up = std::chrono::steady_clock::now() + seconds(90);  // 5 to 20 s here, more under a sanitizer
  while (std::chrono::steady_clock::now() < give_up) {
    in = stub_->GetStats(Context().get(), admin::GetStatsRequest(), &stats);
    if (in.ok()) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(in.ok()) << in.error_message() << "\n" << server_->err();
  ASSERT_TRUE(server_->WaitForError("admin: ended WatchStats from 127.0.0.1:")) << server_->err();
  EXPECT_NE(server_->err().find("its client took nothing for 1s (it stopped reading; --admin_unread_timeout); "
                                "1 stream ended so"),
            std::string::npos)
      << server_->err();
  // What it had been sent is still there to read; then the end.
  int drained = 0;
  while (unread->Read(&stats)) ++drained;
  EXPECT_GT(drained, 0);
  EXPECT_EQ(unread->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // The reading client's stream goes on past the timeout, twice over.
  const int read_before = read.load();
  std::this_thread::sleep_for(seconds(2));
  EXPECT_GT(read.load(), read_before) << "the reading stream stopped";
  reading_context.TryCancel();
  reader.join();
  EXPECT_EQ(reading->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(server_->err().find("2 streams ended so"), std::string::npos) << server_->err();
}

}  // namespace
}  // namespace brrr
