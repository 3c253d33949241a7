#!/usr/bin/env bash
# tools/demo_block.sh: block a running brrr-echo's loop on purpose and watch what it does.
#
# With load from brrr-bench running, it injects a BLOCKING_SPIN on loop 0 (the tutorial's
# busy-wait), asks for the loop's socket list a few times meanwhile (each request is work
# queued for the loop), and samples GetStats every 100 ms: the current task and how long it
# has held the loop (the lag of everything queued behind it), the work queued for the loop
# (ready tasks plus calls posted from other threads), I/O in flight, the stall count. Then the
# same with a NONBLOCKING_SLEEP (asyncio.sleep), which the loop runs alongside everything else.
#
#   bazel run //server/brrr-echo -- --admin_port=5001 &      # in another terminal
#   tools/demo_block.sh                                       # or --target=HOST:PORT --block=2s
#
# Needs: bazel (to build brrrctl and brrr-bench), python3.
set -euo pipefail

TARGET=127.0.0.1:5001
BLOCK=1s
TOKEN_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --target=*) TARGET="${arg#*=}" ;;
    --block=*) BLOCK="${arg#*=}" ;;
    --token_file=*) TOKEN_ARGS=("$arg") ;;
    -h | --help)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
      echo "Options: --target=HOST:PORT (default $TARGET), --block=DURATION (default $BLOCK), --token_file=PATH"
      exit 0
      ;;
    *)
      echo "tools/demo_block.sh: unknown option $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

cd "$(dirname "$0")/.."
bazel build //control/brrrctl //bench:brrr-bench 2> /dev/null
BIN="$(bazel info bazel-bin 2> /dev/null)"
ctl() { "$BIN/control/brrrctl/brrrctl" --target="$TARGET" "${TOKEN_ARGS[@]}" "$@"; }

info="$(ctl info --json)" || exit $?
port="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["listening_addresses"][0].rsplit(":", 1)[1])' "$info")"
echo "brrr-echo at port $port, admin plane at $TARGET"

# Loop 0, every 100 ms for 4 s: one line per sample.
watch_loop0() {
  ctl --json watch --interval=100ms --count=40 | python3 -u -c '
import json, sys
print("%8s  %-26s %8s %7s %5s %6s" % ("uptime", "running now", "held ms", "queued", "io", "stalls"))
for line in sys.stdin:
    s = json.loads(line)
    l = s["loops"][0]
    print("%8.1f  %-26s %8.0f %7d %5d %6d" % (s["uptime_seconds"], l["current_task"] or "(waiting for I/O)",
          l["current_task_running_ms"], l["ready_queue_depth"] + l["threadsafe_queue_depth"], l["io_in_flight"],
          l["stalls"]))
'
}

for kind in blocking-spin nonblocking-sleep; do
  echo
  echo "== $kind for $BLOCK on loop 0, with 64 pipelining clients =="
  "$BIN/bench/brrr-bench" --port="$port" --connections=64 --depth=8 --duration=4s --progress=false > /dev/null 2>&1 &
  watch_loop0 &
  sleep 1
  ctl inject "$kind" --duration="$BLOCK" --loop=0 > /dev/null
  for _ in 1 2 3; do
    sleep 0.1
    ctl sockets --loop=0 --limit=1 > /dev/null &
  done
  wait
done
echo
echo "Stalls recorded (brrrctl stalls --include_recent shows them as they happen):"
ctl stats --json | python3 -c 'import json,sys; l=json.load(sys.stdin)["loops"][0]; print("  loop 0: %d stalls, longest %.0f ms (%s)" % (l["stalls"], l["longest_task_ms"], l["longest_task"]))'
