#!/usr/bin/env bash
# Lists every test case the last `bazel test` run skipped, with its reason, from the JUnit XML
# that Bazel keeps under bazel-testlogs/ (Bazel reports a test with skipped cases as PASSED).
# Usage: tools/skipped_tests.sh [TESTLOGS_DIR | BAZEL_FLAGS...]   Exit 0 always; prints "no test
# skipped" or a list. BAZEL_FLAGS are the run's configuration flags (--config=tsan, -c opt):
# each configuration keeps its logs in its own bazel-testlogs, which `bazel info` names.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  logs=$1
else
  logs=$(bazel info "$@" bazel-testlogs 2>/dev/null)
fi
python3 - "$logs" <<'PY'
import os, sys, xml.etree.ElementTree as ET
root = sys.argv[1]
skipped = []
for dirpath, _, files in os.walk(root, followlinks=True):
    if "test.xml" not in files:
        continue
    target = "//" + os.path.relpath(dirpath, root).replace(os.sep, "/")
    target = target[: target.rfind("/")] + ":" + target[target.rfind("/") + 1 :]
    try:
        tree = ET.parse(os.path.join(dirpath, "test.xml"))
    except ET.ParseError:
        continue
    for case in tree.iter("testcase"):
        mark = case.find("skipped")
        if mark is None and case.get("result") != "skipped":
            continue
        why = (mark.get("message") if mark is not None else "") or ""
        why = " ".join(why.split())
        skipped.append(f"{target} {case.get('classname')}.{case.get('name')}: {why}")
if skipped:
    print(f"skipped test cases ({len(skipped)}):")
    for line in sorted(skipped):
        print("  " + line)
else:
    print("no test skipped")
PY
