#include "runtime/elf_check.h"

#include <elf.h>
#include <link.h>  // ElfW, __ELF_NATIVE_CLASS: the running program's own ELF class
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace brrr {
namespace {

#if defined(__x86_64__)
constexpr uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kHostMachine = EM_AARCH64;
#elif defined(__i386__)
constexpr uint16_t kHostMachine = EM_386;
#elif defined(__arm__)
constexpr uint16_t kHostMachine = EM_ARM;
#elif defined(__riscv)
constexpr uint16_t kHostMachine = EM_RISCV;
#elif defined(__powerpc64__)
constexpr uint16_t kHostMachine = EM_PPC64;
#elif defined(__s390x__)
constexpr uint16_t kHostMachine = EM_S390;
#else
#error "elf_check.cc: add this architecture's EM_* value (see <elf.h>)"
#endif

constexpr unsigned char kHostClass = __ELF_NATIVE_CLASS == 64 ? ELFCLASS64 : ELFCLASS32;
constexpr unsigned char kHostData =
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;

using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);

absl::Status Refuse(absl::string_view why) { return absl::FailedPreconditionError(why); }

// Reads exactly `size` bytes at `offset`; the caller has checked they lie inside the file.
absl::Status ReadAt(int fd, void* out, size_t size, uint64_t offset) {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Refuse(absl::StrCat("read failed: ", std::strerror(errno)));
    // The file shrank since fstat: as damaged as a file that was short to begin with.
    if (n == 0) return Refuse("cut short: the file shrank while it was being checked");
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

std::string SegmentType(uint32_t type) {
  switch (type) {
    case PT_LOAD: return "PT_LOAD";
    case PT_DYNAMIC: return "PT_DYNAMIC";
    case PT_INTERP: return "PT_INTERP";
    case PT_NOTE: return "PT_NOTE";
    case PT_PHDR: return "PT_PHDR";
    case PT_TLS: return "PT_TLS";
    case PT_GNU_EH_FRAME: return "PT_GNU_EH_FRAME";
    case PT_GNU_RELRO: return "PT_GNU_RELRO";
    case PT_GNU_PROPERTY: return "PT_GNU_PROPERTY";
    default: return absl::StrCat("type 0x", absl::Hex(type));
  }
}

// Whether [offset, offset + size) lies inside a file of `file_size` bytes, without overflow.
bool Inside(uint64_t offset, uint64_t size, uint64_t file_size) {
  return offset <= file_size && size <= file_size - offset;
}

}  // namespace

uint16_t HostElfMachine() { return kHostMachine; }

std::string ElfMachineName(uint16_t e_machine) {
  switch (e_machine) {
    case EM_X86_64: return "x86-64";
    case EM_AARCH64: return "AArch64";
    case EM_386: return "i386";
    case EM_ARM: return "ARM";
    case EM_RISCV: return "RISC-V";
    case EM_PPC64: return "PowerPC64";
    case EM_PPC: return "PowerPC";
    case EM_S390: return "s390";
    case EM_MIPS: return "MIPS";
    case EM_SPARCV9: return "SPARC V9";
    default: return absl::StrCat("machine ", e_machine);
  }
}

absl::Status CheckLoadableElf(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Refuse(absl::StrCat("fstat failed: ", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return Refuse("not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  unsigned char ident[EI_NIDENT] = {0};
  if (size < SELFMAG) {
    return Refuse(absl::StrCat("not an ELF file: it is only ", size, " bytes long"));
  }
  if (absl::Status s = ReadAt(fd, ident, size < EI_NIDENT ? SELFMAG : EI_NIDENT, 0); !s.ok()) return s;
  if (std::memcmp(ident, ELFMAG, SELFMAG) != 0) {
    return Refuse("not an ELF file (it does not start with \\x7fELF)");
  }
  if (size < sizeof(Ehdr)) {
    return Refuse(absl::StrCat("cut short: the file is ", size, " bytes, less than its ", sizeof(Ehdr),
                               "-byte ELF header"));
  }
  if (ident[EI_CLASS] != kHostClass) {
    if (ident[EI_CLASS] != ELFCLASS32 && ident[EI_CLASS] != ELFCLASS64) {
      return Refuse(absl::StrCat("a damaged ELF header: unknown class ", ident[EI_CLASS]));
    }
    return Refuse(absl::StrCat("a ", ident[EI_CLASS] == ELFCLASS64 ? 64 : 32,
                               "-bit ELF file, but this program is ", __ELF_NATIVE_CLASS,
                               "-bit: rebuild the plugin for this machine"));
  }
  if (ident[EI_DATA] != kHostData) {
    if (ident[EI_DATA] != ELFDATA2LSB && ident[EI_DATA] != ELFDATA2MSB) {
      return Refuse(absl::StrCat("a damaged ELF header: unknown byte order ", ident[EI_DATA]));
    }
    return Refuse(absl::StrCat("a ", ident[EI_DATA] == ELFDATA2MSB ? "big" : "little",
                               "-endian ELF file, but this machine is ",
                               kHostData == ELFDATA2MSB ? "big" : "little",
                               "-endian: rebuild the plugin for this machine"));
  }
  if (ident[EI_VERSION] != EV_CURRENT) {
    return Refuse(absl::StrCat("a damaged ELF header: version ", ident[EI_VERSION]));
  }

  Ehdr eh;
  if (absl::Status s = ReadAt(fd, &eh, sizeof eh, 0); !s.ok()) return s;
  if (eh.e_machine != kHostMachine) {
    return Refuse(absl::StrCat("built for ", ElfMachineName(eh.e_machine), " (e_machine ", eh.e_machine,
                               "), but this machine is ", ElfMachineName(kHostMachine),
                               ": rebuild the plugin for this machine"));
  }
  if (eh.e_type != ET_DYN) {
    const char* what = eh.e_type == ET_EXEC ? "an executable"
                       : eh.e_type == ET_REL ? "an object file (.o)"
                       : eh.e_type == ET_CORE ? "a core dump"
                                              : "an ELF file of unknown type";
    return Refuse(absl::StrCat(what, " (e_type ", eh.e_type, "), not a shared object (.so)"));
  }
  if (eh.e_phnum == 0) return Refuse("no program headers: nothing a dynamic loader could map");
  if (eh.e_phentsize != sizeof(Phdr)) {
    return Refuse(absl::StrCat("a damaged ELF header: program header entries of ", eh.e_phentsize,
                               " bytes, expected ", sizeof(Phdr)));
  }
  const uint64_t ph_bytes = uint64_t{eh.e_phnum} * sizeof(Phdr);
  if (!Inside(eh.e_phoff, ph_bytes, size)) {
    return Refuse(absl::StrCat("cut short: the file is ", size, " bytes, but its ", eh.e_phnum,
                               " program headers need bytes ", eh.e_phoff, " to ",
                               uint64_t{eh.e_phoff} + ph_bytes));
  }
  std::vector<Phdr> headers(eh.e_phnum);
  if (absl::Status s = ReadAt(fd, headers.data(), ph_bytes, eh.e_phoff); !s.ok()) return s;

  int loads = 0;
  for (const Phdr& ph : headers) loads += ph.p_type == PT_LOAD ? 1 : 0;
  if (loads == 0) return Refuse("no loadable segment (PT_LOAD): nothing a dynamic loader could map");
  int load = 0;
  for (size_t i = 0; i < headers.size(); ++i) {
    const Phdr& ph = headers[i];
    if (ph.p_type == PT_LOAD) ++load;
    if (ph.p_filesz == 0 || Inside(ph.p_offset, ph.p_filesz, size)) {
      if (ph.p_type == PT_LOAD && ph.p_filesz > ph.p_memsz) {
        return Refuse(absl::StrCat("a damaged program header: loadable segment ", load, " of ", loads,
                                   " holds ", ph.p_filesz, " bytes of the file in ", ph.p_memsz,
                                   " bytes of memory"));
      }
      continue;
    }
    std::string which = ph.p_type == PT_LOAD
                            ? absl::StrCat("loadable segment ", load, " of ", loads, " (PT_LOAD)")
                            : absl::StrCat("segment ", i + 1, " (", SegmentType(ph.p_type), ")");
    return Refuse(absl::StrCat("cut short: the file is ", size, " bytes, but its ", which, " needs bytes ",
                               ph.p_offset, " to ", uint64_t{ph.p_offset} + ph.p_filesz));
  }
  return absl::OkStatus();
}

}  // namespace brrr
