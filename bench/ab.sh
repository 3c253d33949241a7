#!/usr/bin/env bash
# bench/ab.sh: an A/B of two echo servers in short interleaved slices, for differences smaller
# than this kind of machine's drift. Both servers start once and stay up, pinned to the same
# core; brrr-bench (on another core) loads one at a time for --duration, in the order A B B A,
# B A A B, ... so that a drift of the host (on a shared VM the same server moves by 20-30%
# from one run to the next, in phases of seconds) falls on both alike. Each slice reports the
# loaded server's messages/s, p99 and CPU time per message (brrr-bench --server_pid). The
# summary gives each server's medians and spread, and the slices paired in order: the median
# of B's ratio to A and how many pairs went B's way, with the two-sided sign test's p-value
# (below 0.05: B differs from A beyond chance at this many pairs).
#
# Rounds (--rounds=N): the pairs of one pair of processes are not independent of each other.
# A process keeps its address layout, heap and physical pages for its life, and on this kind of
# machine two starts of the same two servers can put B 2% behind A in one A/B and 2% ahead in
# the next, each "significant" by its own pairs (bench/JOURNAL.md, twentieth run). With N > 1
# both servers are started afresh for each of N rounds of --slices slices each; the summary
# adds each round's median ratio and the sign test over the rounds, the unit that varies what
# a start fixes, and --summary_json's p is then the rounds' p.
#
#   bench/ab.sh brrr-epoll libevent                          # 1,000 connections, busy load
#   bench/ab.sh --baseline=/tmp/wt/bazel-out/k8-opt/bin base:brrr-epoll brrr-epoll
#   bench/ab.sh --scenario=pipe64 --slices=30 brrr-poll brrr-epoll
#   bench/ab.sh --scenario=pp64 --load=ring --rounds=8 --slices=3 libevent brrr-epoll
#   bench/ab.sh --help
#
# Needs: bazel, taskset, python3.
set -euo pipefail

BENCH_NAME=bench/ab.sh
# shellcheck source=bench/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"

SCENARIO=conn1000
LOAD=busy
SLICES=20
ROUNDS=1
DURATION=1s
WARMUP=500ms
SERVER_CPU=0
LOAD_CPU=1
SUMMARY_JSON=""

usage() {
  cat <<EOF
Usage: bench/ab.sh [options] SERVER_A SERVER_B

  SERVER_A, SERVER_B from: $BENCH_SERVERS
                     (or base:brrr-NAME, from --baseline's build);
                     $BENCH_SETTINGS_HELP
  --scenario=S       from: $BENCH_SCENARIOS (default $SCENARIO)
  --load=MODE        $BENCH_LOAD_HELP (default $LOAD)
  --slices=N         measured slices per server, per round (default $SLICES)
  --rounds=N         start both servers afresh N times, --slices slices each; the summary adds
                     the sign test over the rounds (default $ROUNDS)
  --duration=D       measured time per slice, as brrr-bench takes it (default $DURATION)
  --warmup=D         unmeasured time before each slice (default $WARMUP)
  --baseline=DIR     another build's bazel-out/k8-opt/bin, for base:brrr-NAME servers
  --server_cpu=C     CPU both servers are pinned to (default $SERVER_CPU)
  --load_cpu=C       CPU the load generator is pinned to (default $LOAD_CPU)
  --summary_json=F   also write the summary to F as one JSON object (for bench/targets.sh)

Exit codes: 0 done, 1 a slice failed (a server died or the load generator saw a mismatch),
2 bad options or a missing tool.
EOF
}

NAMES=()
for arg in "$@"; do
  case "$arg" in
    --scenario=*) SCENARIO="${arg#*=}" ;;
    --load=*) LOAD="${arg#*=}" ;;
    --slices=*) SLICES="${arg#*=}" ;;
    --rounds=*) ROUNDS="${arg#*=}" ;;
    --duration=*) DURATION="${arg#*=}" ;;
    --warmup=*) WARMUP="${arg#*=}" ;;
    --baseline=*) BENCH_BASELINE_BIN="${arg#*=}" ;;
    --server_cpu=*) SERVER_CPU="${arg#*=}" ;;
    --load_cpu=*) LOAD_CPU="${arg#*=}" ;;
    --summary_json=*) SUMMARY_JSON="${arg#*=}" ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option: $arg" ;;
    *) NAMES+=("$arg") ;;
  esac
done
((${#NAMES[@]} == 2)) || { usage >&2; die "name two servers, A and B (got ${#NAMES[@]})"; }
[[ "$SLICES" =~ ^[1-9][0-9]*$ ]] || die "--slices must be a positive integer, not '$SLICES'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$ROUNDS'"
[[ "$LOAD" == sleep || "$LOAD" == busy || "$LOAD" == ring ]] || die "--load takes sleep, busy or ring, not '$LOAD'"
if [[ -n "$BENCH_BASELINE_BIN" ]]; then
  bench_use_baseline "$BENCH_BASELINE_BIN"
fi
bench_check_servers "${NAMES[*]}"
bench_scenario_args "$SCENARIO" > /dev/null
bench_need bazel taskset python3
bench_check_cpus "$SERVER_CPU" "$LOAD_CPU"
bench_describe_machine

cd "$(dirname "$0")/.."
BIN="$(bench_build //server/brrr-echo //bench:brrr-bench //bench/peers:all)"
ulimit -n 8192 2> /dev/null || true

WORK="$(mktemp -d /tmp/brrr-ab.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -KILL "$pid" 2> /dev/null || true
    { wait "$pid"; } 2> /dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_servers ROUND: both servers, afresh; in odd rounds B first, so that neither always
# gets the memory the other leaves.
PORTS=()
start_servers() {
  local first=(0 1) i
  (($1 % 2 == 1)) && first=(1 0)
  PIDS=()  # set by index as each starts (cleanup kills what is set)
  PORTS=()
  for i in "${first[@]}"; do
    bench_start_server "${NAMES[$i]}" "$SERVER_CPU" 5000
    PIDS[i]="$SERVER_PID"
    PORTS[i]="$PORT"
  done
  SERVER_PID=""
}

# stop_servers: ends both (bench_stop_server: SIGTERM, SIGKILL after 5 s) and waits for them,
# so that their memory is free again before the next round.
stop_servers() {
  local pid
  for pid in "${PIDS[@]}"; do
    SERVER_PID="$pid"
    bench_stop_server
  done
  PIDS=()
}

RESULTS="$WORK/results.jsonl"
echo "bench/ab.sh: $(bench_scenario_title "$SCENARIO"), $LOAD load, $ROUNDS round(s) of $SLICES slices of $DURATION each: A = ${NAMES[0]}, B = ${NAMES[1]}" >&2
for ((round = 0; round < ROUNDS; round++)); do
  start_servers "$round"
  ((ROUNDS > 1)) && echo "  round $((round + 1)): A pid ${PIDS[0]}, B pid ${PIDS[1]}" >&2
  for ((slice = round * SLICES; slice < (round + 1) * SLICES; slice++)); do
    # A B B A, B A A B, ...: each server goes first as often, and each pair is two neighbours.
    if (((slice / 2 + slice) % 2 == 0)); then order="0 1"; else order="1 0"; fi
    for i in $order; do
      # shellcheck disable=SC2046
      json="$(taskset -c "$LOAD_CPU" "$BIN/bench/brrr-bench" --port="${PORTS[$i]}" $(bench_scenario_args "$SCENARIO") \
        $(bench_load_flags "$LOAD") --duration="$DURATION" --warmup="$WARMUP" --progress=false \
        --server_pid="${PIDS[$i]}" 2> "$WORK/load.err" | grep '^{' || true)"
      if [[ -z "$json" || "$json" != *'"ok":true'* ]]; then
        cat "$WORK/load.err" >&2
        echo "bench/ab.sh: ${NAMES[$i]} slice $((slice + 1)) failed: ${json:-no result}" >&2
        exit 1
      fi
      echo "{\"server\":$i,\"slice\":$slice,\"round\":$round,\"result\":$json}" >> "$RESULTS"
      echo "  slice $((slice + 1)) | ${NAMES[$i]}: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f msg/s, p99 %.0f us, server CPU %.2f us/msg, %.0f%% busy" % (r["messages_per_second"], r["p99_us"], r["server_cpu_us_per_msg"], 100 * r["server_busy"]))' "$json")" >&2
    done
  done
  stop_servers
done

python3 - "$RESULTS" "${NAMES[0]}" "${NAMES[1]}" "$SCENARIO" "$LOAD" "$SUMMARY_JSON" << 'EOF'
import json, math, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = sys.argv[2:4]
scenario, load, summary_json = sys.argv[4:7]
summary = {"a": names[0], "b": names[1], "scenario": scenario, "load": load, "figures": {}}
runs = [sorted((r for r in rows if r["server"] == i), key=lambda r: r["slice"]) for i in (0, 1)]
figures = (("messages_per_second", "msg/s", "%.0f", 1), ("server_cpu_us_per_msg", "CPU us/msg", "%.3f", -1),
           ("p99_us", "p99 us", "%.0f", -1))
def sign_test(wins, n):
    # Two-sided binomial test of `wins` out of `n` against a fair coin.
    k = min(wins, n - wins)
    p = sum(math.comb(n, j) for j in range(0, k + 1)) / 2 ** n * 2
    return min(p, 1.0)
print()
rounds = sorted({r["round"] for r in runs[0]})
print(f"A = {names[0]}, B = {names[1]}: {len(runs[0])} slices each" +
      (f", in {len(rounds)} rounds (each its own pair of processes)" if len(rounds) > 1 else ""))
print(f"  {'figure':<12} {'A median':>12} {'A range':>21} {'B median':>12} {'B range':>21} {'B/A paired':>11} {'B better':>9} {'sign p':>7}")
def paired(key, better, keep=lambda r: True):
    # The figure's pairs (A's slice, B's slice in the same position), B's ratios to A, and the
    # pairs that went B's way out of those that differ.
    a = [r["result"][key] for r in runs[0] if keep(r)]
    b = [r["result"][key] for r in runs[1] if keep(r)]
    ratios = [y / x for x, y in zip(a, b) if x > 0]
    wins = sum(1 for x, y in zip(a, b) if (y - x) * better > 0)
    n = sum(1 for x, y in zip(a, b) if y != x)
    return a, b, ratios, wins, n
for key, label, fmt, better in figures:
    a, b, ratios, wins, n = paired(key, better)
    rng = lambda v: f"{fmt % min(v)}-{fmt % max(v)}"
    p = sign_test(wins, n) if n else 1.0
    print(f"  {label:<12} {fmt % statistics.median(a):>12} {rng(a):>21} {fmt % statistics.median(b):>12} {rng(b):>21} "
          f"{statistics.median(ratios):>10.3f}x {wins:>4}/{n:<4} {p:>7.3f}")
    figure = {"a_median": statistics.median(a), "b_median": statistics.median(b),
              "ratio": statistics.median(ratios), "b_better": wins, "pairs": n, "p": p}
    if len(rounds) > 1:
        # Each round's median ratio; a round goes B's way when its median ratio does.
        per_round = [statistics.median(paired(key, better, lambda r, k=k: r["round"] == k)[2]) for k in rounds]
        round_wins = sum(1 for q in per_round if (q - 1) * better > 0)
        round_n = sum(1 for q in per_round if q != 1)
        round_p = sign_test(round_wins, round_n) if round_n else 1.0
        print(f"  {'':<12} by round: " + " ".join(f"{q:.3f}x" for q in per_round) +
              f"; median {statistics.median(per_round):.3f}x, {round_wins}/{round_n} rounds B's way, sign p {round_p:.3f}")
        figure.update({"pair_p": p, "p": round_p, "round_ratios": per_round, "round_b_better": round_wins,
                       "rounds": round_n})
    summary["figures"][key] = figure
# How much of its core each server used: one well below 100% waited for the load generator,
# so its msg/s is the generator's and CPU us/msg is the figure that compares it.
busy = [[100 * r["result"]["server_busy"] for r in run] for run in runs]
pct = lambda v: f"{v:.0f}%"
print(f"  {'server busy':<12} " + " ".join(f"{pct(statistics.median(v)):>12} {pct(min(v))[:-1] + '-' + pct(max(v)):>21}"
                                         for v in busy))
summary["slices"] = len(runs[0])
summary["rounds"] = len(rounds)
summary["busy_medians"] = [statistics.median(v) / 100 for v in busy]
if summary_json:
    with open(summary_json, "w") as f:
        json.dump(summary, f)
        f.write("\n")
EOF
