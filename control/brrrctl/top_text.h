// top_text.h: `brrrctl top`'s words: the cells the screen draws (top_screen.h) and the plain
// lines it prints instead when standard output is not a terminal, one block per tick:
//
//   top target=127.0.0.1:5001 uptime=12.3 loops=2 sort=LOOP draining=no
//   loop=0 util=0.125 ready=0 conns=10 msg_per_s=2000 bytes_per_s=64000 stalls=1 lag_p99_us=52 task=- where=-
//   loop=all util=0.06 ...
//   socket fd=9 loop=0 peer=127.0.0.1:40112 queued=0 bytes_in=1200 bytes_out=1200 sets=read
//   injection id=1 kind=blocking-spin duration_ms=300 count=3 interval_ms=1000 loops=all state=ACTIVE runs=1
//   throttle summary="conn_rate unlimited, total_rate unlimited, accept_rate unlimited, max_connections 0"
//   stall loop=0 seq=1 duration_ms=312 in_progress=no task=<inject:blocking_spin> where="brrr::...()"
//   frame loop=0 n=0 at="clock_gettime (linux-vdso.so.1+0xb46)"
//   (an empty line ends the block)
//
// Each line starts with its kind, then NAME=VALUE words; a value with a space or a quote is in
// double quotes, with C escapes for a double quote, a backslash and what is not printable (an
// apostrophe stays as it is, as logfmt readers expect). A target that cannot be read:
// `top target=... unreachable="..."` (the reason). Several targets: a block per target, then
// the fleet's total before the empty line:
//   total targets=3 answering=2 loops=4 util=0.3 ready=0 conns=20 msg_per_s=4000 ... where=- stall_target=-
// Rates and utilization are "-" until two polls were read.
//
// Threads: pure functions.
#ifndef BRRR_CONTROL_TOP_TEXT_H_
#define BRRR_CONTROL_TOP_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/brrrctl/top_model.h"

namespace brrr::control::top {

// "12%", "-" when unset.
std::string PercentText(std::optional<double> share);
// FormatShort of a rate, "-" when unset.
std::string RateText(std::optional<double> rate);
// "read,write", "read", "write" or "-".
std::string SetsText(const brrr::admin::v1::SocketInfo& socket);
// "#1 blocking-spin 300ms x3 every 1s on loops 0,1: 2 runs started, ACTIVE".
std::string InjectionText(const brrr::admin::v1::Injection& injection);
// "unreachable: <why>" or "error: <why>" for a target that cannot be read.
std::string StatusText(const absl::Status& status);
// "loop 0 stall #3: <inject:blocking_spin> 312ms (still running) at 2.3s", and, where the
// server measured it, "; since the first sample 212ms: 99% on a core, 0% waiting for one, 1%
// asleep or blocked".
std::string StallTitle(const brrr::admin::v1::Stall& stall);

// The plain lines of one tick, for every target; `frames`: stack frames per stall; `total`:
// the fleet's total line (none when null).
std::string PlainBlock(const std::vector<TargetView>& views, SortKey sort, uint32_t frames,
                       const FleetTotal* total = nullptr);

}  // namespace brrr::control::top

#endif  // BRRR_CONTROL_TOP_TEXT_H_
