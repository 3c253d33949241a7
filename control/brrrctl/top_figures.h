// top_figures.h: every figure of the lists (runtime/loop_stats.h BRRR_LOOP_FIGURES,
// server/server_stats.h BRRR_ECHO_FIGURES) for one loop as `brrrctl top` shows it: a counter
// as its rate per second over the last interval, any other kind as its value now. Read from
// admin.proto's LoopStats by each figure's field name (//tests/control:figures_test holds the
// lists and the proto together), so a figure added to a list appears in top with no change.
//
//   for (const FigureCell& cell : FigureCells(now, &before, 1.0)) ...   // "tasks_run/s" 1200
//
// Threads: pure functions.
#ifndef BRRR_CONTROL_TOP_FIGURES_H_
#define BRRR_CONTROL_TOP_FIGURES_H_

#include <optional>
#include <string>
#include <vector>

#include "brrr/admin/v1/admin.pb.h"

namespace brrr::control::top {

struct FigureCell {
  // The LoopStats field, with "/s" after a counter's: "ready_queue_depth", "tasks_run/s",
  // "running_seconds/s" (seconds running per second).
  std::string name;
  // Unset: a counter before two polls, or a field this server's LoopStats lacks.
  std::optional<double> value;
};

// The figures of both lists, in list order. `before`: the same loop `seconds` earlier (null,
// or seconds <= 0: no rates yet).
std::vector<FigureCell> FigureCells(const brrr::admin::v1::LoopStats& now, const brrr::admin::v1::LoopStats* before,
                                    double seconds);

}  // namespace brrr::control::top

#endif  // BRRR_CONTROL_TOP_FIGURES_H_
