// CheckLoadableElf on any file: it never crashes, refuses with FailedPrecondition only, and
// accepts only what a dynamic loader could map without touching a byte past the end: this
// machine's 64/32-bit ELF shared object whose program headers, and every segment's file
// contents, lie inside the file, with no loadable segment holding more of the file than of
// memory. The fuzzer judges the bytes itself, from its own reading of <elf.h>, and requires
// the check's answer to agree.
//
// Input: the file's bytes, written to a memfd the check reads through.
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/elf_check.h"

namespace brrr::fuzz {
namespace {

using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);

void Fail(const std::string& what) {
  std::fprintf(stderr, "elf_check_fuzzer: %s\n", what.c_str());
  std::abort();
}

bool Refuse(std::string* why, const char* reason) {
  *why = reason;
  return false;
}

bool Inside(uint64_t offset, uint64_t length, uint64_t size) { return offset <= size && length <= size - offset; }

// Whether the bytes are a file the loader can map here without reading past its end, and if
// not, why (for the report when the check disagrees).
bool Loadable(const uint8_t* data, size_t size, std::string* why) {
  Ehdr eh;
  if (size < sizeof eh) return Refuse(why, "shorter than an ELF header");
  std::memcpy(&eh, data, sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return Refuse(why, "no ELF magic");
  if (eh.e_ident[EI_CLASS] != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32)) return Refuse(why, "class");
  if (eh.e_ident[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB)) {
    return Refuse(why, "byte order");
  }
  if (eh.e_ident[EI_VERSION] != EV_CURRENT) return Refuse(why, "version");
  if (eh.e_machine != HostElfMachine()) return Refuse(why, "machine");
  if (eh.e_type != ET_DYN) return Refuse(why, "not ET_DYN");
  if (eh.e_phnum == 0 || eh.e_phentsize != sizeof(Phdr)) return Refuse(why, "program header count or size");
  if (!Inside(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Phdr), size)) return Refuse(why, "program headers past the end");
  bool any_load = false;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    std::memcpy(&ph, data + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_filesz > 0 && !Inside(ph.p_offset, ph.p_filesz, size)) return Refuse(why, "a segment past the end");
    if (ph.p_type == PT_LOAD) {
      any_load = true;
      if (ph.p_filesz > ph.p_memsz) return Refuse(why, "a PT_LOAD with more file than memory");
    }
  }
  if (!any_load) return Refuse(why, "no PT_LOAD");
  return true;
}

int File() {
  static const int fd = [] {
    int fd = ::memfd_create("elf_check_fuzzer", MFD_CLOEXEC);
    if (fd < 0) Fail(std::string("memfd_create: ") + std::strerror(errno));
    return fd;
  }();
  return fd;
}

}  // namespace

int OneInput(const uint8_t* data, size_t size) {
  const int fd = File();
  if (::ftruncate(fd, 0) != 0) Fail(std::string("ftruncate: ") + std::strerror(errno));
  for (size_t done = 0; done < size;) {
    ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) Fail(std::string("pwrite: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  absl::Status status = CheckLoadableElf(fd);
  std::string why;
  bool loadable = Loadable(data, size, &why);
  if (status.ok() && !loadable) Fail("accepted a file it must refuse (" + why + ")");
  if (!status.ok() && loadable) Fail("refused a loadable file: " + status.ToString());
  if (!status.ok() && !absl::IsFailedPrecondition(status)) Fail("refused with the wrong code: " + status.ToString());
  if (!status.ok() && status.message().empty()) Fail("refused without a reason");
  return 0;
}

}  // namespace brrr::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return brrr::fuzz::OneInput(data, size); }
