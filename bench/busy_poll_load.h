// busy_poll_load.h: brrr-bench's busy-polling load engine (--busy_poll); internal to
// //bench:load_generator, reached through RunLoad with LoadOptions::busy_poll.
//
// A load generator that sleeps in the kernel between messages (epoll_wait, io_uring_enter)
// adds its own wake-up to every round trip, and at ping-pong that is part of what the server
// seems to cost. This engine never sleeps: each of `threads` plain threads (no brrr event loop,
// no reactor) owns every threads-th connection and spins over them, calling recv and send with
// MSG_DONTWAIT: a connection's next message goes out in the same pass that its echo came in,
// and a pipelined connection refills its window of `depth` messages the same way. Past 64
// connections a thread asks epoll_wait with a zero timeout which have data (a question, never
// a sleep) instead of calling recv on each of them. Every byte is
// checked as the reactor engine checks it (load_parts.h), and the run is bounded the same way:
// `duration` after `warmup`, then up to `finish_timeout` for replies in flight.
//
//   LoadOptions o; o.port = 5000; o.busy_poll = true; o.threads = 1;
//   absl::StatusOr<LoadResult> r = RunLoad(o, on_progress);  // r->backend == "busy-poll"
//
// Threads: each engine thread is busy (100% of a core) for the whole run; pin it with taskset.
// `on_progress` is called from the calling thread.
#ifndef BRRR_BENCH_BUSY_POLL_LOAD_H_
#define BRRR_BENCH_BUSY_POLL_LOAD_H_

#include <functional>

#include "absl/status/statusor.h"
#include "bench/load_generator.h"

namespace brrr::bench {

// The options are valid (Validate). Fails only if a thread cannot be started.
absl::StatusOr<LoadResult> RunBusyPollLoad(const LoadOptions& options,
                                           const std::function<void(const LoadProgress&)>& on_progress);

}  // namespace brrr::bench

#endif  // BRRR_BENCH_BUSY_POLL_LOAD_H_
