// plugin_probe.h: finds out whether a plugin file loads and starts here, in a short-lived
// child process, so that a plugin that crashes while loading or starting takes down the
// child, never the caller.
//
// Listing the backends (--list_backends, the admin plane's GetServerInfo, the "Available
// here: ..." part of error messages) means loading every plugin file in the search path and
// starting an instance of each, including files the process will never run; and before a
// process loads the backend it will run (PluginLoader::CreateReactor), it tries it here first.
// The ELF check (elf_check.h) refuses the damage we know of before dlopen, but a plugin's own
// code can still crash in its create(), and a file can be damaged in ways no check foresees.
// So each file is probed in a child: the running program itself, executed again from
// /proc/self/exe with BRRR_PLUGIN_PROBE=<path> in its environment. A constructor in this file
// (plugin_probe.cc) sees the variable before main() runs, loads and starts the plugin, writes
// the answer to its standard output and exits; the program's main() and flags never run. Why
// this way:
//   - exec, not a bare fork: a server has threads when its admin plane starts, and after fork
//     a child of a threaded process may only make async-signal-safe calls; dlopen is not one.
//   - posix_spawn (glibc: clone with CLONE_VFORK), so the parent's memory is not copied.
//   - the same binary, not a helper program: every program that can list backends can answer
//     the probe (it links this file), so there is nothing extra to install or find. A program
//     started through an explicit loader (ld.so prog) or a tool that replaces /proc/self/exe
//     gets "cannot probe" answers, not wrong ones: the child says that it has started on the
//     plugin before it loads it, and a child that never said so (ld.so, told to run the
//     plugin file as a program, dies of SIGSEGV) tells nothing about the plugin.
// Once the child has started on the plugin, its end is the plugin's doing (`fatal`): a death by
// a signal is reported as "the probe crashed (SIGBUS)", no answer within the timeout as a
// hang (the child is killed), and an exit without an answer (the plugin called exit()) as the
// plugin ending the process. In the child, the fatal signals (SIGSEGV, SIGBUS, ...) are reset
// to their default action first, so that a sanitizer's handler does not turn a crash into an
// ordinary exit.
//
//   BackendProbe p = ProbePluginFile("/opt/brrr/reactors/libbrrr_reactor_epoll.so",
//                                    std::chrono::seconds(10));
//   if (!p.status.ok()) std::cout << p.name << " cannot start: " << p.status.message();
//
// Cost: one process start per file (tens of milliseconds for a large binary); callers cache
// the answers (PluginLoader::Probe does).
// Threads: thread-safe; blocks the calling thread until the child answers or the timeout.
#ifndef BRRR_RUNTIME_PLUGIN_PROBE_H_
#define BRRR_RUNTIME_PLUGIN_PROBE_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace brrr {

// What a probe learned about one plugin file.
struct BackendProbe {
  std::string name;  // as --backend selects it: from the file name, libbrrr_reactor_NAME.so
  std::string path;
  std::string description;
  uint64_t capabilities = 0;
  absl::Status status;  // OK: it loads and starts on this machine. Otherwise why not.
  bool answered = false;  // the child loaded the plugin and returned from its create() (or the
                          // file was refused before dlopen): `status` is its answer
  bool fatal = false;     // the child crashed, hung or exited in the plugin: loading it into a
                          // process would take that process down
};

// Loads and starts the plugin at `path` in a child process (see above).
BackendProbe ProbePluginFile(const std::string& path, std::chrono::milliseconds timeout);

// The same, in this process: what the child runs. A crash in the plugin is this process's crash.
BackendProbe ProbePluginFileHere(const std::string& path);

}  // namespace brrr

#endif  // BRRR_RUNTIME_PLUGIN_PROBE_H_
