#!/usr/bin/python3
"""A fleet on loopback with the real parts: three brrr-echo instances, Debian's HAProxy in front
of them and Debian's Prometheus scraping them, all from deploy/'s configurations. Under
continuous brrr-bench --reconnect load through HAProxy, each instance is upgraded in turn (a
new process takes its listeners over with --take_over; the old one drains and exits 0), and
then instance 1 is restarted (SIGTERM, drain, exit, a new process binds), and nothing is lost:

1. deploy/haproxy.cfg and deploy/prometheus.yml, their ports replaced by free ones (and
   nothing else: the test checks that only digits differ), pass `haproxy -c` and `promtool
   check config`, as the shipped files do; `systemd-analyze verify` (where it is there)
   accepts deploy/brrr-echo@.service.
2. Three brrr-echo start, each by the unit's own ExecStart as systemd would run it for
   brrr-echo@N.blue (its binary and directories replaced by the test's), with a flags file
   of free ports and a short --drain_timeout so that a drain closes the load's connections
   at its deadline: --metrics_port, --admin_port, --handover_socket and --drain_grace come
   from the unit. HAProxy (`haproxy -db`) sees all three up through /readyz; Prometheus
   scrapes all three (up == 1).
3. brrr-bench --reconnect runs through HAProxy (bounded in time). Once each instance has
   taken traffic, instance 1, then 2, then 3 is upgraded: the unit's ExecStart for
   brrr-echo@N.green finds the hand-over socket and starts with --take_over on the same ports;
   the old process says it handed over, drains, prints its summary and exits 0. Then instance
   1 is restarted as `systemctl restart` would: SIGTERM; HAProxy takes it out while it still
   accepts (--drain_grace); it exits 0; a new process binds; HAProxy puts it back. All along,
   another client opens short connections through HAProxy one after another (each echoes
   1 KiB whole and ends cleanly), so connects arrive while an instance changes hands.
4. brrr-bench exits 0: no mismatch, no lost connection, no reset, no refused connect; the
   drains' closes were clean and every message they left unanswered was resent. Every
   generation's summary says 0 connections closed with a reset. Every short connection echoed
   whole. HAProxy's own counters show no connection error, retry or redispatch (a refused
   connect to an instance would be retried on another and hidden from the clients; with a
   plain stop-then-start and no grace, 200 were redispatched in a run), and the three servers
   up.
5. Bytes: what brrr-bench sent (every byte the kernel took, resends included) plus what the
   short connections sent equals the sum over all seven generations of bytes_in + bytes_discarded: the old ones from their exit
   summaries, the current ones from `brrrctl --target=a,b,c --json stats` (its fleet total).
   Prometheus' query API shows brrr_bytes_in_total for all three instances, and once a scrape
   after the load has ended, their sums agree with brrrctl's.
6. Instance 2 is killed (SIGKILL, as a crash or systemd's stop timeout would end it): its
   hand-over socket stays behind, and the unit's ExecStart, run again as Restart=on-failure
   would, starts afresh (--take_over_or_start) and HAProxy puts it back.
7. The current generation drains on SIGTERM and exits 0.

Every process is ended when the test ends, whatever happens. Run by fleet_test.sh. Exits 0 if
every check holds, 1 saying which did not.
"""

import argparse
import csv
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from fleet_parts import WAIT_S, CheckFailed, Child, Churn, check, free_port, http_get, metric, query, templated, wait_for

INSTANCES = 3
LOAD_LIMIT_S = 300   # brrr-bench's --duration: the test ends it (SIGINT) once the restarts are over
DEPTH = 8             # brrr-bench's messages in flight per connection
SETTLE_S = 2          # load on the new generation before the next upgrade
# Each instance runs deploy/brrr-echo@.service's command line (its shell snippet: take over
# when the other slot's socket is there, else bind) with these in its flags file, beside its
# ports. --drain_timeout=2s overrides the unit's 30 s (the flags file comes last), so that each
# old generation closes the load's connections at its drain deadline (the clean close under
# test) within the test's time; --drain_grace stays the unit's. epoll rather than the default
# io_uring, here and for brrr-bench: up to eight processes of this test at once (and the
# suite's other tests) would share the user's RLIMIT_MEMLOCK (8 MiB here) for their rings, and
# a ring that cannot be set up stops a process at start (seen with three runs side by side).
INSTANCE_FLAGS = ["--loops=1", "--drain_timeout=2s", "--backend=epoll"]
# The unit's paths, and what the test uses instead.
UNIT_BINARY = "/usr/local/bin/brrr-echo"
UNIT_RUN_DIR = "/run/brrr"
UNIT_FLAGS_DIR = "/etc/brrr"
SLOTS = ["blue", "green"]

# The ports deploy/'s files name, by role.
SHIPPED_FRONTEND = 5000
SHIPPED_ECHO = [5101, 5102, 5103]
SHIPPED_METRICS = [9101, 9102, 9103]
SHIPPED_ADMIN = [5201, 5202, 5203]
SHIPPED_STATS = 8404

SUMMARY = re.compile(r"brrr-echo: drained in .*?, (\d+) bytes in, (\d+) bytes out, .*; at the deadline (\d+) closed "
                     r"cleanly, (\d+) with a reset, (\d+) bytes discarded after the end of stream")



class Fleet:
    def __init__(self, args, tmp, sockets_dir):
        self.args = args
        self.tmp = tmp
        self.sockets_dir = sockets_dir  # short: a UNIX socket path has at most 107 bytes
        self.children = []
        self.frontend = free_port()
        self.echo = [free_port() for _ in range(INSTANCES)]
        self.metrics = [free_port() for _ in range(INSTANCES)]
        self.admin = [free_port() for _ in range(INSTANCES)]
        self.stats = free_port()
        self.prometheus = f"127.0.0.1:{free_port()}"
        self.generations = [[] for _ in range(INSTANCES)]  # per instance, oldest first
        self.churn = None

    def start(self, name, args):
        child = Child(name, args, os.path.join(self.tmp, name + ".log"))
        self.children.append(child)
        return child

    # ---- configurations ----

    def configurations(self):
        haproxy_ports = {SHIPPED_FRONTEND: self.frontend, SHIPPED_STATS: self.stats}
        haproxy_ports.update(zip(SHIPPED_ECHO, self.echo))
        haproxy_ports.update(zip(SHIPPED_METRICS, self.metrics))
        with open(self.args.haproxy_cfg) as f:
            shipped = f.read()
        text = templated(shipped, haproxy_ports)
        check(re.sub(r"\d+", "N", text) == re.sub(r"\d+", "N", shipped),
              "the test's haproxy.cfg differs from deploy/haproxy.cfg in more than ports")
        self.haproxy_cfg = os.path.join(self.tmp, "haproxy.cfg")
        with open(self.haproxy_cfg, "w") as f:
            f.write(text)

        with open(self.args.prometheus_yml) as f:
            shipped = f.read()
        text = templated(shipped, dict(zip(SHIPPED_METRICS, self.metrics)))
        check(re.sub(r"\d+", "N", text) == re.sub(r"\d+", "N", shipped),
              "the test's prometheus.yml differs from deploy/prometheus.yml in more than ports")
        self.prometheus_yml = os.path.join(self.tmp, "prometheus.yml")
        with open(self.prometheus_yml, "w") as f:
            f.write(text)

        for what, command in [
            ("haproxy -c (deploy/haproxy.cfg)", [self.args.haproxy, "-c", "-f", self.args.haproxy_cfg]),
            ("haproxy -c (the test's copy)", [self.args.haproxy, "-c", "-f", self.haproxy_cfg]),
            ("promtool check config (deploy/prometheus.yml)",
             [self.args.promtool, "check", "config", self.args.prometheus_yml]),
            ("promtool check config (the test's copy)", [self.args.promtool, "check", "config", self.prometheus_yml]),
        ]:
            r = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=WAIT_S)
            check(r.returncode == 0, f"{what} failed (exit {r.returncode}):\n{r.stdout}")
        print("fleet_test: deploy/haproxy.cfg and deploy/prometheus.yml pass haproxy -c and promtool check config")

        if os.path.exists(self.args.systemd_analyze):
            units = os.path.join(self.tmp, "units")
            os.makedirs(units, exist_ok=True)
            shutil.copy(self.args.unit, units)
            command = [self.args.systemd_analyze, "verify", "--man=no", os.path.join(units, "brrr-echo@1.blue.service")]
            r = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=WAIT_S)
            # It only warns (exit 0) about a setting it ignores: that fails here too.
            check(r.returncode == 0 and "ignoring" not in r.stdout,
                  f"systemd-analyze verify brrr-echo@1.blue.service failed or warned:\n{r.stdout}")
            print("fleet_test: systemd-analyze verify accepts deploy/brrr-echo@.service")
        else:
            print(f"fleet_test: {self.args.systemd_analyze} not here: the unit is run but not verified by systemd")

    # ---- brrr-echo, as deploy/brrr-echo@.service runs it ----

    def echo_args(self, i, slot):
        """The unit's ExecStart for instance i+1 in `slot`, as systemd would run it, with the
        test's binary and directories in place of the unit's."""
        with open(self.args.unit) as f:
            text = f.read().replace("\\\n", "")  # systemd joins lines ending in a backslash
        lines = [line for line in text.splitlines() if line.startswith("ExecStart=")]
        check(len(lines) == 1, "deploy/brrr-echo@.service has no single ExecStart")
        name = f"{i + 1}.{slot}"
        for unit_path in (UNIT_BINARY, UNIT_RUN_DIR, UNIT_FLAGS_DIR):
            check(unit_path in lines[0], f"deploy/brrr-echo@.service's ExecStart no longer names {unit_path}")
        argv = []
        for word in shlex.split(lines[0][len("ExecStart="):]):
            word = re.sub(r"%(.)", lambda m: {"%": "%", "i": name}[m.group(1)], word).replace("$$", "$")
            for unit_path, path in [(UNIT_BINARY, self.args.brrr_echo), (UNIT_RUN_DIR, self.sockets_dir),
                                    (UNIT_FLAGS_DIR, self.tmp)]:
                word = word.replace(unit_path, path)
            argv.append(word)
        flags = os.path.join(self.tmp, f"echo-{i + 1}.flags")
        with open(flags, "w") as f:
            f.write("\n".join([f"--port={self.echo[i]}", f"--metrics_port={self.metrics[i]}",
                               f"--admin_port={self.admin[i]}"] + INSTANCE_FLAGS) + "\n")
        return argv

    def start_instance(self, i, take_over):
        n = len(self.generations[i]) + 1
        # A hand-over moves to the other slot's unit; a restart stays in the unit it was in.
        slot = SLOTS[(n - 1) % 2] if take_over else self.generations[i][-1].name.split("-")[-1] if n > 1 else SLOTS[0]
        child = self.start(f"echo{i + 1}-gen{n}-{slot}", self.echo_args(i, slot))
        self.generations[i].append(child)
        if take_over:
            wait_for(f"{child.name} took over", lambda: "took over the listeners of pid" in child.output()
                     or child.process.poll() is not None)
            check(child.process.poll() is None, f"{child.name} exited: {child.output()}")
        else:
            wait_for(f"{child.name} listening", lambda: f"metrics on 127.0.0.1:{self.metrics[i]}" in child.output()
                     or child.process.poll() is not None)
            check(child.process.poll() is None, f"{child.name} exited: {child.output()}")
        # The metrics port answers ready (after a take-over, the new process or, until it lets
        # go, the old one: both accept on the port for that moment).
        wait_for(f"{child.name} ready", lambda: http_get(f"http://127.0.0.1:{self.metrics[i]}/readyz")[0] == 200)
        return child

    def upgrade(self, i):
        old = self.generations[i][-1]
        new = self.start_instance(i, take_over=True)
        code = old.wait_exit(WAIT_S)
        check(code == 0, f"{old.name} exited {code} after handing over to {new.name}:\n{old.output()}")
        check("handed the listeners over to pid" in old.output(), f"{old.name} did not say it handed over")
        return self.summary(old)

    def restart(self, i):
        """`systemctl restart`: SIGTERM, the drain (its grace lets HAProxy take the instance
        out before the listeners close), the exit, then a new process that binds the ports."""
        old = self.generations[i][-1]
        old.process.send_signal(signal.SIGTERM)
        wait_for(f"HAProxy takes echo{i + 1} out while it drains",
                 lambda: self.haproxy_servers().get(f"echo{i + 1}", {}).get("status", "").startswith("DOWN"))
        code = old.wait_exit(WAIT_S)
        check(code == 0, f"{old.name} exited {code} on SIGTERM:\n{old.output()}")
        self.start_instance(i, take_over=False)
        wait_for(f"HAProxy puts echo{i + 1} back", self.all_up)
        return self.summary(old)

    def summary(self, child):
        """(bytes_in, bytes_discarded, closed cleanly at the deadline) from its exit line, which
        must say that no connection was closed with a reset."""
        m = SUMMARY.search(child.output())
        check(m is not None, f"{child.name}: no summary line:\n{child.output()}")
        bytes_in, _, clean, reset, discarded = (int(g) for g in m.groups())
        check(reset == 0, f"{child.name} closed {reset} connections with a reset at its drain deadline")
        return bytes_in, discarded, clean

    # ---- HAProxy, Prometheus, brrrctl ----

    def haproxy_servers(self):
        """HAProxy's CSV statistics of backend brrr_echo's servers, by server name."""
        status, body = http_get(f"http://127.0.0.1:{self.stats}/stats;csv")
        if status != 200:
            return {}
        rows = csv.DictReader(io.StringIO(body.lstrip("# ")))
        return {r["svname"]: r for r in rows if r["pxname"] == "brrr_echo" and r["svname"] not in ("BACKEND", "FRONTEND")}

    def all_up(self):
        servers = self.haproxy_servers()
        return len(servers) == INSTANCES and all(s["status"] == "UP" for s in servers.values()) and servers

    def brrrctl_totals(self):
        targets = ",".join(f"127.0.0.1:{p}" for p in self.admin)
        r = subprocess.run([self.args.brrrctl, f"--target={targets}", "--json", "stats"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=WAIT_S)
        check(r.returncode == 0, f"brrrctl --target={targets} --json stats exited {r.returncode}: {r.stderr}")
        lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        total = [line["total"] for line in lines if "total" in line]
        check(len(total) == 1 and total[0]["answering"] == INSTANCES, f"brrrctl's fleet total: {r.stdout[-2000:]}")
        return int(total[0]["stats"]["bytes_in"]), int(total[0]["stats"]["bytes_discarded"])


def run(args, fleet):
    fleet.configurations()
    for i in range(INSTANCES):
        fleet.start_instance(i, take_over=False)
    haproxy = fleet.start("haproxy", [args.haproxy, "-db", "-f", fleet.haproxy_cfg])
    wait_for("HAProxy sees the three instances UP (their /readyz)",
             lambda: fleet.all_up() or haproxy.process.poll() is not None)
    check(haproxy.process.poll() is None, "haproxy exited")
    prometheus = fleet.start("prometheus", [args.prometheus, f"--config.file={fleet.prometheus_yml}",
                                            f"--storage.tsdb.path={fleet.tmp}/tsdb",
                                            f"--web.listen-address={fleet.prometheus}", "--log.level=warn"])
    wait_for("Prometheus ready", lambda: http_get(f"http://{fleet.prometheus}/-/ready")[0] == 200)
    wait_for("Prometheus scrapes the three instances (up == 1)",
             lambda: sorted(query(fleet.prometheus, 'up{job="brrr"}').values()) == [1.0] * INSTANCES)

    bench = fleet.start("brrr-bench", [args.brrr_bench, f"--port={fleet.frontend}", "--reconnect", "--backend=epoll", "--connections=8",
                                       "--size=64", f"--depth={DEPTH}", f"--duration={LOAD_LIMIT_S}s",
                                       "--progress=false", "--json"])
    churn = Churn(fleet.frontend)
    fleet.churn = churn
    old = []  # (bytes_in, bytes_discarded, closed cleanly) of each old generation
    for i in range(INSTANCES):
        # Traffic reaches the instance (through HAProxy) before it is upgraded.
        wait_for(f"echo{i + 1} takes traffic", lambda: (metric(fleet.metrics[i], "brrr_bytes_in_total") or 0) > 0)
        time.sleep(SETTLE_S)  # spacing between upgrades, not a check
        check(bench.process.poll() is None, f"brrr-bench ended before echo{i + 1}'s upgrade:\n{bench.output()}")
        old.append(fleet.upgrade(i))
        print(f"fleet_test: echo{i + 1} upgraded under load: the old generation read {old[-1][0]} bytes, discarded "
              f"{old[-1][1]}, closed {old[-1][2]} connections cleanly at its deadline")
    # The other procedure, for what cannot be handed over: a restart behind HAProxy.
    old.append(fleet.restart(0))
    print(f"fleet_test: echo1 restarted under load (drain with grace, exit, bind): the old generation read "
          f"{old[-1][0]} bytes, discarded {old[-1][1]}, closed {old[-1][2]} connections cleanly at its deadline")
    check(bench.process.poll() is None, f"brrr-bench ended before the restarts were over:\n{bench.output()}")
    time.sleep(SETTLE_S)  # load on the last new process too, not a check
    bench.process.send_signal(signal.SIGINT)  # ends the run with its report
    churn.stop()
    print(f"fleet_test: {churn.connections} short connections through the upgrades, {len(churn.errors)} failed")
    check(not churn.errors, "; ".join(churn.errors))
    code = bench.wait_exit(WAIT_S)
    out = bench.output()
    report = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    check(report, f"brrr-bench printed no JSON report:\n{out}")
    r = report[-1]
    print(f"fleet_test: brrr-bench: {r['messages']} messages, {r['clean_closes']} clean closes, {r['resets']} resets, "
          f"{r['refused_connects']} refused, {r['resent_messages']} resent, {r['reconnects']} reconnects, "
          f"{r['bytes_sent']} bytes sent, exit {code}")
    check(code == 0 and r["ok"], f"brrr-bench failed (exit {code}):\n{out}")
    check(r["mismatches"] == 0 and r["lost_connections"] == 0 and r["connect_failures"] == 0, f"brrr-bench: {out}")
    check(r["resets"] == 0 and r["refused_connects"] == 0, f"brrr-bench saw resets or refused connects: {out}")
    clean_at_deadlines = sum(o[2] for o in old)
    check(clean_at_deadlines > 0, "no old generation closed a connection at its drain deadline: nothing was tested")
    check(r["clean_closes"] == clean_at_deadlines,
          f"brrr-bench saw {r['clean_closes']} clean closes, the old generations made {clean_at_deadlines}")
    check(r["reconnects"] == r["clean_closes"], f"brrr-bench: every clean close is followed by a reconnect: {out}")
    # A full window is in flight on every connection (no --rate): a drain's deadline leaves
    # messages unanswered, and they are resent.
    check(0 < r["resent_messages"] <= r["clean_closes"] * DEPTH,
          f"brrr-bench resent {r['resent_messages']} messages after {r['clean_closes']} clean closes: {out}")

    servers = fleet.haproxy_servers()
    for name, s in sorted(servers.items()):
        for field in ("econ", "wretr", "wredis"):
            check(s[field] in ("", "0"), f"HAProxy's server {name} has {field}={s[field]}: {s}")
    check(fleet.all_up(), f"HAProxy does not have all three servers UP at the end: {servers}")

    # Bytes: the old generations' exit lines plus the current ones' figures.
    sent = r["bytes_sent"] + churn.sent
    old_sum = sum(o[0] + o[1] for o in old)
    seen = []

    def accounted():
        seen.append(fleet.brrrctl_totals())
        return seen[-1] if old_sum + seen[-1][0] + seen[-1][1] == sent else False

    # Waited for: the last bytes a client sent before closing may still be on their way.
    try:
        current = wait_for("the bytes accounted for", accounted, timeout_s=30)
    except CheckFailed:
        raise CheckFailed(f"brrr-bench and the short connections sent {sent} bytes; the old generations read or discarded {old_sum}, "
                          f"brrrctl's fleet total (bytes_in, bytes_discarded) of the current ones is {seen[-1]}: "
                          f"{old_sum + sum(seen[-1]) - sent:+d} bytes")
    print(f"fleet_test: {sent} bytes sent (brrr-bench's and the short connections') = {old_sum} read or discarded by the old generations + {current[0]} read "
          f"and {current[1]} discarded by the current ones (brrrctl's fleet total)")

    def prometheus_agrees():
        per_instance = query(fleet.prometheus, 'sum by (instance) (brrr_bytes_in_total{job="brrr"})')
        discarded = query(fleet.prometheus, 'sum(brrr_bytes_discarded_total{job="brrr"})')
        if len(per_instance) != INSTANCES or not discarded:
            return False
        return (sum(per_instance.values()) == current[0] and list(discarded.values()) == [float(current[1])]
                and per_instance)

    per_instance = wait_for(f"Prometheus' sum(brrr_bytes_in_total) == {current[0]} and sum(brrr_bytes_discarded_total)"
                            f" == {current[1]} (brrrctl's), over three instances", prometheus_agrees)
    print("fleet_test: Prometheus: brrr_bytes_in_total " +
          ", ".join(f"{k}={v:.0f}" for k, v in sorted(per_instance.items())) + ": the sum agrees with brrrctl")

    # A crash: the process dies without its drain and leaves its hand-over socket behind;
    # systemd (Restart=on-failure) starts the same unit again, and it must come back.
    crashed = fleet.generations[1][-1]
    crashed.process.send_signal(signal.SIGKILL)
    crashed.wait_exit(WAIT_S)
    socket_path = os.path.join(fleet.sockets_dir, "echo-2.sock")
    check(os.path.exists(socket_path), f"{crashed.name} was killed, yet its hand-over socket {socket_path} is gone")
    wait_for("HAProxy takes echo2 out after its crash",
             lambda: fleet.haproxy_servers().get("echo2", {}).get("status", "").startswith("DOWN"))
    back = fleet.start_instance(1, take_over=False)
    check("starting afresh" in back.output(), f"{back.name} did not say it started afresh:\n{back.output()}")
    wait_for("HAProxy puts echo2 back after its restart", fleet.all_up)
    print(f"fleet_test: echo2 killed (SIGKILL) and started again by its unit's command line: serving, "
          f"its stale hand-over socket replaced")

    for i in range(INSTANCES):
        child = fleet.generations[i][-1]
        child.process.send_signal(signal.SIGTERM)
    for i in range(INSTANCES):
        child = fleet.generations[i][-1]
        code = child.wait_exit(WAIT_S)
        check(code == 0, f"{child.name} exited {code} on SIGTERM:\n{child.output()}")
        fleet.summary(child)
    del haproxy, prometheus


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("brrr_echo", "brrr_bench", "brrrctl", "haproxy", "prometheus", "promtool", "systemd_analyze",
                 "haproxy_cfg", "prometheus_yml", "unit", "tmp"):
        parser.add_argument("--" + name, required=True)
    args = parser.parse_args()
    sockets_dir = tempfile.mkdtemp(prefix="brrr-fleet-", dir="/tmp")
    fleet = Fleet(args, args.tmp, sockets_dir)
    try:
        run(args, fleet)
    except CheckFailed as e:
        for child in fleet.children:
            sys.stderr.write(f"--- {child.log_path}\n{child.output()[-6000:]}\n")
        sys.exit(f"fleet_test: FAIL: {e}")
    finally:
        if fleet.churn is not None:
            fleet.churn.stop()
        for child in reversed(fleet.children):
            child.stop()
        shutil.rmtree(sockets_dir, ignore_errors=True)
    print("fleet_test: PASS")


if __name__ == "__main__":
    main()
