// What the backend plugins import from libc: none of glibc's wrappers that are cancellation
// points among the calls a loop makes per message (recv, send, recvmsg, sendmsg, accept4 and
// the waits). In a process with more than one thread each of those switches the calling thread
// to asynchronous cancellation and back around the kernel entry; the plugins enter the kernel
// directly instead (reactors/common/kernel_calls.h). Under AddressSanitizer and ThreadSanitizer
// they call glibc after all, whose wrappers the sanitizers intercept: there the test checks
// that the wrappers are what the plugins import. Read from each built plugin's dynamic symbol
// table with nm (binutils), so a build that gets either wrong fails here.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"

namespace brrr {
namespace {

// This test is built as the plugins are (the sanitizer flags apply to every target); the
// condition is reactors/common/kernel_calls.c's.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kThroughGlibc = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kThroughGlibc = true;
#else
constexpr bool kThroughGlibc = false;
#endif
#else
constexpr bool kThroughGlibc = false;
#endif

std::string PluginPath(const std::string& backend) {
  const char* root = std::getenv("TEST_SRCDIR");
  return std::string(root != nullptr ? root : ".") + "/brrr/reactors/libbrrr_reactor_" + backend + ".so";
}

// The plugin's undefined dynamic symbols, without their version ("recv", not "recv@GLIBC_2.2.5").
std::set<std::string> UndefinedSymbols(const std::string& path, int* exit_status) {
  std::set<std::string> names;
  std::string command = "nm -D --undefined-only --format=posix '" + path + "' 2>&1";
  FILE* out = ::popen(command.c_str(), "r");
  if (out == nullptr) return names;
  char line[512];
  while (std::fgets(line, sizeof line, out) != nullptr) {
    std::string name(line);
    name = name.substr(0, name.find_first_of(" @\n"));
    if (!name.empty()) names.insert(name);
  }
  *exit_status = ::pclose(out);
  return names;
}

class PluginImportsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PluginImportsTest, TheDataPathCallsTheKernelDirectlyOutsideSanitizerBuilds) {
  int status = -1;
  std::set<std::string> imports = UndefinedSymbols(PluginPath(GetParam()), &status);
  ASSERT_EQ(status, 0) << "nm failed on " << PluginPath(GetParam());
  // The table was read: every plugin allocates.
  ASSERT_TRUE(imports.count("malloc") + imports.count("calloc") > 0) << imports.size() << " imports";
  auto expect_not_imported = [&](const char* wrapper) {
    EXPECT_EQ(imports.count(wrapper), 0u) << GetParam() << " imports glibc's " << wrapper
                                          << ", a cancellation point: call the kernel directly (kernel_calls.h)";
  };
  // What a backend calls per message (all of them link kernel_calls.c: io_uring sends at once
  // through it).
  for (const char* wrapper : {"recv", "recvmsg", "send", "sendmsg", "accept4"}) {
    if (kThroughGlibc) {
      EXPECT_EQ(imports.count(wrapper), 1u) << GetParam() << " does not call glibc's " << wrapper
                                            << " in a sanitizer build: the sanitizer cannot see it";
    } else {
      expect_not_imported(wrapper);
    }
  }
  if (!kThroughGlibc) {
    for (const char* wrapper : {"recvfrom", "sendto", "accept", "poll", "ppoll", "select", "pselect", "epoll_wait",
                                "epoll_pwait", "epoll_pwait2"}) {
      expect_not_imported(wrapper);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, PluginImportsTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
