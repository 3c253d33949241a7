// skips.h: a test that cannot run here says so, and CI can forbid it.
//
// A backend the kernel refuses (seccomp, ENOSYS, memlock) or a machine without IPv6 on
// loopback makes a test skip, which Bazel reports as PASSED. So a skip for one of these
// reasons goes through BRRR_SKIP_OR_FAIL, which turns it into a failure when $BRRR_REQUIRE
// names its kind ("backends", "ipv6", "netns" (a network namespace for a test server, which
// needs root), "tmux" (the terminal brrrctl top's test runs it in), "socket_filter" (a socket
// filter on a listener, which some kernels allow only with CAP_NET_ADMIN), or "all";
// comma-separated, spaces allowed). .bazelrc passes the variable through to tests and .ci/run sets
// BRRR_REQUIRE=all, so CI cannot lose io_uring or IPv6 quietly; tools/skipped_tests.sh lists
// every skip of a run with its reason.
//
//   if (!BackendStarts(backend, &why)) BRRR_SKIP_OR_FAIL("backends", why);
#ifndef BRRR_TESTS_TESTING_SKIPS_H_
#define BRRR_TESTS_TESTING_SKIPS_H_

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace brrr::testing {

// Whether $BRRR_REQUIRE names `kind` (or "all").
bool Required(const std::string& kind);

// Whether a failure to bind ::1 means this machine has no IPv6 on loopback (EAFNOSUPPORT,
// EADDRNOTAVAIL), as opposed to a bug.
bool NoIPv6Here(const absl::Status& listen_error);

}  // namespace brrr::testing

// Skips the test with `why`, or fails it when $BRRR_REQUIRE names `kind`.
#define BRRR_SKIP_OR_FAIL(kind, why)                                                                \
  do {                                                                                              \
    if (::brrr::testing::Required(kind)) {                                                          \
      FAIL() << "required by BRRR_REQUIRE (" << (kind) << ") but cannot run here: " << (why);       \
    }                                                                                               \
    GTEST_SKIP() << "[" << (kind) << "] " << (why);                                                 \
  } while (0)

#endif  // BRRR_TESTS_TESTING_SKIPS_H_
