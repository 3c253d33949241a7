#include "control/brrrctl/message_text.h"

#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"

namespace brrr::control {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Element `index` of a repeated field, or the singular value (-1).
std::string ValueText(const Message& message, const FieldDescriptor* field, int index) {
  const auto* r = message.GetReflection();
  const bool one = index < 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(one ? r->GetInt32(message, field) : r->GetRepeatedInt32(message, field, index));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(one ? r->GetInt64(message, field) : r->GetRepeatedInt64(message, field, index));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(one ? r->GetUInt32(message, field) : r->GetRepeatedUInt32(message, field, index));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(one ? r->GetUInt64(message, field) : r->GetRepeatedUInt64(message, field, index));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return FormatDecimal(one ? r->GetDouble(message, field) : r->GetRepeatedDouble(message, field, index));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FormatDecimal(one ? r->GetFloat(message, field) : r->GetRepeatedFloat(message, field, index));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (one ? r->GetBool(message, field) : r->GetRepeatedBool(message, field, index)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM: {
      int number = one ? r->GetEnumValue(message, field) : r->GetRepeatedEnumValue(message, field, index);
      const auto* value = field->enum_type()->FindValueByNumber(number);
      return value != nullptr ? value->name() : absl::StrCat(number);
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string text = one ? r->GetString(message, field) : r->GetRepeatedString(message, field, index);
      return text.empty() ? "-" : text;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return "";
  }
  return "";
}

// Nesting stops at 8 levels: a recursive message type would otherwise never end.
void AppendRows(const Message& message, const std::string& prefix, int depth,
                std::vector<std::pair<std::string, std::string>>* rows) {
  const auto* descriptor = message.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    std::string name = prefix + field->name();
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      rows->emplace_back(name, FieldText(message, field));
    } else if (!field->is_repeated() && depth < 8) {
      AppendRows(message.GetReflection()->GetMessage(message, field), name + ".", depth + 1, rows);
    }
  }
}

}  // namespace

std::string FormatDecimal(double value) {
  std::string text = absl::StrFormat("%.3f", value);
  if (text.find('.') != std::string::npos) {
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
  }
  return text == "-0" ? "0" : text;
}

std::string FormatShort(double value) {
  if (!(value >= 999.5)) return absl::StrFormat("%.0f", value);  // and NaN
  constexpr struct {
    double scale;
    const char* suffix;
  } kScales[] = {{1e3, "K"}, {1e6, "M"}, {1e9, "G"}, {1e12, "T"}};
  // The suffix is chosen by the figure as printed: 999.96K prints "1.0M", not "1000K".
  size_t i = 0;
  while (i + 1 < std::size(kScales) && value / kScales[i].scale >= 999.5) ++i;
  const double scaled = value / kScales[i].scale;
  return scaled < 99.95 ? absl::StrFormat("%.1f%s", scaled, kScales[i].suffix)
                        : absl::StrFormat("%.0f%s", scaled, kScales[i].suffix);
}

std::string FieldText(const Message& message, const FieldDescriptor* field) {
  if (!field->is_repeated()) return ValueText(message, field, -1);
  std::string text;
  int size = message.GetReflection()->FieldSize(message, field);
  for (int i = 0; i < size; ++i) absl::StrAppend(&text, i > 0 ? "," : "", ValueText(message, field, i));
  return text.empty() ? "-" : text;
}

std::vector<std::pair<std::string, std::string>> FieldRows(const Message& message) {
  std::vector<std::pair<std::string, std::string>> rows;
  AppendRows(message, "", 0, &rows);
  return rows;
}

}  // namespace brrr::control
