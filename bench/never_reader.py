#!/usr/bin/python3
"""How much a client that never reads makes brrr-echo queue, with or without --reply_prefix.

Each client sends lines of LINE bytes ("...\\n"; LINE=1: only newlines, the most a prefix can
multiply) as fast as its sends go through, at most 64 MiB, and never reads (4 KiB receive
buffer). Every 50 ms for SECONDS the script asks the admin plane (brrrctl sockets --json) how
many bytes each connection has queued, and prints the largest figure and the server's largest
RSS; and, from the last look, what each connection has read and not yet sent back (bytes_in -
bytes_out: its queue and its held input, the backend's read-ahead of its stop; without
--reply_prefix, which changes what goes out), the median and the largest. Run against a server
started with a high-water mark, for example:

  bazel build -c opt //server/brrr-echo //control/brrrctl
  bazel-bin/server/brrr-echo/brrr-echo --backend=io_uring --port=5140 --admin_port=5141 \\
      --high_water=262144 --low_water=65536 --reply_prefix="$(head -c 4096 /dev/zero | tr '\\0' P)" &
  /usr/bin/python3 bench/never_reader.py 5140 5141 [CLIENTS=1] [LINE=1] [SECONDS=4]

or, for the read-ahead of 120 clients on the default marks:

  bazel-bin/server/brrr-echo/brrr-echo --backend=io_uring --port=5140 --admin_port=5141 &
  /usr/bin/python3 bench/never_reader.py 5140 5141 120 65536 10

brrr-echo bounds each queue to --high_water + --recv_buffer_size bytes (server/connection.h).
Needs Debian's python3 (no extra modules) and bazel-bin/control/brrrctl/brrrctl.
"""
import json
import socket
import subprocess
import sys
import threading
import time


def brrrctl(admin, *args):
    return subprocess.run(["bazel-bin/control/brrrctl/brrrctl", "--target=127.0.0.1:" + admin, "--json", *args],
                          capture_output=True, text=True, check=True).stdout


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main():
    if not 3 <= len(sys.argv) <= 6:
        sys.exit("usage: never_reader.py ECHO_PORT ADMIN_PORT [CLIENTS] [LINE] [SECONDS]")
    port, admin = int(sys.argv[1]), sys.argv[2]
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    line = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 4
    pid = json.loads(brrrctl(admin, "info")).get("pid", 0)
    stop = threading.Event()
    sent = [0] * clients

    def writer(i, s):
        block = ((b"x" * (line - 1) + b"\n") * (65536 // line + 1))[:65536]
        while not stop.is_set() and sent[i] < (64 << 20):
            try:
                sent[i] += s.send(block)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break

    sockets = []
    for i in range(clients):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        sockets.append(s)
        threading.Thread(target=writer, args=(i, s), daemon=True).start()
    most_queued, most_rss, samples, unsent = 0, rss_bytes(pid), 0, []
    end = time.time() + seconds
    while time.time() < end:
        unsent = []
        for out in brrrctl(admin, "sockets").splitlines():
            listing = json.loads(out)
            for entry in listing.get("sockets", [listing]):
                if entry.get("kind") == "connection":
                    most_queued = max(most_queued, int(entry.get("bytes_queued", 0)))
                    unsent.append(max(0, int(entry.get("bytes_in", 0)) - int(entry.get("bytes_out", 0))))
        most_rss = max(most_rss, rss_bytes(pid))
        samples += 1
        time.sleep(0.05)
    stop.set()
    unsent.sort()
    print(f"{clients} never-reading client(s), lines of {line} bytes: sent {sum(sent)} bytes; "
          f"{samples} samples; most queued on one connection {most_queued} bytes; "
          f"server RSS up to {most_rss >> 20} MiB; read and not sent back at the end: median "
          f"{unsent[len(unsent) // 2] if unsent else 0}, most {unsent[-1] if unsent else 0} bytes")


if __name__ == "__main__":
    main()
