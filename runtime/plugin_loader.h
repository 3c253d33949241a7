// plugin_loader.h: finds, loads and starts reactor backend plugins.
//
// A backend named NAME lives in a file libbrrr_reactor_NAME.so. The loader looks for it, in
// order, in: the directory given to Default() (a --plugin_dir flag), $BRRR_PLUGIN_DIR, the
// `reactors` directory next to the running binary, and the binary's Bazel runfiles
// (<binary>.runfiles/brrr/reactors, $RUNFILES_DIR/brrr/reactors, $TEST_SRCDIR/brrr/reactors).
// A backend may also be given as a path (anything containing '/').
//
//   PluginLoader loader = PluginLoader::Default(absl::GetFlag(FLAGS_plugin_dir));
//   auto reactor = loader.CreateReactor("auto");   // io_uring, else epoll, else poll, else select
//   for (const BackendProbe& b : loader.Probe()) ...  // what exists and what starts here
//
// Every error names the file, the reason, and the backends that are available, e.g.
//   backend "kqueue" not found: no libbrrr_reactor_kqueue.so in /opt/brrr/reactors.
//   Available here: epoll, poll, select (io_uring cannot start: ...)
//
// Threads: thread-safe (no mutable state).
#ifndef BRRR_RUNTIME_PLUGIN_LOADER_H_
#define BRRR_RUNTIME_PLUGIN_LOADER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/reactor.h"

namespace brrr {

// What the loader learned about one plugin file.
struct BackendProbe {
  std::string name;  // as --backend selects it: from the file name, libbrrr_reactor_NAME.so
  std::string path;
  std::string description;
  uint64_t capabilities = 0;
  absl::Status status;  // OK: it loads and starts on this machine. Otherwise why not.
};

class PluginLoader {
 public:
  // The order `auto` tries backends in: best first.
  static constexpr std::array<absl::string_view, 4> kAutoOrder = {"io_uring", "epoll", "poll",
                                                                 "select"};

  explicit PluginLoader(std::vector<std::string> search_dirs);

  // The standard search path (see above). `override_dir` comes first when not empty.
  static PluginLoader Default(absl::string_view override_dir = "");

  static std::string FileNameFor(absl::string_view name);

  const std::vector<std::string>& search_dirs() const { return search_dirs_; }

  // Loads a plugin by backend name or path and checks its ABI.
  absl::StatusOr<std::shared_ptr<const Plugin>> Load(absl::string_view name_or_path) const;

  // Loads and starts `backend`: a name, a path, or "auto".
  absl::StatusOr<std::unique_ptr<Reactor>> CreateReactor(absl::string_view backend,
                                                         const ReactorConfig& config = {}) const;

  // Every plugin file in the search path (first occurrence of each name), each loaded and
  // started once.
  std::vector<BackendProbe> Probe() const;

  // "Available here: epoll, poll, select (io_uring cannot start: ...)", for error messages.
  std::string AvailabilitySummary() const;

 private:
  absl::StatusOr<std::shared_ptr<const Plugin>> LoadPath(const std::string& path) const;
  std::vector<std::string> FindPluginFiles() const;

  std::vector<std::string> search_dirs_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_PLUGIN_LOADER_H_
