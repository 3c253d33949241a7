#include "runtime/plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/reactor_abi.h"

namespace brrr {
namespace {

constexpr absl::string_view kFilePrefix = "libbrrr_reactor_";
constexpr absl::string_view kFileSuffix = ".so";

bool IsBackendName(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string ExecutablePath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return buf;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

void AddEnvDir(std::vector<std::string>* dirs, const char* var, absl::string_view suffix) {
  const char* value = std::getenv(var);
  if (value != nullptr && *value != '\0') dirs->push_back(absl::StrCat(value, suffix));
}

}  // namespace

PluginLoader::PluginLoader(std::vector<std::string> search_dirs)
    : search_dirs_(std::move(search_dirs)) {}

PluginLoader PluginLoader::Default(absl::string_view override_dir) {
  std::vector<std::string> dirs;
  if (!override_dir.empty()) dirs.emplace_back(override_dir);
  AddEnvDir(&dirs, "BRRR_PLUGIN_DIR", "");
  std::string exe = ExecutablePath();
  if (!exe.empty()) {
    dirs.push_back(DirName(exe) + "/reactors");
    dirs.push_back(exe + ".runfiles/brrr/reactors");
  }
  AddEnvDir(&dirs, "RUNFILES_DIR", "/brrr/reactors");
  AddEnvDir(&dirs, "TEST_SRCDIR", "/brrr/reactors");
  // Keep the first occurrence of each directory.
  std::vector<std::string> unique;
  for (std::string& d : dirs) {
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(std::move(d));
  }
  return PluginLoader(std::move(unique));
}

std::string PluginLoader::FileNameFor(absl::string_view name) {
  return absl::StrCat(kFilePrefix, name, kFileSuffix);
}

absl::StatusOr<std::shared_ptr<const Plugin>> PluginLoader::LoadPath(const std::string& path) const {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot load plugin: ", why != nullptr ? why : "dlopen failed"));
  }
  auto fail = [&](std::string why) -> absl::Status {
    ::dlclose(handle);
    return absl::FailedPreconditionError(absl::StrCat(path, ": ", why));
  };
  ::dlerror();
  auto entry = reinterpret_cast<brrr_reactor_entry_fn>(::dlsym(handle, BRRR_REACTOR_ENTRY_NAME));
  if (entry == nullptr) {
    const char* why = ::dlerror();
    return fail(absl::StrCat("not a brrr reactor plugin: it does not export ", BRRR_REACTOR_ENTRY_NAME,
                             "()", why != nullptr ? absl::StrCat(" (", why, ")") : ""));
  }
  const brrr_reactor_plugin* table = entry();
  if (table == nullptr) return fail(absl::StrCat(BRRR_REACTOR_ENTRY_NAME, "() returned no table"));
  if (table->abi_version != BRRR_REACTOR_ABI_VERSION) {
    return fail(absl::StrCat("plugin ABI version ", table->abi_version,
                             ", but this runtime speaks version ", BRRR_REACTOR_ABI_VERSION,
                             ": rebuild the plugin against runtime/reactor_abi.h"));
  }
  if (table->struct_size < sizeof(brrr_reactor_plugin)) {
    return fail(absl::StrCat("plugin table is ", table->struct_size, " bytes, expected at least ",
                             sizeof(brrr_reactor_plugin), ": rebuild the plugin"));
  }
  if (table->name == nullptr || !IsBackendName(table->name)) {
    return fail("plugin table has no valid name ([a-z0-9_]+)");
  }
  if (!table->create || !table->destroy || !table->submit || !table->cancel || !table->wait ||
      !table->wake || !table->release_fd || !table->provide_buffers || !table->recycle_buffer ||
      !table->counters) {
    return fail(absl::StrCat("plugin \"", table->name, "\" leaves a required function empty"));
  }
  return std::make_shared<const Plugin>(handle, table, path);
}

absl::StatusOr<std::shared_ptr<const Plugin>> PluginLoader::Load(absl::string_view name_or_path) const {
  if (absl::StrContains(name_or_path, '/')) {
    std::string path(name_or_path);
    if (!IsFile(path)) {
      return absl::NotFoundError(
          absl::StrCat(path, ": no such plugin file. ", AvailabilitySummary()));
    }
    auto plugin = LoadPath(path);
    if (!plugin.ok()) {
      return absl::Status(plugin.status().code(),
                          absl::StrCat(plugin.status().message(), ". ", AvailabilitySummary()));
    }
    return plugin;
  }
  if (!IsBackendName(name_or_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", name_or_path, "\" is not a backend name (lowercase letters, digits, '_') or a path. ",
        AvailabilitySummary()));
  }
  std::string file = FileNameFor(name_or_path);
  for (const std::string& dir : search_dirs_) {
    std::string path = absl::StrCat(dir, "/", file);
    if (!IsFile(path)) continue;
    auto plugin = LoadPath(path);
    if (!plugin.ok()) {
      return absl::Status(plugin.status().code(),
                          absl::StrCat(plugin.status().message(), ". ", AvailabilitySummary()));
    }
    return plugin;
  }
  return absl::NotFoundError(absl::StrCat("backend \"", name_or_path, "\" not found: no ", file,
                                          " in ", absl::StrJoin(search_dirs_, ", "), ". ",
                                          AvailabilitySummary()));
}

absl::StatusOr<std::unique_ptr<Reactor>> PluginLoader::CreateReactor(absl::string_view backend,
                                                                     const ReactorConfig& config) const {
  if (backend != "auto") {
    auto plugin = Load(backend);
    if (!plugin.ok()) return plugin.status();
    auto reactor = Reactor::Create(*std::move(plugin), config);
    if (!reactor.ok()) {
      return absl::Status(reactor.status().code(),
                          absl::StrCat(reactor.status().message(), ". ", AvailabilitySummary()));
    }
    return reactor;
  }
  std::vector<std::string> reasons;
  for (absl::string_view name : kAutoOrder) {
    auto plugin = Load(name);
    if (!plugin.ok()) {
      if (plugin.status().code() != absl::StatusCode::kNotFound) {
        reasons.push_back(std::string(plugin.status().message()));
      }
      continue;
    }
    auto reactor = Reactor::Create(*std::move(plugin), config);
    if (reactor.ok()) return reactor;
    reasons.push_back(std::string(reactor.status().message()));
  }
  return absl::UnavailableError(absl::StrCat(
      "--backend=auto: no backend starts here (tried ", absl::StrJoin(kAutoOrder, ", "), " in ",
      absl::StrJoin(search_dirs_, ", "), ")",
      reasons.empty() ? "" : absl::StrCat(": ", absl::StrJoin(reasons, "; "))));
}

std::vector<std::string> PluginLoader::FindPluginFiles() const {
  std::vector<std::string> paths;
  std::set<std::string> names;
  for (const std::string& dir : search_dirs_) {
    if (!IsDirectory(dir)) continue;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    std::vector<std::string> found;
    while (dirent* e = ::readdir(d)) {
      absl::string_view file = e->d_name;
      if (!absl::StartsWith(file, kFilePrefix) || !absl::EndsWith(file, kFileSuffix)) continue;
      std::string name(file.substr(kFilePrefix.size(), file.size() - kFilePrefix.size() - kFileSuffix.size()));
      if (!IsBackendName(name) || !names.insert(name).second) continue;
      found.push_back(absl::StrCat(dir, "/", file));
    }
    ::closedir(d);
    std::sort(found.begin(), found.end());
    paths.insert(paths.end(), found.begin(), found.end());
  }
  return paths;
}

std::vector<BackendProbe> PluginLoader::Probe() const {
  std::vector<BackendProbe> probes;
  for (const std::string& path : FindPluginFiles()) {
    BackendProbe probe;
    probe.path = path;
    absl::string_view file = absl::string_view(path).substr(path.rfind('/') + 1);
    probe.name = std::string(file.substr(kFilePrefix.size(), file.size() - kFilePrefix.size() - kFileSuffix.size()));
    auto plugin = LoadPath(path);
    if (!plugin.ok()) {
      probe.status = plugin.status();
    } else {
      // Listed by file name: that is what --backend selects it by.
      probe.description = (*plugin)->description();
      probe.capabilities = (*plugin)->capabilities();
      auto reactor = Reactor::Create(*plugin);
      probe.status = reactor.ok() ? absl::OkStatus() : reactor.status();
    }
    probes.push_back(std::move(probe));
  }
  // Best first, as `auto` would try them; unknown names after, alphabetically.
  auto rank = [](const std::string& name) {
    auto it = std::find(kAutoOrder.begin(), kAutoOrder.end(), name);
    return static_cast<size_t>(it - kAutoOrder.begin());
  };
  std::stable_sort(probes.begin(), probes.end(), [&](const BackendProbe& a, const BackendProbe& b) {
    return rank(a.name) != rank(b.name) ? rank(a.name) < rank(b.name) : a.name < b.name;
  });
  return probes;
}

std::string PluginLoader::AvailabilitySummary() const {
  std::vector<std::string> ok;
  std::vector<std::string> broken;
  for (const BackendProbe& p : Probe()) {
    if (p.status.ok()) {
      ok.push_back(p.name);
    } else {
      broken.push_back(absl::StrCat(p.name, ": ", p.status.message()));
    }
  }
  if (ok.empty() && broken.empty()) {
    return absl::StrCat("No backend plugins found in ", absl::StrJoin(search_dirs_, ", "),
                        " (set --plugin_dir or BRRR_PLUGIN_DIR)");
  }
  std::string summary = absl::StrCat("Available here: ", ok.empty() ? "none" : absl::StrJoin(ok, ", "));
  if (!broken.empty()) absl::StrAppend(&summary, " (not usable: ", absl::StrJoin(broken, "; "), ")");
  return summary;
}

}  // namespace brrr
