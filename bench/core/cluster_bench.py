#!/usr/bin/env python3
"""Cluster-core figures (issue 2) on a local dev cluster:

  1. coordinator failover after `bulwark dev kill` (SIGKILL of the node's
     daemon, etcd member and children) of the coordinator's node;
  2. quorum-lease loss: time from cutting a node off (its two peers paused)
     until it reports that it holds no lease;
  3. write latency through the HTTPS API (keep-alive client, and the CLI);
  4. an idle node's bulwarkd and etcd: resident memory and CPU.

Every run makes its own cluster in a temporary directory and tears it down,
also on failure or Ctrl-C. Usage: cluster_bench.py --bin build/bin [--trials 20]
"""

import argparse
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class Cluster:
    def __init__(self, bin_dir: Path, root: Path, nodes: int):
        self.bulwark = str(bin_dir / "bulwark")
        self.dir = root / "cluster"
        self.nodes = nodes
        self.conns = {}

    def dev(self, *args):
        return subprocess.run([self.bulwark, "dev", *args, "--dir", str(self.dir)], check=True,
                              capture_output=True, text=True, timeout=120).stdout

    def up(self):
        self.dev("up", "--nodes", str(self.nodes))
        self.info = {n["name"]: n for n in json.loads(self.dev("ls", "--json"))["nodes"]}
        self.ctx = ssl.create_default_context(cafile=str(self.dir / "tls" / "ca.crt"))
        self.token = (self.dir / "admin.token").read_text().strip()

    def conn(self, name):
        if name not in self.conns:
            self.conns[name] = http.client.HTTPSConnection(self.info[name]["address"], 7400,
                                                           context=self.ctx, timeout=5)
        return self.conns[name]

    def request(self, name, method, path, body=None):
        headers = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}
        for attempt in range(2):
            c = self.conn(name)
            try:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                return r.status, json.loads(r.read())
            except (OSError, http.client.HTTPException):
                self.conns.pop(name, None)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def status(self, name):
        return self.request(name, "GET", "/v1/status")[1]

    def settled(self):
        """The coordinator every node agrees on, once the cluster is in a
        steady state: every node online and quorate, its etcd member healthy
        and its cache confirmed current."""
        coords = set()
        for n in self.info:
            try:
                s = self.status(n)
            except (OSError, http.client.HTTPException):
                return None
            if not s["quorate"] or not all(x["online"] for x in s["nodes"]):
                return None
            if not s["etcd"]["healthy"] or not s["store"]["watching"]:
                return None
            if not 0 <= s["store"]["confirmed_ago_ms"] < 1500:
                return None
            coords.add(s["coordinator"])
        return coords.pop() if len(coords) == 1 and None not in coords else None

    def steady(self):
        """Waits for a steady state, and that it lasts a second."""
        while True:
            coord = self.wait(self.settled, timeout=60)
            time.sleep(1.0)
            if self.settled() == coord:
                return coord

    def refresh(self):
        self.info = {n["name"]: n for n in json.loads(self.dev("ls", "--json"))["nodes"]}
        self.conns.clear()

    def wait(self, fn, timeout=30, interval=0.005):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                v = fn()
            except OSError:
                v = None
            if v:
                return v
            time.sleep(interval)
        raise TimeoutError("condition not reached")

    def pids(self, name):
        """bulwarkd pid and its etcd member's pid."""
        s = self.status(name)
        return self.info[name]["pid"], s["etcd"]["member_pid"]

    def down(self):
        subprocess.run([self.bulwark, "dev", "down", "--purge", "--dir", str(self.dir)],
                       capture_output=True, timeout=120)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def coordinator_failover(c: Cluster, trials: int):
    rows = []
    for _ in range(trials):
        coord = c.steady()
        survivors = [n for n in c.info if n != coord]
        etcd_leader = c.status(survivors[0])["etcd"]["leader"]
        # Open the polling connection before the kill so the clock measures
        # the cluster, not a TLS handshake.
        c.status(survivors[0])
        t0_wall = time.time() * 1000
        t0 = time.monotonic()
        subprocess.run([c.bulwark, "dev", "kill", coord, "--dir", str(c.dir)], check=True,
                       capture_output=True)

        def new_coordinator():
            s = c.status(survivors[0])
            online = {n["name"]: n["online"] for n in s["nodes"]}
            return s if s["coordinator"] not in (None, coord) and online.get(s["coordinator"]) else None

        s = c.wait(new_coordinator)
        seen_ms = (time.monotonic() - t0) * 1000
        claim_ms = s["coordinator_since_wall_ms"] - t0_wall
        rows.append((claim_ms, seen_ms, etcd_leader == coord))
        subprocess.run([c.bulwark, "dev", "start", coord, "--dir", str(c.dir)], check=True,
                       capture_output=True)
        c.refresh()
    return rows


def lease_loss(c: Cluster, trials: int):
    out = []
    for _ in range(trials):
        c.steady()
        lone = "n1"
        others = [n for n in c.info if n != lone]
        c.status(lone)
        t0 = time.monotonic()
        for n in others:
            subprocess.run([c.bulwark, "dev", "kill", n, "--signal", "STOP", "--dir", str(c.dir)],
                           check=True, capture_output=True)
        c.wait(lambda: not c.status(lone)["lease"]["held"], interval=0.002)
        out.append((time.monotonic() - t0) * 1000)
        for n in others:
            subprocess.run([c.bulwark, "dev", "kill", n, "--signal", "CONT", "--dir", str(c.dir)],
                           check=True, capture_output=True)
        c.conns.clear()
    return out


def write_latency(c: Cluster, count: int):
    c.steady()
    node = "n2"
    lat = []
    for i in range(count):
        body = json.dumps({"set": {"bench": str(i)}})
        t0 = time.perf_counter()
        status, _ = c.request(node, "PATCH", "/v1/nodes/n3/attributes", body)
        lat.append((time.perf_counter() - t0) * 1000)
        assert status == 200
    env = dict(os.environ)
    env["BULWARK_ENDPOINT"] = c.info[node]["endpoint"]
    env["BULWARK_TOKEN_FILE"] = str(c.dir / "admin.token")
    env["BULWARK_CA_FILE"] = str(c.dir / "tls" / "ca.crt")
    cli = []
    for i in range(20):
        t0 = time.perf_counter()
        subprocess.run([c.bulwark, "node", "attr", "n3", f"cli={i}"], check=True, env=env,
                       capture_output=True)
        cli.append((time.perf_counter() - t0) * 1000)
    return lat, cli


def proc_usage(pids, seconds: float):
    """Resident MiB and % of one core of each pid, sampled over the same
    window."""
    hz = os.sysconf("SC_CLK_TCK")

    def cpu(pid):
        f = Path(f"/proc/{pid}/stat").read_text()
        rest = f[f.rfind(")") + 2:].split()
        return int(rest[11]) + int(rest[12])

    before = {p: cpu(p) for p in pids}
    time.sleep(seconds)
    out = {}
    for p in pids:
        rss_kib = 0
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
        out[p] = (rss_kib / 1024, (cpu(p) - before[p]) / hz / seconds * 100)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--writes", type=int, default=500)
    ap.add_argument("--idle-seconds", type=float, default=30)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bulwark-bench-"))
    c = Cluster(Path(args.bin).resolve(), root, 3)
    try:
        c.up()
        print(f"bulwark cluster-core benchmark, {time.strftime('%Y-%m-%d %H:%M')}, "
              f"{os.cpu_count()} cores, 3 nodes, default settings (heartbeat 50 ms, lease 300 ms, "
              f"etcd heartbeat 50 ms / election 300 ms)")

        rows = coordinator_failover(c, args.trials)
        claim = [r[0] for r in rows]
        seen = [r[1] for r in rows]
        leader_kills = sum(1 for r in rows if r[2])
        print(f"\ncoordinator failover after dev kill of its node, {len(rows)} trials "
              f"({leader_kills} also killed the etcd leader):")
        print(f"  new coordinator's claim committed: min {min(claim):.0f}  median "
              f"{statistics.median(claim):.0f}  p90 {pct(claim, 90):.0f}  max {max(claim):.0f} ms")
        print(f"  seen by a client polling a survivor: min {min(seen):.0f}  median "
              f"{statistics.median(seen):.0f}  p90 {pct(seen, 90):.0f}  max {max(seen):.0f} ms"
              f"   (target: median <= 500, worst <= 1000)")

        loss = lease_loss(c, 10)
        print(f"\nquorum-lease loss after the node's peers are paused, {len(loss)} trials:")
        print(f"  min {min(loss):.0f}  median {statistics.median(loss):.0f}  max {max(loss):.0f} ms"
              f"   (target: <= lease 300 + heartbeat 50 = 350)")

        lat, cli = write_latency(c, args.writes)
        print(f"\nwrite latency (bulwark node attr through the API, committed in etcd):")
        print(f"  keep-alive HTTPS client, {len(lat)} writes: p50 {statistics.median(lat):.2f}  "
              f"p99 {pct(lat, 99):.2f}  max {max(lat):.2f} ms   (target: median <= 5)")
        print(f"  the bulwark CLI (new process and TLS handshake each): p50 "
              f"{statistics.median(cli):.1f}  p99 {pct(cli, 99):.1f} ms")

        c.steady()
        c.refresh()
        coord = c.settled()
        time.sleep(2)
        pids = {n: c.pids(n) for n in sorted(c.info)}
        c.conns.clear()  # no client traffic while measuring
        usage = proc_usage([p for pair in pids.values() for p in pair], args.idle_seconds)
        print(f"\nidle nodes over {args.idle_seconds:.0f} s (same window):")
        for n, (pid, etcd_pid) in pids.items():
            rss, cpu = usage[pid]
            erss, ecpu = usage[etcd_pid]
            role = " (coordinator)" if n == coord else ""
            print(f"  {n}{role}: bulwarkd {rss:.1f} MiB, {cpu:.2f} % of a core; "
                  f"its etcd member {erss:.1f} MiB, {ecpu:.2f} %")
        print("  (target for bulwarkd: <= 20 MiB resident, <= 1 % of a core)")
    finally:
        c.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
