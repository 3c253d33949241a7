// symbolizer.h: turns code addresses into lines a person can read, off the sampled thread.
//
//   std::vector<std::string> frames = SymbolizeFrames(sample.pcs);
//   // "brrr::control::(anonymous namespace)::InjectedBlockingSpin() (brrr-echo+0x66997)"
//
// Each frame names its function and the object and offset it is at. The name comes from
// the object's symbol table (.symtab, which has local functions too, else .dynsym: Debian's
// libraries are stripped to it), demangled by Abseil's demangler (no parameter lists);
// "??" where the object has no symbol covering the address. The object is mapped only
// while one call reads it: no descriptor stays open (absl::Symbolize would keep them).
// Symbol tables give no file:line; the offset does, where the object was built with debug
// information (-c dbg):
//
//   addr2line -f -C -e bazel-bin/server/brrr-echo/brrr-echo 0x1a2b3c
//
// Threads: thread-safe. Not async-signal-safe (it maps files and calls dladdr): call it from
// the thread that took the sample, never from a signal handler.
#ifndef BRRR_RUNTIME_SYMBOLIZER_H_
#define BRRR_RUNTIME_SYMBOLIZER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace brrr {

std::string SymbolizeFrame(uintptr_t pc);
std::vector<std::string> SymbolizeFrames(const std::vector<uintptr_t>& pcs);

}  // namespace brrr

#endif  // BRRR_RUNTIME_SYMBOLIZER_H_
