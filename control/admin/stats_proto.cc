#include "control/admin/stats_proto.h"

namespace brrr::control {

namespace admin = brrr::admin::v1;

namespace {

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }
double Millis(int64_t ns) { return static_cast<double>(ns) / 1e6; }
double Micros(int64_t ns) { return static_cast<double>(ns) / 1e3; }

}  // namespace

// The field a figure fills, by unit.
#define BRRR_PROTO_SET(name, kind, unit, source, help) BRRR_PROTO_SET_##unit(name)
#define BRRR_PROTO_SET_Count(name) out->set_##name(stats.name);
#define BRRR_PROTO_SET_Bytes(name) out->set_##name(stats.name);
#define BRRR_PROTO_SET_Flag(name) out->set_##name(stats.name != 0);
#define BRRR_PROTO_SET_Seconds(name) out->set_##name##_seconds(Seconds(stats.name##_ns));
#define BRRR_PROTO_SET_Millis(name) out->set_##name##_ms(Millis(stats.name##_ns));
#define BRRR_PROTO_SET_LABEL(name, figure, figure_unit, help) out->set_##name(stats.name);
#define BRRR_PROTO_SET_HISTOGRAM(name, unit, help) FillLateness(stats.name, out->mutable_##name());

void FillLoopFigures(const LoopStats& stats, admin::LoopStats* out) {
  BRRR_LOOP_FIGURES(BRRR_PROTO_SET)
  BRRR_LOOP_LABELS(BRRR_PROTO_SET_LABEL)
  BRRR_LOOP_HISTOGRAMS(BRRR_PROTO_SET_HISTOGRAM)
}

void FillEchoFigures(const server::ServerStats& stats, admin::LoopStats* out) {
  BRRR_ECHO_FIGURES(BRRR_PROTO_SET)
}

void FillAdminFigures(const AdminLoopStats& stats, admin::LoopStats* out) { BRRR_ADMIN_FIGURES(BRRR_PROTO_SET) }

void FillLateness(const LogHistogram::Snapshot& h, admin::Lateness* out) {
  uint64_t count = 0;
  for (uint64_t c : h.counts) count += c;
  out->set_count(count);
  out->set_p50_us(Micros(h.percentile(0.50)));
  out->set_p99_us(Micros(h.percentile(0.99)));
  out->set_p999_us(Micros(h.percentile(0.999)));
  out->set_max_us(Micros(h.max_ns));
}

}  // namespace brrr::control
