// message_text.h: protobuf message fields as text for people (brrrctl without --json), read
// through reflection so that a field added to the admin API shows up without code.
//
//   for (const auto& [name, text] : FieldRows(stats.total())) table.AddRow({name, text});
//   // ready_queue_depth  0
//   // timer_lateness.p99_us  12.5
//
// Numbers print in full (doubles with at most 3 decimals), enums as their value names, bools
// as true/false, empty strings as "-", repeated scalars joined with ",".
//
// Threads: pure functions.
#ifndef BRRR_CONTROL_MESSAGE_TEXT_H_
#define BRRR_CONTROL_MESSAGE_TEXT_H_

#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/message.h"

namespace brrr::control {

// A double with at most 3 decimals and no trailing zeros: 12.5, 0.001, 3.
std::string FormatDecimal(double value);

// A figure for people, 3 significant digits or so with a decimal suffix: 950, 12.3K, 450K,
// 4.5M, 1.2G; the suffix follows the figure as rounded (999,960 is 1.0M). Below 1,000 (and
// negative figures): a whole number.
std::string FormatShort(double value);

// The text of a scalar field (singular or repeated) of `message`. Message fields: "".
std::string FieldText(const google::protobuf::Message& message, const google::protobuf::FieldDescriptor* field);

// Every scalar field as (name, text), in field order; fields of singular message fields follow
// as "field.subfield" rows in the same place. Repeated message fields are left out.
std::vector<std::pair<std::string, std::string>> FieldRows(const google::protobuf::Message& message);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_MESSAGE_TEXT_H_
