"""What brrr's Python system tests share (//tests/control:prometheus_test,
//tests/deploy:fleet_test): checks that fail the test with a message, bounded waits, free
loopback ports, HTTP GETs, Prometheus instant queries and child processes ended with the test.
python3's standard library only; the test's .sh puts this folder on PYTHONPATH.

    from system_test_parts import CheckFailed, Child, check, wait_for
    echo = Child("brrr-echo", [path, "--port=0"], log_path)
    wait_for("brrr-echo listening", lambda: "listening" in echo.output())
"""

import json
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

WAIT_S = 60  # for each thing a test waits for


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


_PORTS_GIVEN = set()


def _ephemeral_range_start():
    """The first port of the range the kernel gives connect() and bind(port 0), or 0."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port():
    """A loopback port free now, never one this process was given before: a test that asks
    for several ports before it binds any (one server's metrics port, another's admin port)
    must not get the same one twice. Picked at random below the kernel's ephemeral range
    (net.ipv4.ip_local_port_range) when it leaves room: every connect() of every test running
    alongside takes its local port from that range, so a port picked there can be taken
    before the server binds it; below it only explicit binds compete."""
    start = _ephemeral_range_start()
    span = 12288
    for _ in range(1000):
        wanted = random.randrange(start - span, start) if start - span >= 1024 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", wanted))
            except OSError:
                continue
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise CheckFailed("no loopback port free that this test was not given before (1000 tries)")


def wait_for(what, predicate, timeout_s=WAIT_S):
    """predicate()'s first true value, polled every 0.2 s; CheckFailed after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise CheckFailed(f"{what}: not within {timeout_s} s (last: {last!r})")


def http_get(url, timeout_s=5):
    """(status, body); status 0 and the error's text when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def query_samples(prometheus, expression):
    """The samples of the instant vector for `expression` ([] when empty or on error)."""
    status, body = http_get(f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
    if status != 200:
        return []
    result = json.loads(body)
    if result.get("status") != "success":
        return []
    return result["data"]["result"]


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
