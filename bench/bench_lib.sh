# shellcheck shell=bash
# bench/bench_lib.sh: what the benchmark scripts share, sourced by each of them (bench/echo.sh,
# bench/metrics_overhead.sh, bench/watch_overhead.sh): the error that ends a script, the tools
# it needs, the optimized build of what it runs, and the wait for a server it started to say
# that it is ready. Not a script of its own.
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

# bench_wait_ready PID LOG TEXT WHAT: waits (up to 10 s) until LOG, the output of the server
# PID, holds TEXT; if it never does, or the server exits first, prints LOG and dies with WHAT.
bench_wait_ready() {
  local pid="$1" log="$2" text="$3" what="$4"
  for _ in $(seq 1 200); do
    if grep -q "$text" "$log"; then return 0; fi
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  die "$what"
}
