// status_macros.h: early return on error for absl::Status / absl::StatusOr.
//
// Abseil 20220623 (Debian's) has no public RETURN_IF_ERROR; these are the two we need.
//
//   BRRR_RETURN_IF_ERROR(socket.listen());
//   BRRR_ASSIGN_OR_RETURN(auto reactor, loader.CreateReactor("epoll"));
#ifndef BRRR_RUNTIME_STATUS_MACROS_H_
#define BRRR_RUNTIME_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define BRRR_RETURN_IF_ERROR(expr)                \
  do {                                            \
    ::absl::Status brrr_status_ = (expr);         \
    if (!brrr_status_.ok()) return brrr_status_;  \
  } while (0)

#define BRRR_STATUS_CONCAT_INNER_(a, b) a##b
#define BRRR_STATUS_CONCAT_(a, b) BRRR_STATUS_CONCAT_INNER_(a, b)

#define BRRR_ASSIGN_OR_RETURN(lhs, expr) \
  BRRR_ASSIGN_OR_RETURN_IMPL_(BRRR_STATUS_CONCAT_(brrr_statusor_, __LINE__), lhs, expr)

#define BRRR_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return statusor.status();          \
  lhs = std::move(statusor).value()

#endif  // BRRR_RUNTIME_STATUS_MACROS_H_
