#include "control/brrrctl/message_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"

namespace brrr::control {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void AppendJsonString(std::string* out, absl::string_view text) {
  out->push_back('"');
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(ch);  // UTF-8 passes through: JSON text is UTF-8
        }
    }
  }
  out->push_back('"');
}

// The shortest text that reads back as the same value.
template <typename Float>
void AppendJsonFloat(std::string* out, Float value) {
  if (std::isnan(value)) {
    out->append("\"NaN\"");
  } else if (std::isinf(value)) {
    out->append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char buffer[64];
    std::to_chars_result r = std::to_chars(buffer, buffer + sizeof buffer, value);
    out->append(buffer, r.ptr);
  }
}

void AppendEnum(std::string* out, const FieldDescriptor* field, int number) {
  if (const auto* value = field->enum_type()->FindValueByNumber(number); value != nullptr) {
    AppendJsonString(out, value->name());
  } else {
    absl::StrAppend(out, number);
  }
}

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out, const std::set<std::string>* null_fields = nullptr)
      : out_(out), null_fields_(null_fields) {}

  void WriteMessage(const Message& message) {
    const Descriptor* descriptor = message.GetDescriptor();
    open_types_.push_back(descriptor);
    out_->push_back('{');
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FieldDescriptor* field = descriptor->field(i);
      if (i > 0) out_->push_back(',');
      AppendJsonString(out_, field->name());
      out_->push_back(':');
      if (null_fields_ != nullptr && !field->is_repeated() && null_fields_->count(path_ + field->name()) == 1) {
        out_->append("null");
        continue;
      }
      WriteField(message, field);
    }
    out_->push_back('}');
    open_types_.pop_back();
  }

 private:
  void WriteField(const Message& message, const FieldDescriptor* field) {
    const Reflection* reflection = message.GetReflection();
    if (field->is_map()) {
      WriteMap(message, field);
    } else if (field->is_repeated()) {
      out_->push_back('[');
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        if (i > 0) out_->push_back(',');
        WriteValue(message, field, i);
      }
      out_->push_back(']');
    } else if (field->containing_oneof() != nullptr && !reflection->HasField(message, field)) {
      out_->append("null");
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !reflection->HasField(message, field) &&
               std::find(open_types_.begin(), open_types_.end(), field->message_type()) != open_types_.end()) {
      out_->append("null");  // a default instance of a recursive type would never end
    } else {
      WriteValue(message, field, -1);
    }
  }

  // One value of `field`: element `index` of a repeated field, or the singular value (-1).
  void WriteValue(const Message& message, const FieldDescriptor* field, int index) {
    const Reflection* r = message.GetReflection();
    const bool one = index < 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        absl::StrAppend(out_, one ? r->GetInt32(message, field) : r->GetRepeatedInt32(message, field, index));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        absl::StrAppend(out_, one ? r->GetInt64(message, field) : r->GetRepeatedInt64(message, field, index));
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        absl::StrAppend(out_, one ? r->GetUInt32(message, field) : r->GetRepeatedUInt32(message, field, index));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        absl::StrAppend(out_, one ? r->GetUInt64(message, field) : r->GetRepeatedUInt64(message, field, index));
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        AppendJsonFloat(out_, one ? r->GetDouble(message, field) : r->GetRepeatedDouble(message, field, index));
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        AppendJsonFloat(out_, one ? r->GetFloat(message, field) : r->GetRepeatedFloat(message, field, index));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        out_->append((one ? r->GetBool(message, field) : r->GetRepeatedBool(message, field, index)) ? "true"
                                                                                                     : "false");
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        AppendEnum(out_, field,
                   one ? r->GetEnumValue(message, field) : r->GetRepeatedEnumValue(message, field, index));
        break;
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& text = one ? r->GetStringReference(message, field, &scratch)
                                      : r->GetRepeatedStringReference(message, field, index, &scratch);
        AppendJsonString(out_, field->type() == FieldDescriptor::TYPE_BYTES ? absl::Base64Escape(text) : text);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        // Paths name singular fields only: the elements of a list are not told apart.
        const size_t outer = path_.size();
        path_ += field->name() + (one ? "." : "[].");
        WriteMessage(one ? r->GetMessage(message, field) : r->GetRepeatedMessage(message, field, index));
        path_.resize(outer);
        break;
      }
    }
  }

  // A map field: an object keyed by the keys' text, in key order so that output is stable.
  void WriteMap(const Message& message, const FieldDescriptor* field) {
    const Reflection* r = message.GetReflection();
    const FieldDescriptor* key_field = field->message_type()->map_key();
    const FieldDescriptor* value_field = field->message_type()->map_value();
    std::vector<std::pair<std::string, const Message*>> entries;
    for (int i = 0; i < r->FieldSize(message, field); ++i) {
      const Message& entry = r->GetRepeatedMessage(message, field, i);
      std::string key;
      JsonWriter(&key).WriteValue(entry, key_field, -1);
      if (key.empty() || key.front() != '"') key = absl::StrCat("\"", key, "\"");  // numbers, bools
      entries.emplace_back(std::move(key), &entry);
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    out_->push_back('{');
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out_->push_back(',');
      absl::StrAppend(out_, entries[i].first, ":");
      WriteValue(*entries[i].second, value_field, -1);
    }
    out_->push_back('}');
  }

  std::string* out_;
  const std::set<std::string>* null_fields_;
  // The path of the message being written: "" at the top, "timer_lateness." inside that field.
  std::string path_;
  // The message types being written, outermost first.
  std::vector<const Descriptor*> open_types_;
};

}  // namespace

std::string MessageToJsonLine(const Message& message) {
  std::string out;
  JsonWriter(&out).WriteMessage(message);
  return out;
}

std::string MessageToJsonLine(const Message& message, const std::set<std::string>& null_fields) {
  std::string out;
  JsonWriter(&out, &null_fields).WriteMessage(message);
  return out;
}

std::string JsonString(absl::string_view text) {
  std::string out;
  AppendJsonString(&out, text);
  return out;
}

}  // namespace brrr::control
