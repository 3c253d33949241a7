#include "runtime/symbolizer.h"

#include <dlfcn.h>
#include <link.h>

#include <mutex>

#include "absl/debugging/symbolize.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace brrr {

void InitializeSymbolizer(const char* argv0) {
  static std::once_flag once;
  std::call_once(once, [argv0] { absl::InitializeSymbolizer(argv0); });
}

std::string SymbolizeFrame(uintptr_t pc) {
  char name[1024];
  absl::string_view function = absl::Symbolize(reinterpret_cast<void*>(pc), name, sizeof name) ? name : "??";
  Dl_info info{};
  link_map* object = nullptr;
  if (dladdr1(reinterpret_cast<void*>(pc), &info, reinterpret_cast<void**>(&object), RTLD_DL_LINKMAP) == 0 ||
      object == nullptr) {
    return absl::StrFormat("%s (0x%x)", function, pc);
  }
  absl::string_view path = info.dli_fname != nullptr ? info.dli_fname : "";
  absl::string_view base = path.substr(path.find_last_of('/') + 1);
  // l_addr is the load bias: what is left is the address as the file (and addr2line) has it.
  return absl::StrFormat("%s (%s+0x%x)", function, base.empty() ? "?" : base, pc - object->l_addr);
}

std::vector<std::string> SymbolizeFrames(const std::vector<uintptr_t>& pcs) {
  std::vector<std::string> frames;
  frames.reserve(pcs.size());
  for (uintptr_t pc : pcs) frames.push_back(SymbolizeFrame(pc));
  return frames;
}

}  // namespace brrr
