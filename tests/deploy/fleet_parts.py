"""The parts of //tests/deploy:fleet_test that are not about the fleet: Prometheus queries by
instance, a metrics port's figure, the configurations' ports, the short-connection client (see
fleet_test.py); the checks, waits and child processes it shares with other system tests are in
tests/testing/system_test_parts.py. python3's standard library only."""

import os
import re
import socket
import threading
import time

from system_test_parts import WAIT_S, CheckFailed, Child, check, free_port, http_get, query_samples, wait_for

CHURN_BYTES = 1024    # what each short connection echoes
CHURN_LIMIT = 20000   # short connections at most


def query(prometheus, expression):
    """The instant vector for `expression` as {instance: value} ({} when empty or on error)."""
    return {sample["metric"].get("instance", ""): float(sample["value"][1])
            for sample in query_samples(prometheus, expression)}


def metric(metrics_port, name):
    """The sum over loops of `name` on a metrics port, or None."""
    status, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    if status != 200:
        return None
    values = [float(line.split()[-1]) for line in body.splitlines() if line.startswith(name + "{")]
    return sum(values) if values else None


def templated(text, ports):
    """`text` with each shipped port (a whole number) replaced by its test port."""
    for shipped, port in ports.items():
        check(re.search(rf"\b{shipped}\b", text), f"the shipped configuration no longer names port {shipped}")
        text = re.sub(rf"\b{shipped}\b", str(port), text)
    return text


class Churn:
    """New connections through HAProxy all along, one after another: each sends CHURN_BYTES,
    half-closes, and must get them back whole, then the end of stream. brrr-bench's
    connections last until a drain closes them; these arrive while an instance changes hands,
    when a connect to a port nobody listens on would be refused (HAProxy would retry it on
    another instance: its counters show that). Bounded by CHURN_LIMIT and stop()."""

    def __init__(self, port):
        self.port = port
        self.sent = 0
        self.connections = 0
        self.errors = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        payload = os.urandom(CHURN_BYTES)
        while not self.stopping.is_set() and self.connections < CHURN_LIMIT and len(self.errors) < 5:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    s.sendall(payload)
                    self.sent += len(payload)
                    s.shutdown(socket.SHUT_WR)
                    got = b""
                    while True:
                        more = s.recv(65536)
                        if not more:
                            break
                        got += more
                    if got != payload:
                        self.errors.append(f"short connection {self.connections}: {len(got)} of "
                                           f"{len(payload)} bytes came back" + (" (different)" if len(got) == len(payload) else ""))
            except OSError as e:
                self.errors.append(f"short connection {self.connections}: {e}")
            self.connections += 1
            time.sleep(0.005)

    def stop(self):
        self.stopping.set()
        self.thread.join()
