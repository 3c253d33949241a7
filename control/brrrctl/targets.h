// targets.h: the admin planes brrrctl talks to: --target (one address, or several separated by
// commas) or --targets_file (one address per line), checked before any call is made.
//
//   absl::StatusOr<std::vector<std::string>> targets = ParseTargetFlag("127.0.0.1:5001,127.0.0.1:5002");
//   targets = ReadTargetsFile("fleet.txt");
//   // fleet.txt:
//   //   # the three instances on this host
//   //   127.0.0.1:5001
//   //   127.0.0.1:5002   # canary
//   //
//   //   [::1]:5003
//
// An address is HOST:PORT (an IPv6 host in brackets: [::1]:5001; PORT 1 to 65535), or a gRPC
// target with a scheme passed on as it is (unix:/run/brrr.sock, dns:///echo.internal:5001).
// In a file, blank lines and everything from a `#` to the end of its line are ignored, and so is
// a UTF-8 byte-order mark at its start. Errors (InvalidArgument) are messages for the user naming
// the flag and, for a file, the line: an unreadable file or one longer than 1 MiB, no address at
// all, an empty or malformed address (a URL, http://127.0.0.1:5001/, says which HOST:PORT to give
// instead), more than kMaxTargets, one given twice (refused, not merged: a list naming a server
// twice is likely not the one meant, and its fleet totals would count that server twice). Twice
// means the same server, however written: a numeric host is compared as the address it is
// (127.0.0.1, [::ffff:127.0.0.1]; [::1], [0:0::1]), a port as its number (5001, 05001), a host
// name without regard to case; a target with a scheme as written. A malformed address is shown
// with its unprintable bytes escaped (a NUL as \x00).
//
// Threads: pure functions (ReadTargetsFile reads the file).
#ifndef BRRR_CONTROL_TARGETS_H_
#define BRRR_CONTROL_TARGETS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace brrr::control {

// OK, or why `address` is not one brrrctl can call ("expected HOST:PORT...").
absl::Status CheckAddress(absl::string_view address);

// The addresses of --target=VALUE, in order.
absl::StatusOr<std::vector<std::string>> ParseTargetFlag(absl::string_view value);

// The addresses in a --targets_file's `content`, in order; `path` names it in errors.
absl::StatusOr<std::vector<std::string>> ParseTargetsFile(absl::string_view path, absl::string_view content);

// The most targets one command takes (--target or --targets_file): each is called at once, on
// a thread of its own (fleet_run.h), streams included, so the count is bounded, not queued.
inline constexpr size_t kMaxTargets = 1024;

// The longest --targets_file read: far more than any fleet's addresses need.
inline constexpr size_t kMaxTargetsFileBytes = 1 << 20;

// Reads --targets_file=`path` (at most kMaxTargetsFileBytes: a longer one, or a device that never
// ends such as /dev/zero, is refused unread) and parses it.
absl::StatusOr<std::vector<std::string>> ReadTargetsFile(const std::string& path);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_TARGETS_H_
