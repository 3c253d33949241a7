#!/usr/bin/python3
"""What admin clients cost brrr-echo's exit, and what open streams cost it while idle: two builds side by side.

    bench/admin_exit.py --a=OLD/brrr-echo --b=NEW/brrr-echo [--rounds=5] [--streams=20] [--seconds=10]

Each round starts each build afresh (alternating which goes first) and measures:
  - the exit: milliseconds from SIGTERM to the process's end, with no admin client, with one
    client that made a call and holds its connection idle (a grpcurl channel, `brrrctl top`
    between polls), and with one open WatchStats stream;
  - the idle cost of streams: with --streams WatchStats streams at 1 s open, the server's context
    switches per second (every thread, /proc/PID/task/*/status) over --seconds, then how many
    milliseconds after SIGTERM the last stream ended.
Then the medians of each. Needs /usr/bin/python3 with grpcio (Debian's python3-grpcio).
Loopback only; every wait is bounded.
"""
import argparse
import signal
import statistics
import sys
import threading
import time

import grpc

from admin_calls import cpu_and_switches, start  # brrr-echo with an admin port, and its counts


def context_switches(pid):
    """The process's context switches so far, every thread."""
    return cpu_and_switches(pid)[1]


def watch_stats(channel):
    """An open WatchStats stream at 1 s (interval_ms = 1000, field 1), its first sample read."""
    call = channel.unary_stream("/brrr.admin.v1.Admin/WatchStats", request_serializer=lambda x: x,
                                response_deserializer=lambda x: x)
    stream = call(bytes([0x08, 0xE8, 0x07]))
    next(stream)
    return stream


def exit_ms(server):
    t0 = time.monotonic()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    return (time.monotonic() - t0) * 1000


def exit_with(binary, client):
    """Milliseconds from SIGTERM to exit with `client`: none, idle or watch."""
    server, channel = start(binary, None)
    try:
        if client == "none":
            channel.close()
        elif client == "idle":
            channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda x: x,
                                response_deserializer=lambda x: x)(b"", timeout=10)
        else:
            watch_stats(channel)
        time.sleep(0.3)
        return exit_ms(server)
    finally:
        channel.close()
        if server.poll() is None:
            server.kill()
            server.wait()


def streams_cost(binary, streams, seconds):
    """Context switches a second with `streams` WatchStats open; ms from SIGTERM to the last end."""
    server, channel = start(binary, None)
    ends = []
    readers = []
    signalled = [0.0]

    def read_to_end(stream):
        try:
            for _ in stream:
                pass
        except grpc.RpcError:
            pass
        ends.append(time.monotonic() - signalled[0])

    try:
        for _ in range(streams):
            reader = threading.Thread(target=read_to_end, args=(watch_stats(channel),), daemon=True)
            reader.start()
            readers.append(reader)
        time.sleep(1)
        before, t0 = context_switches(server.pid), time.monotonic()
        time.sleep(seconds)
        per_second = (context_switches(server.pid) - before) / (time.monotonic() - t0)
        signalled[0] = time.monotonic()
        server.send_signal(signal.SIGTERM)
        for reader in readers:
            reader.join(30)
        server.wait(timeout=30)
        return per_second, max(ends) * 1000 if len(ends) == streams else float("nan")
    finally:
        channel.close()
        if server.poll() is None:
            server.kill()
            server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="brrr-echo A (the base)")
    parser.add_argument("--b", required=True, help="brrr-echo B")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 100 or not 1 <= args.streams <= 100 or not 1 <= args.seconds <= 600:
        parser.error("--rounds from 1 to 100, --streams from 1 to 100, --seconds from 1 to 600")
    figures = ["exit, no client", "exit, an idle client", "exit, a WatchStats", "switches/s", "streams ended"]
    results = {"A": [], "B": []}
    for r in range(args.rounds):
        for which in (["A", "B"] if r % 2 == 0 else ["B", "A"]):
            binary = args.a if which == "A" else args.b
            row = [exit_with(binary, c) for c in ("none", "idle", "watch")]
            row += list(streams_cost(binary, args.streams, args.seconds))
            results[which].append(row)
        for which in ("A", "B"):
            row = results[which][-1]
            print(f"round {r + 1} {which}: exit {row[0]:.0f} / {row[1]:.0f} / {row[2]:.0f} ms (none / idle / "
                  f"WatchStats); {args.streams} streams: {row[3]:.0f} switches/s, last ended {row[4]:.0f} ms "
                  "after SIGTERM", flush=True)
    for which in ("A", "B"):
        cells = []
        for i, name in enumerate(figures):
            values = [row[i] for row in results[which]]
            unit = "" if name == "switches/s" else " ms"
            cells.append(f"{name} {statistics.median(values):.0f}{unit} ({min(values):.0f}-{max(values):.0f})")
        print(f"median {which}: " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
