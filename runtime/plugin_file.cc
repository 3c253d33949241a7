#include "runtime/plugin_file.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/elf_check.h"
#include "runtime/reactor_abi.h"
#include "runtime/unique_fd.h"

namespace brrr {
namespace {

constexpr absl::string_view kFilePrefix = "libbrrr_reactor_";
constexpr absl::string_view kFileSuffix = ".so";

absl::Status Refuse(const std::string& path, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat(path, ": ", why));
}

}  // namespace

bool IsBackendName(absl::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::optional<std::string> BackendNameOfFile(absl::string_view path) {
  size_t slash = path.rfind('/');
  absl::string_view file = slash == absl::string_view::npos ? path : path.substr(slash + 1);
  if (file.size() <= kFilePrefix.size() + kFileSuffix.size() || !absl::StartsWith(file, kFilePrefix) ||
      !absl::EndsWith(file, kFileSuffix)) {
    return std::nullopt;
  }
  absl::string_view name = file.substr(kFilePrefix.size(), file.size() - kFilePrefix.size() - kFileSuffix.size());
  if (!IsBackendName(name)) return std::nullopt;
  return std::string(name);
}

std::string PluginFileName(absl::string_view backend) { return absl::StrCat(kFilePrefix, backend, kFileSuffix); }

absl::StatusOr<std::shared_ptr<const Plugin>> LoadPluginFile(const std::string& path) {
  std::optional<std::string> expected = BackendNameOfFile(path);
  if (!expected.has_value()) {
    return Refuse(path, "not a plugin file name: a backend NAME lives in libbrrr_reactor_NAME.so (NAME: "
                        "lowercase letters, digits, '_'); rename the file after the backend it holds");
  }
  // O_NONBLOCK: a FIFO under a plugin's name must not block the open; the check refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return Refuse(path, absl::StrCat("cannot load plugin: cannot open it: ", std::strerror(errno)));
  UniqueFd closer(fd);
  if (absl::Status elf = CheckLoadableElf(fd); !elf.ok()) {
    return Refuse(path, absl::StrCat("cannot load plugin: ", elf.message()));
  }
  struct stat checked;
  if (::fstat(fd, &checked) != 0) {
    return Refuse(path, absl::StrCat("cannot load plugin: fstat failed: ", std::strerror(errno)));
  }

  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return Refuse(path, absl::StrCat("cannot load plugin: ", why != nullptr ? why : "dlopen failed"));
  }
  auto fail = [&](absl::string_view why) -> absl::Status {
    ::dlclose(handle);
    return Refuse(path, why);
  };
  // See the header: dlopen opened the path again; it must still be the file that was checked.
  struct stat loaded;
  if (::stat(path.c_str(), &loaded) != 0 || loaded.st_dev != checked.st_dev || loaded.st_ino != checked.st_ino) {
    return fail("cannot load plugin: the file was replaced while it was being loaded; try again");
  }
  ::dlerror();
  auto entry = reinterpret_cast<brrr_reactor_entry_fn>(::dlsym(handle, BRRR_REACTOR_ENTRY_NAME));
  if (entry == nullptr) {
    const char* why = ::dlerror();
    return fail(absl::StrCat("not a brrr reactor plugin: it does not export ", BRRR_REACTOR_ENTRY_NAME, "()",
                             why != nullptr ? absl::StrCat(" (", why, ")") : ""));
  }
  const brrr_reactor_plugin* table = entry();
  if (table == nullptr) return fail(absl::StrCat(BRRR_REACTOR_ENTRY_NAME, "() returned no table"));
  if (table->abi_version != BRRR_REACTOR_ABI_VERSION) {
    return fail(absl::StrCat("plugin ABI version ", table->abi_version, ", but this runtime speaks version ",
                             BRRR_REACTOR_ABI_VERSION, ": rebuild the plugin against runtime/reactor_abi.h"));
  }
  if (table->struct_size < sizeof(brrr_reactor_plugin)) {
    return fail(absl::StrCat("plugin table is ", table->struct_size, " bytes, expected at least ",
                             sizeof(brrr_reactor_plugin), ": rebuild the plugin"));
  }
  if (table->name == nullptr || !IsBackendName(table->name)) {
    return fail("plugin table has no valid name ([a-z0-9_]+)");
  }
  if (table->name != *expected) {
    return fail(absl::StrCat("the file is named for backend \"", *expected, "\" but holds backend \"",
                             table->name, "\": a plugin file must be named after the backend it holds (",
                             PluginFileName(table->name), ")"));
  }
  if (!table->create || !table->destroy || !table->submit || !table->cancel || !table->wait || !table->wake ||
      !table->release_fd || !table->provide_buffers || !table->recycle_buffer || !table->counters) {
    return fail(absl::StrCat("plugin \"", table->name, "\" leaves a required function empty"));
  }
  return std::make_shared<const Plugin>(handle, table, path);
}

}  // namespace brrr
