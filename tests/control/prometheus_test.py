#!/usr/bin/python3
"""A real Prometheus server scrapes a real brrr-echo under traffic, and what it stored is read
back through Prometheus' HTTP query API: the bytes the clients sent, summed over loops.

1. brrr-echo runs with --loops=2, its metrics port on a free port and --admin_token_file.
2. Prometheus (Debian's /usr/bin/prometheus) runs on another free port of 127.0.0.1 with
   tests/control/testdata/prometheus.yml (scrape every second, the token as a bearer token),
   its TSDB in the test's temporary directory.
3. Clients echo a known number of bytes over a few seconds (bounded in count and time) while
   Prometheus scrapes; each checks every byte it gets back.
4. The test queries sum(brrr_bytes_in_total{job="brrr"}) until it equals the bytes sent (at
   most 60 s), and checks up{job="brrr"} and a histogram's quantile.

Both processes are ended when the test ends, whatever happens. Run by prometheus_test.sh.
Exits 0 if every check holds, 1 saying which did not.
"""

import argparse
import json
import os
import shutil
import socket
import sys
import threading
import time

from system_test_parts import CheckFailed, Child, check, free_port, http_get, query_samples, wait_for

TOKEN = "prometheus-test-token"
CLIENTS = 8
ROUNDS = 200          # per client; each echoes CHUNK bytes
CHUNK = 4096
TRAFFIC_LIMIT_S = 30  # the traffic stops by then, whatever it has done


def query(prometheus, expression):
    """The instant vector's values for `expression`, as floats ([] when empty or on error)."""
    return [float(sample["value"][1]) for sample in query_samples(prometheus, expression)]


def echo_client(port, seed, sent, errors):
    """Echoes ROUNDS chunks, checking each byte; adds what it sent to sent[seed]."""
    payload = bytes((seed * 31 + i) % 256 for i in range(CHUNK))
    deadline = time.monotonic() + TRAFFIC_LIMIT_S
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            for _ in range(ROUNDS):
                if time.monotonic() > deadline:
                    break
                s.sendall(payload)
                got = b""
                while len(got) < CHUNK:
                    more = s.recv(CHUNK - len(got))
                    if not more:
                        raise CheckFailed(f"client {seed}: the server closed mid-echo")
                    got += more
                if got != payload:
                    raise CheckFailed(f"client {seed}: the echo differs from what was sent")
                sent[seed] += CHUNK
                time.sleep(0.01)  # spread the traffic over several scrapes
    except Exception as e:  # reported by the main thread
        errors.append(f"client {seed}: {e}")


def run(args):
    tmp = args.tmp
    token_path = os.path.join(tmp, "admin.token")
    with open(token_path, "w") as f:
        f.write(TOKEN + "\n")

    metrics_port = free_port()
    echo = Child("brrr-echo", [args.brrr_echo, "--port=0", "--loops=2", f"--metrics_port={metrics_port}",
                  f"--admin_token_file={token_path}"], os.path.join(tmp, "brrr-echo.log"))
    children = [echo]
    try:
        listening = wait_for("brrr-echo listening",
                             lambda: f"metrics on 127.0.0.1:{metrics_port}" in echo.output() and echo.output())
        echo_port = int(listening.split("listening on 127.0.0.1:")[1].split()[0])

        # The configuration from the tree, with the files it names beside it.
        config = os.path.join(tmp, "prometheus.yml")
        shutil.copyfile(args.config, config)
        with open(os.path.join(tmp, "targets.json"), "w") as f:
            json.dump([{"targets": [f"127.0.0.1:{metrics_port}"]}], f)
        prometheus = f"127.0.0.1:{free_port()}"
        server = Child("prometheus", [args.prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp}/tsdb",
                        f"--web.listen-address={prometheus}", "--log.level=warn"],
                       os.path.join(tmp, "prometheus.log"))
        children.append(server)
        wait_for("Prometheus ready", lambda: http_get(f"http://{prometheus}/-/ready")[0] == 200)
        wait_for("Prometheus scraping brrr-echo with the token (up == 1)",
                 lambda: query(prometheus, 'up{job="brrr"}') == [1.0])

        sent = [0] * CLIENTS
        errors = []
        threads = [threading.Thread(target=echo_client, args=(echo_port, i, sent, errors)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not errors, "; ".join(errors))
        total = sum(sent)
        check(total > 0, "the clients sent nothing")

        values = wait_for(f"sum(brrr_bytes_in_total) == {total} (the bytes the clients sent)",
                          lambda: (lambda v: v if v == [float(total)] else False)(
                              query(prometheus, 'sum(brrr_bytes_in_total{job="brrr"})')))
        print(f"prometheus_test: Prometheus read back sum(brrr_bytes_in_total) = {values[0]:.0f}, "
              f"the {total} bytes {CLIENTS} clients sent")
        # Each from the latest scrape, which a loaded machine may have missed (a scrape past its
        # timeout makes the series stale until the next one): waited for, not read once.
        wait_for("brrr_bytes_out_total for both loops",
                 lambda: query(prometheus, 'count(brrr_bytes_out_total{job="brrr"})') == [2.0])
        p99 = wait_for("a task-duration quantile from the histogram", lambda: (lambda v: v if len(v) == 1 else False)(
            query(prometheus, 'histogram_quantile(0.99, sum by (le) (brrr_task_duration_seconds_bucket{job="brrr"}))')))
        check(0 < p99[0] < 20, f"the task-duration quantile is out of range: {p99}")
        wait_for("process_open_fds", lambda: query(prometheus, 'process_open_fds{job="brrr"} > 0') != [])
    except CheckFailed:
        for child in children:
            sys.stderr.write(f"--- {child.log_path}\n{child.output()}\n")
        raise
    finally:
        for child in reversed(children):
            child.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brrr_echo", required=True)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--tmp", required=True)
    args = parser.parse_args()
    try:
        run(args)
    except CheckFailed as e:
        sys.exit(f"prometheus_test: FAIL: {e}")
    print("prometheus_test: PASS")


if __name__ == "__main__":
    main()
