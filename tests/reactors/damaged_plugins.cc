#include "tests/reactors/damaged_plugins.h"

#include <dlfcn.h>
#include <elf.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/elf_check.h"

namespace brrr::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

// The file offsets where each loadable segment's contents start and end.
struct LoadSegment {
  uint64_t begin;
  uint64_t end;
};

std::vector<LoadSegment> LoadSegments(const std::string& elf) {
  std::vector<LoadSegment> loads;
  ElfW(Ehdr) eh;
  if (elf.size() < sizeof eh) return loads;
  std::memcpy(&eh, elf.data(), sizeof eh);
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    ElfW(Phdr) ph;
    size_t at = eh.e_phoff + i * sizeof ph;
    if (at + sizeof ph > elf.size()) break;
    std::memcpy(&ph, elf.data() + at, sizeof ph);
    if (ph.p_type == PT_LOAD) loads.push_back({ph.p_offset, ph.p_offset + ph.p_filesz});
  }
  return loads;
}

// This process's libc, an ordinary shared library that is not a plugin.
std::string LibcPath() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&gnu_get_libc_version), &info) == 0 || info.dli_fname == nullptr) {
    ADD_FAILURE() << "cannot find libc";
    return "";
  }
  return info.dli_fname;
}

std::string CutTo(const std::string& real, uint64_t size, const std::string& path) {
  WriteFile(path, real.substr(0, size));
  return absl::StrCat("cut short: the file is ", size, " bytes");
}

}  // namespace

std::vector<DamageKind> AllDamageKinds() {
  return {DamageKind::kEmpty,          DamageKind::kCutInElfHeader, DamageKind::kCutInProgramHeaders,
          DamageKind::kCutInFirstLoad, DamageKind::kCutAt8000Bytes, DamageKind::kCutInLastLoad,
          DamageKind::kOtherMachine,   DamageKind::kOtherClass,     DamageKind::kRandomBytes,
          DamageKind::kOrdinaryLibrary, DamageKind::kRenamedPlugin};
}

std::string DamageName(DamageKind kind) {
  switch (kind) {
    case DamageKind::kEmpty: return "empty";
    case DamageKind::kCutInElfHeader: return "cut inside the ELF header";
    case DamageKind::kCutInProgramHeaders: return "cut inside the program headers";
    case DamageKind::kCutInFirstLoad: return "cut inside the first PT_LOAD";
    case DamageKind::kCutAt8000Bytes: return "cut at 8000 bytes";
    case DamageKind::kCutInLastLoad: return "cut one byte short of the last PT_LOAD's end";
    case DamageKind::kOtherMachine: return "built for another machine";
    case DamageKind::kOtherClass: return "marked 32-bit";
    case DamageKind::kRandomBytes: return "random bytes";
    case DamageKind::kOrdinaryLibrary: return "an ordinary library (libc)";
    case DamageKind::kRenamedPlugin: return "another backend's plugin, renamed";
  }
  return "?";
}

std::string RealPlugin(const std::string& backend) {
  const char* root = std::getenv("TEST_SRCDIR");
  return absl::StrCat(root != nullptr ? root : ".", "/brrr/reactors/libbrrr_reactor_", backend, ".so");
}

std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::filesystem::path dir = std::filesystem::path(tmp != nullptr ? tmp : "/tmp") / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string WriteDamagedPlugin(DamageKind kind, const std::string& backend, const std::string& path) {
  ::unlink(path.c_str());
  const std::string real = ReadFile(RealPlugin(backend));
  std::vector<LoadSegment> loads = LoadSegments(real);
  if (loads.size() < 2 || loads.front().end > real.size()) {
    ADD_FAILURE() << RealPlugin(backend) << ": expected a plugin with at least two loadable segments";
    return "";
  }
  ElfW(Ehdr) eh;
  std::memcpy(&eh, real.data(), sizeof eh);
  switch (kind) {
    case DamageKind::kEmpty:
      WriteFile(path, "");
      return "not an ELF file: it is only 0 bytes long";
    case DamageKind::kCutInElfHeader:
      return CutTo(real, 40, path) + ", less than its 64-byte ELF header";
    case DamageKind::kCutInProgramHeaders:
      return CutTo(real, eh.e_phoff + sizeof(ElfW(Phdr)) + 10, path) + ", but its " +
             std::to_string(eh.e_phnum) + " program headers need bytes";
    case DamageKind::kCutInFirstLoad:
      return CutTo(real, (loads.front().begin + loads.front().end) / 2, path) +
             absl::StrCat(", but its loadable segment 1 of ", loads.size(), " (PT_LOAD) needs bytes");
    case DamageKind::kCutAt8000Bytes:
      // The file; make sure 8000 is still inside the first segment of this build.
      EXPECT_GT(loads.front().end, 8000u);
      return CutTo(real, 8000, path) +
             absl::StrCat(", but its loadable segment 1 of ", loads.size(), " (PT_LOAD) needs bytes");
    case DamageKind::kCutInLastLoad:
      return CutTo(real, loads.back().end - 1, path) +
             absl::StrCat(", but its loadable segment ", loads.size(), " of ", loads.size(), " (PT_LOAD)");
    case DamageKind::kOtherMachine: {
      uint16_t other = HostElfMachine() == EM_AARCH64 ? EM_X86_64 : EM_AARCH64;
      std::string bytes = real;
      std::memcpy(bytes.data() + offsetof(ElfW(Ehdr), e_machine), &other, sizeof other);
      WriteFile(path, bytes);
      return absl::StrCat("built for ", ElfMachineName(other), " (e_machine ", other, "), but this machine is ",
                          ElfMachineName(HostElfMachine()));
    }
    case DamageKind::kOtherClass: {
      std::string bytes = real;
      bytes[EI_CLASS] = static_cast<char>(bytes[EI_CLASS] == ELFCLASS64 ? ELFCLASS32 : ELFCLASS64);
      WriteFile(path, bytes);
      return bytes[EI_CLASS] == ELFCLASS32 ? "a 32-bit ELF file" : "a 64-bit ELF file";
    }
    case DamageKind::kRandomBytes: {
      std::mt19937 random(20240610);
      std::string bytes(64 * 1024, '\0');
      for (char& c : bytes) c = static_cast<char>(random());
      bytes[0] = 'x';  // not "\x7fELF" by chance
      WriteFile(path, bytes);
      return "not an ELF file (it does not start with \\x7fELF)";
    }
    case DamageKind::kOrdinaryLibrary:
      if (::symlink(LibcPath().c_str(), path.c_str()) != 0) ADD_FAILURE() << "symlink " << path;
      return "not a brrr reactor plugin: it does not export brrr_reactor_entry()";
    case DamageKind::kRenamedPlugin: {
      std::string other = backend == "epoll" ? "io_uring" : "epoll";
      WriteFile(path, ReadFile(RealPlugin(other)));
      return absl::StrCat("the file is named for backend \"", backend, "\" but holds backend \"", other, "\"");
    }
  }
  return "";
}

}  // namespace brrr::testing
