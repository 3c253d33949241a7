#!/usr/bin/env bash
# bench/echo.sh: the side-by-side echo benchmark. In one run, alternating between servers,
# with the server pinned to one core and the load generator (brrr-bench) to another:
#   brrr-echo on io_uring, epoll, poll and select, and the peers in bench/peers (libuv driven as
#   Node.js drives it, libevent with raw events and a direct send, Boost.Asio with C++20
#   coroutines, liburing with multishot receives into provided buffers; bench/README.md, "The
#   peers", says how each is written).
# Scenarios: 1 and 64 connections ping-pong 64 B; 64 connections pipelined depth 16;
# 1,000 connections ping-pong; 4 connections 64 KiB messages. Then server memory per idle
# connection at 10,000 connections, and system calls per echoed message (with
# --syscall_breakdown, per system call: which calls each server makes, and how many per message).
# Each figure comes twice, labelled by load: "sleep", brrr-bench on brrr's event loops (it
# sleeps in the kernel between messages, as most clients do), and "busy", brrr-bench
# --busy_poll (it spins, so the server's figures carry no wake-up of the load generator); with
# --load=ring or all also "ring", brrr-bench --busy_ring (it spins on io_uring, with far fewer
# system calls per message, so a server that needs less CPU per message than the busy load
# generator shows it in msg/s).
# Prints each figure (the median of the rounds) and its ratio to the best peer, and the
# server's CPU time per message over the measured period (brrr-bench --server_pid): the figure
# that compares servers where the one-core load generator, not the server, sets the pace.
# Every server binds port 0 and says which port it got on its "listening on" line, so no start
# can collide with a port still in use; each start writes a log of its own.
#
#   bench/echo.sh                      # the full run (about 10 minutes on 2 cores)
#   bench/echo.sh --rounds=1 --duration=1s --idle=1000   # a quick look
#   bench/echo.sh --scenarios=none --idle=0 --syscall_breakdown   # system calls only, per call
#   bench/echo.sh --baseline=/tmp/old/bazel-out/k8-opt/bin --servers=brrr-io_uring   # two builds, A/B
#   bench/echo.sh --help
#
# Needs: bazel, taskset, python3; perf (or strace) for the system-call counts, strace for
# --syscall_breakdown. Run as root or with a hard RLIMIT_NOFILE above --idle.
set -euo pipefail

BENCH_NAME=bench/echo.sh
# shellcheck source=bench/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"

ROUNDS=3
DURATION=3s
WARMUP=1s
IDLE=10000
SERVER_CPU=0
LOAD_CPU=1
SERVERS="$BENCH_SERVERS"
SCENARIOS="pp1 pp64 pipe64 conn1000 big4"
SYSCALLS=1
BREAKDOWN=0
LOAD=both

usage() {
  cat <<EOF
Usage: bench/echo.sh [options]

  --rounds=N         rounds per scenario; servers alternate within a round (default $ROUNDS)
  --duration=D       measured time per run, as brrr-bench takes it (default $DURATION)
  --warmup=D         unmeasured time before each run (default $WARMUP)
  --servers=LIST     space- or comma-separated, from: $SERVERS;
                     $BENCH_SETTINGS_HELP
  --scenarios=LIST   from: $SCENARIOS; "none" runs no throughput scenario
  --idle=N           idle connections for the memory figure; 0 skips it (default $IDLE)
  --no-syscalls      skip the system-calls-per-message figure
  --syscall_breakdown  count with strace -c -f (even where perf works) and print, per server,
                     each system call's count per message: which calls, and how many. strace
                     slows the server, so its totals are a count, not a speed.
  --load=MODE        one load, or both (sleep and busy) or all (the three), each figure
                     labelled by its load (default $LOAD). The loads:
                     $BENCH_LOAD_HELP
  --baseline=DIR     the output tree of another build of brrr-echo: a worktree at another
                     commit, after bazel build -c opt //server/brrr-echo there, gives
                     WORKTREE/bazel-out/k8-opt/bin (not bazel-bin, which follows that tree's
                     last build, tests included). Every brrr server listed also runs from it,
                     as base:brrr-NAME, alternating with this build's
  --server_cpu=C     CPU the server is pinned to (default $SERVER_CPU)
  --load_cpu=C       CPU the load generator is pinned to (default $LOAD_CPU)

Exit codes: 0 done, 1 a run failed (a server died or the load generator saw a mismatch),
2 bad options or a missing tool.
EOF
}


for arg in "$@"; do
  case "$arg" in
    --rounds=*) ROUNDS="${arg#*=}" ;;
    --duration=*) DURATION="${arg#*=}" ;;
    --warmup=*) WARMUP="${arg#*=}" ;;
    --servers=*) SERVERS="${arg#*=}" ;;
    --scenarios=*) SCENARIOS="${arg#*=}" ;;
    --idle=*) IDLE="${arg#*=}" ;;
    --no-syscalls) SYSCALLS=0 ;;
    --syscall_breakdown) BREAKDOWN=1 ;;
    --load=*) LOAD="${arg#*=}" ;;
    --baseline=*) BENCH_BASELINE_BIN="${arg#*=}" ;;
    --server_cpu=*) SERVER_CPU="${arg#*=}" ;;
    --load_cpu=*) LOAD_CPU="${arg#*=}" ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $arg" ;;
  esac
done
SERVERS="${SERVERS//,/ }"
SCENARIOS="${SCENARIOS//,/ }"
if [[ "$SCENARIOS" == none ]]; then SCENARIOS=""; fi
if [[ -n "$BENCH_BASELINE_BIN" ]]; then
  bench_use_baseline "$BENCH_BASELINE_BIN"
  for s in $SERVERS; do
    # Each brrr server's baseline twin, once (also when the list names it already).
    if [[ "$s" == brrr-* && " $SERVERS " != *" base:$s "* ]]; then SERVERS="$SERVERS base:$s"; fi
  done
fi
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$ROUNDS'"
[[ "$IDLE" =~ ^[0-9]+$ ]] || die "--idle must be a count, not '$IDLE'"
bench_check_servers "$SERVERS"
LOADS="$(bench_load_modes "$LOAD")" || exit 2

scenario_args() { bench_scenario_args "$@"; }
scenario_title() { bench_scenario_title "$@"; }
for s in $SCENARIOS; do scenario_args "$s" > /dev/null; done

bench_need bazel taskset python3
bench_check_cpus "$SERVER_CPU" "$LOAD_CPU"
bench_describe_machine

cd "$(dirname "$0")/.."
BIN="$(bench_build //server/brrr-echo //bench:brrr-bench //bench/peers:all)"

# Room for --idle connections on both ends (and the 1,000-connection scenario).
want_fds=$((IDLE + 2000))
ulimit -n "$want_fds" 2> /dev/null || ulimit -n "$(ulimit -Hn)"
if ((IDLE > 0 && $(ulimit -n) < IDLE + 100)); then
  die "RLIMIT_NOFILE is $(ulimit -n); --idle=$IDLE needs more (run as root, or lower --idle)"
fi

WORK="$(mktemp -d /tmp/brrr-echo-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill -KILL "$SERVER_PID" 2> /dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

failures=0

# start_server NAME: bench_lib.sh's, pinned to SERVER_CPU; sets SERVER_PID, PORT. stop_server.
start_server() { bench_start_server "$1" "$SERVER_CPU" $((IDLE + 2000)); }
stop_server() { bench_stop_server; }

# run_load SCENARIO [extra brrr-bench flags]: one measured run; prints brrr-bench's JSON line.
run_load() {
  local scenario="$1"
  shift
  # shellcheck disable=SC2046
  taskset -c "$LOAD_CPU" "$BIN/bench/brrr-bench" --port="$PORT" $(scenario_args "$scenario") \
    --duration="$DURATION" --warmup="$WARMUP" --progress=false "$@" 2> "$WORK/load.err" |
    grep '^{' || true
}

RESULTS="$WORK/results.jsonl"
: > "$RESULTS"

# ---- throughput and latency, alternating servers ----
read -r -a server_list <<< "$SERVERS"
# Every server under every load mode, as "server/load".
runs=()
for name in "${server_list[@]}"; do for load in $LOADS; do runs+=("$name/$load"); done; done
count=${#runs[@]}
for scenario in $SCENARIOS; do
  for round in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((count - 1))); do
      # Each round starts with a different server, so no server always runs first or last.
      run="${runs[$(((i + round - 1) % count))]}"
      name="${run%/*}" load="${run#*/}"
      start_server "$name"
      # shellcheck disable=SC2046
      json="$(run_load "$scenario" --server_pid="$SERVER_PID" $(bench_load_flags "$load"))"
      stop_server
      if [[ -z "$json" || "$json" != *'"ok":true'* ]]; then
        echo "bench/echo.sh: $name / $scenario / $load load round $round failed: ${json:-no result}" >&2
        cat "$WORK/load.err" >&2
        failures=$((failures + 1))
        continue
      fi
      echo "{\"kind\":\"load\",\"server\":\"$name\",\"load\":\"$load\",\"scenario\":\"$scenario\",\"round\":$round,\"result\":$json}" >> "$RESULTS"
      echo "  $(scenario_title "$scenario") | round $round | $name, $load load: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f msg/s, %.1f MB/s, p50 %.0f us, p99 %.0f us, server CPU %.2f us/msg" % (r["messages_per_second"], r["mb_per_second"], r["p50_us"], r["p99_us"], r["server_cpu_us_per_msg"]))' "$json")" >&2
    done
  done
done

# ---- server memory per idle connection ----
# Opens N connections, echoes one byte on each (so the server has accepted and armed every
# one), holds them, and reports the server's RSS before and while they are open.
cat > "$WORK/idle.py" << 'EOF'
import os, socket, sys, time
port, count, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("server gone")
before = rss_kib()
conns = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x")
    conns.append(s)
for s in conns:
    if s.recv(1) != b"x":
        raise SystemExit("an idle connection was not echoed")
time.sleep(0.5)
after = rss_kib()
print(f'{{"rss_before_kib":{before},"rss_after_kib":{after},"connections":{count},'
      f'"bytes_per_connection":{(after - before) * 1024 / count:.0f}}}')
EOF
if ((IDLE > 0)); then
  for name in "${server_list[@]}"; do
    if [[ "${name%%+*}" == *brrr-select ]]; then
      echo "  idle memory | $name: skipped (select cannot watch descriptors >= FD_SETSIZE, 1024)" >&2
      continue
    fi
    start_server "$name"
    sleep 0.2
    if json="$(taskset -c "$LOAD_CPU" python3 "$WORK/idle.py" "$PORT" "$IDLE" "$SERVER_PID")"; then
      echo "{\"kind\":\"idle\",\"server\":\"$name\",\"result\":$json}" >> "$RESULTS"
      echo "  idle memory | $name: $json" >&2
    else
      echo "bench/echo.sh: idle connections on $name failed" >&2
      failures=$((failures + 1))
    fi
    stop_server
  done
fi

# ---- system calls per echoed message (64 connections ping-pong, and pipelined) ----
# perf counts every system call the server makes while the load runs (raw_syscalls:sys_enter,
# cheap); strace -c -f also says which calls they are (--syscall_breakdown), at the cost of
# stopping the server at each one. Either way the count covers the server's threads from just
# before the load connects to just after it ends.
# strace_counts FILE: strace -c's summary as JSON, {"total": calls, "calls": {"name": calls}}
# (its columns: % time, seconds, usecs/call, calls, [errors], syscall).
strace_counts() {
  python3 - "$1" << 'PYEOF'
import json, sys
calls = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0].replace(".", "").isdigit() and f[3].isdigit() and f[-1] != "total":
        calls[f[-1]] = int(f[3])
if calls:
    print(json.dumps({"total": sum(calls.values()), "calls": calls}, separators=(",", ":")))
PYEOF
}
if ((SYSCALLS || BREAKDOWN)); then
  if ((BREAKDOWN)); then
    command -v strace > /dev/null || die "--syscall_breakdown needs strace"
    counter=strace
  elif command -v perf > /dev/null && perf stat -e raw_syscalls:sys_enter -- true > /dev/null 2>&1; then
    counter=perf
  elif command -v strace > /dev/null; then
    counter=strace
  else
    counter=""
    echo "bench/echo.sh: neither perf (with tracepoints) nor strace: no system-call counts" >&2
  fi
  if [[ -n "$counter" ]]; then
    for scenario in pp64 pipe64; do
      for run in "${runs[@]}"; do
        name="${run%/*}" load="${run#*/}"
        start_server "$name"
        rm -f "$WORK/count"
        if [[ "$counter" == perf ]]; then
          perf stat -x, -e raw_syscalls:sys_enter -p "$SERVER_PID" -o "$WORK/count" &
        else
          strace -c -f -q -p "$SERVER_PID" -o "$WORK/count" &
        fi
        counter_pid=$!
        sleep 0.3
        # shellcheck disable=SC2046
        json="$(run_load "$scenario" --warmup=0s $(bench_load_flags "$load"))"
        kill -INT "$counter_pid" 2> /dev/null || true
        wait "$counter_pid" 2> /dev/null || true
        stop_server
        breakdown=""
        if [[ "$counter" == perf ]]; then
          calls="$(grep raw_syscalls "$WORK/count" | cut -d, -f1)"
        else
          breakdown="$(strace_counts "$WORK/count")"
          calls="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total"])' "${breakdown:-null}" 2> /dev/null || true)"
        fi
        if [[ -z "$json" || ! "$calls" =~ ^[0-9]+$ || "$json" != *'"ok":true'* ]]; then
          echo "bench/echo.sh: syscall count for $name / $scenario / $load load failed" >&2
          failures=$((failures + 1))
          continue
        fi
        echo "{\"kind\":\"syscalls\",\"server\":\"$name\",\"load\":\"$load\",\"scenario\":\"$scenario\",\"counter\":\"$counter\",\"syscalls\":$calls,\"breakdown\":${breakdown:-null},\"result\":$json}" >> "$RESULTS"
        echo "  syscalls | $(scenario_title "$scenario") | $name, $load load: $calls system calls" >&2
      done
    done
  fi
fi

# ---- the table ----
python3 - "$RESULTS" "$SCENARIOS" "$LOADS" << 'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
titles = {"pp1": "1 connection, ping-pong 64 B", "pp64": "64 connections, ping-pong 64 B",
          "pipe64": "64 connections, pipelined depth 16, 64 B",
          "conn1000": "1,000 connections, ping-pong 64 B", "big4": "4 connections, 64 KiB messages",
          "big1": "1 connection, 64 KiB messages"}
peers = ("libuv", "libevent", "asio", "liburing")
loads = {"sleep": "load sleeping in the kernel", "busy": "busy-polling load", "ring": "busy-polling load on io_uring"}
def med(values): return statistics.median(values) if values else float("nan")
print()
for scenario, load in [(s, l) for s in sys.argv[2].split() for l in sys.argv[3].split()]:
    runs = [r for r in rows if r["kind"] == "load" and r["scenario"] == scenario and r["load"] == load]
    if not runs: continue
    servers = list(dict.fromkeys(r["server"] for r in runs))
    fig = {s: {k: med([r["result"][k] for r in runs if r["server"] == s])
               for k in ("messages_per_second", "mb_per_second", "p50_us", "p99_us", "server_cpu_us_per_msg")}
           for s in servers}
    best_peer = max((fig[p]["messages_per_second"] for p in peers if p in fig), default=None)
    n = max(len([r for r in runs if r["server"] == s]) for s in servers)
    print(f"{titles[scenario]}, {loads[load]} (median of {n})")
    print(f"  {'server':<19} {'msg/s':>11} {'MB/s':>9} {'p50 us':>8} {'p99 us':>8} {'vs best peer':>13} {'CPU us/msg':>11}")
    for s in servers:
        f = fig[s]
        ratio = f"{f['messages_per_second'] / best_peer:.2f}x" if best_peer else "-"
        print(f"  {s:<19} {f['messages_per_second']:>11.0f} {f['mb_per_second']:>9.1f} {f['p50_us']:>8.0f} "
              f"{f['p99_us']:>8.0f} {ratio:>13} {f['server_cpu_us_per_msg']:>11.2f}")
    print()
idle = [r for r in rows if r["kind"] == "idle"]
if idle:
    print(f"Server memory per idle connection ({idle[0]['result']['connections']} connections, RSS growth)")
    for r in idle:
        res = r["result"]
        print(f"  {r['server']:<19} {res['bytes_per_connection']:>7.0f} B  (RSS {res['rss_before_kib']} -> {res['rss_after_kib']} KiB)")
    print()
sc = [r for r in rows if r["kind"] == "syscalls"]
if sc:
    print(f"System calls per echoed message (server side, counted with {sc[0]['counter']})")
    for scenario, load in [(s, l) for s in ("pp64", "pipe64") for l in sys.argv[3].split()]:
        part = [r for r in sc if r["scenario"] == scenario and r["load"] == load]
        if not part: continue
        print(f"  {titles[scenario]}, {loads[load]}")
        for r in part:
            msgs = r["result"]["messages"]
            print(f"    {r['server']:<19} {r['syscalls'] / msgs if msgs else float('nan'):>7.3f}  ({r['syscalls']} calls, {msgs} messages)")
    print()
    detailed = [r for r in sc if r.get("breakdown")]
    for scenario in ("pp64", "pipe64"):
        part = [r for r in detailed if r["scenario"] == scenario]
        if not part: continue
        print(f"  Per system call, per message: {titles[scenario]} (calls under 0.01 per message left out)")
        for r in part:
            msgs = r["result"]["messages"] or float("nan")
            calls = sorted(r["breakdown"]["calls"].items(), key=lambda kv: -kv[1])
            shown = ", ".join(f"{name} {n / msgs:.3f}" for name, n in calls if n / msgs >= 0.01)
            who = f"{r['server']}, {r['load']}"
            print(f"    {who:<20} {r['syscalls'] / msgs:>7.3f} = {shown or 'each call under 0.01'}")
        print()
EOF

if ((failures > 0)); then
  echo "bench/echo.sh: $failures run(s) failed" >&2
  exit 1
fi
