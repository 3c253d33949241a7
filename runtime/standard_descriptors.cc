#include "runtime/standard_descriptors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace brrr {

constinit detail::StandardDescriptorsHook detail::standard_descriptors_hook;

int OpenDevNullOnClosedStandardDescriptors(int* failed_fd) {
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() returns the lowest free descriptor: `fd`, since the ones below it are open.
    int opened = ::open("/dev/null", O_RDWR);
    if (opened == fd) continue;
    int error = opened < 0 ? errno : EBUSY;  // EBUSY: another thread took `fd` first
    if (opened >= 0) ::close(opened);
    *failed_fd = fd;
    return error;
  }
  return 0;
}

absl::Status StandardDescriptorsAtStart() {
  const detail::StandardDescriptorsHook& hook = detail::standard_descriptors_hook;
  if (!hook.ran) {
    return absl::FailedPreconditionError(
        "the standard descriptors were not checked at start: link //runtime:standard_descriptors_at_start");
  }
  if (hook.error == 0) return absl::OkStatus();
  return absl::ErrnoToStatus(hook.error, absl::StrCat("cannot open /dev/null for closed descriptor ", hook.failed_fd));
}

}  // namespace brrr
