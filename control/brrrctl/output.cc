#include "control/brrrctl/output.h"

#include "control/brrrctl/message_json.h"

namespace brrr::control {

void Output::Json(const google::protobuf::Message& message) {
  std::string line = MessageToJsonLine(message);
  line += '\n';
  Text(line);
}

void Output::Text(absl::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stream_);
  std::fflush(stream_);
}

}  // namespace brrr::control
