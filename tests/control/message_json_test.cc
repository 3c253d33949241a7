// MessageToJsonLine: jq-friendly JSON that protobuf's own parser reads back.
#include "control/brrrctl/message_json.h"

#include <cmath>
#include <limits>

#include "brrr/admin/v1/admin.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;

TEST(MessageJsonTest, PrintsEveryFieldWithZerosAndEmptyLists) {
  EXPECT_EQ(MessageToJsonLine(admin::StallThresholds()), "{\"loops\":[]}");
  EXPECT_EQ(MessageToJsonLine(admin::BackendAvailability()), "{\"name\":\"\",\"starts\":false,\"reason\":\"\"}");
  // An unset message field is an object of zeros, not absent.
  std::string stats = MessageToJsonLine(admin::Stats());
  EXPECT_NE(stats.find("\"total\":{\"loop\":0,\"ready_queue_depth\":0,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"timer_lateness\":{\"count\":0,\"p50_us\":0,"), std::string::npos) << stats;
}

TEST(MessageJsonTest, SixtyFourBitIntegersAreNumbers) {
  admin::LoopStats loop;
  loop.set_bytes_in(std::numeric_limits<uint64_t>::max());
  loop.set_loop(7);
  std::string json = MessageToJsonLine(loop);
  EXPECT_NE(json.find("\"loop\":7,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"bytes_in\":18446744073709551615,"), std::string::npos) << json;
  google::protobuf::Int64Value negative;
  negative.set_value(std::numeric_limits<int64_t>::min());
  EXPECT_EQ(MessageToJsonLine(negative), "{\"value\":-9223372036854775808}");
}

TEST(MessageJsonTest, DoublesEnumsAndBools) {
  admin::Injection injection;
  injection.set_kind(admin::BLOCKING_SPIN);
  injection.set_state(admin::Injection::CANCELLED);
  injection.set_injected_at_uptime_seconds(0.1);
  injection.add_loops(0);
  injection.add_loops(2);
  std::string json = MessageToJsonLine(injection);
  EXPECT_NE(json.find("\"kind\":\"BLOCKING_SPIN\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"state\":\"CANCELLED\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"loops\":[0,2]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"injected_at_uptime_seconds\":0.1}"), std::string::npos) << json;

  google::protobuf::DoubleValue d;
  d.set_value(1e-7);
  EXPECT_EQ(MessageToJsonLine(d), "{\"value\":1e-07}");
  d.set_value(std::nan(""));
  EXPECT_EQ(MessageToJsonLine(d), "{\"value\":\"NaN\"}");
  d.set_value(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(MessageToJsonLine(d), "{\"value\":\"-Infinity\"}");
  google::protobuf::BoolValue b;
  b.set_value(true);
  EXPECT_EQ(MessageToJsonLine(b), "{\"value\":true}");
  // An enum number the descriptor does not know (proto3 enums are open) prints as a number.
  injection.set_kind(static_cast<admin::InjectionKind>(42));
  EXPECT_NE(MessageToJsonLine(injection).find("\"kind\":42,"), std::string::npos);
}

TEST(MessageJsonTest, StringsAreEscapedAndBytesAreBase64) {
  google::protobuf::StringValue s;
  s.set_value(std::string("a\"b\\c\n\t\x01\x1f\x7f d\xc3\xa9", 14));
  EXPECT_EQ(MessageToJsonLine(s), "{\"value\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\\u007f d\xc3\xa9\"}");
  google::protobuf::BytesValue bytes;
  bytes.set_value(std::string("\x00\xff", 2));
  EXPECT_EQ(MessageToJsonLine(bytes), "{\"value\":\"AP8=\"}");
}

TEST(MessageJsonTest, OneofsUnsetAreNullAndMapsAreSortedObjects) {
  google::protobuf::Struct s;
  (*s.mutable_fields())["b"].set_number_value(2);
  (*s.mutable_fields())["a"].set_string_value("x");
  EXPECT_EQ(MessageToJsonLine(s),
            "{\"fields\":{"
            "\"a\":{\"null_value\":null,\"number_value\":null,\"string_value\":\"x\",\"bool_value\":null,"
            "\"struct_value\":null,\"list_value\":null},"
            "\"b\":{\"null_value\":null,\"number_value\":2,\"string_value\":null,\"bool_value\":null,"
            "\"struct_value\":null,\"list_value\":null}}}");
  // A proto3 `optional` field: null until set.
  admin::ListSocketsRequest request;
  EXPECT_EQ(MessageToJsonLine(request), "{\"set\":\"ALL\",\"loop\":null,\"limit\":0}");
  request.set_loop(0);
  EXPECT_EQ(MessageToJsonLine(request), "{\"set\":\"ALL\",\"loop\":0,\"limit\":0}");
}

TEST(MessageJsonTest, ProtobufReadsItBack) {
  admin::Stats stats;
  admin::LoopStats* loop = stats.add_loops();
  loop->set_loop(1);
  loop->set_bytes_in(123456789012345);
  loop->set_longest_task("echo:\"recv\"\n");
  loop->set_running_seconds(1.0 / 3);
  loop->mutable_timer_lateness()->set_p99_us(12.5);
  stats.mutable_throttle()->set_accepting_paused(true);
  admin::Injection* injection = stats.add_injections();
  injection->set_kind(admin::NONBLOCKING_SLEEP);
  injection->set_id(3);
  stats.set_draining(true);

  admin::Stats back;
  auto status = google::protobuf::util::JsonStringToMessage(MessageToJsonLine(stats), &back);
  ASSERT_TRUE(status.ok()) << status.ToString();
  // Equivalent, not Equals: the unset `total` comes back set, with the zeros it was printed as.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equivalent(stats, back)) << back.DebugString();
  EXPECT_TRUE(back.has_total());
}

}  // namespace
}  // namespace brrr::control
