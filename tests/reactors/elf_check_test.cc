// The ELF check before dlopen: the real plugins pass; every kind of damaged file is refused
// with its reason, read through a descriptor without mapping anything.
#include "runtime/elf_check.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

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
