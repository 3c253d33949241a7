// ring_load.h: brrr-bench's io_uring busy-polling load engine (--busy_ring); internal to
// //bench:load_generator, reached through RunLoad with LoadOptions::busy_ring.
//
// The --busy_poll engine never sleeps, but it still makes a receive and a send system call per
// message, and on a two-core machine that load generator, not the server, is the limit for
// any server that needs less CPU per message than it does: servers that differ show the same
// messages/s. This engine spins the same way with far fewer calls. Each of `threads` threads
// owns every threads-th connection and one io_uring (Linux 6.0: SINGLE_ISSUER | DEFER_TASKRUN
// where the kernel has them, 6.1): a multishot receive per connection into a ring of provided
// buffers (Linux 5.19), and per pass one io_uring_enter that submits every send the pass queued
// and collects what completed, never waiting. Each connection's next message (or the free part
// of its --depth window) goes out in the pass after its echo came in; every byte is checked as
// the other engines check it (load_parts.h), and the run is bounded the same way.
//
// What the server sees differs from --busy_poll in one way: each armed receive adds a wake-up
// callback to the socket, so the server's send queues an io_uring task (on the server's core,
// in its send call) where --busy_poll's socket has no waiter; every server pays it alike.
//
//   LoadOptions o; o.port = 5000; o.busy_ring = true; o.threads = 1;
//   absl::StatusOr<LoadResult> r = RunLoad(o, on_progress);  // r->backend == "busy-ring"
//
// Threads: each engine thread is busy (100% of a core) for the whole run; pin it with taskset.
// `on_progress` is called from the calling thread. Fails (no load run) if io_uring is refused
// (an old kernel, a seccomp profile): --busy_poll then measures the same without it.
#ifndef BRRR_BENCH_RING_LOAD_H_
#define BRRR_BENCH_RING_LOAD_H_

#include <functional>

#include "absl/status/statusor.h"
#include "bench/load_generator.h"

namespace brrr::bench {

// The options are valid (Validate). Fails if a thread or its ring cannot be set up.
absl::StatusOr<LoadResult> RunRingLoad(const LoadOptions& options,
                                       const std::function<void(const LoadProgress&)>& on_progress);

}  // namespace brrr::bench

#endif  // BRRR_BENCH_RING_LOAD_H_
