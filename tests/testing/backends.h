// backends.h: the backends every conformance test runs on, and loops built on them.
//
// The list is fixed here, not discovered: a plugin that fails to build or load makes tests
// fail rather than quietly run on fewer backends. A backend the kernel refuses (io_uring
// disabled by sysctl or seccomp) is skipped with the kernel's reason, or fails the test when
// $BRRR_REQUIRE names "backends" (see skips.h; CI sets it).
//
//   INSTANTIATE_TEST_SUITE_P(Backends, MyTest, testing::ValuesIn(brrr::testing::AllBackends()),
//                            brrr::testing::BackendName());
//   auto loop = brrr::testing::NewLoop(GetParam());
#ifndef BRRR_TESTS_TESTING_BACKENDS_H_
#define BRRR_TESTS_TESTING_BACKENDS_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/event_loop.h"
#include "tests/testing/skips.h"

namespace brrr::testing {

// Every backend plugin the project builds.
std::vector<std::string> AllBackends();

// For INSTANTIATE_TEST_SUITE_P: names test instances after the backend.
struct BackendName {
  std::string operator()(const ::testing::TestParamInfo<std::string>& info) const { return info.param; }
};

// The paths of test copies of the readiness backends (select, poll, epoll) whose system calls
// fail on purpose now and then: EINTR, spurious EAGAIN, short transfers, duplicated events
// (tests/reactors/faults/fault_shim.c). The same conformance tests run on them; a test target
// that uses them lists //tests/reactors/faults:plugins in its data.
std::vector<std::string> FaultyBackends();

// For INSTANTIATE_TEST_SUITE_P over FaultyBackends(): names instances "faulty_epoll"...
struct FaultyBackendName {
  std::string operator()(const ::testing::TestParamInfo<std::string>& info) const;
};

// Whether `backend` is one of FaultyBackends(): a test that counts system calls, or times
// them, says so and skips there (the faults add calls on purpose).
bool IsFaulty(const std::string& backend);

// A loop on `backend`. Fails the test if the plugin cannot be loaded; skips it (returns null)
// if the kernel refuses the backend. Use with ASSERT_LOOP.
std::unique_ptr<EventLoop> NewLoop(const std::string& backend, EventLoopOptions options = {});

// Whether the kernel lets `backend` start here, and if not, why.
bool BackendStarts(const std::string& backend, std::string* why);

// Whether an io_uring feature that came with Linux major.minor is in use here: this kernel is
// that new, and the environment variable `off_env` (e.g. "BRRR_IO_URING_BUNDLES") is not "0".
bool IoUringFeatureExpected(const char* off_env, int major, int minor);

}  // namespace brrr::testing

// Skips the test (or fails it, when CI requires every backend) if the kernel refuses `backend`.
#define BRRR_SKIP_UNLESS_BACKEND_STARTS(backend)                                     \
  do {                                                                              \
    std::string brrr_why_;                                                          \
    if (!::brrr::testing::BackendStarts(backend, &brrr_why_)) {                     \
      BRRR_SKIP_OR_FAIL("backends", (backend) + std::string(": ") + brrr_why_);     \
    }                                                                               \
  } while (0)

// Creates `var` on `backend`, or skips the test if the kernel refuses the backend.
#define BRRR_LOOP_OR_SKIP(var, backend, ...)                                          \
  std::unique_ptr<::brrr::EventLoop> var;                                             \
  {                                                                                   \
    BRRR_SKIP_UNLESS_BACKEND_STARTS(backend);                                         \
    var = ::brrr::testing::NewLoop(backend, ##__VA_ARGS__);                           \
    ASSERT_NE(var, nullptr);                                                          \
  }

#endif  // BRRR_TESTS_TESTING_BACKENDS_H_
