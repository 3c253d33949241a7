#!/usr/bin/env bash
# bench/targets.sh: issue 15's targets in one run. For each scenario, every brrr backend against
# that scenario's strongest peer (bench/ab.sh's interleaved slices, one A/B per cell), then, at
# 1,000 connections, io_uring and epoll against brrr's scanning backends; prints one markdown
# table of brrr's ratios to the peer (msg/s, server CPU per message, p99; pairs that went
# brrr's way; bold where the sign test gives p < 0.05), as bench/README.md records them. Each
# A/B starts both servers afresh for each round (bench/ab.sh --rounds): the rounds, not the
# slices of one pair of processes, are what the sign test counts.
#
# The peers: for io_uring the io_uring peer (liburing_echo: level with or ahead of every
# readiness peer in every scenario, bench/JOURNAL.md, sixteenth run); for epoll the fastest
# readiness peer of each scenario in bench/JOURNAL.md's measurements (libevent at 1 connection,
# libuv with 64 KiB messages, libevent's poll elsewhere); for poll and select libevent on the
# same mechanism.
#
#   bench/targets.sh                                  # every cell, 6 rounds of 2 slices (about 25 minutes)
#   bench/targets.sh --scenarios=pp64 --backends=poll,select --rounds=8 --slices=3
#   bench/targets.sh --help
#
# Needs: bazel, taskset, python3 (through bench/ab.sh).
set -euo pipefail

BENCH_NAME=bench/targets.sh
# shellcheck source=bench/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"

SCENARIOS="pp1 pp64 pipe64 conn1000 big4"
BACKENDS="io_uring epoll poll select"
SLICES=2
ROUNDS=6
LOAD=ring
LOGS=""

usage() {
  cat <<EOF
Usage: bench/targets.sh [options]

  --scenarios=LIST   from: $BENCH_SCENARIOS (default: $SCENARIOS)
  --backends=LIST    brrr backends, from: io_uring epoll poll select (default: all)
  --rounds=N         rounds per A/B, each with both servers started afresh (default $ROUNDS)
  --slices=N         slices per server in each round (default $SLICES)
  --load=MODE        $BENCH_LOAD_HELP (default $LOAD)
  --logs=DIR         where each A/B's output goes (default: a new /tmp/brrr-targets.* directory)

Lists are space- or comma-separated. Exit codes: 0 done, 1 an A/B failed (its log says
why), 2 bad options or a missing tool.
EOF
}

for arg in "$@"; do
  case "$arg" in
    --scenarios=*) SCENARIOS="${arg#*=}" ;;
    --backends=*) BACKENDS="${arg#*=}" ;;
    --slices=*) SLICES="${arg#*=}" ;;
    --rounds=*) ROUNDS="${arg#*=}" ;;
    --load=*) LOAD="${arg#*=}" ;;
    --logs=*) LOGS="${arg#*=}" ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $arg" ;;
  esac
done
read -ra SCENARIO_LIST <<< "${SCENARIOS//,/ }"
read -ra BACKEND_LIST <<< "${BACKENDS//,/ }"
SCENARIOS="${SCENARIO_LIST[*]}"
BACKENDS="${BACKEND_LIST[*]}"
[[ "$SLICES" =~ ^[1-9][0-9]*$ ]] || die "--slices takes a count of at least 1 (got '$SLICES')"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a count of at least 1 (got '$ROUNDS')"
for s in $SCENARIOS; do bench_scenario_args "$s" > /dev/null; done
for b in $BACKENDS; do
  [[ " io_uring epoll poll select " == *" $b "* ]] || die "unknown backend '$b' (known: io_uring epoll poll select)"
done
[[ -n "$SCENARIOS" && -n "$BACKENDS" ]] || die "name at least one scenario and one backend"
[[ "$(bench_load_modes "$LOAD")" == "$LOAD" ]] || die "--load takes one mode here: sleep, busy or ring"
bench_need bazel taskset python3
cd "$(dirname "$0")/.."
if [[ -z "$LOGS" ]]; then LOGS="$(mktemp -d /tmp/brrr-targets.XXXXXX)"; else mkdir -p "$LOGS"; fi

# peer_of BACKEND SCENARIO: the server brrr-BACKEND is held against.
peer_of() {
  case "$1" in
    poll) echo "libevent+EVENT_NOEPOLL=1" ;;
    select) echo "libevent+EVENT_NOEPOLL=1+EVENT_NOPOLL=1" ;;
    io_uring) echo "liburing" ;;
    *)
      case "$2" in
        pp1) echo "libevent" ;;
        big4 | big1) echo "libuv" ;;
        *) echo "libevent+EVENT_NOEPOLL=1" ;;
      esac
      ;;
  esac
}

# ab SCENARIO A B: one A/B; its summary goes to $LOGS/N.json, its output to $LOGS/N.log.
RUN=0
SUMMARIES=()
ab() {
  RUN=$((RUN + 1))
  SUMMARIES+=("$LOGS/$RUN.json")
  echo "$BENCH_NAME: $1: $2 against $3 ..." >&2
  if ! bench/ab.sh --load="$LOAD" --scenario="$1" --rounds="$ROUNDS" --slices="$SLICES" --summary_json="$LOGS/$RUN.json" "$2" "$3" \
    > "$LOGS/$RUN.log" 2>&1; then
    tail -n 20 "$LOGS/$RUN.log" >&2
    echo "$BENCH_NAME: the A/B of $2 and $3 ($1) failed; its log: $LOGS/$RUN.log" >&2
    exit 1
  fi
}

for s in $SCENARIOS; do
  for b in $BACKENDS; do ab "$s" "$(peer_of "$b" "$s")" "brrr-$b"; done
done
if [[ " $SCENARIOS " == *" conn1000 "* ]]; then
  for fast in io_uring epoll; do
    [[ " $BACKENDS " == *" $fast "* ]] || continue
    for scanning in poll select; do ab conn1000 "brrr-$scanning" "brrr-$fast"; done
  done
fi

TITLES="$(for s in $SCENARIOS; do echo "$s=$(bench_scenario_title "$s")"; done)"
python3 - "$LOGS" "$SLICES" "$ROUNDS" "$LOAD" "$SCENARIOS" "$BACKENDS" "$TITLES" "${SUMMARIES[@]}" << 'EOF'
import json, sys
logs, slices, rounds, load = sys.argv[1:5]
scenarios, backends = sys.argv[5].split(), sys.argv[6].split()
titles = dict(line.split("=", 1) for line in sys.argv[7].splitlines())  # bench_scenario_title's
runs = [json.load(open(f)) for f in sys.argv[8:]]  # this run's, in order (not older ones in --logs)
def cell(r):
    def one(key, label):
        f = r["figures"][key]
        text = f"{f['ratio']:.3f}x"
        text = f"**{text}**" if f["p"] < 0.05 else text
        return f"{label}{text}"
    m = r["figures"]["messages_per_second"]
    ways = (f"{m['round_b_better']}/{m['rounds']} rounds, {m['b_better']}/{m['pairs']} pairs" if "rounds" in m
            else f"{m['b_better']}/{m['pairs']}")
    return (one("messages_per_second", "") + f" ({ways}), " +
            one("server_cpu_us_per_msg", "CPU ") + ", " + one("p99_us", "p99 "))
by = {(r["scenario"], r["b"]): r for r in runs if not r["a"].startswith("brrr-")}
per = (f"{rounds} rounds of {slices} slices per server, each round with both started afresh" if int(rounds) > 1
       else f"slices per server: {slices}")
way = "(rounds and pairs brrr's way); bold: the sign test over the rounds gives p < 0.05" if int(rounds) > 1 \
    else "(pairs brrr's way); bold: p < 0.05"
print(f"\nbrrr against each scenario's peer, {load} load, {per} (bench/ab.sh); msg/s, "
      f"CPU per message and p99 as brrr's ratio to the peer, paired medians, {way}\n")
print("| scenario | " + " | ".join(backends) + " |")
print("|---|" + "---|" * len(backends))
for s in scenarios:
    cells = []
    for b in backends:
        r = by.get((s, f"brrr-{b}"))
        cells.append(f"{cell(r)} (vs {r['a']})" if r else "")
    print(f"| {titles[s]} | " + " | ".join(cells) + " |")
others = [r for r in runs if r["a"].startswith("brrr-")]
if others:
    print("\nAt 1,000 connections, against brrr's scanning backends:\n")
    print("| B | A | msg/s, CPU per message, p99 |")
    print("|---|---|---|")
    for r in others:
        print(f"| {r['b']} | {r['a']} | {cell(r)} |")
print(f"\n(each A/B's output: {logs})")
EOF
