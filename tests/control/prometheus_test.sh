#!/usr/bin/env bash
# A real Prometheus server scrapes brrr-echo under traffic and reads back the bytes the
# clients sent: see prometheus_test.py. Needs Debian's prometheus (the server) and python3.
set -euo pipefail

fail() {
  echo "prometheus_test: FAIL: $*" >&2
  exit 1
}

python=/usr/bin/python3
prometheus=/usr/bin/prometheus
runfiles="${TEST_SRCDIR:?run with bazel test}"
tmp="${TEST_TMPDIR:?run with bazel test}"

[ -x "$python" ] || fail "$python not found: install python3 (tools/bootstrap.sh)"
[ -x "$prometheus" ] || fail "$prometheus not found: install Debian's prometheus (tools/bootstrap.sh)"

# The checks and child processes it shares with other system tests.
export PYTHONPATH="$runfiles/brrr/tests/testing"
exec "$python" "$runfiles/brrr/tests/control/prometheus_test.py" \
  --brrr_echo="$runfiles/brrr/server/brrr-echo/brrr-echo" \
  --prometheus="$prometheus" \
  --config="$runfiles/brrr/tests/control/testdata/prometheus.yml" \
  --tmp="$tmp"
