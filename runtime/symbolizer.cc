#include "runtime/symbolizer.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>

// Abseil's demangler (the one absl::Symbolize uses), from Debian's pinned 20220623: it prints
// names without parameter lists, which keeps template-heavy frames readable.
#include "absl/debugging/internal/demangle.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace brrr {
namespace {

// An object file mapped read-only while its symbol tables are searched; closed and unmapped
// when destroyed, so symbolizing leaves no descriptor open (absl::Symbolize keeps the files
// it read open for next time, which a server that counts its descriptors cannot afford).
class ElfImage {
 public:
  static std::unique_ptr<ElfImage> Open(const char* path) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    struct stat st {};
    void* data = MAP_FAILED;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      data = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    }
    ::close(fd);
    if (data == MAP_FAILED) return nullptr;
    auto image = std::unique_ptr<ElfImage>(new ElfImage(static_cast<const uint8_t*>(data), st.st_size));
    if (!image->ReadSymbolTables()) return nullptr;
    return image;
  }

  ~ElfImage() { ::munmap(const_cast<uint8_t*>(data_), size_); }

  // The function containing `address` (as the file has it), or nullptr. The full symbol table
  // first (it has local functions too), then the dynamic one (stripped libraries have only it).
  const char* FunctionAt(uint64_t address) const {
    for (const Table& t : tables_) {
      for (size_t i = 0; i < t.count; ++i) {
        const Elf64_Sym& s = t.symbols[i];
        int type = ELF64_ST_TYPE(s.st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF || s.st_size == 0) continue;
        if (address < s.st_value || address - s.st_value >= s.st_size || s.st_name >= t.names_size) continue;
        const char* name = t.names + s.st_name;
        if (::strnlen(name, t.names_size - s.st_name) == t.names_size - s.st_name) continue;  // unterminated
        return name;
      }
    }
    return nullptr;
  }

 private:
  struct Table {
    const Elf64_Sym* symbols = nullptr;
    size_t count = 0;
    const char* names = nullptr;
    size_t names_size = 0;
  };

  ElfImage(const uint8_t* data, off_t size) : data_(data), size_(static_cast<size_t>(size)) {}

  bool Within(uint64_t offset, uint64_t length) const { return offset <= size_ && length <= size_ - offset; }

  bool ReadSymbolTables() {
    if (!Within(0, sizeof(Elf64_Ehdr))) return false;
    const auto* header = reinterpret_cast<const Elf64_Ehdr*>(data_);
    if (std::memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 || header->e_ident[EI_CLASS] != ELFCLASS64 ||
        header->e_shentsize != sizeof(Elf64_Shdr) || !Within(header->e_shoff, uint64_t{header->e_shnum} * sizeof(Elf64_Shdr))) {
      return false;
    }
    const auto* sections = reinterpret_cast<const Elf64_Shdr*>(data_ + header->e_shoff);
    for (uint32_t wanted : {SHT_SYMTAB, SHT_DYNSYM}) {
      for (uint16_t i = 0; i < header->e_shnum; ++i) {
        const Elf64_Shdr& s = sections[i];
        if (s.sh_type != wanted || s.sh_entsize != sizeof(Elf64_Sym) || !Within(s.sh_offset, s.sh_size) ||
            s.sh_link >= header->e_shnum) {
          continue;
        }
        const Elf64_Shdr& names = sections[s.sh_link];
        if (names.sh_type != SHT_STRTAB || !Within(names.sh_offset, names.sh_size)) continue;
        tables_.push_back(Table{reinterpret_cast<const Elf64_Sym*>(data_ + s.sh_offset), s.sh_size / sizeof(Elf64_Sym),
                                reinterpret_cast<const char*>(data_ + names.sh_offset), names.sh_size});
      }
    }
    return !tables_.empty();
  }

  const uint8_t* data_;
  size_t size_;
  std::vector<Table> tables_;
};

struct Located {
  link_map* object = nullptr;
  std::string name;   // the object's base name, as shown
  const char* dynamic_symbol = nullptr;  // dladdr's answer, from the in-memory dynamic table
};

std::string Demangled(const char* name) {
  char out[1024];
  if (absl::debugging_internal::Demangle(name, out, sizeof out)) return out;
  return name;
}

// Symbolizes with the images already opened in `images` (one per object, for one call).
std::string Symbolize(uintptr_t pc, std::map<link_map*, std::unique_ptr<ElfImage>>& images) {
  Dl_info info{};
  link_map* object = nullptr;
  if (dladdr1(reinterpret_cast<void*>(pc), &info, reinterpret_cast<void**>(&object), RTLD_DL_LINKMAP) == 0 ||
      object == nullptr) {
    return absl::StrFormat("?? (0x%x)", pc);
  }
  absl::string_view path = info.dli_fname != nullptr ? info.dli_fname : "";
  absl::string_view base = path.substr(path.find_last_of('/') + 1);
  auto [it, inserted] = images.try_emplace(object);
  if (inserted) {
    // The program itself has an empty name in the link map; the vDSO has no file (its
    // dynamic table, which dladdr reads, is all it has).
    const char* file = object->l_name != nullptr && object->l_name[0] != '\0' ? object->l_name : "/proc/self/exe";
    it->second = ElfImage::Open(file);
  }
  // l_addr is the load bias: what is left is the address as the file (and addr2line) has it.
  const uint64_t address = pc - object->l_addr;
  const char* symbol = it->second != nullptr ? it->second->FunctionAt(address) : nullptr;
  if (symbol == nullptr) symbol = info.dli_sname;
  return absl::StrFormat("%s (%s+0x%x)", symbol != nullptr ? Demangled(symbol) : "??", base.empty() ? "?" : base,
                         address);
}

}  // namespace

std::string SymbolizeFrame(uintptr_t pc) {
  std::map<link_map*, std::unique_ptr<ElfImage>> images;
  return Symbolize(pc, images);
}

std::vector<std::string> SymbolizeFrames(const std::vector<uintptr_t>& pcs) {
  std::map<link_map*, std::unique_ptr<ElfImage>> images;
  std::vector<std::string> frames;
  frames.reserve(pcs.size());
  for (uintptr_t pc : pcs) frames.push_back(Symbolize(pc, images));
  return frames;
}

}  // namespace brrr
