// The admin plane's request checks (control/admin/request_checks.h) on any request protobuf
// can parse: no crash, and a request is accepted exactly when it is within the ranges that
// proto/brrr/admin/v1/admin.proto documents, which this file states again as numbers rather
// than through the checks' constants, so that code and documentation are held to each other.
// What an accepted request comes to (defaults filled in, loops sorted and each once) is checked
// too.
//
// Input: [request: (byte & 0x7f) % 7, the order of kChecks below; bit 7: field by field]
//        [server loops - 1: byte][--admin_max_block: 1 + 10 x little-endian uint16 ms]
//        [the request: serialized (protobuf parses the rest), or field by field (FillFields)]
// Serialized requests reach protobuf's parser and its corners (unknown fields, out-of-range
// enums, repeated fields packed or not); field by field, each number is plain little-endian
// bytes, which libFuzzer's comparison tracing can set to the values the checks compare against.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "control/admin/peer_address.h"
#include "control/admin/request_checks.h"
#include "tests/fuzz/fuzz_input.h"

namespace brrr::fuzz {
namespace {

namespace admin = brrr::admin::v1;
using control::RequestLimits;
using std::chrono::milliseconds;

void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "admin_requests_fuzzer: %s\n", what.c_str());
  std::abort();
}

// Accepted exactly when the request is in range and names no unknown loop; else refused with
// a reason, and InvalidArgument for a value out of range, NotFound for an unknown loop (either
// when it is both).
void RequireVerdict(const absl::Status& status, bool in_range, bool loop_unknown, const google::protobuf::Message& r) {
  const std::string request = r.GetTypeName() + " {" + r.ShortDebugString() + "}";
  const bool valid = in_range && !loop_unknown;
  Require(status.ok() == valid, (valid ? "refused " : "accepted ") + request + ": " + status.ToString());
  if (status.ok()) return;
  Require(!status.message().empty(), "refused without a reason: " + request);
  bool code_ok = (!in_range && absl::IsInvalidArgument(status)) || (loop_unknown && absl::IsNotFound(status));
  Require(code_ok, "refused with the wrong code: " + request + ": " + status.ToString());
}

bool Known(uint32_t loop, const RequestLimits& limits) { return loop < limits.loops; }

// The loops named (or every loop), sorted and each once.
void RequireLoops(const std::vector<uint32_t>& got, const std::vector<uint32_t>& named, const RequestLimits& limits) {
  std::vector<uint32_t> want = named;
  if (want.empty()) {
    for (uint32_t i = 0; i < limits.loops; ++i) want.push_back(i);
  }
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  Require(got == want, "the loops selected are not the loops named");
}

// Sets `message`'s fields in declaration order from the front of `in`: an optional field is
// set when its presence byte is odd; a repeated field takes a count byte (% 8) and its values;
// numbers and enums are little-endian of their width, so an enum may be any int32.
void FillFields(FuzzInput& in, google::protobuf::Message* message) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* reflection = message->GetReflection();
  const google::protobuf::Descriptor* descriptor = message->GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    // No request has other repeated fields; a new one fails here, to be added.
    Require(!field->is_repeated() || field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32,
            "FillFields: a repeated field of a kind it does not fill: " + field->full_name());
    if (field->has_presence() && (in.Byte() & 1) == 0) continue;
    const int values = field->is_repeated() ? in.Byte() % 8 : 1;
    for (int v = 0; v < values; ++v) {
      switch (field->cpp_type()) {
        case FieldDescriptor::CPPTYPE_UINT32:
          if (field->is_repeated()) {
            reflection->AddUInt32(message, field, static_cast<uint32_t>(in.Uint(4)));
          } else {
            reflection->SetUInt32(message, field, static_cast<uint32_t>(in.Uint(4)));
          }
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          reflection->SetInt32(message, field, static_cast<int32_t>(in.Uint(4)));
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          reflection->SetUInt64(message, field, in.Uint(8));
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE: {
          uint64_t bits = in.Uint(8);
          double value;
          std::memcpy(&value, &bits, sizeof value);
          reflection->SetDouble(message, field, value);
          break;
        }
        case FieldDescriptor::CPPTYPE_BOOL:
          reflection->SetBool(message, field, (in.Byte() & 1) != 0);
          break;
        case FieldDescriptor::CPPTYPE_ENUM:
          reflection->SetEnumValue(message, field, static_cast<int32_t>(in.Uint(4)));
          break;
        case FieldDescriptor::CPPTYPE_STRING:  // up to 127 bytes: past any bound a check has
          reflection->SetString(message, field, std::string(in.Bytes(in.Byte() % 128)));
          break;
        default:  // as above
          Require(false, "FillFields: a field of a kind it does not fill: " + field->full_name());
      }
    }
  }
}

// The request, from the rest of `in`; false if protobuf refuses the bytes.
template <typename Request>
bool Read(FuzzInput& in, bool field_by_field, Request* r) {
  if (field_by_field) {
    FillFields(in, r);
    return true;
  }
  std::string_view bytes = in.Rest();
  return r->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

void WatchStats(FuzzInput& in, bool field_by_field, const RequestLimits&) {
  admin::WatchStatsRequest r;
  if (!Read(in, field_by_field, &r)) return;
  // interval_ms: 50 to 3,600,000; 0 means 1000.
  uint32_t interval = r.interval_ms() == 0 ? 1000 : r.interval_ms();
  absl::StatusOr<uint32_t> got = control::CheckWatchStats(r);
  RequireVerdict(got.status(), interval >= 50 && interval <= 3'600'000, false, r);
  if (got.ok()) Require(*got == interval, "WatchStats: the interval is not the one asked for");
}

void ListSockets(FuzzInput& in, bool field_by_field, const RequestLimits& limits) {
  admin::ListSocketsRequest r;
  if (!Read(in, field_by_field, &r)) return;
  // limit: 1 to 100,000; 0 means 10,000. set: ALL, READ_SET, WRITE_SET or NEITHER.
  uint32_t limit = r.limit() == 0 ? 10'000 : r.limit();
  bool loop_unknown = r.has_loop() && !Known(r.loop(), limits);
  bool in_range = limit <= 100'000 && r.set() >= 0 && r.set() <= 3;
  absl::StatusOr<control::SocketQuery> got = control::CheckListSockets(r, limits);
  RequireVerdict(got.status(), in_range, loop_unknown, r);
  if (!got.ok()) return;
  Require(got->limit == limit, "ListSockets: the limit is not the one asked for");
  RequireLoops(got->loops, r.has_loop() ? std::vector<uint32_t>{r.loop()} : std::vector<uint32_t>{}, limits);
}

void SetThrottle(FuzzInput& in, bool field_by_field, const RequestLimits&) {
  admin::SetThrottleRequest r;
  if (!Read(in, field_by_field, &r)) return;
  // Rates: 0 (unlimited), or 1,000 to 100,000,000,000 bytes/s, or 1 to 1,000,000 accepts/s.
  // max_connections: 1 to 10,000,000.
  auto rate = [](uint64_t v, uint64_t min, uint64_t max) { return v == 0 || (v >= min && v <= max); };
  bool in_range =
      (!r.has_bytes_per_second_per_connection() ||
       rate(r.bytes_per_second_per_connection(), 1'000, 100'000'000'000)) &&
      (!r.has_bytes_per_second_total() || rate(r.bytes_per_second_total(), 1'000, 100'000'000'000)) &&
      (!r.has_accepts_per_second() || rate(r.accepts_per_second(), 1, 1'000'000)) &&
      (!r.has_max_connections() || (r.max_connections() >= 1 && r.max_connections() <= 10'000'000));
  absl::StatusOr<server::ThrottleChange> got = control::CheckSetThrottle(r);
  RequireVerdict(got.status(), in_range, false, r);
  if (!got.ok()) return;
  auto same = [](const auto& change, bool has, auto value) { return has ? change == value : !change.has_value(); };
  Require(same(got->bytes_per_second_per_connection, r.has_bytes_per_second_per_connection(),
               r.bytes_per_second_per_connection()) &&
              same(got->bytes_per_second_total, r.has_bytes_per_second_total(), r.bytes_per_second_total()) &&
              same(got->accepts_per_second, r.has_accepts_per_second(), r.accepts_per_second()) &&
              same(got->max_connections, r.has_max_connections(), r.max_connections()) &&
              same(got->accepting_paused, r.has_accepting_paused(), r.accepting_paused()),
          "SetThrottle: the change is not the one asked for");
}

void InjectTask(FuzzInput& in, bool field_by_field, const RequestLimits& limits) {
  admin::InjectTaskRequest r;
  if (!Read(in, field_by_field, &r)) return;
  // kind: BLOCKING_SPIN, BLOCKING_SLEEP or NONBLOCKING_SLEEP. duration_ms: 1 to
  // --admin_max_block for blocking kinds, 1 to 3,600,000 for NONBLOCKING_SLEEP. count: 1 to
  // 1,000,000, 0 means 1. interval_ms: 0 to 3,600,000.
  bool kind_known = r.kind() == admin::BLOCKING_SPIN || r.kind() == admin::BLOCKING_SLEEP ||
                    r.kind() == admin::NONBLOCKING_SLEEP;
  milliseconds longest = r.kind() == admin::NONBLOCKING_SLEEP
                             ? milliseconds(3'600'000)
                             : std::chrono::duration_cast<milliseconds>(limits.max_block);
  bool loop_unknown = std::any_of(r.loops().begin(), r.loops().end(),
                                  [&](uint32_t loop) { return !Known(loop, limits); });
  bool in_range = kind_known && r.duration_ms() >= 1 && milliseconds(r.duration_ms()) <= longest &&
                  r.count() <= 1'000'000 && r.interval_ms() <= 3'600'000;
  absl::StatusOr<control::InjectionSpec> got = control::CheckInjectTask(r, limits);
  RequireVerdict(got.status(), in_range, loop_unknown, r);
  if (!got.ok()) return;
  Require(got->duration == milliseconds(r.duration_ms()) && got->interval == milliseconds(r.interval_ms()) &&
              got->count == std::max<uint32_t>(r.count(), 1),
          "InjectTask: the injection is not the one asked for");
  control::InjectionKind kind = r.kind() == admin::BLOCKING_SPIN    ? control::InjectionKind::kBlockingSpin
                                : r.kind() == admin::BLOCKING_SLEEP ? control::InjectionKind::kBlockingSleep
                                                                    : control::InjectionKind::kNonblockingSleep;
  Require(got->kind == kind, "InjectTask: the kind is not the one asked for");
  RequireLoops(got->loops, std::vector<uint32_t>(r.loops().begin(), r.loops().end()), limits);
}

void CancelInjection(FuzzInput& in, bool field_by_field, const RequestLimits&) {
  admin::CancelInjectionRequest r;
  if (!Read(in, field_by_field, &r)) return;
  RequireVerdict(control::CheckCancelInjection(r), r.id() != 0, false, r);  // id: 1, 2, ...
}

void CloseConnection(FuzzInput& in, bool field_by_field, const RequestLimits& limits) {
  admin::CloseConnectionRequest r;
  if (!Read(in, field_by_field, &r)) return;
  // fd: a descriptor (from 0). loop: one the server runs, or unset for every loop. peer: empty,
  // or up to 64 bytes of visible ASCII that are a peer address as ListSockets writes one.
  bool loop_unknown = r.has_loop() && !Known(r.loop(), limits);
  const std::string& peer = r.peer();
  bool peer_ok = peer.empty() || (peer.size() <= control::kMaxPeerAddressBytes &&
                                  std::all_of(peer.begin(), peer.end(), [](char c) { return c >= '!' && c <= '~'; }) &&
                                  control::CheckPeerAddress(peer).ok());
  absl::StatusOr<std::vector<uint32_t>> got = control::CheckCloseConnection(r, limits);
  RequireVerdict(got.status(), r.fd() >= 0 && peer_ok, loop_unknown, r);
  if (got.ok()) RequireLoops(*got, r.has_loop() ? std::vector<uint32_t>{r.loop()} : std::vector<uint32_t>{}, limits);
}

void SetStallThreshold(FuzzInput& in, bool field_by_field, const RequestLimits& limits) {
  admin::SetStallThresholdRequest r;
  if (!Read(in, field_by_field, &r)) return;
  // threshold_ms: 1 to 60,000.
  double ms = r.threshold_ms();
  bool loop_unknown = std::any_of(r.loops().begin(), r.loops().end(),
                                  [&](uint32_t loop) { return !Known(loop, limits); });
  bool in_range = ms >= 1 && ms <= 60'000;  // false for NaN
  absl::StatusOr<control::StallThresholdChange> got = control::CheckSetStallThreshold(r, limits);
  RequireVerdict(got.status(), in_range, loop_unknown, r);
  if (!got.ok()) return;
  Require(got->threshold_ns >= 1'000'000 && got->threshold_ns <= 60'000'000'000 &&
              std::abs(static_cast<double>(got->threshold_ns) - ms * 1e6) < 1,
          "SetStallThreshold: the threshold is not the one asked for");
  RequireLoops(got->loops, std::vector<uint32_t>(r.loops().begin(), r.loops().end()), limits);
}

}  // namespace

int OneInput(const uint8_t* data, size_t size) {
  using Check = void (*)(FuzzInput&, bool, const RequestLimits&);
  static constexpr Check kChecks[] = {WatchStats,      ListSockets,     SetThrottle,      InjectTask,
                                      CancelInjection, CloseConnection, SetStallThreshold};
  FuzzInput in(data, size);
  const uint8_t selector = in.Byte();
  RequestLimits limits;
  limits.loops = 1 + in.Byte();
  limits.max_block = milliseconds(1 + 10 * in.Uint(2));
  kChecks[(selector & 0x7f) % std::size(kChecks)](in, (selector & 0x80) != 0, limits);
  return 0;
}

}  // namespace brrr::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return brrr::fuzz::OneInput(data, size); }
