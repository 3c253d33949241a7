#!/usr/bin/python3
"""How long a new connection waits across a hand-over (brrr-echo --take_over), on a busy machine.

For each round and each brrr-echo binary given (A/B, alternating within a round): brrr-echo A
serves on PORT with a hand-over socket; a client makes one connection after another (connect,
16 bytes, their echo, close) and times each; brrr-echo B takes over from A (--take_over); once
B says it took over, the client goes on for WINDOW seconds more. The figure is the longest
connection, connect to echo, from B's start to the window's end: the wait of a connection that
arrives while listeners change hands. HOGS processes spin meanwhile (a machine under load,
where B's start-up work is slow). Prints each round's figure per binary and their medians.

  bazel build -c opt //server/brrr-echo //reactors:plugins
  mkdir -p /tmp/tw/new/reactors          # a copy finds its plugins in reactors/ beside it
  cp bazel-bin/server/brrr-echo/brrr-echo /tmp/tw/new/
  cp bazel-bin/reactors/libbrrr_reactor_*.so /tmp/tw/new/reactors/
  # ... and the same into /tmp/tw/old from the other build, then:
  /usr/bin/python3 bench/takeover_wait.py --rounds=12 /tmp/tw/old/brrr-echo /tmp/tw/new/brrr-echo

Loopback only; every wait is bounded (30 s), and each round's servers are stopped before the
next. Needs Debian's python3 (no extra modules).
"""
import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time

WAIT_S = 30.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(process, text, log):
    """Reads `process`'s stdout until a line contains `text` (appending lines to `log`)."""
    give_up = time.monotonic() + WAIT_S
    while time.monotonic() < give_up:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"brrr-echo exited before saying {text!r}: {''.join(log)}")
        log.append(line)
        if text in line:
            return
    raise RuntimeError(f"brrr-echo did not say {text!r} within {WAIT_S} s")


class Client(threading.Thread):
    """One connection after another to PORT, each timed from connect to the echo of 16 bytes."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.samples = []  # (start, seconds)
        self.failures = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_S) as s:
                    s.sendall(b"0123456789abcdef")
                    got = b""
                    while len(got) < 16:
                        chunk = s.recv(16 - len(got))
                        if not chunk:
                            raise ConnectionError("end of stream before the echo")
                        got += chunk
                self.samples.append((start, time.monotonic() - start))
            except OSError as e:
                self.failures.append(f"{e}")
                time.sleep(0.001)


def one_round(echo, loops, window):
    """The longest connection (s) from B's start to WINDOW s after it took over."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        first, second = os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")
        common = [f"--port={port}", f"--loops={loops}"]
        log = []
        a = subprocess.Popen([echo, *common, f"--handover_socket={first}"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        b = None
        client = Client(port)
        try:
            wait_for_line(a, "hand-over socket at", log)
            client.start()
            time.sleep(0.3)
            b_start = time.monotonic()
            b = subprocess.Popen([echo, *common, f"--take_over={first}", f"--handover_socket={second}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            wait_for_line(b, "took over the listeners", log)
            time.sleep(window)
        finally:
            client.stop.set()
            client.join(WAIT_S)
            for p in (a, b):
                if p is not None and p.poll() is None:
                    p.terminate()
            for p in (a, b):
                if p is not None:
                    p.wait(WAIT_S)
        if client.failures:
            raise RuntimeError(f"connections failed: {client.failures[:3]}")
        return max(seconds for start, seconds in client.samples if start >= b_start - 0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("echo", nargs="+", help="brrr-echo binaries to compare")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--hogs", type=int, default=4, help="processes spinning meanwhile (0: none)")
    parser.add_argument("--window", type=float, default=0.5, help="seconds measured after the take-over")
    args = parser.parse_args()
    hogs = [subprocess.Popen(["/usr/bin/python3", "-c", "while True: pass"]) for _ in range(args.hogs)]
    figures = {echo: [] for echo in args.echo}
    try:
        for r in range(args.rounds):
            for echo in args.echo if r % 2 == 0 else reversed(args.echo):
                figures[echo].append(one_round(echo, args.loops, args.window))
            print(f"round {r + 1}: " + "  ".join(f"{e}: {figures[e][-1] * 1000:.1f} ms" for e in args.echo), flush=True)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    for echo in args.echo:
        ms = sorted(f * 1000 for f in figures[echo])
        print(f"{echo}: longest connection across the hand-over, median {statistics.median(ms):.1f} ms "
              f"(min {ms[0]:.1f}, max {ms[-1]:.1f}; {len(ms)} rounds, {args.hogs} hogs, {args.loops} loops)")


if __name__ == "__main__":
    main()
