#!/usr/bin/python3
"""Times admin calls (GetStats, one at a time over one connection) against two brrr-echo builds
side by side: each round starts both servers afresh and runs the calls against one and then
the other, alternating which goes first. Reports each round's microseconds per call and the
server's CPU microseconds and context switches per call (/proc/PID/task/*/schedstat and status),
then the medians and the B/A ratio.

    bench/admin_calls.py --a=OLD/brrr-echo --b=NEW/brrr-echo [--rounds=6] [--calls=3000]

Needs /usr/bin/python3 with grpcio (Debian's python3-grpcio). Servers and client are unpinned
unless --server_cpu/--client_cpu are given (taskset). Loopback only; every run is bounded.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

import grpc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_and_switches(pid):
    """The process's CPU seconds (all threads) and context switches so far."""
    cpu = 0.0
    switches = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                cpu += int(f.read().split()[0]) / 1e9  # nanoseconds on a CPU
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    return cpu, switches


def start(binary, cpu):
    admin = free_port()
    cmd = [binary, "--port=0", f"--admin_port={admin}"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    channel = grpc.insecure_channel(f"127.0.0.1:{admin}")
    grpc.channel_ready_future(channel).result(timeout=30)
    return server, channel


def run(binary, calls, server_cpu):
    server, channel = start(binary, server_cpu)
    try:
        call = channel.unary_unary("/brrr.admin.v1.Admin/GetStats",
                                   request_serializer=lambda x: x, response_deserializer=lambda x: x)
        for _ in range(100):  # warm: the connection, gRPC's threads
            call(b"", timeout=10)
        cpu0, sw0 = cpu_and_switches(server.pid)
        t0 = time.perf_counter()
        for _ in range(calls):
            call(b"", timeout=10)
        elapsed = time.perf_counter() - t0
        cpu1, sw1 = cpu_and_switches(server.pid)
        return elapsed / calls * 1e6, (cpu1 - cpu0) / calls * 1e6, (sw1 - sw0) / calls
    finally:
        channel.close()
        server.terminate()
        server.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="brrr-echo A (the base)")
    parser.add_argument("--b", required=True, help="brrr-echo B")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--server_cpu", type=int, default=None)
    parser.add_argument("--client_cpu", type=int, default=None)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 100 or not 1 <= args.calls <= 100000:
        parser.error("--rounds from 1 to 100, --calls from 1 to 100000")
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})
    results = {"a": [], "b": []}
    for r in range(args.rounds):
        order = ["a", "b"] if r % 2 == 0 else ["b", "a"]
        for which in order:
            results[which].append(run(getattr(args, which), args.calls, args.server_cpu))
        a, b = results["a"][-1], results["b"][-1]
        print(f"round {r + 1}: A {a[0]:.1f} us/call (server CPU {a[1]:.1f} us, {a[2]:.2f} switches), "
              f"B {b[0]:.1f} us/call (server CPU {b[1]:.1f} us, {b[2]:.2f} switches)", flush=True)
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in results.items()}
    print(f"median: A {med['a'][0]:.1f} us/call, CPU {med['a'][1]:.1f} us, {med['a'][2]:.2f} switches; "
          f"B {med['b'][0]:.1f} us/call, CPU {med['b'][1]:.1f} us, {med['b'][2]:.2f} switches; "
          f"B/A time {med['b'][0] / med['a'][0]:.3f}x, CPU {med['b'][1] / med['a'][1]:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
