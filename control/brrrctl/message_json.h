// message_json.h: a protobuf message as one line of JSON that jq and scripts can rely on.
//
//   std::printf("%s\n", MessageToJsonLine(stats).c_str());
//   // {"loops":[{"loop":0,"ready_queue_depth":0,...}],"total":{...},"uptime_seconds":12.5,...}
//
// How it differs from protobuf's own JSON mapping (util::MessageToJsonString), on purpose:
//  - 64-bit integers are JSON numbers, not strings, so jq can compare and add them (jq reads
//    numbers as doubles: exact up to 2^53);
//  - every field is printed, zero values and empty lists included, so a script can rely on a
//    field being there; a message field that is not set prints as an object of zero values
//    (as `null` only where that would recurse into a type already being printed);
//  - field names are the .proto names (snake_case), never the lowerCamelCase json_name.
// As in protobuf's mapping: enums print as their value names (a number when the value is
// unknown), bytes as base64, NaN and infinities as the strings "NaN", "Infinity",
// "-Infinity", maps as objects with string keys (sorted), and a member of a oneof (proto3
// `optional` included) that is not set as null. Well-known types (Timestamp...) print as the
// plain messages they are. protobuf's JSON parser reads the output back.
//
// Threads: a pure function of the message.
#ifndef BRRR_CONTROL_MESSAGE_JSON_H_
#define BRRR_CONTROL_MESSAGE_JSON_H_

#include <set>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace brrr::control {

// The message as one JSON object on one line, with no trailing newline.
std::string MessageToJsonLine(const google::protobuf::Message& message);

// The same, with the fields whose paths are in `null_fields` ("bytes_in",
// "timer_lateness.p50_us") printed as null: figures that have no value, such as percentiles in a
// total over several servers.
std::string MessageToJsonLine(const google::protobuf::Message& message, const std::set<std::string>& null_fields);

// `text` as a JSON string, in quotes, escaped.
std::string JsonString(absl::string_view text);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_MESSAGE_JSON_H_
