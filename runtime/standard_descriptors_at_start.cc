// The hook of standard_descriptors.h: OpenDevNullOnClosedStandardDescriptors from the
// executable's .preinit_array, before the initializers of the program's shared libraries.
#include "runtime/standard_descriptors.h"

namespace brrr {
namespace {

void OpenDevNullOnClosedStandardDescriptorsFirst(int, char**, char**) {
  detail::StandardDescriptorsHook& hook = detail::standard_descriptors_hook;
  hook.error = OpenDevNullOnClosedStandardDescriptors(&hook.failed_fd);
  hook.ran = true;
}

[[gnu::section(".preinit_array"), gnu::used]] void (*open_dev_null_first)(int, char**, char**) =
    OpenDevNullOnClosedStandardDescriptorsFirst;

}  // namespace
}  // namespace brrr
