#!/usr/bin/env bash
# Fuzzes the code that reads outside bytes (tests/fuzz/) with libFuzzer: builds every target
# tagged "fuzz" with --config=fuzz (clang, AddressSanitizer, UndefinedBehaviorSanitizer) and runs
# each for a bounded time, starting from its seed corpus, tests/fuzz/corpus/<target>/. The seeds
# are only read: inputs a run finds go to a scratch directory. A crash, a sanitizer report, a
# hang or a broken invariant fails that target: its input is kept (the path is printed), the
# other targets still run, and the script exits 1.
#
#   tools/fuzz.sh                            # every target, 30 s each
#   tools/fuzz.sh -t 60 elf_check_fuzzer     # one target, 60 s
#   BRRR_FUZZ_OUT=/tmp/fuzz tools/fuzz.sh    # keep logs, findings and new inputs there
#                                            # (else a temporary directory, kept on failure)
#
# To replay an input: bazel build --config=fuzz //tests/fuzz:TARGET, then
# "$(bazel info --config=fuzz bazel-bin)/tests/fuzz/TARGET" INPUT. Once the bug is fixed, copy
# the input into tests/fuzz/corpus/TARGET/ as a regression seed.
set -uo pipefail
script=$(readlink -f "$0")  # before the cd: usage() reads it, from wherever it was run
# A relative BRRR_FUZZ_OUT is the caller's, not the repository's.
if [ -n "${BRRR_FUZZ_OUT:-}" ]; then BRRR_FUZZ_OUT=$(realpath -m "$BRRR_FUZZ_OUT"); fi
cd "$(dirname "$script")/.."

usage() { sed -n '2,16p' "$script" | sed 's/^# \{0,1\}//'; }
seconds=30
while getopts "t:h" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
# At least 1: 0 would be libFuzzer's "no limit", and every run here is bounded.
case $seconds in
  '' | *[!0-9]*) seconds_ok=0 ;;
  *) seconds_ok=$((10#$seconds > 0)) ;;
esac
if [ "$seconds_ok" -eq 0 ]; then
  echo "fuzz: -t takes whole seconds, at least 1, not \"$seconds\"" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  # Fuzz targets are tagged manual (plain builds leave them out); a query still lists them.
  mapfile -t targets < <(bazel query --output=label 'attr(tags, "\bfuzz\b", //tests/fuzz:all)' 2>/dev/null |
    sed 's|^//tests/fuzz:||' | sort)
  if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: bazel query found no fuzz targets in //tests/fuzz" >&2
    exit 1
  fi
fi

echo "fuzz: building ${targets[*]} with --config=fuzz"
bazel build --config=fuzz "${targets[@]/#/\/\/tests/fuzz:}" || exit 1
bin=$(bazel info --config=fuzz bazel-bin 2>/dev/null)/tests/fuzz
out=${BRRR_FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/brrr-fuzz.XXXXXX")}

# One figure from libFuzzer's final stats (-print_final_stats), or "?".
stat() { grep -m1 "^stat::$1:" "$2" | awk '{print $2}' || true; }

status=0
for t in "${targets[@]}"; do
  mkdir -p "$out/$t/found"
  log=$out/$t/log
  echo "fuzz: $t for ${seconds} s (seeds tests/fuzz/corpus/$t, log $log)"
  # Value profiles guide inputs towards the numbers the checks compare against (a range's
  # edges), which plain coverage does not see.
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin/$t" -max_total_time="$seconds" -timeout=10 -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$out/$t/" \
    "$out/$t/found" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  runs=$(stat number_of_executed_units "$log")
  rate=$(stat average_exec_per_sec "$log")
  found=$(stat new_units_added "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "fuzz: $t ok: ${runs:-?} runs, ${rate:-?}/s, ${cov:-cov: ?}, ${found:-?} new inputs"
  else
    status=1
    echo "fuzz: $t FAILED (exit $rc) after ${runs:-?} runs; the end of its log:"
    tail -n 40 "$log" | sed 's/^/    /'
    for a in "$out/$t"/crash-* "$out/$t"/leak-* "$out/$t"/timeout-* "$out/$t"/oom-*; do
      [ -e "$a" ] && echo "fuzz: $t: the input is $a"
    done
  fi
done
if [ $status -eq 0 ] && [ -z "${BRRR_FUZZ_OUT:-}" ]; then
  rm -rf "$out"  # nothing to look at, and CI would pile up scratch corpora
else
  echo "fuzz: logs, findings and new inputs are in $out"
fi
exit $status
