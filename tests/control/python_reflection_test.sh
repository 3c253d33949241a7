#!/usr/bin/env bash
# A client with no brrr .proto, in Python, finds and calls brrr-echo's admin plane through
# server reflection (v1 and v1alpha), the way grpcurl does: see python_reflection_test.py.
#
# Starts brrr-echo (--loops=2, echo port 0, admin plane on a free port), generates the
# reflection messages with protoc --python_out into $TEST_TMPDIR, and runs the client with
# /usr/bin/python3 (Debian's python3-grpcio and python3-protobuf; a python3 earlier in PATH
# may lack them). brrr-echo is stopped on exit, whatever happens.
set -euo pipefail

fail() {
  echo "python_reflection_test: FAIL: $*" >&2
  exit 1
}

python=/usr/bin/python3
protoc=/usr/bin/protoc
runfiles="${TEST_SRCDIR:?run with bazel test}"
tmp="${TEST_TMPDIR:?run with bazel test}"
brrr_echo="$runfiles/brrr/server/brrr-echo/brrr-echo"
client="$runfiles/brrr/tests/control/python_reflection_test.py"
grpc_proto="$runfiles/grpc_proto"  # @grpc_proto: Debian's /usr/share/grpc-proto

[ -x "$python" ] || fail "$python not found: install python3 (tools/bootstrap.sh)"
"$python" -c 'import grpc, google.protobuf' 2>/dev/null ||
  fail "$python cannot import grpc and google.protobuf: install python3-grpcio and python3-protobuf (tools/bootstrap.sh)"
[ -x "$protoc" ] || fail "$protoc not found: install protobuf-compiler (tools/bootstrap.sh)"

generated="$tmp/generated"
mkdir -p "$generated"
"$protoc" -I"$grpc_proto" --python_out="$generated" \
  grpc/reflection/v1/reflection.proto grpc/reflection/v1alpha/reflection.proto ||
  fail "protoc could not generate the reflection messages from $grpc_proto"

server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || return 0
  # brrr-echo drains on SIGTERM; if it has not exited after 10 s, kill it.
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

out="$tmp/brrr-echo.out"
err="$tmp/brrr-echo.err"
admin_port="$(free_port)"
"$brrr_echo" --port=0 --admin_port="$admin_port" --loops=2 >"$out" 2>"$err" &
server_pid=$!

# Ready once it prints its admin address (after the echo port's "listening on" line).
for _ in $(seq 300); do
  grep -q "admin plane on 127.0.0.1:$admin_port" "$out" && break
  kill -0 "$server_pid" 2>/dev/null || fail "brrr-echo exited before serving: $(cat "$err")"
  sleep 0.1
done
grep -q "admin plane on 127.0.0.1:$admin_port" "$out" ||
  fail "brrr-echo did not start its admin plane on port $admin_port within 30 s: $(cat "$out" "$err")"
echo_port="$(sed -n 's/.*listening on \[\{0,1\}[0-9a-f.:]*\]\{0,1\}:\([0-9][0-9]*\).*/\1/p' "$out" | head -n 1)"
[ -n "$echo_port" ] || fail "no echo port in brrr-echo's output: $(cat "$out")"

"$python" "$client" --admin="127.0.0.1:$admin_port" --echo_port="$echo_port" --generated="$generated" \
  --readme="$runfiles/brrr/README.md"
