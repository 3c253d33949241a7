#!/usr/bin/env bash
# bench/watch_overhead.sh: what watching costs. Echo throughput of one brrr-echo with and
# without a WatchStats stream at 10 Hz (brrrctl watch --interval=100ms), alternating in one
# run: the server (with its admin plane) pinned to one core, brrr-bench and brrrctl to the
# other. Prints the median messages/s of each, the median of the per-round ratios (rounds pair
# a run with and one without, so slow drifts of the machine cancel out), and the CPU time the
# server's admin-plane threads (every thread but the loops) used while streaming.
#
#   bench/watch_overhead.sh                         # 10 rounds of 3 s (about 2 minutes)
#   bench/watch_overhead.sh --rounds=9 --duration=5s
#
# Needs: bazel, taskset, python3.
set -euo pipefail

ROUNDS=10
DURATION=3s
WARMUP=1s
INTERVAL=100ms
LOAD="--connections=64 --size=64 --depth=1"
SERVER_CPU=0
LOAD_CPU=1

usage() {
  cat << USAGE
Usage: bench/watch_overhead.sh [options]

  --rounds=N       rounds; each runs the load without and with the stream (default $ROUNDS)
  --duration=D     measured time per run (default $DURATION)
  --interval=D     the WatchStats interval (default $INTERVAL, i.e. 10 Hz)
  --load="FLAGS"   brrr-bench flags (default "$LOAD")
  --server_cpu=C   CPU of the server (default $SERVER_CPU)
  --load_cpu=C     CPU of brrr-bench and brrrctl (default $LOAD_CPU)

Exit codes: 0 done, 1 a run failed, 2 bad options or a missing tool.
USAGE
}

BENCH_NAME=bench/watch_overhead.sh
# shellcheck source=bench/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"

for arg in "$@"; do
  case "$arg" in
    --rounds=*) ROUNDS="${arg#*=}" ;;
    --duration=*) DURATION="${arg#*=}" ;;
    --interval=*) INTERVAL="${arg#*=}" ;;
    --load=*) LOAD="${arg#*=}" ;;
    --server_cpu=*) SERVER_CPU="${arg#*=}" ;;
    --load_cpu=*) LOAD_CPU="${arg#*=}" ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $arg" ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$ROUNDS'"
bench_need bazel taskset python3

cd "$(dirname "$0")/.."
BIN="$(bench_build //server/brrr-echo //bench:brrr-bench //control/brrrctl)"

WORK="$(mktemp -d /tmp/brrr-watch-bench.XXXXXX)"
trap bench_watch_cleanup EXIT

PORT=$((20000 + RANDOM % 20000))
ADMIN=$((PORT + 1))
taskset -c "$SERVER_CPU" "$BIN/server/brrr-echo/brrr-echo" --port="$PORT" --admin_port="$ADMIN" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
bench_wait_ready "$SERVER_PID" "$WORK/server.log" "admin plane on" "brrr-echo did not start its admin plane"
head -1 "$WORK/server.log" >&2

# run MODE: one measured run, without ("off") or with ("watch") the stream; appends a line.
run() {
  local mode="$1" json lines=0 cpu_before cpu_after started ended
  cpu_before=$(bench_threads_cpu_ns -brrr-echo)  # all but the loops: gRPC's
  started=$(date +%s%N)
  if [[ "$mode" == watch ]]; then
    taskset -c "$LOAD_CPU" "$BIN/control/brrrctl/brrrctl" --target="127.0.0.1:$ADMIN" --json watch --interval="$INTERVAL" \
      > "$WORK/watch.jsonl" 2> "$WORK/watch.err" &
    WATCHER_PID=$!
  fi
  json="$(bench_watch_load)"
  cpu_after=$(bench_threads_cpu_ns -brrr-echo)
  ended=$(date +%s%N)
  if [[ -n "$WATCHER_PID" ]]; then
    bench_stop_watcher INT
    lines=$(wc -l < "$WORK/watch.jsonl")
    if ((lines == 0)); then
      cat "$WORK/watch.err" >&2
      echo "bench/watch_overhead.sh: the stream sent nothing" >&2
      exit 1
    fi
  fi
  bench_watch_check_load "$mode" "$json"
  local admin_share
  admin_share=$(python3 -c "print(100.0 * ($cpu_after - $cpu_before) / ($ended - $started))")
  echo "{\"mode\":\"$mode\",\"round\":$ROUND,\"stats_received\":$lines,\"admin_cpu_percent\":$admin_share,\"result\":$json}" >> "$WORK/results.jsonl"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  %-5s %9.0f msg/s  p50 %4.0f us  p99 %4.0f us  (%s stats messages received)" % (sys.argv[2], r["messages_per_second"], r["p50_us"], r["p99_us"], sys.argv[3]))' \
    "$json" "$mode" "$lines" >&2
}

bench_watch_rounds watch

python3 - "$WORK/results.jsonl" "$INTERVAL" "$LOAD" << 'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def median(mode, key):
    return statistics.median(r["result"][key] for r in runs if r["mode"] == mode)
off, on = median("off", "messages_per_second"), median("watch", "messages_per_second")
by_round = {}
for r in runs:
    by_round.setdefault(r["round"], {})[r["mode"]] = r
ratios = [p["watch"]["result"]["messages_per_second"] / p["off"]["result"]["messages_per_second"]
          for p in by_round.values() if len(p) == 2]
admin = statistics.median(r["admin_cpu_percent"] for r in runs if r["mode"] == "watch")
admin_off = statistics.median(r["admin_cpu_percent"] for r in runs if r["mode"] == "off")
print("WatchStats overhead (%s, brrr-bench %s, %d rounds):" % (sys.argv[2], sys.argv[3], len(ratios)))
print("  without the stream: %.0f msg/s, p99 %.0f us (median)" % (off, median("off", "p99_us")))
print("  with the stream:    %.0f msg/s, p99 %.0f us (median)" % (on, median("watch", "p99_us")))
print("  throughput with / without, median of the rounds' ratios: %.4f (cost %.2f%%; rounds spread %.3f to %.3f)"
      % (statistics.median(ratios), 100.0 * (1 - statistics.median(ratios)), min(ratios), max(ratios)))
print("  the server's admin threads used %.2f%% of a core while streaming (%.2f%% without)" % (admin, admin_off))
PY
