#!/usr/bin/python3
"""How long a balancer's /healthz check waits on the metrics port behind clients that hold its
places: connections that send nothing, and clients that pipeline requests and never read.

For each scenario the script opens the hostile connections, waits a moment (0.2 s: they are
new; 3 s: a connection silent that long has been queued by the listener's deferral), then
times one check (GET /healthz on a new connection, Connection: close) until its whole answer
is in, and closes everything before the next scenario. Run against a brrr-echo serving the
metrics port with its default 8 places:

  bazel build -c opt //server/brrr-echo
  bazel-bin/server/brrr-echo/brrr-echo --port=5150 --metrics_port=5151 &
  /usr/bin/python3 bench/metrics_fairness.py 5151

Bounded: at most 100 connections per scenario, each pipelining client sends at most 8 MiB,
and a check gives up after 60 s. Needs Debian's python3 (no extra modules).
"""
import socket
import sys
import time

SCENARIOS = [("silent", 16, 0.2), ("silent", 16, 3.0), ("silent", 100, 0.2), ("silent", 100, 3.0),
             ("pipelining, never reading", 8, 0.2)]
REQUEST = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


def hostile(port, kind):
    s = socket.create_connection(("127.0.0.1", port))
    if kind.startswith("pipelining"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        sent = 0
        try:
            while sent < (8 << 20):
                sent += s.send(REQUEST * 64)
        except BlockingIOError:
            pass
    return s


def timed_check(port):
    start = time.monotonic()
    c = socket.create_connection(("127.0.0.1", port))
    c.settimeout(60)
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    try:
        while True:
            more = c.recv(4096)
            if not more:
                break
            answer += more
    except socket.timeout:
        pass
    c.close()
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "no answer in 60 s"
    return time.monotonic() - start, status


def main():
    port = int(sys.argv[1])
    print("| clients ahead of the check | opened before it | check answered in | answer |")
    print("|---|---:|---:|---|")
    for kind, count, pause in SCENARIOS:
        held = [hostile(port, kind) for _ in range(count)]
        time.sleep(pause)
        took, status = timed_check(port)
        print(f"| {count} {kind} | {pause:.1f} s | {took:.2f} s | {status} |", flush=True)
        for s in held:
            s.close()
        time.sleep(1.5)  # their places are given back before the next scenario


if __name__ == "__main__":
    main()
