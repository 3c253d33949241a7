"""The parts of //tests/deploy:fleet_test that are not about the fleet: checks, waits, HTTP and
Prometheus queries, the short-connection client and the child processes (see fleet_test.py).
python3's standard library only."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

WAIT_S = 60           # for each thing the test waits for
CHURN_BYTES = 1024    # what each short connection echoes
CHURN_LIMIT = 20000   # short connections at most


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise CheckFailed(f"{what}: not within {timeout_s} s (last: {last!r})")


def http_get(url, timeout_s=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def query(prometheus, expression):
    """The instant vector for `expression` as {instance: value} ({} when empty or on error)."""
    status, body = http_get(f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
    if status != 200:
        return {}
    result = json.loads(body)
    if result.get("status") != "success":
        return {}
    return {sample["metric"].get("instance", ""): float(sample["value"][1]) for sample in result["data"]["result"]}


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


class Child:
    """A process ended (SIGTERM, then SIGKILL after 15 s) when the test ends."""

    def __init__(self, name, args, log_path):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_exit(self, timeout_s):
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"{self.name} still runs {timeout_s} s later")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
