#include "runtime/thread_owner.h"

#include <cstdio>
#include <cstdlib>

namespace brrr {

void ThreadOwner::fail(const char* operation) {
  std::fprintf(stderr,
               "brrr: %s called from a thread that does not own this event loop; "
               "use call_soon_threadsafe from other threads\n",
               operation);
  std::abort();
}

}  // namespace brrr
