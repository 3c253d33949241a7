// The admin requests' ranges (proto/brrr/admin/v1/admin.proto) at their edges: the first
// value in range and the first one out on each side, the defaults a 0 or an empty list stands
// for, and the error codes. tests/fuzz/admin_requests_fuzzer.cc checks the same rules on any
// request; admin_requests_test checks that the RPCs answer with them.
#include "control/admin/request_checks.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "gtest/gtest.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;

const RequestLimits kTwoLoops{.loops = 2, .max_block = milliseconds(1000)};

void ExpectRefused(const absl::Status& status, absl::StatusCode code, absl::string_view says) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_NE(status.message().find(says), absl::string_view::npos) << status;
}

TEST(RequestChecksTest, WatchStatsIntervalIs50To3600000WithZeroFor1000) {
  admin::WatchStatsRequest r;
  EXPECT_EQ(*CheckWatchStats(r), 1000u);
  r.set_interval_ms(50);
  EXPECT_EQ(*CheckWatchStats(r), 50u);
  r.set_interval_ms(3'600'000);
  EXPECT_EQ(*CheckWatchStats(r), 3'600'000u);
  for (uint32_t bad : {49u, 3'600'001u}) {
    r.set_interval_ms(bad);
    ExpectRefused(CheckWatchStats(r).status(), absl::StatusCode::kInvalidArgument, "allowed 50 to 3600000");
  }
}

TEST(RequestChecksTest, ListSocketsLimitSetAndLoop) {
  admin::ListSocketsRequest r;
  absl::StatusOr<SocketQuery> q = CheckListSockets(r, kTwoLoops);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->limit, 10'000u);
  EXPECT_EQ(q->loops, (std::vector<uint32_t>{0, 1}));
  r.set_limit(100'000);
  r.set_loop(1);
  q = CheckListSockets(r, kTwoLoops);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->limit, 100'000u);
  EXPECT_EQ(q->loops, (std::vector<uint32_t>{1}));
  r.set_limit(100'001);
  ExpectRefused(CheckListSockets(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, "allowed 1 to 100000");
  r.set_limit(1);
  r.set_set(static_cast<admin::ListSocketsRequest::SetFilter>(4));
  ExpectRefused(CheckListSockets(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, "set=4");
  r.set_set(admin::ListSocketsRequest::NEITHER);
  r.set_loop(2);
  ExpectRefused(CheckListSockets(r, kTwoLoops).status(), absl::StatusCode::kNotFound, "no loop 2");
}

TEST(RequestChecksTest, SetThrottleChangesOnlyWhatItSets) {
  admin::SetThrottleRequest r;
  absl::StatusOr<server::ThrottleChange> c = CheckSetThrottle(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->bytes_per_second_per_connection.has_value());
  EXPECT_FALSE(c->max_connections.has_value());
  EXPECT_FALSE(c->accepting_paused.has_value());
  r.set_bytes_per_second_per_connection(0);  // unlimited
  r.set_bytes_per_second_total(100'000'000'000);
  r.set_accepts_per_second(1);
  r.set_max_connections(10'000'000);
  r.set_accepting_paused(false);
  c = CheckSetThrottle(r);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bytes_per_second_per_connection, 0u);
  EXPECT_EQ(c->bytes_per_second_total, 100'000'000'000u);
  EXPECT_EQ(c->max_connections, 10'000'000u);
  EXPECT_EQ(c->accepting_paused, false);
  r.set_bytes_per_second_per_connection(999);
  ExpectRefused(CheckSetThrottle(r).status(), absl::StatusCode::kInvalidArgument, "0 (unlimited) or 1000 to");
  r.set_bytes_per_second_per_connection(1000);
  r.set_max_connections(0);
  ExpectRefused(CheckSetThrottle(r).status(), absl::StatusCode::kInvalidArgument, "max_connections=0");
}

TEST(RequestChecksTest, InjectTaskFillsInDefaultsAndKeepsToItsRanges) {
  admin::InjectTaskRequest r;
  r.set_duration_ms(10);
  ExpectRefused(CheckInjectTask(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument,
                "BLOCKING_SPIN, BLOCKING_SLEEP or NONBLOCKING_SLEEP");
  r.set_kind(admin::BLOCKING_SLEEP);
  r.add_loops(1);
  r.add_loops(0);
  r.add_loops(1);
  absl::StatusOr<InjectionSpec> spec = CheckInjectTask(r, kTwoLoops);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->kind, InjectionKind::kBlockingSleep);
  EXPECT_EQ(spec->duration, milliseconds(10));
  EXPECT_EQ(spec->count, 1u);  // 0 means 1
  EXPECT_EQ(spec->loops, (std::vector<uint32_t>{0, 1}));

  r.set_duration_ms(1001);  // past this server's --admin_max_block
  ExpectRefused(CheckInjectTask(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument,
                "1 to 1000 ms (the server's --admin_max_block)");
  r.set_kind(admin::NONBLOCKING_SLEEP);
  r.set_duration_ms(3'600'000);
  r.set_count(1'000'000);
  r.set_interval_ms(3'600'000);
  EXPECT_TRUE(CheckInjectTask(r, kTwoLoops).ok());
  r.set_duration_ms(3'600'001);
  ExpectRefused(CheckInjectTask(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, "1 to 3600000 ms");
  r.set_duration_ms(0);
  ExpectRefused(CheckInjectTask(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, "duration_ms=0");
  r.set_duration_ms(1);
  r.set_count(1'000'001);
  ExpectRefused(CheckInjectTask(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, "allowed 1 to 1000000");
  r.set_count(1);
  r.set_interval_ms(3'600'001);
  ExpectRefused(CheckInjectTask(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, "allowed 0 to 3600000");
  r.set_interval_ms(0);
  r.add_loops(2);
  ExpectRefused(CheckInjectTask(r, kTwoLoops).status(), absl::StatusCode::kNotFound, "loops 0 to 1");
}

TEST(RequestChecksTest, CancelInjectionNeedsAnId) {
  admin::CancelInjectionRequest r;
  ExpectRefused(CheckCancelInjection(r), absl::StatusCode::kInvalidArgument, "id is required");
  r.set_id(1);
  EXPECT_TRUE(CheckCancelInjection(r).ok());
}

TEST(RequestChecksTest, CloseConnectionNeedsADescriptorAndAKnownLoop) {
  admin::CloseConnectionRequest r;
  r.set_fd(-1);
  ExpectRefused(CheckCloseConnection(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, "fd=-1");
  r.set_fd(0);
  EXPECT_EQ(*CheckCloseConnection(r, kTwoLoops), (std::vector<uint32_t>{0, 1}));
  r.set_loop(1);
  EXPECT_EQ(*CheckCloseConnection(r, kTwoLoops), (std::vector<uint32_t>{1}));
  r.set_loop(2);
  ExpectRefused(CheckCloseConnection(r, kTwoLoops).status(), absl::StatusCode::kNotFound, "no loop 2");
  // A peer, if given: HOST:PORT as ListSockets gives it, at most 64 bytes of visible ASCII.
  r.set_loop(0);
  r.set_peer("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
  EXPECT_TRUE(CheckCloseConnection(r, kTwoLoops).ok());
  r.set_peer("127.0.0.1:1");
  EXPECT_TRUE(CheckCloseConnection(r, kTwoLoops).ok());
  for (const char* malformed : {"garbage", "127.0.0.1", "127.0.0.1:0", "::1:5", "[::1]:99999", "host.example:5"}) {
    r.set_peer(malformed);
    ExpectRefused(CheckCloseConnection(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument,
                  std::string("peer: \"") + malformed + "\" is not a peer address: expected HOST:PORT");
  }
  // Another spelling of an address would never match the one listed: the listed one is named.
  r.set_peer("localhost:5");
  ExpectRefused(CheckCloseConnection(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument,
                "peer: \"localhost:5\" is not written as ListSockets writes a peer address (it is compared as "
                "text): give 127.0.0.1:5");
  r.set_peer("[0::1]:5");
  ExpectRefused(CheckCloseConnection(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, "give [::1]:5");
  r.set_peer(std::string(kMaxPeerAddressBytes, '1'));
  ExpectRefused(CheckCloseConnection(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument,
                "is not a peer address");
  r.set_peer(std::string(kMaxPeerAddressBytes + 1, '1'));
  ExpectRefused(CheckCloseConnection(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument,
                "peer (65 bytes) is not a peer address");
  r.set_peer("127.0.0.1:1\n");
  ExpectRefused(CheckCloseConnection(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument,
                "peer (12 bytes) is not a peer address");
}

TEST(RequestChecksTest, StallThresholdIs1To60000Milliseconds) {
  admin::SetStallThresholdRequest r;
  r.set_threshold_ms(1);
  absl::StatusOr<StallThresholdChange> c = CheckSetStallThreshold(r, kTwoLoops);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->threshold_ns, 1'000'000);
  EXPECT_EQ(c->loops, (std::vector<uint32_t>{0, 1}));
  r.set_threshold_ms(60'000);
  r.add_loops(1);
  c = CheckSetStallThreshold(r, kTwoLoops);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->threshold_ns, 60'000'000'000);
  EXPECT_EQ(c->loops, (std::vector<uint32_t>{1}));
  for (double bad : {0.0, 0.999, 60'000.001, std::nan(""), std::numeric_limits<double>::infinity()}) {
    r.set_threshold_ms(bad);
    ExpectRefused(CheckSetStallThreshold(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument,
                  "allowed 1 to 60000");
  }
  // The refusal shows the value asked for, not one rounded into the range.
  for (auto [bad, shown] : {std::pair{60'000.000001, "threshold_ms=60000.000001 "}, std::pair{0.9999999, "=0.9999999 "}}) {
    r.set_threshold_ms(bad);
    ExpectRefused(CheckSetStallThreshold(r, kTwoLoops).status(), absl::StatusCode::kInvalidArgument, shown);
  }
}

// A loop named more than once is selected once, and the loops come out sorted: a stream
// (WatchStalls) or a change (SetStallThreshold) never takes the same loop twice.
TEST(RequestChecksTest, RepeatedLoopsAreSelectedOnceInOrder) {
  google::protobuf::RepeatedField<uint32_t> loops;
  for (uint32_t loop : {1u, 1u, 0u}) loops.Add(loop);
  absl::StatusOr<std::vector<uint32_t>> selected = CheckLoops(loops, 2);
  ASSERT_TRUE(selected.ok()) << selected.status();
  EXPECT_EQ(*selected, (std::vector<uint32_t>{0, 1}));

  admin::SetStallThresholdRequest r;
  r.set_threshold_ms(10);
  for (uint32_t loop : {1u, 0u, 1u, 0u}) r.add_loops(loop);
  absl::StatusOr<StallThresholdChange> c = CheckSetStallThreshold(r, kTwoLoops);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->loops, (std::vector<uint32_t>{0, 1}));
}

}  // namespace
}  // namespace brrr::control
