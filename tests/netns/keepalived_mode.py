"""keepalived on the testbed's hosts, for the benchmarks that compare VIP
failover with it (bench/vip): one VRRP instance per host on eth0, started
inside the host's namespace with pid files in the host's run dir (emptied
on boot, like /run), restarted by Testbed.boot() like any service. Imported
by testbed.py as testbed.Keepalived.
"""

import os
import signal
import time
from pathlib import Path

PREFIX_LEN = 24
STOP_WAIT_S = 5.0


def _find_keepalived():
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        if os.access(f"{d}/keepalived", os.X_OK):
            return f"{d}/keepalived"
    return "keepalived"


KEEPALIVED = _find_keepalived()


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _argv0(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return b""


class Keepalived:
    """keepalived (VRRP) on every host of a Testbed(bulwark=False): one
    instance on eth0, virtual_router_id chosen per run, priorities 100, 99,
    98... in node order, the VIP. Restarted by boot() like any service."""

    def __init__(self, testbed, vip="192.0.2.100/24", advert_int=1.0, version=2, preempt=True,
                 nodes=None):
        if version not in (2, 3):
            raise ValueError("VRRP version is 2 or 3")
        if version == 2 and (advert_int < 1 or advert_int != int(advert_int)):
            raise ValueError("VRRPv2 advertises in whole seconds; use version=3 for advert_int < 1")
        if version == 3 and advert_int < 0.01:
            raise ValueError("VRRPv3 advert_int is at least 0.01 s")
        self.tb = testbed
        self.vip = vip if "/" in vip else f"{vip}/{PREFIX_LEN}"
        self.advert_int = advert_int
        self.version = version
        self.preempt = preempt
        self.nodes = nodes or testbed.nodes
        self.router_id = int(testbed.tag[-4:], 16) % 254 + 1
        self.procs = {}

    def conf_dir(self, node):
        return self.tb.dir / "keepalived" / node

    def conf_text(self, node):
        priority = 100 - self.tb.nodes.index(node)
        advert = f"{self.advert_int:g}"
        return (
            "global_defs {\n"
            f"    router_id {self.tb.tag}_{node}\n"
            f"    vrrp_version {self.version}\n"
            "}\n"
            "vrrp_instance VI_testbed {\n"
            "    state BACKUP\n"
            "    interface eth0\n"
            f"    virtual_router_id {self.router_id}\n"
            f"    priority {priority}\n"
            f"    advert_int {advert}\n"
            + ("" if self.preempt else "    nopreempt\n") +
            "    virtual_ipaddress {\n"
            f"        {self.vip} dev eth0\n"
            "    }\n"
            "}\n")

    def start(self):
        for node in self.nodes:
            d = self.conf_dir(node)
            d.mkdir(parents=True, exist_ok=True)
            conf = d / "keepalived.conf"
            conf.write_text(self.conf_text(node))
            run_dir = self.tb.run_dir(node)
            run_dir.mkdir(parents=True, exist_ok=True)
            argv = [KEEPALIVED, "--dont-fork", "--log-console", "--vrrp", "--use-file", conf,
                    "--pid", run_dir / "keepalived.pid", "--vrrp_pid", run_dir / "vrrp.pid",
                    "--checkers_pid", run_dir / "checkers.pid"]
            self.procs[node] = self.tb.spawn(node, argv, d / "keepalived.out",
                                             service="keepalived")
        return self

    def stop(self, node=None):
        """SIGTERM (keepalived removes its VIP), bounded wait, then SIGKILL."""
        for n in [node] if node else list(self.nodes):
            self.tb._services.get(n, {}).pop("keepalived", None)
            for pid in self.pids(n):
                _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for n in [node] if node else list(self.nodes):
            while self.pids(n) and time.monotonic() < deadline:
                time.sleep(0.02)
            for pid in self.pids(n):
                _signal(pid, signal.SIGKILL)
        self.tb._write_state()
        self.tb._reap()

    def pids(self, node):
        return [p for p in self.tb.pids(node) if b"keepalived" in _argv0(p)]

    def log(self, node):
        path = self.conf_dir(node) / "keepalived.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.tb.state == "up":
            self.stop()
        return False
