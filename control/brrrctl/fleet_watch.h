// fleet_watch.h: `brrrctl watch` on several targets. Each target's WatchStats stream runs on a
// thread of its own; the samples are printed tick by tick, a tick being every target's next
// sample (a target whose stream has ended or failed drops out of the ticks that follow, and
// its error is printed once). A tick waits for every stream, but a target that sends nothing
// for two intervals (at least 2 s) while another target's sample waits is silent (a server
// that hangs, or one still connecting): the ticks go on without it, its line "-", until its
// next sample joins the next tick.
//
// Text: the header once, then per tick a line per target (per listed loop with --loop), "-"
// for a target with no sample (silent, or its stream ended), and a total line: counts and
// rates summed, the lag percentile left out (percentiles cannot be added).
//   UPTIME  TARGET          LOOP  CONNS  ACCEPTED  IN/S  OUT/S  TASKS/S  STALLS  READY  LAG_P99_US
// JSON: per tick one line per target that sent a sample, {"target":...,"result":{Stats}}, then
// {"total":{"targets":N,"answering":M,...}} as `brrrctl stats` prints it (fleet_run.h).
//
// Threads: the calling thread prints; a thread per target reads its stream.
#ifndef BRRR_CONTROL_FLEET_WATCH_H_
#define BRRR_CONTROL_FLEET_WATCH_H_

#include <cstdint>

#include "absl/time/time.h"
#include "control/brrrctl/fleet_run.h"

namespace brrr::control {

Outcome RunWatchOnFleet(FleetInvocation& invocation);

// How long a watch waits for a target that sends nothing before it says so (several targets:
// its line "-"; one target: a line on stderr): two intervals (a target's samples may come up to
// an interval after another's), and at least 2 s, so that streams that open a moment apart are
// not taken for silent ones. `interval_ms` as WatchStatsRequest has it (0: WatchStats' 1 s).
absl::Duration WatchSilentAfter(uint32_t interval_ms);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_FLEET_WATCH_H_
