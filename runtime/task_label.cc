#include "runtime/task_label.h"

#include <mutex>
#include <unordered_set>

#include "absl/strings/str_cat.h"

namespace brrr {

std::string TaskLabel::ToString() const {
  if (name_ != nullptr) return name_;
  if (where_.line() == 0) return "unlabelled";
  return absl::StrCat(where_.file_name(), ":", where_.line(), " (", where_.function_name(), ")");
}

const char* InternTaskName(absl::string_view name) {
  static std::mutex mu;
  // Never destroyed: interned names must outlive every thread that might read them.
  static auto* names = new std::unordered_set<std::string>();
  std::lock_guard<std::mutex> lock(mu);
  return names->emplace(name).first->c_str();
}

}  // namespace brrr
