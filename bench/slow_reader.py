#!/usr/bin/python3
"""How much a slow reader makes brrr-echo queue.

A client sends as fast as it can (8 MiB send buffer, 1 MiB writes) and reads 16 KiB every
2 ms through a 4 KiB receive buffer; every 50 ms for 4 s the script asks the server's admin
plane (brrrctl sockets --json) how many bytes the connection has queued, and prints the
largest figure. Run against a server started with a high-water mark, for example:

  bazel build -c opt //server/brrr-echo //control/brrrctl
  bazel-bin/server/brrr-echo/brrr-echo --backend=io_uring --port=5140 --admin_port=5141 \\
      --high_water=65536 --low_water=16384 &
  /usr/bin/python3 bench/slow_reader.py 5140 5141

Needs Debian's python3 (no extra modules) and bazel-bin/control/brrrctl/brrrctl.
"""
import json
import socket
import subprocess
import sys
import threading
import time


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: slow_reader.py ECHO_PORT ADMIN_PORT")
    port, admin = int(sys.argv[1]), sys.argv[2]
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    stop = threading.Event()

    def writer():
        block = b"y" * (1 << 20)
        while not stop.is_set():
            try:
                s.send(block)
            except OSError:
                break

    def reader():
        while not stop.is_set():
            try:
                s.recv(16384)
            except OSError:
                break
            time.sleep(0.002)

    threading.Thread(target=writer, daemon=True).start()
    threading.Thread(target=reader, daemon=True).start()
    queued = []
    end = time.time() + 4
    while time.time() < end:
        out = subprocess.run(["bazel-bin/control/brrrctl/brrrctl", "--target=127.0.0.1:" + admin, "sockets", "--json"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            sock = json.loads(line)
            for entry in sock.get("sockets", [sock]):
                if entry.get("kind") == "connection":
                    queued.append(int(entry.get("bytes_queued", 0)))
        time.sleep(0.05)
    stop.set()
    if not queued:
        sys.exit("the server listed no connection")
    print(f"samples {len(queued)}, most queued {max(queued)} bytes")


if __name__ == "__main__":
    main()
