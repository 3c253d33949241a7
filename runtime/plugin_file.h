// plugin_file.h: loads one backend plugin file into this process, refusing it, with the file
// and the reason, when it is damaged, built for another machine, not a brrr plugin, or holds
// another backend than its name says.
//
// A backend NAME lives in a file named libbrrr_reactor_NAME.so, and the table the plugin
// exports must say NAME too. This holds for a plugin given as a path as well: the file name is
// how --backend, the listings and `auto` know a backend, so a file that holds io_uring under
// epoll's name (a copy gone wrong) would make "epoll starts here" a lie. Rename the file after
// the backend it holds.
//
// Before dlopen the file is opened and checked through that descriptor (elf_check.h): the ELF
// header and every segment must be inside the file, so a file cut short is refused instead of
// killing the process with SIGBUS. dlopen then opens the same path. It does not load
// "/proc/self/fd/N", which would close the window between the check and dlopen, because glibc
// finds an already-loaded object by the name string first: once descriptor N is closed and its
// number reused for another plugin, dlopen("/proc/self/fd/N") hands back the plugin loaded
// earlier under that name (glibc also records such names as aliases, which cannot be listed);
// and debuggers read the loaded name to find symbols, which "/proc/self/fd/N" would hide.
// Instead, after dlopen the path must still name the file that was checked (same device and
// inode), or the load is undone and refused. Left open: a file replaced by a damaged one in
// the microseconds between the check and dlopen, or truncated in place while mapped (as for
// any shared library rewritten under a running program). The same name-first rule means a
// path this process has already loaded, and not unloaded, yields the object loaded then (it
// was checked then) even if the file has been replaced since; a new process (the probes run in
// one) sees the new file.
//
//   auto plugin = LoadPluginFile("/opt/brrr/reactors/libbrrr_reactor_epoll.so");
//   // or: "/opt/brrr/reactors/libbrrr_reactor_epoll.so: cannot load plugin: cut short: ..."
//
// Threads: thread-safe. Ownership: the returned Plugin owns the dlopen handle.
#ifndef BRRR_RUNTIME_PLUGIN_FILE_H_
#define BRRR_RUNTIME_PLUGIN_FILE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/reactor.h"

namespace brrr {

// Whether `name` is a backend name: lowercase letters, digits and '_', not empty.
bool IsBackendName(absl::string_view name);

// "epoll" for ".../libbrrr_reactor_epoll.so"; nullopt when the file name does not follow the
// libbrrr_reactor_NAME.so pattern with a valid NAME.
std::optional<std::string> BackendNameOfFile(absl::string_view path);

// "libbrrr_reactor_epoll.so" for "epoll".
std::string PluginFileName(absl::string_view backend);

// Checks, loads and validates the plugin at `path` (see above). Errors are FailedPrecondition
// and start with the path.
absl::StatusOr<std::shared_ptr<const Plugin>> LoadPluginFile(const std::string& path);

}  // namespace brrr

#endif  // BRRR_RUNTIME_PLUGIN_FILE_H_
