#include "runtime/plugin_loader.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/plugin_file.h"

namespace brrr {
namespace {

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// OK if `path` is a regular file (or a link to one), else why it cannot be a plugin file: it
// does not exist, cannot be looked at (a loop of links, no permission), or is something else
// (a directory, a FIFO, a device), which is never opened (a FIFO's open would wait for a writer).
absl::Status CheckPluginPath(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such plugin file"));
    return absl::ErrnoToStatus(err, absl::StrCat(path, ": cannot use it as a plugin file"));
  }
  if (S_ISREG(st.st_mode)) return absl::OkStatus();
  const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "not a file";
  return absl::InvalidArgumentError(absl::StrCat(path, ": not a plugin file: it is ", kind));
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

// One version of a file: a file replaced or rewritten since is another.
struct FileVersion {
  dev_t device;
  ino_t inode;
  off_t size;
  int64_t modified_ns;
  auto operator<=>(const FileVersion&) const = default;
};

std::optional<FileVersion> VersionOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileVersion{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec};
}

// The plugin files this process has tried in a child and seen return from create(): each is
// tried once per process (a server's loops, a test's many loops), not once per reactor.
class TriedFiles {
 public:
  static TriedFiles& Instance() {
    static TriedFiles* files = new TriedFiles();
    return *files;
  }
  bool Contains(const FileVersion& v) {
    std::lock_guard<std::mutex> lock(mu_);
    return files_.count(v) != 0;
  }
  void Add(const FileVersion& v) {
    std::lock_guard<std::mutex> lock(mu_);
    files_.insert(v);
  }

 private:
  std::mutex mu_;
  std::set<FileVersion> files_;  // guarded by mu_
};

void AddEnvDir(std::vector<std::string>* dirs, const char* var, absl::string_view suffix) {
  const char* value = std::getenv(var);
  if (value != nullptr && *value != '\0') dirs->push_back(absl::StrCat(value, suffix));
}

}  // namespace

PluginLoader::PluginLoader(std::vector<std::string> search_dirs)
    : search_dirs_(std::move(search_dirs)) {}

absl::Status PluginLoader::CheckOverrideDir(absl::string_view override_dir) {
  if (override_dir.empty()) return absl::OkStatus();
  std::string dir(override_dir);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(dir, ": not a directory"));
  return absl::OkStatus();
}

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

std::string PluginLoader::FileNameFor(absl::string_view name) { return PluginFileName(name); }

absl::StatusOr<std::string> PluginLoader::PathOf(absl::string_view name_or_path) const {
  if (absl::StrContains(name_or_path, '/')) {
    std::string path(name_or_path);
    if (absl::Status usable = CheckPluginPath(path); !usable.ok()) {
      return absl::Status(usable.code(), absl::StrCat(usable.message(), ". ", AvailabilitySummary(path)));
    }
    return path;
  }
  if (!IsBackendName(name_or_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", name_or_path, "\" is not a backend name (lowercase letters, digits, '_') or a path. ",
        AvailabilitySummary()));
  }
  if (std::optional<std::string> path = FindPlugin(name_or_path); path.has_value()) return *path;
  return absl::NotFoundError(absl::StrCat("backend \"", name_or_path, "\" not found: no ", FileNameFor(name_or_path),
                                          " in ", absl::StrJoin(search_dirs_, ", "), ". ",
                                          AvailabilitySummary()));
}

absl::StatusOr<std::shared_ptr<const Plugin>> PluginLoader::Load(absl::string_view name_or_path) const {
  absl::StatusOr<std::string> path = PathOf(name_or_path);
  if (!path.ok()) return path.status();
  return WithSummary(LoadPluginFile(*path), *path);
}

std::optional<std::string> PluginLoader::FindPlugin(absl::string_view name) const {
  std::string file = FileNameFor(name);
  for (const std::string& dir : search_dirs_) {
    std::string path = absl::StrCat(dir, "/", file);
    if (IsFile(path)) return path;
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<Reactor>> PluginLoader::CreateReactor(absl::string_view backend,
                                                                     const ReactorConfig& config,
                                                                     std::vector<std::string>* passed_over,
                                                                     const AutoSkip& skip) const {
  if (backend != "auto") {
    absl::StatusOr<std::string> path = PathOf(backend);
    if (!path.ok()) return path.status();
    if (absl::Status tried = TryBeforeLoading(*path); !tried.ok()) {
      return WithSummary<std::unique_ptr<Reactor>>(tried, *path);
    }
    auto plugin = WithSummary(LoadPluginFile(*path), *path);
    if (!plugin.ok()) return plugin.status();
    return WithSummary(Reactor::Create(*std::move(plugin), config), *path);
  }
  // Straight to the files: a backend that is missing or broken here is skipped without listing
  // what is available, which would probe every plugin (in child processes) at each start.
  std::vector<std::string> reasons;
  for (absl::string_view name : kAutoOrder) {
    if (auto skipped = skip.find(name); skipped != skip.end()) {
      reasons.push_back(skipped->second);
      continue;
    }
    std::optional<std::string> path = FindPlugin(name);
    if (!path.has_value()) continue;
    if (absl::Status tried = TryBeforeLoading(*path); !tried.ok()) {
      reasons.push_back(std::string(tried.message()));
      continue;
    }
    auto plugin = LoadPluginFile(*path);
    if (!plugin.ok()) {
      reasons.push_back(std::string(plugin.status().message()));
      continue;
    }
    auto reactor = Reactor::Create(*std::move(plugin), config);
    if (reactor.ok()) {
      if (passed_over != nullptr) *passed_over = std::move(reasons);
      return reactor;
    }
    reasons.push_back(std::string(reactor.status().message()));
  }
  return NoAutoBackend(reasons);
}

absl::Status PluginLoader::TryBeforeLoading(const std::string& path) const {
  std::optional<FileVersion> version = VersionOf(path);
  if (version.has_value() && TriedFiles::Instance().Contains(*version)) return absl::OkStatus();
  BackendProbe probe = ProbePluginFile(path, kProbeTimeout);
  if (probe.fatal) return probe.status;
  // It returned from create(), started or not (the answer with this process's own settings is
  // the one that counts), or no child could be started here: this process loads it itself.
  if (version.has_value() && probe.answered) TriedFiles::Instance().Add(*version);
  return absl::OkStatus();
}

absl::Status PluginLoader::NoAutoBackend(const std::vector<std::string>& reasons) const {
  return absl::UnavailableError(absl::StrCat(
      "--backend=auto: no backend starts here (tried ", absl::StrJoin(kAutoOrder, ", "), " in ",
      absl::StrJoin(search_dirs_, ", "), ")",
      reasons.empty() ? "" : absl::StrCat(": ", absl::StrJoin(reasons, "; "))));
}

absl::StatusOr<std::string> PluginLoader::AutoChoice() const {
  std::vector<BackendProbe> probes = Probe();
  std::vector<std::string> reasons;
  for (absl::string_view name : kAutoOrder) {
    for (const BackendProbe& p : probes) {
      if (p.name != name) continue;
      if (p.status.ok()) return p.name;
      reasons.push_back(std::string(p.status.message()));
    }
  }
  return NoAutoBackend(reasons);
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
      std::optional<std::string> name = BackendNameOfFile(e->d_name);
      if (!name.has_value() || !names.insert(*name).second) continue;
      found.push_back(absl::StrCat(dir, "/", e->d_name));
    }
    ::closedir(d);
    std::sort(found.begin(), found.end());
    paths.insert(paths.end(), found.begin(), found.end());
  }
  return paths;
}

std::vector<BackendProbe> PluginLoader::Probe() const {
  std::lock_guard<std::mutex> lock(cache_->mu);
  if (cache_->probes.has_value()) return *cache_->probes;
  // One child per file, several at once (each is mostly a program starting up), a bounded
  // number of them however many files the directories hold.
  constexpr size_t kConcurrentProbes = 8;
  std::vector<std::string> paths = FindPluginFiles();
  std::vector<BackendProbe> probes(paths.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> probers;
  for (size_t t = 0; t < std::min(paths.size(), kConcurrentProbes); ++t) {
    probers.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < paths.size();) probes[i] = ProbePluginFile(paths[i], kProbeTimeout);
    });
  }
  for (std::thread& t : probers) t.join();
  // Best first, as `auto` would try them; unknown names after, alphabetically.
  auto rank = [](const std::string& name) {
    auto it = std::find(kAutoOrder.begin(), kAutoOrder.end(), name);
    return static_cast<size_t>(it - kAutoOrder.begin());
  };
  std::stable_sort(probes.begin(), probes.end(), [&](const BackendProbe& a, const BackendProbe& b) {
    return rank(a.name) != rank(b.name) ? rank(a.name) < rank(b.name) : a.name < b.name;
  });
  cache_->probes = probes;
  return probes;
}

std::string PluginLoader::AvailabilitySummary(absl::string_view told_path) const {
  std::vector<std::string> ok;
  std::vector<std::string> broken;
  for (const BackendProbe& p : Probe()) {
    if (p.status.ok()) {
      ok.push_back(p.name);
    } else if (p.path != told_path) {
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
