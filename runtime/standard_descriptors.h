// standard_descriptors.h: descriptors 0, 1 and 2 kept open for the life of a program.
//
// A program started with standard input, output or error closed (`brrr-echo 2>&-`, or by a
// supervisor that closes them) would hand those numbers to the next descriptors it opens: a
// listening socket, a client's connection. What it then prints to stdout or stderr (a drain
// notice, a stall report) would go into that socket, to a client. This opens /dev/null on each
// of the three that is closed, as daemons do, so no socket ever gets one.
//
// It must run before anything opens a descriptor, and libraries do at load time (gRPC's
// initializer opens an eventfd), so a program depends on //runtime:standard_descriptors_at_start:
// an entry in the executable's .preinit_array, which the dynamic loader runs before the
// initializer of any shared library. main reads what it gave:
//
//   int main(int argc, char** argv) {
//     if (absl::Status kept = brrr::StandardDescriptorsAtStart(); !kept.ok()) { ...; return 3; }
//
// Only a cc_binary may depend on the hook: the section is allowed in executables, not in the
// shared objects Bazel links a test's libraries into.
#ifndef BRRR_RUNTIME_STANDARD_DESCRIPTORS_H_
#define BRRR_RUNTIME_STANDARD_DESCRIPTORS_H_

#include "absl/status/status.h"

namespace brrr {

// Opens /dev/null on each of descriptors 0, 1 and 2 that is closed (read-write); one that is
// open is left alone. Returns 0, or an errno with *failed_fd the descriptor it could not fill
// (/dev/null missing, as in a chroot without /dev; the ones filled before stay open). Plain
// system calls only, no allocation: safe before any initializer has run. Single-threaded: it
// relies on open() returning the lowest free descriptor.
int OpenDevNullOnClosedStandardDescriptors(int* failed_fd);

// What the hook of //runtime:standard_descriptors_at_start gave when the program started:
// OK, or why a closed descriptor stayed closed ("cannot open /dev/null for closed descriptor
// 2: ..."). FailedPrecondition if the program does not
// link the hook.
absl::Status StandardDescriptorsAtStart();

namespace detail {

// Written once by the hook (standard_descriptors_at_start.cc), before main and any thread;
// constant-initialized, so it holds these values before any initializer runs.
struct StandardDescriptorsHook {
  bool ran = false;
  int error = 0;  // 0, or the errno of the descriptor that stayed closed
  int failed_fd = -1;
};
extern StandardDescriptorsHook standard_descriptors_hook;

}  // namespace detail
}  // namespace brrr

#endif  // BRRR_RUNTIME_STANDARD_DESCRIPTORS_H_
