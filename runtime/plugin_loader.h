// plugin_loader.h: finds, loads and starts reactor backend plugins.
//
// A backend named NAME lives in a file libbrrr_reactor_NAME.so. The loader looks for it, in
// order, in: the directory given to Default() (a --plugin_dir flag), $BRRR_PLUGIN_DIR, the
// `reactors` directory next to the running binary, and the binary's Bazel runfiles
// (<binary>.runfiles/brrr/reactors, $RUNFILES_DIR/brrr/reactors, $TEST_SRCDIR/brrr/reactors).
// A backend may also be given as a path (anything containing '/'); its file must still be named
// libbrrr_reactor_NAME.so after the backend it holds (see plugin_file.h).
//
//   PluginLoader loader = PluginLoader::Default(absl::GetFlag(FLAGS_plugin_dir));
//   auto reactor = loader.CreateReactor("auto");   // io_uring, else epoll, else poll, else select
//   for (const BackendProbe& b : loader.Probe()) ...  // what exists and what starts here
//
// Every error names the file, the reason, and the backends that are available, e.g.
//   backend "kqueue" not found: no libbrrr_reactor_kqueue.so in /opt/brrr/reactors.
//   Available here: epoll, poll, select (io_uring cannot start: ...)
//
// A damaged plugin file is refused, never fatal: every file is checked before dlopen
// (plugin_file.h), and Probe() (the listings, "Available here") loads and starts each plugin in
// a short-lived child process (plugin_probe.h), so a plugin this process does not run cannot
// crash it. Only the backend being created (CreateReactor) is loaded into this process, and
// only once a child has loaded and started it too (once per file and process): one that crashes,
// hangs or exits there is refused with the reason, and `auto` goes on to the next.
//
// Threads: thread-safe. Probe() runs once per loader (copies share the answer) and is cached;
// a loader lives as long as one decision (a program's start, one listing), so a file changed
// later is seen by the next loader.
#ifndef BRRR_RUNTIME_PLUGIN_LOADER_H_
#define BRRR_RUNTIME_PLUGIN_LOADER_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "runtime/plugin_probe.h"
#include "runtime/reactor.h"

namespace brrr {

class PluginLoader {
 public:
  // The order `auto` tries backends in: best first.
  static constexpr std::array<absl::string_view, 4> kAutoOrder = {"io_uring", "epoll", "poll",
                                                                 "select"};

  // How long one plugin's probe may take before its child is killed.
  static constexpr std::chrono::milliseconds kProbeTimeout{10000};

  explicit PluginLoader(std::vector<std::string> search_dirs);

  // The standard search path (see above). `override_dir` comes first when not empty.
  static PluginLoader Default(absl::string_view override_dir = "");
  // OK if `override_dir` (a --plugin_dir flag) is empty or a directory; else InvalidArgument
  // saying what it is. A mistyped directory would otherwise pass silently, the plugins then
  // coming from the next place on the search path.
  static absl::Status CheckOverrideDir(absl::string_view override_dir);

  static std::string FileNameFor(absl::string_view name);

  const std::vector<std::string>& search_dirs() const { return search_dirs_; }

  // Loads a plugin by backend name or path and checks its ABI.
  absl::StatusOr<std::shared_ptr<const Plugin>> Load(absl::string_view name_or_path) const;

  // With "auto": backends auto passes over without trying them, by name, each with the reason
  // to give for it (a program whose loops must all run one backend passes over one that a later
  // loop could not start).
  using AutoSkip = std::map<std::string, std::string, std::less<>>;

  // Loads and starts `backend`: a name, a path, or "auto". For "auto", `passed_over` (when not
  // null) receives why each backend before the one it started was passed over, in auto's
  // order (a backend without a file here is not named; one in `skip`, with skip's reason).
  absl::StatusOr<std::unique_ptr<Reactor>> CreateReactor(absl::string_view backend, const ReactorConfig& config = {},
                                                         std::vector<std::string>* passed_over = nullptr,
                                                         const AutoSkip& skip = {}) const;

  // Every plugin file in the search path (first occurrence of each name), each loaded and
  // started once in a child process; best first, as `auto` tries them. Cached (see above).
  std::vector<BackendProbe> Probe() const;

  // The backend `auto` would pick, from Probe() (nothing is loaded into this process), or why
  // none starts: for listings.
  absl::StatusOr<std::string> AutoChoice() const;

  // "Available here: epoll, poll, select (not usable: io_uring: ...)", for error messages. The
  // plugin file `told_path`, whose failure the message has just told, is left out of "not
  // usable" rather than told twice.
  std::string AvailabilitySummary(absl::string_view told_path = {}) const;

 private:
  struct ProbeCache {
    std::mutex mu;
    std::optional<std::vector<BackendProbe>> probes;  // guarded by mu
  };

  // The file of a backend name or a path, or why there is none.
  absl::StatusOr<std::string> PathOf(absl::string_view name_or_path) const;
  // Before `path` is loaded into this process: loaded and started once in a child process
  // (plugin_probe.h), so that a plugin that crashes, hangs or exits in its constructors or
  // create() is refused with the reason instead of taking this process down. OK when it
  // returned (started or refused: this process then finds out with its own settings) or when
  // no child can answer here (none can be started, or the program cannot answer probes: see
  // plugin_probe.h). Once per version of a file per process.
  absl::Status TryBeforeLoading(const std::string& path) const;
  // `result`, its error message (about the plugin file `path`) followed by AvailabilitySummary().
  template <typename T>
  absl::StatusOr<T> WithSummary(absl::StatusOr<T> result, absl::string_view path) const {
    if (result.ok()) return result;
    return absl::Status(result.status().code(),
                        absl::StrCat(result.status().message(), ". ", AvailabilitySummary(path)));
  }
  // The first file for backend `name` in the search path.
  std::optional<std::string> FindPlugin(absl::string_view name) const;
  std::vector<std::string> FindPluginFiles() const;
  absl::Status NoAutoBackend(const std::vector<std::string>& reasons) const;

  std::vector<std::string> search_dirs_;
  std::shared_ptr<ProbeCache> cache_ = std::make_shared<ProbeCache>();
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_PLUGIN_LOADER_H_
