#!/usr/bin/env bash
# bench/profile.sh: where each echo server's time goes. For every server and scenario (the same
# names as bench/echo.sh), it runs brrr-bench against the server pinned to one core (the load on
# another) and, over a window inside the measured period, records from the server process:
#   messages/s (brrr-bench's), server CPU microseconds per message (/proc/PID/task/*/schedstat)
#   and the kernel vs user share of it (with --perf_record from perf's samples, else from
#   /proc/PID/stat utime/stime: clock ticks, 100 a second at most, so rough; marked "~"), system calls per message (perf stat -e
#   raw_syscalls:sys_enter; strace -c if perf cannot, which slows the server: marked), context
#   switches per message (voluntary + involuntary, summed over /proc/PID/task/*/status), the
#   TCP segments its connections sent and received per message and how many of them carried no
#   data (ss -ti: the kernel's TCP work), and the ratio of CPU per message to the floor
#   (bench/floor: the whole exchange, both ends, in one C loop on the server's core; a server
#   does half of that exchange plus its loop's work).
# Prints a markdown table ready for bench/README.md, then one JSON line per figure set.
#
#   bench/profile.sh --servers=brrr-epoll,libuv --scenarios=pp64 --duration=2
#   bench/profile.sh --perf_record     # also a perf record -g per run: its share by DSO
#   bench/profile.sh --help
#
# The window is 60% of the measured period, from 0.2 s after the warm-up on; the messages
# echoed in it come from the server's sockets' bytes_sent (ss -ti), or without ss from
# brrr-bench's messages/s times the window's length.
# Needs: bazel, taskset, python3; perf (or strace) for system calls; perf for --perf_record.
set -euo pipefail

DURATION=5
WARMUP=1
SERVER_CPU=0
LOAD_CPU=1
LOAD=busy
FLOOR_SECONDS=2
PERF_RECORD=0
PERF_DIR=""

BENCH_NAME=bench/profile.sh
# shellcheck source=bench/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
SERVERS="$BENCH_SERVERS"
SCENARIOS="pp64 pipe64 conn1000 big4"

usage() {
  cat << EOF
Usage: bench/profile.sh [options]

  --servers=LIST     space- or comma-separated, from: $BENCH_SERVERS;
                     $BENCH_SETTINGS_HELP
  --scenarios=LIST   from: $BENCH_SCENARIOS (default: $SCENARIOS)
  --duration=S       measured seconds per run, at least 1 (default $DURATION)
  --warmup=S         unmeasured seconds before each run (default $WARMUP)
  --load=MODE        $BENCH_LOAD_HELP, both (sleep and busy) or all; a
                     busy load never makes the server wait for it (default $LOAD)
  --floor_seconds=S  how long bench/floor runs per message size; 0 skips the floor (default $FLOOR_SECONDS)
  --perf_record      also record each server with perf record -g (in a second run of the
                     scenario) and print its CPU share by DSO and its top symbols
  --perf_dir=DIR     where the perf.data files go (default: a new /tmp/brrr-profile.* directory)
  --server_cpu=C     CPU the server (and the floor) is pinned to (default $SERVER_CPU)
  --load_cpu=C       CPU the load generator is pinned to (default $LOAD_CPU)

Exit codes: 0 done, 1 a run failed (a server died or the load generator saw a mismatch),
2 bad options or a missing tool.
EOF
}

for arg in "$@"; do
  case "$arg" in
    --servers=*) SERVERS="${arg#*=}" ;;
    --scenarios=*) SCENARIOS="${arg#*=}" ;;
    --duration=*) DURATION="${arg#*=}" ;;
    --warmup=*) WARMUP="${arg#*=}" ;;
    --load=*) LOAD="${arg#*=}" ;;
    --floor_seconds=*) FLOOR_SECONDS="${arg#*=}" ;;
    --perf_record) PERF_RECORD=1 ;;
    --perf_dir=*) PERF_DIR="${arg#*=}" ;;
    --server_cpu=*) SERVER_CPU="${arg#*=}" ;;
    --load_cpu=*) LOAD_CPU="${arg#*=}" ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $arg" ;;
  esac
done
SERVERS="${SERVERS//,/ }"
SCENARIOS="${SCENARIOS//,/ }"
bench_check_servers "$SERVERS"
for s in $SCENARIOS; do bench_scenario_args "$s" > /dev/null; done
number='^[0-9]+([.][0-9]+)?$'
if ! [[ "$DURATION" =~ $number ]] || python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 1)" "$DURATION"; then
  die "--duration takes seconds, at least 1, not '$DURATION'"
fi
[[ "$WARMUP" =~ $number ]] || die "--warmup takes seconds, not '$WARMUP'"
[[ "$FLOOR_SECONDS" =~ $number ]] || die "--floor_seconds takes seconds, not '$FLOOR_SECONDS'"
LOADS="$(bench_load_modes "$LOAD")" || exit 2

bench_need bazel taskset python3
bench_check_cpus "$SERVER_CPU" "$LOAD_CPU"
bench_describe_machine
if command -v perf > /dev/null && perf stat -e raw_syscalls:sys_enter -- true > /dev/null 2>&1; then
  COUNTER=perf
elif command -v strace > /dev/null; then
  COUNTER=strace
  echo "$BENCH_NAME: perf cannot count system calls here; strace -c counts them, and slows the server" >&2
else
  COUNTER=""
  echo "$BENCH_NAME: neither perf (with tracepoints) nor strace: no system-call counts" >&2
fi
if ((PERF_RECORD)); then
  perf record -g -o /dev/null -- true > /dev/null 2>&1 || die "--perf_record: perf record does not work here (perf_event_paranoid, or no perf)"
fi

cd "$(dirname "$0")/.."
BIN="$(bench_build //server/brrr-echo //bench:brrr-bench //bench:floor //bench/peers:all)"
ulimit -n 4000 2> /dev/null || true

WORK="$(mktemp -d /tmp/brrr-profile-work.XXXXXX)"
if ((PERF_RECORD)); then
  [[ -n "$PERF_DIR" ]] || PERF_DIR="$(mktemp -d /tmp/brrr-profile.XXXXXX)"
  mkdir -p "$PERF_DIR"
fi
SERVER_PID=""
LOAD_PID=""
cleanup() {
  if [[ -n "$LOAD_PID" ]]; then kill -KILL "$LOAD_PID" 2> /dev/null || true; fi
  if [[ -n "$SERVER_PID" ]]; then kill -KILL "$SERVER_PID" 2> /dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
CLK_TCK=$(getconf CLK_TCK)
RAW="$WORK/raw.jsonl"
: > "$RAW"
failures=0
# The counted window: 60% of the measured period, from 0.2 s into it, so that starting perf
# on a busy machine does not make it outlast the run.
WINDOW=$(python3 -c "print(round(float('$DURATION') * 0.6, 3))")
HALF_WINDOW=$(python3 -c "print($WINDOW / 2)")
BEFORE_WINDOW=$(python3 -c "print(float('$WARMUP') + 0.2)")

# snapshot PID PORT: one line, the figures the window is the difference of: the time, the
# server's user and system clock ticks (/proc/PID/stat), its nanoseconds on a CPU (schedstat,
# exact where the ticks are not), its voluntary and involuntary context switches (summed over
# its threads), what its open connections have sent and received (bytes echoed, TCP segments
# sent and those of them with data, received and those with data; -1 each without ss; a
# segment without data is an acknowledgement on its own, a window update or a FIN), and the
# TCP segments this machine has retransmitted (/proc/net/snmp: on loopback only a dropped
# packet does that, and its timeout stalls the run).
snapshot() {
  local pid="$1" port="$2" ticks ns switches sockets="-1 -1 -1 -1 -1" retransmitted
  ticks="$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')"
  ns="$(cat /proc/"$pid"/task/*/schedstat 2> /dev/null | awk '{ns += $1} END {printf "%.0f", ns}')"
  switches="$(cat /proc/"$pid"/task/*/status 2> /dev/null |
    awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v + 0, n + 0}')"
  if command -v ss > /dev/null; then
    sockets="$(bench_connection_counts "$port" bytes_sent segs_out data_segs_out segs_in data_segs_in)"
  fi
  retransmitted="$(awk '/^Tcp:/ {if (seen++) {for (i = 1; i <= NF; i++) if (name[i] == "RetransSegs") print $i} else for (i = 1; i <= NF; i++) name[i] = $i}' /proc/net/snmp)"
  echo "$(date +%s.%N) $ticks $ns $switches $sockets ${retransmitted:-0}"
}

export -f snapshot bench_connection_counts

# count_window PID PORT SECONDS: snapshots PID into $WORK/snap0, waits SECONDS, snapshots it
# into $WORK/snap1, and prints the system calls PID made in between (empty if not counted).
# With perf the snapshots run inside perf stat's own command, so its count covers them.
count_window() {
  local pid="$1" port="$2" seconds="$3"
  # shellcheck disable=SC2016 # expanded by the bash -c below, from its arguments
  local window='snapshot "$1" "$2" > "$3"; sleep "$4"; snapshot "$1" "$2" > "$5"'
  local args=("$pid" "$port" "$WORK/snap0" "$seconds" "$WORK/snap1")
  case "$COUNTER" in
    perf)
      perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$WORK/count" -- bash -c "$window" _ "${args[@]}" > /dev/null 2>&1 || true
      grep raw_syscalls "$WORK/count" | cut -d, -f1
      ;;
    strace)
      strace -c -f -q -p "$pid" -o "$WORK/count" &
      local tracer=$!
      sleep 0.2  # attached
      bash -c "$window" _ "${args[@]}"
      kill -INT "$tracer" 2> /dev/null || true
      wait "$tracer" 2> /dev/null || true
      awk '$NF == "total" {print $(NF-2)}' "$WORK/count"
      ;;
    *) bash -c "$window" _ "${args[@]}" ;;
  esac
}

# start_load SCENARIO LOAD: brrr-bench pinned to LOAD_CPU, in the background (LOAD_PID).
start_load() {
  # shellcheck disable=SC2046
  taskset -c "$LOAD_CPU" "$BIN/bench/brrr-bench" --port="$PORT" $(bench_scenario_args "$1") \
    --duration="${DURATION}s" --warmup="${WARMUP}s" --progress=false $(bench_load_flags "$2") > "$WORK/load.out" 2> "$WORK/load.err" &
  LOAD_PID=$!
}

# finish_load: waits for brrr-bench; sets LOAD_JSON to its JSON line (empty if it failed). Not
# in a $(...): only this shell can wait for the load.
finish_load() {
  wait "$LOAD_PID" 2> /dev/null || true
  LOAD_PID=""
  LOAD_JSON="$(grep '^{' "$WORK/load.out" | grep '"ok":true' || true)"
}

# ---- the floor, per message size and depth (a pipelined window goes in one exchange) ----
shapes="$(for s in $SCENARIOS; do bench_scenario_args "$s" | sed 's/.*--size=\([0-9]*\) --depth=\([0-9]*\).*/\1:\2/'; done | sort -u)"
if [[ "$FLOOR_SECONDS" != 0 && "$FLOOR_SECONDS" != 0.0 ]]; then
  for shape in $shapes; do
    size="${shape%:*}" batch="${shape#*:}"
    if out="$(taskset -c "$SERVER_CPU" "$BIN/bench/floor" --size="$size" --batch="$batch" --seconds="$FLOOR_SECONDS")"; then
      echo "  $(head -1 <<< "$out")" >&2
      grep '^{' <<< "$out" >> "$RAW"
    else
      echo "$BENCH_NAME: bench/floor --size=$size --batch=$batch failed" >&2
      failures=$((failures + 1))
    fi
  done
fi

# ---- each server, scenario and load ----
for scenario in $SCENARIOS; do
  for load in $LOADS; do
    for name in $SERVERS; do
      bench_start_server "$name" "$SERVER_CPU" 4000
      start_load "$scenario" "$load"
      sleep "$BEFORE_WINDOW"
      : > "$WORK/snap0"
      : > "$WORK/snap1"
      calls="$(count_window "$SERVER_PID" "$PORT" "$WINDOW")"
      if ! kill -0 "$LOAD_PID" 2> /dev/null; then
        echo "$BENCH_NAME: $name / $scenario / $load load: the counted window outlasted the run; give a longer --duration" >&2
        finish_load
        bench_stop_server
        failures=$((failures + 1))
        continue
      fi
      finish_load
      json="$LOAD_JSON"
      dso=""
      if ((PERF_RECORD)) && [[ -n "$json" ]]; then
        data="$PERF_DIR/$name-$scenario-$load.perf.data"
        start_load "$scenario" "$load"
        sleep "$BEFORE_WINDOW"
        # Half the window each try: in this kind of VM a perf record now and then gets no sample.
        for _ in 1 2; do
          perf record -g -p "$SERVER_PID" -o "$data" -- sleep "$HALF_WINDOW" > /dev/null 2>&1 || true
          dso="$(perf report -i "$data" --no-children --sort dso --stdio -g none 2> /dev/null |
            awk '/^ +[0-9.]+%/ {printf "%s%s %s", sep, $2, $1; sep=", "}')"
          [[ -z "$dso" ]] || break
        done
        finish_load
        echo "  perf record | $name, $scenario, $load load: by DSO: ${dso:-no samples}" >&2
        { perf report -i "$data" --no-children --sort dso,sym --stdio -g none 2> /dev/null || true; } |
          awk '/^ +[0-9.]+%/ && n++ < 12 {print "      " $0}' >&2
      fi
      bench_stop_server
      if [[ -z "$json" ]]; then
        echo "$BENCH_NAME: $name / $scenario / $load load failed" >&2
        cat "$WORK/load.out" "$WORK/load.err" >&2
        failures=$((failures + 1))
        continue
      fi
      read -r -a w0 < "$WORK/snap0"
      read -r -a w1 < "$WORK/snap1"
      if ((${#w0[@]} != 12 || ${#w1[@]} != 12)); then
        echo "$BENCH_NAME: $name / $scenario / $load load: the server's figures could not be read" >&2
        failures=$((failures + 1))
        continue
      fi
      echo "{\"kind\":\"raw\",\"server\":\"$name\",\"scenario\":\"$scenario\",\"load\":\"$load\",\"t0\":${w0[0]},\"t1\":${w1[0]},\"clk_tck\":$CLK_TCK,\"user_ticks\":$((w1[1] - w0[1])),\"system_ticks\":$((w1[2] - w0[2])),\"cpu_ns\":$((w1[3] - w0[3])),\"voluntary_switches\":$((w1[4] - w0[4])),\"involuntary_switches\":$((w1[5] - w0[5])),\"echoed_bytes\":$(((w0[6] < 0) ? -1 : w1[6] - w0[6])),\"segments_out\":$(((w0[7] < 0) ? -1 : w1[7] - w0[7])),\"data_segments_out\":$(((w0[8] < 0) ? -1 : w1[8] - w0[8])),\"segments_in\":$(((w0[9] < 0) ? -1 : w1[9] - w0[9])),\"data_segments_in\":$(((w0[10] < 0) ? -1 : w1[10] - w0[10])),\"retransmitted_segments\":$((w1[11] - w0[11])),\"syscalls\":${calls:-null},\"counter\":\"$COUNTER\",\"perf_by_dso\":\"$dso\",\"result\":$json}" >> "$RAW"
      echo "  $name, $scenario, $load load: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f msg/s" % r["messages_per_second"])' "$json")" >&2
    done
  done
done

# ---- the table and the JSON lines ----
python3 - "$RAW" << 'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
floors = {(r["size"], r["batch"]): r for r in rows if r["kind"] == "floor"}
titles = {"pp1": "1 conn ping-pong", "pp64": "64 conns ping-pong", "pipe64": "64 conns pipelined x16",
          "conn1000": "1,000 conns ping-pong", "big4": "4 conns, 64 KiB", "big1": "1 conn, 64 KiB"}
# The kernel's part of "[kernel.kallsyms] 89.59%, brrr-echo 5.68%, ..." (None without samples).
def perf_kernel_share(by_dso):
    if not by_dso: return None
    parts = [p.rsplit(" ", 1) for p in by_dso.split(", ")]
    return round(sum(float(pct.rstrip("%")) for dso, pct in parts if dso.startswith("[kernel")) / 100, 3)
out = []
for r in rows:
    if r["kind"] != "raw": continue
    res = r["result"]
    r["window_s"] = r["t1"] - r["t0"]
    # The messages the server echoed in the window, from its sockets' byte counts (ss), else
    # brrr-bench's average rate over the window.
    if r["echoed_bytes"] > 0:
        messages = r["echoed_bytes"] / res["size"]
    else:
        messages = res["messages_per_second"] * r["window_s"]
    cpu_s = r["cpu_ns"] / 1e9
    ticks = r["user_ticks"] + r["system_ticks"]
    cpu_us = cpu_s * 1e6 / messages if messages else float("nan")
    floor = floors.get((res["size"], res["depth"]))
    def per_message(count):  # a count from ss (-1 each without it) over the window's messages
        return round(count / messages, 3) if r["echoed_bytes"] > 0 else None
    p = {"kind": "profile", "server": r["server"], "scenario": r["scenario"], "load": r["load"],
         "messages_per_second": res["messages_per_second"], "window_s": round(r["window_s"], 3),
         "window_messages": round(messages), "window_counted_by": "ss" if r["echoed_bytes"] > 0 else "rate",
         "server_cpu_utilization": round(cpu_s / r["window_s"], 3),
         "cpu_us_per_message": round(cpu_us, 3),
         "kernel_share_ticks": round(r["system_ticks"] / ticks, 3) if ticks else None, "cpu_ticks": ticks,
         "kernel_share_perf": perf_kernel_share(r["perf_by_dso"]),
         "syscalls_per_message": round(r["syscalls"] / messages, 3) if r["syscalls"] is not None and messages else None,
         "syscall_counter": r["counter"] or None,
         "context_switches_per_message": round((r["voluntary_switches"] + r["involuntary_switches"]) / messages, 4) if messages else None,
         "voluntary_switches": r["voluntary_switches"], "involuntary_switches": r["involuntary_switches"],
         "floor_cpu_us_per_message": floor["cpu_us_per_message"] if floor else None,
         "cpu_vs_floor": round(cpu_us / floor["cpu_us_per_message"], 2) if floor else None,
         # The server's TCP segments per message, sent and received, and of them those that
         # carried no data (acknowledgements on their own): None without ss.
         "segments_out_per_message": per_message(r["segments_out"]),
         "segments_in_per_message": per_message(r["segments_in"]),
         "bare_acks_out_per_message": per_message(r["segments_out"] - r["data_segments_out"]),
         "bare_acks_in_per_message": per_message(r["segments_in"] - r["data_segments_in"]),
         "retransmitted_segments": r["retransmitted_segments"], "perf_by_dso": r["perf_by_dso"] or None}
    out.append(p)
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
print()
for (size, batch), fl in sorted(floors.items()):
    print(f"Floor ({size} B, {batch} to an exchange, both ends in one loop on one core): {fl['messages_per_second']:.0f} msg/s, "
          f"{fl['cpu_us_per_message']:.2f} CPU us/msg ({fl['system_us_per_message']:.2f} system), "
          f"{fl['syscalls_per_message']:.2f} system calls/msg")
print()
# "server busy": the server's CPU time over the window's length; under 100% the server waited
# for the load generator, and its CPU per message then carries less batching than a
# saturated server's.
# "segments/msg": the server's TCP segments per message, sent / received, and in brackets those
# without data (acknowledgements on their own): the kernel's TCP work. Two servers that make
# the same calls but differ here differ in what the order of their calls makes TCP do.
print("| scenario | load | server | msg/s | server busy | server CPU us/msg | kernel share | user share | syscalls/msg | ctx switches/msg | segments/msg out / in (no data) | CPU/msg vs floor |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in out:
    # perf record's samples (thousands) where there are some, else the clock ticks (dozens
    # to hundreds: rough, marked with ~).
    ks = p["kernel_share_perf"]
    mark = ""
    if ks is None:
        ks, mark = p["kernel_share_ticks"], "~"
    bang = " !" if p["retransmitted_segments"] else ""
    print(f"| {titles.get(p['scenario'], p['scenario'])} | {p['load']} | {p['server']}{bang} | {p['messages_per_second']:.0f} | "
          f"{p['server_cpu_utilization'] * 100:.0f}% | {f(p['cpu_us_per_message'], '.2f')} | {mark}{f(None if ks is None else ks * 100, '.0f')}% | "
          f"{mark}{f(None if ks is None else 100 - ks * 100, '.0f')}% | {f(p['syscalls_per_message'], '.2f')} | "
          f"{f(p['context_switches_per_message'], '.3f')} | {f(p['segments_out_per_message'], '.3f')} "
          f"({f(p['bare_acks_out_per_message'], '.3f')}) / {f(p['segments_in_per_message'], '.3f')} "
          f"({f(p['bare_acks_in_per_message'], '.3f')}) | {f(p['cpu_vs_floor'], '.2f')}x |")
if any(p["retransmitted_segments"] for p in out):
    print("\n!: TCP segments were retransmitted on this machine during the window (a dropped loopback "
          "packet, and its timeout, stall a run): run it again on a quieter machine")
if any(p["kernel_share_perf"] is None for p in out):
    print("\n~: kernel and user shares from the server's clock ticks (/proc/PID/stat, 100 a second at "
          "most): rough; --perf_record takes them from perf's samples instead")
if any(p["syscall_counter"] == "strace" for p in out):
    print("\n(system calls counted with strace, which slows the server: msg/s and CPU/msg of those runs are not comparable)")
print()
for fl in floors.values(): print(json.dumps(fl))
for p in out: print(json.dumps(p))
EOF

if ((PERF_RECORD)); then echo "$BENCH_NAME: perf.data files in $PERF_DIR" >&2; fi
if ((failures > 0)); then
  echo "$BENCH_NAME: $failures run(s) failed" >&2
  exit 1
fi
