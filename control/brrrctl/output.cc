#include "control/brrrctl/output.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "control/brrrctl/message_json.h"

namespace brrr::control {

Output::Output(bool json, std::FILE* stream)
    : json_(json), write_([stream](absl::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stream);
        std::fflush(stream);
      }) {}

Output::Output(bool json, std::string target, Writer write, Observer observer)
    : json_(json), target_(std::move(target)), write_(std::move(write)), observer_(std::move(observer)) {}

void Output::Result(const google::protobuf::Message& message, absl::string_view text) {
  if (json_) {
    Json(message);
    return;
  }
  if (observer_) observer_(message);
  Text(text);
}

void Output::Json(const google::protobuf::Message& message) {
  if (observer_) observer_(message);
  std::string line = target_.empty()
                         ? MessageToJsonLine(message)
                         : absl::StrCat("{\"target\":", JsonString(target_), ",\"result\":", MessageToJsonLine(message), "}");
  line += '\n';
  Text(line);
}

void Output::Text(absl::string_view text) { write_(text); }

}  // namespace brrr::control
