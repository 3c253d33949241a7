// The symbolizer names functions from the objects' symbol tables, local ones included, and
// leaves no descriptor open behind it (a server that reserves descriptors counts on that).
#include "runtime/symbolizer.h"

#include <dirent.h>
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace {

// Internal linkage: only the full symbol table (.symtab) has it, not the dynamic one.
[[gnu::noinline]] int SymbolizerTestLocalFunction(int x) {
  asm volatile("" ::: "memory");
  return x + 1;
}

int CountOpenFds() {
  int n = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (readdir(dir) != nullptr) ++n;
  closedir(dir);
  return n;
}

TEST(SymbolizerTest, NamesALocalFunctionWithItsObjectAndOffsetAndLeavesNoDescriptorOpen) {
  ASSERT_EQ(SymbolizerTestLocalFunction(1), 2);
  const int before = CountOpenFds();
  const uintptr_t inside = reinterpret_cast<uintptr_t>(&SymbolizerTestLocalFunction) + 1;
  std::string frame = brrr::SymbolizeFrame(inside);
  EXPECT_TRUE(frame.starts_with("(anonymous namespace)::SymbolizerTestLocalFunction() (symbolizer_test+0x")) << frame;
  // getpid: a libc function no sanitizer intercepts (an intercepted one resolves to the
  // sanitizer's runtime).
  std::vector<std::string> frames = brrr::SymbolizeFrames({inside, reinterpret_cast<uintptr_t>(&getpid) + 1});
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0], frame);
  EXPECT_NE(frames[1].find("getpid (libc.so.6+0x"), std::string::npos) << frames[1];
  EXPECT_EQ(CountOpenFds(), before);
}

// The offset after the object's name is the address as the object file has it (what addr2line
// and objdump take): the run-time address less the object's load bias, for the program itself
// (position-independent, loaded at a random base) and for a shared library alike.
TEST(SymbolizerTest, TheOffsetIsTheAddressInTheObjectFileNotInMemory) {
  for (uintptr_t pc :
       {reinterpret_cast<uintptr_t>(&SymbolizerTestLocalFunction) + 1, reinterpret_cast<uintptr_t>(&getpid) + 1}) {
    Dl_info info{};
    link_map* object = nullptr;
    ASSERT_NE(dladdr1(reinterpret_cast<void*>(pc), &info, reinterpret_cast<void**>(&object), RTLD_DL_LINKMAP), 0);
    ASSERT_NE(object, nullptr);
    ASSERT_NE(object->l_addr, 0u) << "an object loaded at its link-time address shows no difference";
    char offset[32];
    std::snprintf(offset, sizeof offset, "+0x%jx)", static_cast<uintmax_t>(pc - object->l_addr));
    const std::string frame = brrr::SymbolizeFrame(pc);
    EXPECT_TRUE(frame.ends_with(offset)) << frame << " does not end with " << offset;
  }
}

TEST(SymbolizerTest, AnAddressInNoObjectIsShownAsIs) {
  EXPECT_EQ(brrr::SymbolizeFrame(0x10), "?? (0x10)");
}

}  // namespace
