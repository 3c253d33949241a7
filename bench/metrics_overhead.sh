#!/usr/bin/env bash
# bench/metrics_overhead.sh: what a Prometheus scrape every second costs brrr-echo. Runs the
# brrr-bench load without and with a scraper that GETs /metrics once a second, alternating in
# one run: the server (with --metrics_port, --loops=1) pinned to one core, brrr-bench and the
# scraper to the other. Prints, as medians over the rounds: the CPU the server's metrics
# thread ("brrr-metrics", which serves and builds every scrape) used, as a share of one core;
# the server's CPU in all; the echo throughput with and without scraping (the median of the
# per-round ratios, so slow drifts of the machine cancel out); and the scrape's size.
#
#   bench/metrics_overhead.sh                         # 10 rounds of 5 s (about 2 minutes)
#   bench/metrics_overhead.sh --rounds=6 --duration=10s --loops=2
#
# Needs: bazel, taskset, python3.
set -euo pipefail

ROUNDS=10
DURATION=5s
WARMUP=1s
LOOPS=1
LOAD="--connections=64 --size=64 --depth=1"
SERVER_CPU=0
LOAD_CPU=1

usage() {
  cat << USAGE
Usage: bench/metrics_overhead.sh [options]

  --rounds=N       rounds; each runs the load without and with scraping (default $ROUNDS)
  --duration=D     measured time per run (default $DURATION; at least a few seconds, so that
                   several scrapes fall in it)
  --loops=N        brrr-echo --loops (default $LOOPS)
  --load="FLAGS"   brrr-bench flags (default "$LOAD")
  --server_cpu=C   CPU of the server (default $SERVER_CPU)
  --load_cpu=C     CPU of brrr-bench and the scraper (default $LOAD_CPU)

Exit codes: 0 done, 1 a run failed, 2 bad options or a missing tool.
USAGE
}

BENCH_NAME=bench/metrics_overhead.sh
# shellcheck source=bench/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"

for arg in "$@"; do
  case "$arg" in
    --rounds=*) ROUNDS="${arg#*=}" ;;
    --duration=*) DURATION="${arg#*=}" ;;
    --loops=*) LOOPS="${arg#*=}" ;;
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
BIN="$(bench_build //server/brrr-echo //bench:brrr-bench)"

WORK="$(mktemp -d /tmp/brrr-metrics-bench.XXXXXX)"
trap bench_watch_cleanup EXIT

PORT=$((20000 + RANDOM % 20000))
METRICS=$((PORT + 1))
taskset -c "$SERVER_CPU" "$BIN/server/brrr-echo/brrr-echo" --port="$PORT" --loops="$LOOPS" \
  --metrics_port="$METRICS" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
bench_wait_ready "$SERVER_PID" "$WORK/server.log" "metrics on" "brrr-echo did not start its metrics port"
head -2 "$WORK/server.log" >&2

# The scraper: GET /metrics once a second until killed; one line per scrape (its bytes).
cat > "$WORK/scraper.py" << 'PY'
import sys, time, urllib.request
url = sys.argv[1]
next_at = time.monotonic()
while True:
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read()
    print(len(body), flush=True)
    next_at += 1.0
    time.sleep(max(0.0, next_at - time.monotonic()))
PY

# run MODE: one measured run, without ("off") or with ("scrape") the scraper; appends a line.
run() {
  local mode="$1" json scrapes=0 bytes=0 metrics_before metrics_after server_before server_after started ended
  if [[ "$mode" == scrape ]]; then
    taskset -c "$LOAD_CPU" python3 "$WORK/scraper.py" "http://127.0.0.1:$METRICS/metrics" \
      > "$WORK/scrapes.txt" 2> "$WORK/scraper.err" &
    WATCHER_PID=$!
  fi
  metrics_before=$(bench_threads_cpu_ns +brrr-metrics)
  server_before=$(bench_threads_cpu_ns)
  started=$(date +%s%N)
  json="$(bench_watch_load)"
  metrics_after=$(bench_threads_cpu_ns +brrr-metrics)
  server_after=$(bench_threads_cpu_ns)
  ended=$(date +%s%N)
  if [[ -n "$WATCHER_PID" ]]; then
    bench_stop_watcher KILL
    scrapes=$(wc -l < "$WORK/scrapes.txt")
    bytes=$(tail -1 "$WORK/scrapes.txt" 2> /dev/null || echo 0)
    if ((scrapes == 0)); then
      cat "$WORK/scraper.err" >&2
      echo "bench/metrics_overhead.sh: the scraper got nothing" >&2
      exit 1
    fi
  fi
  bench_watch_check_load "$mode" "$json"
  local wall=$((ended - started))
  echo "{\"mode\":\"$mode\",\"round\":$ROUND,\"scrapes\":$scrapes,\"scrape_bytes\":${bytes:-0},\"wall_ns\":$wall,\"metrics_cpu_ns\":$((metrics_after - metrics_before)),\"server_cpu_ns\":$((server_after - server_before)),\"result\":$json}" >> "$WORK/results.jsonl"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  %-6s %9.0f msg/s  p99 %4.0f us  metrics thread %.3f%% of a core  (%s scrapes)" % (sys.argv[2], r["messages_per_second"], r["p99_us"], 100.0 * int(sys.argv[4]) / int(sys.argv[5]), sys.argv[3]))' \
    "$json" "$mode" "$scrapes" "$((metrics_after - metrics_before))" "$wall" >&2
}

bench_watch_rounds scrape

python3 - "$WORK/results.jsonl" "$LOAD" "$LOOPS" << 'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(mode, f):
    return statistics.median(f(r) for r in runs if r["mode"] == mode)
share = lambda key: (lambda r: 100.0 * r[key] / r["wall_ns"])
by_round = {}
for r in runs:
    by_round.setdefault(r["round"], {})[r["mode"]] = r
ratios = [p["scrape"]["result"]["messages_per_second"] / p["off"]["result"]["messages_per_second"]
          for p in by_round.values() if len(p) == 2]
scrape_cpu = [share("metrics_cpu_ns")(r) for r in runs if r["mode"] == "scrape"]
per_scrape_us = statistics.median(r["metrics_cpu_ns"] / 1e3 / r["scrapes"] for r in runs if r["mode"] == "scrape")
print("Scrape overhead (1 scrape/s, brrr-echo --loops=%s, brrr-bench %s, %d rounds):" % (sys.argv[3], sys.argv[2], len(ratios)))
print("  metrics thread: %.3f%% of a core while scraped (rounds %.3f to %.3f; %.3f%% unscraped); %.0f us of CPU per scrape of %d bytes"
      % (statistics.median(scrape_cpu), min(scrape_cpu), max(scrape_cpu), med("off", share("metrics_cpu_ns")),
         per_scrape_us, int(med("scrape", lambda r: r["scrape_bytes"]))))
print("  server in all:  %.1f%% of a core unscraped, %.1f%% scraped (median)"
      % (med("off", share("server_cpu_ns")), med("scrape", share("server_cpu_ns"))))
print("  echo: %.0f msg/s unscraped, %.0f scraped (medians); with / without, median of the rounds' ratios: %.4f (rounds %.3f to %.3f)"
      % (med("off", lambda r: r["result"]["messages_per_second"]), med("scrape", lambda r: r["result"]["messages_per_second"]),
         statistics.median(ratios), min(ratios), max(ratios)))
PY
