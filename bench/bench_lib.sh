# shellcheck shell=bash
# bench/bench_lib.sh: what the benchmark scripts share, sourced by each of them (bench/echo.sh,
# bench/ab.sh, bench/targets.sh, bench/profile.sh, bench/instructions.sh, bench/pages.sh,
# bench/metrics_overhead.sh, bench/watch_overhead.sh): the error that ends a script, the tools
# it needs, the CPUs it pins to and how they idle, the optimized build of what it runs (and
# another build to compare with), and the wait for a server it started to say that it is
# ready; and the echo servers and load scenarios bench/echo.sh, bench/ab.sh, bench/profile.sh,
# bench/instructions.sh and bench/pages.sh run (bench_start_server, bench_scenario_args,
# bench_connection_counts); and the frame of the two that measure what watching a server costs
# (bench_watch_rounds, bench_threads_cpu_ns...).
# Not a script of its own.
#
#   BENCH_NAME=bench/foo.sh                        # the name errors start with
#   source "$(dirname "$0")/bench_lib.sh"
#   bench_need bazel taskset python3               # exit 2, "needs taskset", if one is missing
#   cd "$(dirname "$0")/.."
#   BIN="$(bench_build //server/brrr-echo //bench:brrr-bench)"
#   "$BIN/server/brrr-echo/brrr-echo" --port="$PORT" > "$LOG" 2>&1 &
#   bench_wait_ready $! "$LOG" "listening on" "brrr-echo did not start"

# die MESSAGE...: says what is wrong, as $BENCH_NAME, and exits 2 (bad options, a missing tool,
# a server that did not start).
die() {
  echo "$BENCH_NAME: $*" >&2
  exit 2
}

# bench_need TOOL...: dies unless every TOOL is on the PATH.
bench_need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" > /dev/null || die "needs $tool"
  done
}

# bench_build TARGET...: builds the targets with -c opt (Bazel's output to stderr) and prints
# the directory they are in. Run from the top of the repository.
bench_build() {
  echo "$BENCH_NAME: building with -c opt ..." >&2
  bazel build -c opt "$@" >&2
  bazel info -c opt bazel-bin 2> /dev/null
}

# bench_wait_ready PID LOG TEXT WHAT: waits (up to BENCH_READY_SECONDS, default 10) until LOG,
# the output of the server PID, holds TEXT; if it never does, or the server exits first, prints
# LOG and dies with WHAT.
bench_wait_ready() {
  local pid="$1" log="$2" text="$3" what="$4"
  for _ in $(seq 1 $((${BENCH_READY_SECONDS:-10} * 20))); do
    if grep -q "$text" "$log"; then return 0; fi
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  die "$what"
}

# ---- the echo servers and scenarios of bench/echo.sh and bench/profile.sh ----

# The servers bench_start_server knows, and the load scenarios bench_scenario_args knows.
BENCH_SERVERS="brrr-io_uring brrr-epoll brrr-poll brrr-select libuv libevent asio liburing"
BENCH_SCENARIOS="pp1 pp64 pipe64 conn1000 big4 big1"

# Another build's output tree, its bazel-out/k8-opt/bin (bench/echo.sh --baseline):
# bench_start_server runs "base:brrr-NAME" from it, so two builds of brrr-echo alternate in one
# run. Empty: no baseline.
BENCH_BASELINE_BIN=""

# bench_use_baseline DIR: makes DIR, another build's bazel-out/k8-opt/bin, the baseline
# (BENCH_BASELINE_BIN, absolute); dies unless it holds a brrr-echo.
bench_use_baseline() {
  [[ -x "$1/server/brrr-echo/brrr-echo" ]] ||
    die "--baseline=$1: no server/brrr-echo/brrr-echo in it (build it there with bazel build -c opt //server/brrr-echo)"
  BENCH_BASELINE_BIN="$(cd "$1" && pwd -P)"
}

# bench_check_cpus SERVER_CPU LOAD_CPU: dies unless this machine has both CPUs.
bench_check_cpus() {
  local cores
  cores=$(nproc)
  (($1 < cores && $2 < cores)) || die "this machine has $cores CPU(s); pick --server_cpu and --load_cpu below that"
}

# bench_describe_machine: one line on stderr of what sets the pace of a sleeping server's
# wake-up besides the servers themselves: the CPUs, the kernel, and how an idle CPU waits (the
# cpuidle driver, and for a guest's haltpoll driver how long it polls before it halts). On a VM
# whose idle CPUs halt at once, each wake-up of a sleeping server is an exit to the hypervisor,
# and at 1 connection that sets every server's round trip (bench/JOURNAL.md, twenty-third run).
bench_describe_machine() {
  local model idle="" poll_ns
  model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2> /dev/null)
  idle=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2> /dev/null) || idle="none"
  if [[ "$idle" == haltpoll ]] && poll_ns=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns 2> /dev/null); then
    if [[ "$poll_ns" == 0 ]]; then idle="$idle, halts at once (guest_halt_poll_ns 0)"; else idle="$idle, polls up to $poll_ns ns before it halts"; fi
  fi
  echo "$BENCH_NAME: machine: $(nproc) CPUs (${model:-unknown}), Linux $(uname -r), idle: ${idle:-none}" >&2
}

# A server's name may carry settings, each after a '+': NAME+VAR=VALUE runs it with VAR=VALUE
# in its environment (e.g. brrr-io_uring+BRRR_IO_URING_BUNDLES=0, or libevent+EVENT_NOEPOLL=1,
# libevent on its poll backend), and a brrr server's brrr-NAME+--flag=value passes --flag=value
# to brrr-echo (e.g. brrr-epoll+--recv_buffer_size=65536), so that two settings of one build can
# be compared side by side. BENCH_SETTINGS_HELP says so in a --help.
BENCH_SETTINGS_HELP="a server may carry settings: NAME+VAR=VALUE (its environment, e.g.
                     libevent+EVENT_NOEPOLL=1), brrr-NAME+--flag=value (a brrr-echo flag),
                     several joined by '+'"

# bench_split_settings NAME: sets BENCH_ENV and BENCH_FLAGS (arrays) from NAME's settings; dies
# on one that is neither VAR=VALUE nor --flag, or on a flag for a server that is not brrr's.
bench_split_settings() {
  local name="$1" setting settings=()
  BENCH_ENV=()
  BENCH_FLAGS=()
  [[ "$name" == *+* ]] || return 0
  IFS=+ read -r -a settings <<< "${name#*+}"
  for setting in "${settings[@]}"; do
    case "$setting" in
      --?*)
        [[ "$name" == brrr-* || "$name" == base:brrr-* ]] ||
          die "server '$name': only brrr servers take flags ('$setting'); a peer takes VAR=VALUE settings"
        BENCH_FLAGS+=("$setting")
        ;;
      [A-Za-z_]*=*) BENCH_ENV+=("$setting") ;;
      *) die "server '$name': setting '$setting' is neither VAR=VALUE nor --flag=value" ;;
    esac
  done
}

# bench_check_servers LIST: dies unless every name in LIST is one bench_start_server knows,
# with settings it can use.
bench_check_servers() {
  local s
  for s in $1; do
    bench_split_settings "$s"
    s="${s%%+*}"
    if [[ -n "$BENCH_BASELINE_BIN" && "$s" == base:brrr-* ]]; then s="${s#base:}"; fi
    [[ " $BENCH_SERVERS " == *" $s "* ]] || die "unknown server '$s' (known: $BENCH_SERVERS)"
  done
}

# bench_check_counted_runs: for the scripts that count a window inside one load per server and
# scenario (bench/instructions.sh, bench/pages.sh): turns SERVERS and SCENARIOS (comma- or
# space-separated) into space-separated lists, and dies unless each server and scenario is one
# bench_start_server and bench_scenario_args know, LOAD is one mode, and WINDOW and WARMUP are
# seconds.
bench_check_counted_runs() {
  SERVERS="${SERVERS//,/ }"
  SCENARIOS="${SCENARIOS//,/ }"
  bench_check_servers "$SERVERS"
  local s
  for s in $SCENARIOS; do bench_scenario_args "$s" > /dev/null; done
  [[ "$(bench_load_modes "$LOAD")" == "$LOAD" ]] || die "--load takes one mode here: sleep, busy or ring"
  [[ "$WINDOW" =~ ^[0-9]+([.][0-9]+)?$ && "$WARMUP" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
    die "--window and --warmup take seconds, not '$WINDOW' and '$WARMUP'"
}

# bench_scenario_args SCENARIO: brrr-bench's flags for it (dies if unknown).
bench_scenario_args() {
  case "$1" in
    pp1) echo "--connections=1 --size=64 --depth=1" ;;
    pp64) echo "--connections=64 --size=64 --depth=1" ;;
    pipe64) echo "--connections=64 --size=64 --depth=16" ;;
    conn1000) echo "--connections=1000 --size=64 --depth=1" ;;
    big4) echo "--connections=4 --size=65536 --depth=1" ;;
    big1) echo "--connections=1 --size=65536 --depth=1" ;;
    *) die "unknown scenario '$1' (known: $BENCH_SCENARIOS)" ;;
  esac
}

# bench_scenario_title SCENARIO: what it is, in words.
bench_scenario_title() {
  case "$1" in
    pp1) echo "1 connection, ping-pong 64 B" ;;
    pp64) echo "64 connections, ping-pong 64 B" ;;
    pipe64) echo "64 connections, pipelined depth 16, 64 B" ;;
    conn1000) echo "1,000 connections, ping-pong 64 B" ;;
    big4) echo "4 connections, 64 KiB messages" ;;
    big1) echo "1 connection, 64 KiB messages" ;;
  esac
}

# bench_load_modes MODE: the load modes MODE (sleep, busy, ring, both or all) stands for; dies
# (exit 2) if it is none of them. bench_load_flags MODE: brrr-bench's flags for one load mode:
# "sleep" is brrr-bench on brrr's event loops, "busy" is brrr-bench --busy_poll, "ring" is
# brrr-bench --busy_ring (it spins too, on io_uring, with far fewer system calls per message).
BENCH_LOAD_HELP="sleep (brrr-bench on brrr's event loops), busy (--busy_poll), ring (--busy_ring)"
bench_load_modes() {
  case "$1" in
    sleep | busy | ring) echo "$1" ;;
    both) echo "sleep busy" ;;
    all) echo "sleep busy ring" ;;
    *) die "--load takes sleep, busy, ring, both or all, not '$1'" ;;
  esac
}
bench_load_flags() {
  case "$1" in
    busy) echo "--busy_poll" ;;
    ring) echo "--busy_ring" ;;
  esac
}

# bench_start_server NAME CPU MAX_CONNECTIONS: starts the echo server NAME pinned to CPU on port
# 0 (the kernel picks a free one, so no start collides with a port still in use), its output in
# a log of its own under $WORK, and waits until it listens; sets SERVER_PID (the server itself:
# taskset execs it) and PORT (from its "listening on HOST:PORT" line). Needs BIN
# (bench_build's directory, with //server/brrr-echo and //bench/peers built) and WORK. With
# BENCH_WRAPPER (an array: a command and its options, such as valgrind's) the server runs
# under that command, which must exec it in the same process.
BENCH_STARTS=0
BENCH_WRAPPER=()
bench_start_server() {
  local name="$1" cpu="$2" max_connections="$3" server="${1%%+*}"
  bench_split_settings "$name"
  BENCH_STARTS=$((BENCH_STARTS + 1))
  # A log of its own: the shell truncates a reused one only once the server's process has
  # started, after bench_wait_ready may have read the previous server's "listening on".
  local log="$WORK/server-$BENCH_STARTS-${name//[^A-Za-z0-9_.=+-]/_}.log"
  : > "$log"
  case "$server" in
    brrr-*) env "${BENCH_ENV[@]}" taskset -c "$cpu" "${BENCH_WRAPPER[@]}" "$BIN/server/brrr-echo/brrr-echo" --backend="${server#brrr-}" \
      --port=0 --max_connections="$max_connections" "${BENCH_FLAGS[@]}" > "$log" 2>&1 &
      ;;
    base:brrr-*)
      [[ -n "$BENCH_BASELINE_BIN" ]] || die "unknown server '$name': no baseline build given"
      env "${BENCH_ENV[@]}" taskset -c "$cpu" "${BENCH_WRAPPER[@]}" "$BENCH_BASELINE_BIN/server/brrr-echo/brrr-echo" \
        --backend="${server#base:brrr-}" --port=0 --max_connections="$max_connections" "${BENCH_FLAGS[@]}" \
        > "$log" 2>&1 &
      ;;
    libuv) env "${BENCH_ENV[@]}" taskset -c "$cpu" "${BENCH_WRAPPER[@]}" "$BIN/bench/peers/libuv_echo" 0 > "$log" 2>&1 & ;;
    libevent) env "${BENCH_ENV[@]}" taskset -c "$cpu" "${BENCH_WRAPPER[@]}" "$BIN/bench/peers/libevent_echo" 0 > "$log" 2>&1 & ;;
    asio) env "${BENCH_ENV[@]}" taskset -c "$cpu" "${BENCH_WRAPPER[@]}" "$BIN/bench/peers/asio_echo" 0 > "$log" 2>&1 & ;;
    liburing) env "${BENCH_ENV[@]}" taskset -c "$cpu" "${BENCH_WRAPPER[@]}" "$BIN/bench/peers/liburing_echo" 0 > "$log" 2>&1 & ;;
    *) die "unknown server '$name' (known: $BENCH_SERVERS)" ;;
  esac
  SERVER_PID=$!
  bench_wait_ready "$SERVER_PID" "$log" "listening on [^ ]*:[1-9]" "$name did not start"
  PORT="$(grep -o -m1 'listening on [^ ]*:[0-9]*' "$log" | sed 's/.*://')"
}

# bench_connection_counts PORT NAME...: the kernel's counts NAME (ss -ti's names: bytes_sent,
# segs_out, data_segs_out, segs_in, data_segs_in...) summed over the open connections of the
# server listening on PORT, on one line in that order (0 for a name ss does not show).
bench_connection_counts() {
  local port="$1"
  shift
  ss -tinH state established "( sport = :$port )" | awk -v names="$*" '
    BEGIN {n = split(names, name, " ")}
    {for (i = 1; i <= NF; i++) {split($i, f, ":"); sum[f[1]] += f[2]}}
    END {for (k = 1; k <= n; k++) printf "%s%.0f", (k > 1 ? " " : ""), sum[name[k]]; print ""}'
}

# bench_sent_bytes PORT: the bytes the server listening on PORT has sent on its open
# connections; its echoes, counted by the kernel.
bench_sent_bytes() { bench_connection_counts "$1" bytes_sent; }

# bench_stop_server: stops SERVER_PID (SIGTERM, then SIGKILL after 5 s) and clears it.
bench_stop_server() {
  kill -TERM "$SERVER_PID" 2> /dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2> /dev/null || break
    sleep 0.05
  done
  kill -KILL "$SERVER_PID" 2> /dev/null || true
  wait "$SERVER_PID" 2> /dev/null || true
  SERVER_PID=""
}

# ---- the cost of watching a server (bench/metrics_overhead.sh, bench/watch_overhead.sh) ----
# One brrr-echo (SERVER_PID, echo port PORT) under the brrr-bench load, without and with a
# watcher (WATCHER_PID: a scraper, a WatchStats stream), alternating in one run. The script
# defines run MODE, one measured run, and sets LOAD, DURATION, WARMUP, LOAD_CPU and ROUNDS.
SERVER_PID=""
WATCHER_PID=""

# bench_watch_cleanup: the EXIT trap: kills the watcher, stops the server, removes WORK.
bench_watch_cleanup() {
  if [[ -n "$WATCHER_PID" ]]; then kill -KILL "$WATCHER_PID" 2> /dev/null || true; fi
  if [[ -n "$SERVER_PID" ]]; then bench_stop_server; fi
  rm -rf "$WORK"
}

# bench_stop_watcher SIGNAL: stops WATCHER_PID with SIGNAL and waits for it.
bench_stop_watcher() {
  kill "-$1" "$WATCHER_PID" 2> /dev/null || true
  wait "$WATCHER_PID" 2> /dev/null || true
  WATCHER_PID=""
}

# bench_threads_cpu_ns [+NAME | -NAME]: the CPU time (ns) the server's threads have used: all
# of them, only the threads named NAME (+NAME), or all but those (-NAME).
bench_threads_cpu_ns() {
  local filter="${1:-}" total=0 t name
  for t in /proc/"$SERVER_PID"/task/*; do
    name="$(cat "$t/comm" 2> /dev/null)" || continue
    case "$filter" in
      +*) [[ "$name" == "${filter#+}" ]] || continue ;;
      -*) [[ "$name" == "${filter#-}" ]] && continue ;;
    esac
    total=$((total + $(cut -d' ' -f1 "$t/schedstat" 2> /dev/null || echo 0)))
  done
  echo "$total"
}

# bench_watch_load: one measured run of the load (pinned to LOAD_CPU); prints its JSON result,
# or nothing if it failed (bench_watch_check_load says so).
bench_watch_load() {
  # shellcheck disable=SC2086
  taskset -c "$LOAD_CPU" "$BIN/bench/brrr-bench" --port="$PORT" $LOAD --duration="$DURATION" \
    --warmup="$WARMUP" --progress=false 2> "$WORK/load.err" | grep '^{' || true
}

# bench_watch_check_load MODE JSON: exits 1, with the load's errors, unless JSON is a result.
bench_watch_check_load() {
  if [[ "$2" != *'"ok":true'* ]]; then
    cat "$WORK/load.err" >&2
    echo "$BENCH_NAME: $1 run failed: ${2:-no result}" >&2
    exit 1
  fi
}

# bench_watch_rounds MODE: ROUNDS rounds of `run off` and `run MODE` (ROUND set), the order
# alternating from round to round so that slow drifts of the machine cancel out.
bench_watch_rounds() {
  for ROUND in $(seq 1 "$ROUNDS"); do
    echo "round $ROUND" >&2
    if ((ROUND % 2)); then
      run off
      run "$1"
    else
      run "$1"
      run off
    fi
  done
}
