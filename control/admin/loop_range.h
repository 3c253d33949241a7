// loop_range.h: the one wording of "no such loop", as the admin service answers a request that
// names a loop the server does not run (NOT_FOUND), and as brrrctl says it where it checks a
// --loop itself (commands that filter the server's answer) so that both read the same.
//
//   if (loop >= loop_count) return absl::NotFoundError(NoSuchLoop(loop, loop_count));
#ifndef BRRR_CONTROL_ADMIN_LOOP_RANGE_H_
#define BRRR_CONTROL_ADMIN_LOOP_RANGE_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace brrr::control {

// `loop`: the one named, `loop_count` (at least 1): how many the server runs.
inline std::string NoSuchLoop(uint32_t loop, uint32_t loop_count) {
  return absl::StrCat("no loop ", loop, ": the server runs loops 0 to ", loop_count - 1);
}

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_LOOP_RANGE_H_
