#!/usr/bin/env bash
# deploy/README.md names the Debian package of every program its shell commands run (curl for
# the restart loop, for one): see readme_commands_test.py. Needs only Debian's python3.
set -euo pipefail

python=/usr/bin/python3
runfiles="${TEST_SRCDIR:?run with bazel test}/brrr"
[ -x "$python" ] || { echo "readme_commands_test: FAIL: $python not found: install python3" >&2; exit 1; }
exec "$python" "$runfiles/tests/deploy/readme_commands_test.py" "$runfiles/deploy/README.md"
