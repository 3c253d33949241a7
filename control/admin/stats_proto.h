// stats_proto.h: the figure lists (runtime/loop_stats.h, server/server_stats.h,
// control/admin/admin_figures.h) as fields of
// brrr.admin.v1.LoopStats, made from the lists themselves: a figure NAME fills the field NAME
// (a count, bytes, or a bool for a Flag), NAME_seconds or NAME_ms (a duration, as a double);
// a label fills the string NAME; a histogram fills the Lateness message NAME. A figure without
// its field does not compile; //tests/control:figures_test finds fields without a figure.
//
// Threads: any.
#ifndef BRRR_CONTROL_STATS_PROTO_H_
#define BRRR_CONTROL_STATS_PROTO_H_

#include "brrr/admin/v1/admin.pb.h"
#include "control/admin/admin_figures.h"
#include "runtime/loop_stats.h"
#include "server/server_stats.h"

namespace brrr::control {

// Every figure, label and histogram of BRRR_LOOP_FIGURES.
void FillLoopFigures(const LoopStats& stats, brrr::admin::v1::LoopStats* out);
// Every figure of BRRR_ECHO_FIGURES.
void FillEchoFigures(const server::ServerStats& stats, brrr::admin::v1::LoopStats* out);
// Every figure of BRRR_ADMIN_FIGURES.
void FillAdminFigures(const AdminLoopStats& stats, brrr::admin::v1::LoopStats* out);
// A lateness distribution in microseconds.
void FillLateness(const LogHistogram::Snapshot& histogram, brrr::admin::v1::Lateness* out);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_STATS_PROTO_H_
