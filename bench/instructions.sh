#!/usr/bin/env bash
# bench/instructions.sh: the user-space instructions each echo server executes per message,
# counted (not sampled) with valgrind's callgrind, and where they run: the server's executable
# (brrr's runtime is linked into it), its backend plugin or event library (libuv, libevent),
# libc, and every other library. Timings on this kind of
# machine spread by 10-50% from run to run; an instruction count does not, so a change of a
# few per cent in a server's own work shows here when no A/B of its speed can tell it apart.
# It is not a speed: the kernel's share (80-95% of an echo server's CPU, bench/profile.sh) is
# not in it, and neither are cache misses.
#
# It also reports how many 4 KiB pages of code those instructions run in (the fewest pages
# that hold 99% of them, over every object): where each entry to the kernel empties the TLB
# (page-table isolation without PCID, as on this VM), every page of code a server runs between
# two system calls costs a page walk, so a per-message path spread over many pages is slower
# with the same instructions (runtime/hot_path.h).
#
# For every server and scenario (the names of bench/echo.sh) it starts the server under
# callgrind with counting off, loads it with brrr-bench (pinned to another core), turns
# counting on for a window inside the measured period, dumps the counts, and divides them by
# the messages the server echoed in the window (the bytes it sent on its connections, ss -ti,
# over the message size). Under callgrind a server runs 20-50 times slower, so the load
# generator is never its limit, and a loop serves more ready descriptors per wait than at full
# speed: per-wait costs weigh less here than in a real run.
#
#   bench/instructions.sh --servers=brrr-poll,libevent+EVENT_NOEPOLL=1 --scenarios=pp64
#   bench/instructions.sh --baseline=/tmp/wt/bazel-out/k8-opt/bin --servers=base:brrr-epoll,brrr-epoll
#   bench/instructions.sh --cache_sim --servers=brrr-poll,libevent+EVENT_NOEPOLL=1 --scenarios=pipe64
#   bench/instructions.sh --help
#
# Prints a markdown table ready for bench/README.md, then one JSON line per run.
# Needs: bazel, taskset, python3, valgrind (callgrind, callgrind_control), ss.
set -euo pipefail

WINDOW=3
WARMUP=2
SERVER_CPU=0
LOAD_CPU=1
LOAD=ring
KEEP_DIR=""
CACHE_SIM=0
BUILD_FLAGS=()

BENCH_NAME=bench/instructions.sh
# shellcheck source=bench/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
SERVERS="$BENCH_SERVERS"
SCENARIOS="pp1 pp64 pipe64 conn1000 big4"

usage() {
  cat << EOF
Usage: bench/instructions.sh [options]

  --servers=LIST     space- or comma-separated, from: $BENCH_SERVERS;
                     $BENCH_SETTINGS_HELP
  --scenarios=LIST   from: $BENCH_SCENARIOS (default: $SCENARIOS)
  --window=S         seconds counted per run, inside the load (default $WINDOW)
  --warmup=S         seconds of load before counting starts (default $WARMUP)
  --load=MODE        $BENCH_LOAD_HELP (default $LOAD)
  --baseline=DIR     another build's bazel-out/k8-opt/bin: runs base:brrr-NAME from it
  --keep=DIR         keep each run's callgrind file there (callgrind_annotate FILE shows
                     where the instructions are, function by function)
  --cache_sim        also simulate the caches (callgrind --cache-sim=yes, this machine's
                     geometry) and report the first-level data cache misses per message of
                     the server's user-space code: the cost of the memory it touches, which an
                     instruction count does not show (the kernel's accesses are not in it)
  --debug_info       build with -g too, so that callgrind_annotate --auto=yes on a kept
                     file shows the instructions line by line (run it from the top of the
                     repository: the sources are named /proc/self/cwd/...)
  --build_flag=FLAG  one more flag for bazel build -c opt (repeatable), for an experiment
                     (e.g. --build_flag=--copt=-flto=auto --build_flag=--linkopt=-flto=auto)
  --server_cpu=C     CPU the server is pinned to (default $SERVER_CPU)
  --load_cpu=C       CPU the load generator is pinned to (default $LOAD_CPU)

Exit codes: 0 done, 1 a run failed (a server died, no message was counted, or the load
generator saw a mismatch), 2 bad options or a missing tool.
EOF
}

for arg in "$@"; do
  case "$arg" in
    --servers=*) SERVERS="${arg#*=}" ;;
    --scenarios=*) SCENARIOS="${arg#*=}" ;;
    --window=*) WINDOW="${arg#*=}" ;;
    --warmup=*) WARMUP="${arg#*=}" ;;
    --load=*) LOAD="${arg#*=}" ;;
    --baseline=*) bench_use_baseline "${arg#*=}" ;;
    --keep=*) KEEP_DIR="${arg#*=}" ;;
    --debug_info) BUILD_FLAGS+=(--copt=-g) ;;
    --cache_sim) CACHE_SIM=1 ;;
    --build_flag=*) BUILD_FLAGS+=("${arg#*=}") ;;
    --server_cpu=*) SERVER_CPU="${arg#*=}" ;;
    --load_cpu=*) LOAD_CPU="${arg#*=}" ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $arg" ;;
  esac
done
bench_check_counted_runs
bench_need bazel taskset python3 valgrind callgrind_control ss
bench_check_cpus "$SERVER_CPU" "$LOAD_CPU"
bench_describe_machine

cd "$(dirname "$0")/.."
BIN="$(bench_build "${BUILD_FLAGS[@]}" //server/brrr-echo //bench:brrr-bench //bench/peers:all)"
WORK="$(mktemp -d /tmp/brrr-instructions.XXXXXX)"
[[ -z "$KEEP_DIR" ]] || mkdir -p "$KEEP_DIR"
SERVER_PID=""
cleanup() {
  [[ -z "$SERVER_PID" ]] || bench_stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
# Every server bench_start_server starts runs under callgrind, counting nothing until told.
BENCH_WRAPPER=(valgrind --tool=callgrind --instr-atstart=no --dump-instr=yes "--callgrind-out-file=$WORK/callgrind.%p")
((CACHE_SIM == 0)) || BENCH_WRAPPER+=(--cache-sim=yes)
BENCH_READY_SECONDS=60

RAW="$WORK/runs.jsonl"
: > "$RAW"
failures=0
for scenario in $SCENARIOS; do
  read -r -a load_args <<< "$(bench_scenario_args "$scenario") $(bench_load_flags "$LOAD")"
  size=""
  for a in "${load_args[@]}"; do [[ "$a" != --size=* ]] || size="${a#--size=}"; done
  for server in $SERVERS; do
    echo "$BENCH_NAME: $server, $(bench_scenario_title "$scenario") ..." >&2
    bench_start_server "$server" "$SERVER_CPU" 2000
    # The load runs well past the window (callgrind_control can take seconds to reach a busy
    # server under callgrind: with 1,000 connections a load that ended 1.5 s after the window
    # was meant to close had often ended inside it) and is ended once the window is counted.
    duration=$(python3 -c "print(float('$WINDOW') + 60)")
    taskset -c "$LOAD_CPU" "$BIN/bench/brrr-bench" --port="$PORT" "${load_args[@]}" \
      --warmup="${WARMUP}s" --duration="${duration}s" --progress=false --json > "$WORK/load.out" 2>&1 &
    load_pid=$!
    sleep "$(python3 -c "print(float('$WARMUP') + 0.5)")"
    callgrind_control --instr=on "$SERVER_PID" > /dev/null 2>&1
    sent0="$(bench_sent_bytes "$PORT")"
    sleep "$WINDOW"
    sent1="$(bench_sent_bytes "$PORT")"
    callgrind_control --instr=off "$SERVER_PID" > /dev/null 2>&1
    callgrind_control --dump "$SERVER_PID" > /dev/null 2>&1
    kill -TERM "$load_pid" 2> /dev/null || true  # ends its run early, with its report
    load_rc=0
    wait "$load_pid" || load_rc=$?
    bench_stop_server
    dump=""
    for f in "$WORK"/callgrind.*.1; do [[ ! -s "$f" ]] || dump="$f"; done  # the first dump
    if [[ "$load_rc" != 0 || -z "$dump" ]]; then
      echo "$BENCH_NAME: $server, $scenario: the run failed (load exit $load_rc):" >&2
      tail -3 "$WORK/load.out" >&2
      failures=$((failures + 1))
      rm -f "$WORK"/callgrind.*
      continue
    fi
    mv "$dump" "$WORK/counts"
    [[ -z "$KEEP_DIR" ]] || cp "$WORK/counts" "$KEEP_DIR/callgrind.${server//[^A-Za-z0-9_.=+-]/_}.$scenario"
    rm -f "$WORK"/callgrind.*
    python3 - "$server" "$scenario" "$size" "$sent0" "$sent1" "$WORK/counts" >> "$RAW" << 'PY' || failures=$((failures + 1))
import json, re, sys
server, scenario, size, sent0, sent1, path = sys.argv[1:]
messages = (int(sent1) - int(sent0)) / int(size)
if messages <= 0:
    sys.exit(f"bench/instructions.sh: {server}, {scenario}: no message counted in the window")
# The callgrind file (its format: valgrind's docs, "Callgrind Format Specification"): "ob="
# names the object the cost lines after it belong to, "(id) name" the first time and "(id)"
# after (a "cob=", the object a call goes to, may name it first); a cost line is the positions
# ("positions:" names them: here the instruction's address in its object, then the line) and
# the event counts ("events:" names them, Ir first); a position may be given relative to the
# previous cost line's ("+N", "-N", "*" the same), that line a call's too; the cost line after
# a "calls=" line is what that call cost inside the callee, counted there already; "totals:"
# is the sum of the file's own costs, event by event.
names = {}
obj = "?"
total = 0
by_object = {}
by_page = {}  # (object, 4 KiB page of its code) -> instructions
after_call = False
totals = None
events = ["Ir"]
positions = ["line"]
address = 0
for line in open(path, errors="replace"):
    if line.startswith("events:"):
        events = line.split()[1:]
        continue
    if line.startswith("positions:"):
        positions = line.split()[1:]
        continue
    if line.startswith("totals:"):
        totals = [int(v) for v in line.split()[1:]]
        continue
    if line.startswith(("ob=", "cob=")):
        m = re.match(r"c?ob=(?:\((\d+)\))?\s*(.*)$", line.rstrip("\n"))
        if m.group(1) and m.group(2):
            names[m.group(1)] = m.group(2)  # a "cob=" may name an object first
        if line.startswith("ob="):
            obj = names.get(m.group(1), m.group(2)) if m.group(1) else m.group(2)
        continue
    if line.startswith("calls="):
        after_call = True
        continue
    if line[:1] in "0123456789+-*":
        fields = line.split()
        if positions[0] == "instr":
            at = fields[0]
            address = address if at == "*" else address + int(at, 0) if at[0] in "+-" else int(at, 0)
        if after_call:
            after_call = False
            continue
        if len(fields) > len(positions):
            count = int(fields[len(positions)])
            total += count
            page = (obj, address >> 12)
            by_page[page] = by_page.get(page, 0) + count
            name = obj.rsplit("/", 1)[-1]
            if name == "brrr-echo" or name.endswith("_echo"):  # brrr-echo or a bench/peers server
                group = "executable"
            elif name.startswith(("libbrrr_reactor_", "libuv.so", "libevent", "liburing")):
                group = "library"
            elif name.startswith(("libc.so", "ld-linux")):
                group = "libc"
            else:
                group = "other"
            by_object[group] = by_object.get(group, 0) + count
if totals is None or events[0] != "Ir" or abs(totals[0] - total) > totals[0] / 1000:
    sys.exit(f"bench/instructions.sh: {server}, {scenario}: the file's totals ({totals}) are not "
             f"the sum of its cost lines ({total}): a callgrind format this script does not know")
# With --cache_sim: the first-level data cache's read and write misses (D1mr, D1mw).
misses = {}
if "D1mr" in events and "D1mw" in events:
    totals += [0] * (len(events) - len(totals))  # trailing zero counts may be left out
    d1 = totals[events.index("D1mr")] + totals[events.index("D1mw")]
    misses = {"l1_data_misses_per_message": round(d1 / messages, 3)}
if positions[0] != "instr":
    sys.exit(f"bench/instructions.sh: {server}, {scenario}: the file has no instruction addresses "
             f"(positions: {' '.join(positions)}): callgrind ran without --dump-instr=yes")
# The fewest pages of code that hold 99% of the instructions.
code_pages, held = 0, 0
for count in sorted(by_page.values(), reverse=True):
    if held >= 0.99 * total:
        break
    code_pages, held = code_pages + 1, held + count
print(json.dumps({"server": server, "scenario": scenario, "messages": round(messages),
                  "instructions_per_message": round(total / messages), "code_pages": code_pages,
                  **{f"{g}_per_message": round(c / messages) for g, c in sorted(by_object.items())},
                  **misses}))
PY
  done
done

python3 - "$RAW" << 'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
cache = any("l1_data_misses_per_message" in r for r in runs)
print("| server | scenario | messages counted | user instructions / msg | executable | backend plugin or event library | libc | other libraries | code pages (99% of them) |"
      + (" L1 data misses / msg (simulated) |" if cache else ""))
print("|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if cache else ""))
for r in runs:
    print(f"| {r['server']} | {r['scenario']} | {r['messages']:,} | {r['instructions_per_message']:,} | "
          f"{r.get('executable_per_message', 0):,} | {r.get('library_per_message', 0):,} | "
          f"{r.get('libc_per_message', 0):,} | {r.get('other_per_message', 0):,} | {r['code_pages']} |"
          + (f" {r.get('l1_data_misses_per_message', '-')} |" if cache else ""))
print()
for r in runs:
    print(json.dumps(r))
PY
[[ "$failures" == 0 ]] || exit 1
