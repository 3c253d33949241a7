// symbolizer.h: turns code addresses into lines a person can read, off the sampled thread.
//
//   std::vector<std::string> frames = SymbolizeFrames(sample.pcs);
//   // "brrr::control::BlockingSpin(...) (brrr-echo+0x1a2b3c)"
//
// Each frame names its function (Abseil's ELF symbolizer, demangled; "??" where the object
// has no symbol for it) and the object and offset it is at. Abseil gives no file:line; the
// offset does, where the object was built with debug information (-c dbg):
//
//   addr2line -f -C -e bazel-bin/server/brrr-echo/brrr-echo 0x1a2b3c
//
// Threads: thread-safe (Abseil's symbolizer locks its caches). Not async-signal-safe (it
// reads files and calls dladdr): call it from the thread that took the sample, never from a
// signal handler.
#ifndef BRRR_RUNTIME_SYMBOLIZER_H_
#define BRRR_RUNTIME_SYMBOLIZER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace brrr {

// Once, early in main: helps Abseil find the program's own file. Optional on Linux (it reads
// /proc/self/maps), harmless to repeat.
void InitializeSymbolizer(const char* argv0);

std::string SymbolizeFrame(uintptr_t pc);
std::vector<std::string> SymbolizeFrames(const std::vector<uintptr_t>& pcs);

}  // namespace brrr

#endif  // BRRR_RUNTIME_SYMBOLIZER_H_
