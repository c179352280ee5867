"""Fixtures for multi-process tests: real bulwarkd and etcd processes on
loopback, driven through the real CLI. Every cluster lives in its own
temporary directory and claims its own 127.0.K.0/24, so several test runs can
share a machine; every cluster is torn down (and checked gone) even when its
test fails."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def bin_dir() -> Path:
    return Path(os.environ.get("BULWARK_BIN_DIR", REPO / "build" / "bin"))


def wait_until(predicate, timeout_s=20.0, interval_s=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value; fails the test after
    `timeout_s` (a loose bound: tests check behaviour, not speed)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as e:  # the cluster may be in the middle of a change
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


class DevCluster:
    def __init__(self, root: Path):
        self.dir = root / "cluster"
        self.bulwark = str(bin_dir() / "bulwark")

    # --- processes -------------------------------------------------------
    def cli(self, *args, endpoint=None, check=True, timeout=60, env_extra=None):
        env = dict(os.environ)
        env.update(self.env())
        if endpoint:
            env["BULWARK_ENDPOINT"] = endpoint
        if env_extra:
            env.update(env_extra)
        proc = subprocess.run([self.bulwark, *args], capture_output=True, text=True,
                              env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"bulwark {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def dev(self, *args, check=True, timeout=90):
        return self.cli("dev", *args, "--dir", str(self.dir), check=check, timeout=timeout)

    def up(self, nodes=3, lease_ms=None, ocf_root=None, fencing=True):
        extra = ["--lease-ms", str(lease_ms)] if lease_ms else []
        if ocf_root:
            extra += ["--ocf-root", str(ocf_root)]
        if not fencing:
            extra.append("--no-fencing")
        self.dev("up", "--nodes", str(nodes), *extra)
        return self

    def env(self):
        out = {}
        env_file = self.dir / "env"
        if env_file.exists():
            for line in env_file.read_text().splitlines():
                if line.startswith("export "):
                    k, v = line[len("export "):].split("=", 1)
                    out[k] = v
        return out

    def ls(self):
        return json.loads(self.dev("ls", "--json").stdout)["nodes"]

    def node(self, name):
        return next(n for n in self.ls() if n["name"] == name)

    def endpoint(self, name):
        return self.node(name)["endpoint"]

    def kill(self, name, sig="KILL"):
        self.dev("kill", name, "--signal", sig)

    def kill_together(self, names, sig="KILL"):
        """Signals several nodes at (nearly) the same moment: one after the
        other, the first would be lost while the rest still form a majority
        with the node left, and be fenced (a CLI start alone can take 100 ms
        under ASan). A failed call raises as kill() does."""
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            list(pool.map(lambda n: self.kill(n, sig), names))

    def start(self, name):
        self.dev("start", name)

    # --- API -------------------------------------------------------------
    def status(self, name=None):
        ep = self.endpoint(name) if name else None
        return json.loads(self.cli("status", "--json", endpoint=ep, timeout=10).stdout)

    def coordinator(self, name=None):
        """The coordinator as `name` sees it, if that node is quorate and the
        coordinator is online in its view."""
        s = self.status(name)
        if not s["quorate"] or s["coordinator"] is None:
            return None
        online = {n["name"]: n["online"] for n in s["nodes"]}
        return s["coordinator"] if online.get(s["coordinator"]) else None

    def running(self):
        return [n["name"] for n in self.ls() if n["running"]]

    def pids(self):
        return [n["pid"] for n in self.ls() if n["pid"]]

    def down(self):
        if (self.dir / "bulwark.yaml").exists():
            self.dev("down", "--purge", check=False)


def session_alive(sid: int) -> bool:
    """True if a non-zombie process of session `sid` exists (a dev node's
    whole process tree: its daemon, etcd member and resources)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        if int(rest[3]) == sid and rest[0] not in ("Z", "X"):
            return True
    return False


def marked_pids(marker_prefix: str) -> list:
    """Live processes whose environment has an entry starting with
    `marker_prefix` (BULWARK_DEV_NODE=DIR: a dev node's daemon, etcd member
    and resources, also those adopted by a later daemon of the node)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if stat[stat.rfind(")") + 2] in "ZX":
                continue
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(marker_prefix.encode()) for e in env):
            out.append(int(entry))
    return out


def kill_session(sid: int) -> None:
    """SIGKILLs every process of session `sid` (processes this test started)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            rest = Path(f"/proc/{entry}/stat").read_text()
            rest = rest[rest.rfind(")") + 2:].split()
            if int(rest[3]) == sid:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def cluster_factory(request):
    """Makes DevClusters; tears every one down at the end and fails if any
    process of theirs survives. When the test failed, the tail of every
    node's log goes into the report."""
    made = []
    roots = []

    def make():
        root = Path(tempfile.mkdtemp(prefix="bulwark-e2e-"))
        roots.append(root)
        c = DevCluster(root)
        made.append(c)
        return c

    yield make
    leftovers = []
    sanitizer_reports = []
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for c in made:
        if failed and c.dir.exists():
            for log in sorted((c.dir / "data").glob("*/bulwarkd.log")):
                lines = log.read_text(errors="replace").splitlines()[-25:]
                print(f"--- {log} (last {len(lines)} lines)\n" + "\n".join(lines))
        for log in (c.dir / "data").glob("*/bulwarkd.log") if c.dir.exists() else []:
            text = log.read_text(errors="replace")
            if "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text:
                sanitizer_reports.append(f"{log}:\n{text[-4000:]}")
        pids = []
        try:
            if (c.dir / "bulwark.yaml").exists():
                pids = c.pids()
        except Exception:
            pass
        c.down()
        for pid in pids:
            if session_alive(pid):
                leftovers.append(pid)
                kill_session(pid)
        for pid in marked_pids(f"BULWARK_DEV_NODE={c.dir}/"):
            leftovers.append(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)
    assert not leftovers, f"process groups left behind: {leftovers}"
    assert not sanitizer_reports, "sanitizer reports:\n" + "\n".join(sanitizer_reports)


@pytest.fixture
def cluster(cluster_factory):
    return cluster_factory().up(3)


@pytest.fixture
def proxy_lab(request):
    """A ProxyLab (tests/e2e/proxy_support.py): backends and bulwark-proxy
    processes, all ended at teardown."""
    from proxy_support import ProxyLab
    lab = ProxyLab()
    yield lab
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    lab.teardown(failed)
