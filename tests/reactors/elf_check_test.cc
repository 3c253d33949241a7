// The ELF check before dlopen: the real plugins pass; every kind of damaged file is refused
// with its reason, read through a descriptor without mapping anything.
#include "runtime/elf_check.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"
#include "tests/reactors/damaged_plugins.h"

namespace brrr {
namespace {

absl::Status CheckPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError("cannot open " + path);
  absl::Status s = CheckLoadableElf(fd);
  ::close(fd);
  return s;
}

TEST(ElfCheckTest, TheRealPluginsPass) {
  for (const char* backend : {"select", "poll", "epoll", "io_uring"}) {
    EXPECT_TRUE(CheckPath(testing::RealPlugin(backend)).ok()) << backend << ": " << CheckPath(testing::RealPlugin(backend));
  }
}

TEST(ElfCheckTest, EveryKindOfDamageIsRefusedWithItsReason) {
  std::string dir = testing::FreshDir("elf_check");
  for (testing::DamageKind kind : testing::AllDamageKinds()) {
    std::string path = dir + "/libbrrr_reactor_epoll.so";
    std::string reason = testing::WriteDamagedPlugin(kind, "epoll", path);
    absl::Status s = CheckPath(path);
    // Not the ELF check's business: a well-formed library, or a plugin under another's name.
    if (kind == testing::DamageKind::kOrdinaryLibrary || kind == testing::DamageKind::kRenamedPlugin) {
      EXPECT_TRUE(s.ok()) << testing::DamageName(kind) << ": " << s;
      continue;
    }
    ASSERT_FALSE(s.ok()) << testing::DamageName(kind);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << testing::DamageName(kind);
    EXPECT_NE(s.message().find(reason), absl::string_view::npos)
        << testing::DamageName(kind) << ": \"" << s.message() << "\" lacks \"" << reason << "\"";
  }
}

// A file that ends exactly where its furthest segment does (section headers and symbol tables
// after it gone, as a copy that stopped there leaves it) has every byte a loader maps: whole.
TEST(ElfCheckTest, AFileEndingExactlyWithItsLastSegmentIsWhole) {
  std::ifstream in(testing::RealPlugin("epoll"), std::ios::binary);
  ASSERT_TRUE(in.good());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ElfW(Ehdr) eh;
  ASSERT_GE(bytes.size(), sizeof eh);
  std::memcpy(&eh, bytes.data(), sizeof eh);
  uint64_t end = eh.e_phoff + uint64_t{eh.e_phnum} * sizeof(ElfW(Phdr));
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    ElfW(Phdr) ph;
    std::memcpy(&ph, bytes.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    end = std::max<uint64_t>(end, ph.p_offset + ph.p_filesz);
  }
  ASSERT_LT(end, bytes.size()) << "nothing follows the segments: the cut would change nothing";
  std::string path = testing::FreshDir("elf_check_exact") + "/libbrrr_reactor_epoll.so";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(end));
    ASSERT_TRUE(out.good());
  }
  absl::Status whole = CheckPath(path);
  EXPECT_TRUE(whole.ok()) << "cut at byte " << end << ": " << whole;
  // One byte less is cut short (the damage kCutInLastLoad and its like).
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(end - 1)), 0);
  EXPECT_FALSE(CheckPath(path).ok());
}

TEST(ElfCheckTest, ADirectoryIsNotAPlugin) {
  int fd = ::open(testing::FreshDir("elf_check_dir").c_str(), O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  absl::Status s = CheckLoadableElf(fd);
  ::close(fd);
  EXPECT_EQ(s.message(), "not a regular file");
}

TEST(ElfCheckTest, MachinesHaveReadableNames) {
  EXPECT_EQ(ElfMachineName(EM_X86_64), "x86-64");
  EXPECT_EQ(ElfMachineName(EM_AARCH64), "AArch64");
  EXPECT_EQ(ElfMachineName(4242), "machine 4242");
}

}  // namespace
}  // namespace brrr
