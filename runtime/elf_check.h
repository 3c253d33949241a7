// elf_check.h: whether a file is a shared object that this machine's dynamic loader can map
// without touching a byte past the end of the file.
//
// dlopen(3) trusts the file: it maps every loadable segment at the length the program headers
// claim, so a plugin cut short inside a segment (an interrupted copy, a full disk) kills the
// process with SIGBUS the moment a page past the end is touched, and a plugin built for
// another machine is only refused after it has been mapped. CheckLoadableElf reads the ELF
// header and the program headers through a descriptor (with pread, nothing is mapped) and
// refuses, with the reason, a file that
//   - is not ELF, or not this machine's class (64/32-bit), byte order or e_machine,
//   - is not a shared object (ET_DYN),
//   - has program headers, or any segment's file contents (every PT_LOAD, PT_DYNAMIC, ...),
//     that reach past the end of the file.
// It judges the file's shape, not its intent: a well-formed library that is not a plugin passes
// (the loader then finds no entry point), and a deliberately crafted file is out of scope
// (loading a plugin runs its code anyway).
//
//   int fd = ::open(path, O_RDONLY | O_CLOEXEC);
//   absl::Status ok = CheckLoadableElf(fd);
//   // e.g. "cut short: the file is 8000 bytes, but its loadable segment 1 of 2 (PT_LOAD) needs
//   //       bytes 0 to 16816"
//
// Messages do not name the file: the caller knows the path and prefixes it.
// Threads: thread-safe (pread only; the descriptor's offset is not moved).
// Ownership: the descriptor is borrowed; it is not closed.
#ifndef BRRR_RUNTIME_ELF_CHECK_H_
#define BRRR_RUNTIME_ELF_CHECK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace brrr {

// OK, or FailedPrecondition with the reason the file cannot be loaded here.
absl::Status CheckLoadableElf(int fd);

// A readable name for an ELF e_machine value: "x86-64", "AArch64", or "machine 1234".
std::string ElfMachineName(uint16_t e_machine);

// This machine's e_machine (what a plugin must be built for).
uint16_t HostElfMachine();

}  // namespace brrr

#endif  // BRRR_RUNTIME_ELF_CHECK_H_
