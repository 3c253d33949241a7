#!/usr/bin/env bash
# A fleet on loopback: three brrr-echo, Debian's HAProxy in front and Debian's Prometheus
# scraping them, configured by deploy/; each instance is upgraded under brrr-bench --reconnect
# load and nothing is refused, reset, corrupted or miscounted: see fleet_test.py. Needs
# haproxy, prometheus (with promtool) and python3, all installed by tools/bootstrap.sh;
# systemd-analyze, where it is there, verifies deploy/brrr-echo@.service.
set -euo pipefail

fail() {
  echo "fleet_test: FAIL: $*" >&2
  exit 1
}

python=/usr/bin/python3
runfiles="${TEST_SRCDIR:?run with bazel test}/brrr"
tmp="${TEST_TMPDIR:?run with bazel test}"

haproxy=$(PATH="$PATH:/usr/sbin:/sbin" command -v haproxy || true)
[ -n "$haproxy" ] || fail "haproxy not found: install haproxy (tools/bootstrap.sh)"
[ -x /usr/bin/prometheus ] || fail "/usr/bin/prometheus not found: install Debian's prometheus (tools/bootstrap.sh)"
[ -x /usr/bin/promtool ] || fail "/usr/bin/promtool not found: install Debian's prometheus (tools/bootstrap.sh)"
[ -x "$python" ] || fail "$python not found: install python3 (tools/bootstrap.sh)"

# fleet_parts.py beside the test; the checks and child processes it shares with other system tests.
export PYTHONPATH="$runfiles/tests/testing"
exec "$python" "$runfiles/tests/deploy/fleet_test.py" \
  --brrr_echo="$runfiles/server/brrr-echo/brrr-echo" \
  --brrr_bench="$runfiles/bench/brrr-bench" \
  --brrrctl="$runfiles/control/brrrctl/brrrctl" \
  --haproxy="$haproxy" \
  --prometheus=/usr/bin/prometheus \
  --promtool=/usr/bin/promtool \
  --systemd_analyze=/usr/bin/systemd-analyze \
  --haproxy_cfg="$runfiles/deploy/haproxy.cfg" \
  --prometheus_yml="$runfiles/deploy/prometheus.yml" \
  --unit="$runfiles/deploy/brrr-echo@.service" \
  --tmp="$tmp"
