#!/usr/bin/env bash
# bench/pages.sh: how many 4 KiB pages of code and of data an echo server touches between two
# of its system calls, and which pages they are. Where each entry to the kernel empties the TLB
# (page-table isolation without PCID, as on this VM), the first touch of every page after a
# call costs a page walk, so a per-message path spread over many pages runs slower with the
# same instructions and the same calls (bench/JOURNAL.md, "The per-message path on six pages of
# code"). bench/instructions.sh counts the pages of code over a whole run; this counts both
# kinds per interval, as the TLB sees them.
#
# For every server and scenario (the names of bench/echo.sh) it starts the server under
# valgrind's lackey, which writes every instruction, load and store and every system call to a
# pipe; bench/pages_filter reads it, splits it at each system call of the server's busiest
# thread (its event loop's) and, for the intervals of a window inside the load, counts the
# distinct pages each one touched. Under lackey a server runs a few hundred times slower, so a
# loop finds more descriptors ready per wait than at full speed, and an interval between two
# waits holds more messages: compare servers with each other here, not with a real run.
#
#   bench/pages.sh --servers=brrr-poll,libevent+EVENT_NOEPOLL=1 --scenarios=pipe64
#   bench/pages.sh --pages --servers=brrr-poll --scenarios=pipe64    # and which pages
#   bench/pages.sh --baseline=/tmp/wt/bazel-out/k8-opt/bin --servers=base:brrr-poll,brrr-poll
#   bench/pages.sh --help
#
# Prints a markdown table ready for bench/README.md (and with --pages one table per run of the
# pages touched in at least 5% of the intervals), then one JSON line per run.
# Needs: bazel, taskset, python3, valgrind (lackey), addr2line.
set -euo pipefail

WINDOW=4
WARMUP=3
SERVER_CPU=0
LOAD_CPU=1
LOAD=ring
SHOW_PAGES=0
BUILD_FLAGS=()

BENCH_NAME=bench/pages.sh
# shellcheck source=bench/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
SERVERS="brrr-poll libevent+EVENT_NOEPOLL=1"
SCENARIOS="pipe64"

usage() {
  cat << EOF
Usage: bench/pages.sh [options]

  --servers=LIST     space- or comma-separated, from: $BENCH_SERVERS;
                     $BENCH_SETTINGS_HELP
                     (default: $SERVERS)
  --scenarios=LIST   from: $BENCH_SCENARIOS (default: $SCENARIOS)
  --window=S         seconds counted per run, inside the load (default $WINDOW)
  --warmup=S         seconds of load before counting starts (default $WARMUP)
  --load=MODE        $BENCH_LOAD_HELP (default $LOAD)
  --pages            also list each run's pages touched in at least 5% of the intervals: the
                     object or region each is in, and the functions that touched it first
                     (the three seen most often); in a library without a symbol table (libc,
                     libevent, libuv from Debian) only the nearest exported name
  --debug_info       build with -g too, so that --pages names the source line of each
                     first touch (which field of which object the page holds)
  --baseline=DIR     another build's bazel-out/k8-opt/bin: runs base:brrr-NAME from it
  --build_flag=FLAG  one more flag for bazel build -c opt (repeatable), for an experiment
  --server_cpu=C     CPU the server is pinned to (default $SERVER_CPU)
  --load_cpu=C       CPU the load generator is pinned to (default $LOAD_CPU)

Exit codes: 0 done, 1 a run failed (a server died, the trace held no interval of the window,
or the load generator saw a mismatch), 2 bad options or a missing tool.
EOF
}

for arg in "$@"; do
  case "$arg" in
    --servers=*) SERVERS="${arg#*=}" ;;
    --scenarios=*) SCENARIOS="${arg#*=}" ;;
    --window=*) WINDOW="${arg#*=}" ;;
    --warmup=*) WARMUP="${arg#*=}" ;;
    --load=*) LOAD="${arg#*=}" ;;
    --pages) SHOW_PAGES=1 ;;
    --debug_info) BUILD_FLAGS+=(--copt=-g) ;;
    --baseline=*) bench_use_baseline "${arg#*=}" ;;
    --build_flag=*) BUILD_FLAGS+=("${arg#*=}") ;;
    --server_cpu=*) SERVER_CPU="${arg#*=}" ;;
    --load_cpu=*) LOAD_CPU="${arg#*=}" ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $arg" ;;
  esac
done
bench_check_counted_runs
bench_need bazel taskset python3 valgrind addr2line
bench_check_cpus "$SERVER_CPU" "$LOAD_CPU"
bench_describe_machine

cd "$(dirname "$0")/.."
BIN="$(bench_build "${BUILD_FLAGS[@]}" //server/brrr-echo //bench:brrr-bench //bench:pages_filter //bench/peers:all)"
WORK="$(mktemp -d /tmp/brrr-pages.XXXXXX)"
SERVER_PID=""
FILTER_PID=""
cleanup() {
  [[ -z "$SERVER_PID" ]] || bench_stop_server
  [[ -z "$FILTER_PID" ]] || kill "$FILTER_PID" 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# Every server bench_start_server starts runs under lackey, its trace into the filter's pipe.
mkfifo "$WORK/trace"
BENCH_WRAPPER=(valgrind --tool=lackey --trace-mem=yes --trace-syscalls=yes "--log-file=$WORK/trace")
BENCH_READY_SECONDS=600  # a brrr-echo takes 1.5-2 minutes to start under lackey

RAW="$WORK/runs.jsonl"
: > "$RAW"
failures=0
for scenario in $SCENARIOS; do
  read -r -a load_args <<< "$(bench_scenario_args "$scenario") $(bench_load_flags "$LOAD")"
  for server in $SERVERS; do
    echo "$BENCH_NAME: $server, $(bench_scenario_title "$scenario") ..." >&2
    rm -f "$WORK/report" "$WORK/maps"
    "$BIN/bench/pages_filter" "$WORK/report" < "$WORK/trace" &
    FILTER_PID=$!
    bench_start_server "$server" "$SERVER_CPU" 2000
    duration=$(python3 -c "print(float('$WARMUP') + float('$WINDOW') + 60)")
    taskset -c "$LOAD_CPU" "$BIN/bench/brrr-bench" --port="$PORT" "${load_args[@]}" \
      --warmup=0s --duration="${duration}s" --progress=false --json > "$WORK/load.out" 2>&1 &
    load_pid=$!
    sleep "$WARMUP"
    # (A server or filter that died meanwhile leaves no report: the run fails below.)
    kill -USR1 "$FILTER_PID" 2> /dev/null || true
    sleep "$WINDOW"
    kill -USR2 "$FILTER_PID" 2> /dev/null || true
    cp "/proc/$SERVER_PID/maps" "$WORK/maps" 2> /dev/null || true
    # The filter writes its report at the next system call; under lackey that can take a while.
    for _ in $(seq 1 600); do
      [[ ! -s "$WORK/report" ]] || break
      sleep 0.1
    done
    kill -TERM "$load_pid" 2> /dev/null || true
    load_rc=0
    wait "$load_pid" || load_rc=$?
    bench_stop_server
    wait "$FILTER_PID" || true
    FILTER_PID=""
    if [[ "$load_rc" != 0 || ! -s "$WORK/report" || ! -s "$WORK/maps" ]]; then
      echo "$BENCH_NAME: $server, $scenario: the run failed (load exit $load_rc; the server's and the load's last lines):" >&2
      tail -n 3 "$WORK"/server-"$BENCH_STARTS"-* "$WORK/load.out" >&2
      failures=$((failures + 1))
      continue
    fi
    python3 - "$server" "$scenario" "$WORK/report" "$WORK/maps" >> "$RAW" << 'PY' || failures=$((failures + 1))
import bisect, collections, json, struct, subprocess, sys
server, scenario, report_path, maps_path = sys.argv[1:]
summary, syscalls, pages = {}, [], []
for line in open(report_path):
    f = line.split()
    if f[0] == "syscall":
        syscalls.append((f[1], int(f[2])))
    elif f[0] == "page":
        firsts = sorted(((int(n), int(ip, 16)) for ip, n in (x.split(":") for x in f[4:])), reverse=True)
        pages.append({"kind": f[1], "page": int(f[2], 16), "share": float(f[3]),
                      "firsts": [(ip, n / max(1, sum(c for c, _ in firsts))) for n, ip in firsts[:3]]})
    else:
        summary[f[0]] = float(f[1])
if not summary.get("intervals"):
    sys.exit(f"bench/pages.sh: {server}, {scenario}: no interval of the server's busiest thread in the window")

# The mappings (/proc/PID/maps): start, end, file offset, name.
maps = []
for line in open(maps_path):
    f = line.split(maxsplit=5)
    start, end = (int(x, 16) for x in f[0].split("-"))
    maps.append((start, end, int(f[2], 16), f[5].strip() if len(f) > 5 else "[anonymous]"))
maps.sort()
starts = [m[0] for m in maps]

def mapping(address):
    i = bisect.bisect_right(starts, address) - 1
    if i >= 0 and address < maps[i][1]:
        return maps[i]
    return None

stripped = set()  # objects without a .symtab: addr2line names the nearest exported symbol

def vaddr(path, offset):
    """The link-time address of a file offset in an ELF file, from its PT_LOAD headers."""
    with open(path, "rb") as elf:
        header = elf.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            return None
        phoff, shoff = struct.unpack_from("<QQ", header, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", header, 54)
        elf.seek(phoff)
        table = elf.read(phentsize * phnum)
        elf.seek(shoff)
        sections = elf.read(shentsize * shnum)
    if not any(struct.unpack_from("<I", sections, k * shentsize + 4)[0] == 2 for k in range(shnum)):
        stripped.add(path)
    for k in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _ = struct.unpack_from("<IIQQQQQ", table, k * phentsize)
        if p_type == 1 and p_offset <= offset < p_offset + p_filesz:
            return offset - p_offset + p_vaddr
    return None

def short(name):
    return name.rsplit("/", 1)[-1] if name.startswith("/") else name

# Every address to name: the pages' own (code) and their first touchers (data).
wanted = collections.defaultdict(set)  # object path -> link-time addresses
where = {}
for p in pages:
    for address in [p["page"]] + [ip for ip, _ in p["firsts"]]:
        m = mapping(address)
        if m is None:
            where[address] = ("?", None)
            continue
        start, _, offset, name = m
        if not name.startswith("/"):
            size = m[1] - m[0]
            where[address] = (f"{name} {m[0]:#x}+{size >> 10:,} KiB", None)
            continue
        v = vaddr(name, address - start + offset)
        where[address] = (name, v)
        if v is not None:
            wanted[name].add(v)
symbols = {}
for path, addresses in wanted.items():
    addresses = sorted(addresses)
    out = subprocess.run(["addr2line", "-f", "-C", "-e", path] + [hex(a) for a in addresses],
                         capture_output=True, text=True).stdout.splitlines()
    for k, a in enumerate(addresses):
        if 2 * k + 1 < len(out) and out[2 * k] != "??":
            line = out[2 * k + 1].split(" (discriminator")[0].removeprefix("/proc/self/cwd/")
            symbols[(path, a)] = (out[2 * k] + (" (nearest exported name)" if path in stripped else "")
                                  + (f" at {line}" if not line.startswith("??") else ""))

def describe(address):
    name, v = where.get(address, ("?", None))
    symbol = symbols.get((name, v))
    text = short(name) + (f"+{v:#x}" if v is not None else "")
    return text, symbol

rows = []
for p in sorted(pages, key=lambda p: (p["kind"], -p["share"])):
    region, _ = describe(p["page"])
    firsts = []
    for ip, share in p["firsts"]:
        _, symbol = describe(ip)
        first = symbol or hex(ip)
        if p["kind"] == "data" and symbol:
            first = short(where[ip][0]) + ": " + symbol
        firsts.append(f"{first} ({share:.0%})" if len(p["firsts"]) > 1 else first)
    rows.append({"kind": p["kind"], "page": hex(p["page"]), "share": p["share"], "in": region,
                 "function": "; ".join(firsts)})
print(json.dumps({"server": server, "scenario": scenario, "intervals": int(summary["intervals"]),
                  "instructions_per_interval": summary["instructions_per_interval"],
                  "code_pages_per_interval": summary["code_pages_per_interval"],
                  "data_pages_per_interval": summary["data_pages_per_interval"],
                  "syscalls": dict(syscalls[:6]), "pages": rows}))
PY
  done
done

python3 - "$RAW" "$SHOW_PAGES" << 'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
print("| server | scenario | intervals | the calls that end them | instructions / interval | code pages / interval | data pages / interval |")
print("|---|---|---:|---|---:|---:|---:|")
for r in runs:
    calls = ", ".join(f"{name.removeprefix('sys_')} {count:,}" for name, count in list(r["syscalls"].items())[:3])
    print(f"| {r['server']} | {r['scenario']} | {r['intervals']:,} | {calls} | {r['instructions_per_interval']:,.0f} | "
          f"{r['code_pages_per_interval']:.2f} | {r['data_pages_per_interval']:.2f} |")
if sys.argv[2] == "1":
    for r in runs:
        print(f"\n{r['server']}, {r['scenario']}: the pages touched in 5% of the intervals or more\n")
        print("| kind | page | share of intervals | in | the functions that touched it first (how often) |")
        print("|---|---|---:|---|---|")
        for p in r["pages"]:
            print(f"| {p['kind']} | {p['page']} | {p['share']:.2f} | {p['in']} | {p['function']} |")
print()
for r in runs:
    r = dict(r)
    r.pop("pages")
    print(json.dumps(r))
PY
[[ "$failures" == 0 ]] || exit 1
