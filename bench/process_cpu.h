// process_cpu.h: how much CPU time another process has used, for brrr-bench --server_pid.
//
// The sum, over every thread of the process, of the time the scheduler ran it
// (/proc/PID/task/TID/schedstat, first field: nanoseconds, exact where /proc/PID/stat counts
// clock ticks). A thread that exits between two readings takes its time with it: the
// servers measured keep their threads for the whole run.
//
//   absl::StatusOr<int64_t> before = ProcessCpuNanos(pid);
//   ... the measured period ...
//   absl::StatusOr<int64_t> after = ProcessCpuNanos(pid);   // after - before: CPU ns used
//
// Threads: any.
#ifndef BRRR_BENCH_PROCESS_CPU_H_
#define BRRR_BENCH_PROCESS_CPU_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace brrr::bench {

// On-CPU nanoseconds of every thread of process `pid` so far; NotFound if there is no such
// process, or another error if /proc cannot be read.
absl::StatusOr<int64_t> ProcessCpuNanos(int pid);

}  // namespace brrr::bench

#endif  // BRRR_BENCH_PROCESS_CPU_H_
