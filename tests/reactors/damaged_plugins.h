// damaged_plugins.h: plugin files damaged the ways an interrupted copy, a full disk, a build
// for another machine or a mix-up damages them, written from the real plugins in the test's
// runfiles, for the tests that show such a file is refused, never fatal.
//
//   for (DamageKind kind : AllDamageKinds()) {
//     std::string path = dir + "/libbrrr_reactor_epoll.so";
//     std::string reason = WriteDamagedPlugin(kind, "epoll", path);
//     auto plugin = PluginLoader({dir}).Load("epoll");  // refused; message contains `reason`
//   }
//
// Threads: not thread-safe (writes files). Failures to read or write are test failures
// (ADD_FAILURE), and the returned reason is then empty.
#ifndef BRRR_TESTS_REACTORS_DAMAGED_PLUGINS_H_
#define BRRR_TESTS_REACTORS_DAMAGED_PLUGINS_H_

#include <string>
#include <vector>

namespace brrr::testing {

enum class DamageKind {
  kEmpty,                // 0 bytes
  kCutInElfHeader,       // the first 40 bytes
  kCutInProgramHeaders,  // the ELF header and part of the program headers
  kCutInFirstLoad,       // half of the first loadable segment
  kCutAt8000Bytes,       // the case: 8,000 bytes, inside the first loadable segment
  kCutInLastLoad,        // one byte short of the end of the last loadable segment
  kOtherMachine,         // e_machine of another architecture (AArch64, or x86-64 on AArch64)
  kOtherClass,           // a 64-bit file marked 32-bit
  kRandomBytes,          // 64 KiB of random bytes
  kOrdinaryLibrary,      // a symbolic link to this process's libc
  kRenamedPlugin,        // another backend's real plugin under this backend's file name
};

std::vector<DamageKind> AllDamageKinds();

// "cut inside the first PT_LOAD", for test messages.
std::string DamageName(DamageKind kind);

// The real plugin of `backend` in the test's runfiles (reactors/libbrrr_reactor_BACKEND.so).
std::string RealPlugin(const std::string& backend);

// Replaces `path` (named libbrrr_reactor_BACKEND.so) with `backend`'s real plugin damaged by
// `kind`, and returns words the refusal must contain, e.g. "cut short: the file is 8000 bytes".
std::string WriteDamagedPlugin(DamageKind kind, const std::string& backend, const std::string& path);

// A fresh, empty directory under the test's temporary directory.
std::string FreshDir(const std::string& name);

}  // namespace brrr::testing

#endif  // BRRR_TESTS_REACTORS_DAMAGED_PLUGINS_H_
