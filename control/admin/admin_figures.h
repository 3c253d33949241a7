// admin_figures.h: the figures the admin plane itself publishes per loop, declared once (see
// runtime/figures.h), beside the loop's (runtime/loop_stats.h) and the echo server's
// (server/server_stats.h) lists; GetStats (stats_proto.h), /metrics (metrics_exporter.h) and
// brrrctl's totals and top are made from all three.
//
//   AdminLoopStats s = injector.figures(loop);   // control/admin/task_injector.h
//   total += s;
//   ForEachFigure(s, [](const FigureInfo& f, double value) { ... });
//
// Threads: declarations only.
#ifndef BRRR_CONTROL_ADMIN_ADMIN_FIGURES_H_
#define BRRR_CONTROL_ADMIN_ADMIN_FIGURES_H_

#include <cstdint>

#include "runtime/figures.h"

// F(name, kind, unit, source, help)
#define BRRR_ADMIN_FIGURES(F)                                                                                  \
  F(injections_running, Gauge, Count, Derived,                                                                 \
    "Injected runs in progress on the loop (InjectTask): a blocking run (at most one at a time) or "            \
    "NONBLOCKING_SLEEP runs still sleeping.")

namespace brrr::control {

struct AdminLoopStats {
  BRRR_ADMIN_FIGURES(BRRR_FIGURE_SNAPSHOT_MEMBER)

  // Adds another loop's figures.
  AdminLoopStats& operator+=(const AdminLoopStats& other) {
#define BRRR_ADD(...) BRRR_FIGURE_ADD((*this), other, __VA_ARGS__)
    BRRR_ADMIN_FIGURES(BRRR_ADD)
#undef BRRR_ADD
    return *this;
  }
};

inline constexpr FigureInfo kAdminFigures[] = {BRRR_ADMIN_FIGURES(BRRR_FIGURE_INFO)};

// Calls fn(const FigureInfo&, double value) for every figure of `s`, in list order.
template <typename Fn>
void ForEachFigure(const AdminLoopStats& s, Fn&& fn) {
  BRRR_ADMIN_FIGURES(BRRR_FIGURE_VISIT)
}

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_ADMIN_FIGURES_H_
