#!/usr/bin/env bash
# Installs what brrr needs to build, run and test on Debian 12 (bookworm): Bazel 4.2.3 and
# the Debian libraries it links (gRPC, Protobuf, Abseil, GoogleTest, Google Benchmark,
# liburing, prometheus-cpp, ncurses), Prometheus for the metrics tests, tmux for
# `brrrctl top`'s and HAProxy for the fleet test's. Installs only what is missing, so it is quick when everything is there.
# Run as root or as a user with sudo.
set -euo pipefail

# bazel-bootstrap is Bazel 4.2.3 (WORKSPACE mode); it builds offline thanks to
# third_party/bazel_standins. The rest are the compiler and the libraries brrr links
# (libuv, libevent and Boost.Asio, from libboost-dev, for the benchmark's peer servers in
# bench/peers).
# python3-grpcio and python3-protobuf: //tests/control:python_reflection_test calls the admin
# plane from Debian's /usr/bin/python3 through server reflection alone, as grpcurl would.
# clang, libclang-rt-14-dev (libFuzzer and the sanitizer runtimes) and llvm (llvm-symbolizer,
# for readable stacks): tools/fuzz.sh, the fuzz targets built with --config=fuzz.
# prometheus-cpp-dev: the metrics port's exposition (prometheus-cpp core); prometheus: promtool
# and the server that //tests/control:metrics_test and :prometheus_test run against brrr-echo.
# libncurses-dev: `brrrctl top`'s screen; tmux: the terminal //tests/control:brrrctl_top_test
# runs it in.
# haproxy: the balancer in front of //tests/deploy:fleet_test's three brrr-echo (deploy/haproxy.cfg
# is checked with `haproxy -c` and run); the fleet test is part of `bazel test //...` and fails
# without it.
# netcat-openbsd: `nc`, which the README's first lines use to try the echo server.
packages=(
  bazel-bootstrap g++ pkg-config
  libabsl-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev liburing-dev libuv1-dev libevent-dev libboost-dev
  grpc-proto prometheus-cpp-dev
  python3-grpcio python3-protobuf prometheus
  clang libclang-rt-14-dev llvm
  libncurses-dev tmux
  haproxy
  netcat-openbsd
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: everything brrr needs is installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "bootstrap: missing packages (${missing[*]}) and not root; run as root or install sudo" >&2
    exit 1
  fi
  sudo=sudo
fi
echo "bootstrap: installing ${missing[*]}"
# A third-party apt source that cannot be reached must not stop Debian's own from updating.
$sudo apt-get update || echo "bootstrap: apt-get update reported errors; trying the install anyway" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
