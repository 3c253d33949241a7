#include "server/descriptor_budget.h"

#include <dirent.h>
#include <sys/resource.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace brrr::server {

namespace {

// Entries of /proc/self/fd, less the one the listing itself holds open.
absl::StatusOr<uint64_t> OpenDescriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return absl::ErrnoToStatus(errno, "cannot list /proc/self/fd");
  uint64_t n = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;
}

}  // namespace

absl::StatusOr<DescriptorPlan> DescriptorPlan::Measure(uint64_t reserved, int max_watchable_fd) {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return absl::ErrnoToStatus(errno, "getrlimit(RLIMIT_NOFILE)");
  absl::StatusOr<uint64_t> open = OpenDescriptors();
  if (!open.ok()) return open.status();
  DescriptorPlan plan;
  plan.limit = nofile.rlim_cur == RLIM_INFINITY ? uint64_t{1} << 62 : static_cast<uint64_t>(nofile.rlim_cur);
  if (max_watchable_fd >= 0 && static_cast<uint64_t>(max_watchable_fd) + 1 < plan.limit) {
    plan.limit = static_cast<uint64_t>(max_watchable_fd) + 1;
    plan.backend_limit = true;
  }
  plan.open_at_start = *open;
  plan.reserved = reserved;
  if (plan.limit <= plan.open_at_start + plan.reserved) {
    return absl::FailedPreconditionError(
        absl::StrCat(plan.backend_limit ? absl::StrCat("the backend watches descriptors below ", plan.limit, " only")
                                        : absl::StrCat("the descriptor limit (RLIMIT_NOFILE) is ", plan.limit),
                     ": with ", plan.open_at_start, " open at start and ", plan.reserved,
                     " kept free for the rest of the process, none is left for echo connections; ",
                     plan.backend_limit ? "use another backend or lower the reserve"
                                        : "raise the limit (ulimit -n) or lower the reserve"));
  }
  plan.for_connections = plan.limit - plan.open_at_start - plan.reserved;
  return plan;
}

}  // namespace brrr::server
