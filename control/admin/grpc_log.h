// grpc_log.h: gRPC's own log lines (gpr_log: what GRPC_VERBOSITY and GRPC_TRACE turn on, and
// its errors) go out through the process's LineOutput, in one order with brrr's lines, instead
// of being written by gRPC's threads straight to stderr. Written there, a reader that stopped
// reading (a supervisor's full pipe, a paused terminal) stopped every gRPC thread that logged,
// and with them the admin plane.
//
//   RouteGrpcLogsThroughLineOutput();  // before the admin server starts; again changes nothing
//
// The lines keep gRPC's own form ("E1204 19:10:55.590301 12084 chttp2_transport.cc:1200] ...").
// An error line waits up to kGrpcErrorLinePatience for the writer: gRPC aborts right after some
// (GPR_ASSERT), and a line still queued then would die with the process.
//
// Threads: any.
#ifndef BRRR_CONTROL_ADMIN_GRPC_LOG_H_
#define BRRR_CONTROL_ADMIN_GRPC_LOG_H_

#include "absl/time/time.h"

namespace brrr::control {

inline constexpr absl::Duration kGrpcErrorLinePatience = absl::Milliseconds(200);

void RouteGrpcLogsThroughLineOutput();

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_GRPC_LOG_H_
