#!/usr/bin/env bash
# bench/drain_restart.sh: a restart of brrr-echo on one port under load, as a client sees it.
# brrr-echo A serves brrr-bench --reconnect; brrr-echo B joins the port (--share_port); A is
# drained (SIGTERM: its grace, its --drain_timeout, then the clean close at the deadline); the
# load goes on against B and ends with SIGINT. Prints A's summary and brrr-bench's report:
# clean closes, resets, refused connects, resent messages, and whether every byte came back.
#
#   bench/drain_restart.sh                                   # defaults below
#   bench/drain_restart.sh --connections=64 --drain_timeout=1s --drain_grace=500ms
#
# Loopback only; every step is bounded (the script gives up after 60 s per wait).
set -euo pipefail

PORT=5700
CONNECTIONS=16
DEPTH=8
SIZE=1000
GRACE=0s
TIMEOUT=1s
for arg in "$@"; do
  case "$arg" in
    --port=*) PORT="${arg#*=}" ;;
    --connections=*) CONNECTIONS="${arg#*=}" ;;
    --depth=*) DEPTH="${arg#*=}" ;;
    --size=*) SIZE="${arg#*=}" ;;
    --drain_grace=*) GRACE="${arg#*=}" ;;
    --drain_timeout=*) TIMEOUT="${arg#*=}" ;;
    *) echo "usage: bench/drain_restart.sh [--port=$PORT] [--connections=$CONNECTIONS] [--depth=$DEPTH]" \
            "[--size=$SIZE] [--drain_grace=$GRACE] [--drain_timeout=$TIMEOUT]" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
bazel build -c opt //server/brrr-echo //bench:brrr-bench //reactors:plugins >&2
BIN="$(bazel info -c opt bazel-bin 2>/dev/null)"
ECHO="$BIN/server/brrr-echo/brrr-echo"
BENCH="$BIN/bench/brrr-bench"
OUT="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$OUT"
}
trap cleanup EXIT

# Waits (60 s at most) until file $1 contains $2.
wait_for() {
  for _ in $(seq 600); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "drain_restart: gave up waiting for \"$2\" in $1" >&2
  cat "$1" >&2
  exit 1
}

"$ECHO" --port="$PORT" --drain_grace="$GRACE" --drain_timeout="$TIMEOUT" >"$OUT/a" 2>&1 &
A=$!; PIDS+=("$A")
wait_for "$OUT/a" "listening on"
"$BENCH" --port="$PORT" --reconnect --connections="$CONNECTIONS" --depth="$DEPTH" --size="$SIZE" \
  --duration=10m >"$OUT/bench" 2>"$OUT/bench.err" &
BENCH_PID=$!; PIDS+=("$BENCH_PID")
wait_for "$OUT/bench.err" " $CONNECTIONS connected"
"$ECHO" --port="$PORT" --share_port >"$OUT/b" 2>&1 &
B=$!; PIDS+=("$B")
wait_for "$OUT/b" "listening on"
kill -TERM "$A"
wait_for "$OUT/a" "drained in"
wait "$A" || true
sleep 1  # one more second of load against B alone
kill -INT "$BENCH_PID"
status=0
wait "$BENCH_PID" || status=$?
kill -TERM "$B"
wait "$B" || true
echo "== brrr-echo A (drained)"
cat "$OUT/a"
echo "== brrr-bench --reconnect (exit $status)"
cat "$OUT/bench"
