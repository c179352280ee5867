#!/usr/bin/env python3
"""bulwark-proxy against Debian's HAProxy, in one run on one machine.

Both proxies get the same three nginx backends, the same thread count and the
same wrk load, and a run against one backend directly gives the baseline:

  1. HTTP keep-alive requests/s (wrk -c 50);
  2. latency added to a request at 1 connection, p50 and p99;
  3. TCP (layer 4) bulk throughput of 1 MiB responses;
  4. resident memory per 10,000 idle keep-alive client connections.

The wrk figures are medians of 3 rounds (1 with --quick) that take the
targets in turn, so that the drift of a shared 2-core machine hits them all.

Everything runs on 127.0.0.1 from a temporary directory that is removed at the
end; every process started here is stopped by its PID, also on failure or
Ctrl-C. The exit code is 0 whatever the figures (this is a measurement), 1
when the set-up fails.

Usage: proxy_bench.py [--bin build/bin] [--threads 1] [--quick] [--markdown FILE]
"""

import argparse
import http.client
import os
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# High enough for 10k idle clients plus the proxies' server connections, with
# room for haproxy's own computation (about 2 fds per maxconn).
FD_LIMIT_WANTED = 200000
MAXCONN_WANTED = 50000
# Descriptors a proxy needs besides two per connection (listeners, checks,
# pollers, logs), and idle test connections kept below maxconn.
FD_RESERVE = 500
SERVER_COUNT = 3
BIG_BYTES = 1 << 20
KEEPALIVE_CONNS = 50
BULK_CONNS = 4
IDLE_REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
# Connections are opened in batches below nginx's and haproxy's listen
# backlogs so that no SYN is dropped and retransmitted a second later.
IDLE_BATCH = 200
READY_TIMEOUT_S = 20.0


@dataclass
class Target:
    """One column of the table: where wrk sends its load and which process
    serves it."""
    name: str
    http_port: int
    tcp_port: int  # where /big is fetched for the bulk test
    proc: subprocess.Popen


@dataclass
class WrkResult:
    requests_per_s: float
    p50_us: float
    p99_us: float
    mib_per_s: float
    errors: str  # empty when wrk saw only 2xx/3xx and no socket errors
    requests: int = 0
    cpu_us_per_request: float = float("nan")  # the serving process's CPU time


class Children:
    """Every process this benchmark starts, so that each one is stopped by its
    PID whatever happens."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs = {}

    def start(self, name: str, argv: list) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as out:
            # A session of its own keeps the terminal's Ctrl-C away from the
            # child: the finally clause stops it in order instead.
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = (proc, log)
        return proc

    def check_alive(self):
        for name, (proc, log) in self.procs.items():
            if proc.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"{name} exited with status {proc.returncode}; "
                                   f"last lines of its output:\n{tail}")

    def stop_all(self):
        running = [p for p, _ in self.procs.values() if p.poll() is None]
        for proc in running:
            proc.terminate()
        for proc in running:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def raise_fd_limit() -> int:
    """Raise this process's descriptor limit; the children inherit it. Without
    CAP_SYS_RESOURCE (some containers, even as root) only the soft limit can
    go up, to the hard one."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT_WANTED, FD_LIMIT_WANTED))
    except (ValueError, PermissionError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proxy_maxconn(fd_limit: int) -> int:
    """The maxconn both proxies get: haproxy refuses to start when it cannot
    have about two descriptors per connection."""
    return min(MAXCONN_WANTED, (fd_limit - FD_RESERVE) // 2)


def free_ports(count: int) -> list:
    """Distinct free loopback ports: all are held open until the last one is
    picked, so the kernel cannot hand out the same one twice."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def nginx_conf(tmp: Path, ports: list, fd_limit: int) -> str:
    """One single-process nginx serving all three backend ports. The direct
    baseline then hits the very process the proxies use, and the bulk test
    spreads its connections over the backends without changing the CPU budget
    the backends get."""
    servers = "".join(f"""
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {tmp}/www;
        location = / {{ return 200 "hello from s{i}\\n"; }}
        location = /healthz {{ return 200 "ok\\n"; }}
        location = /big {{ }}
    }}""" for i, port in enumerate(ports, 1))
    return f"""daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {fd_limit};
pid {tmp}/nginx.pid;
events {{
    worker_connections {fd_limit};
}}
http {{
    access_log off;
    default_type text/plain;
    sendfile on;
    client_body_temp_path {tmp}/nginx-tmp/client;
    proxy_temp_path {tmp}/nginx-tmp/proxy;
    fastcgi_temp_path {tmp}/nginx-tmp/fastcgi;
    uwsgi_temp_path {tmp}/nginx-tmp/uwsgi;
    scgi_temp_path {tmp}/nginx-tmp/scgi;
    # Let the proxies keep their server connections for the whole run.
    keepalive_requests 1000000;
    keepalive_timeout 65s;{servers}
}}
"""


def haproxy_conf(threads: int, maxconn: int, http_port: int, tcp_port: int,
                 backends: list) -> str:
    servers = "".join(f"    server s{i} 127.0.0.1:{port} check inter 1s rise 2 fall 2\n"
                      for i, port in enumerate(backends, 1))

    # The HTTP-only options sit in the HTTP frontend rather than in defaults,
    # where haproxy would warn that the tcp proxies ignore them.
    return f"""global
    nbthread {threads}
    maxconn {maxconn}

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse safe

frontend web
    bind 127.0.0.1:{http_port}
    maxconn {maxconn}
    option http-keep-alive
    option forwardfor
    default_backend web

backend web
    balance roundrobin
    option httpchk GET /healthz
{servers}
frontend bulk
    mode tcp
    bind 127.0.0.1:{tcp_port}
    maxconn {maxconn}
    default_backend bulk

backend bulk
    mode tcp
    balance roundrobin
{servers}"""


def bulwark_conf(threads: int, maxconn: int, http_port: int, tcp_port: int,
                 backends: list) -> str:
    servers = "".join(f"      - {{name: s{i}, address: 127.0.0.1:{port}}}\n"
                      for i, port in enumerate(backends, 1))
    return f"""global:
  workers: {threads}
  maxconn: {maxconn}
frontends:
  - name: web
    listen: 127.0.0.1:{http_port}
    mode: http
    backend: web
    maxconn: {maxconn}
    client_timeout_ms: 60000
    forwarded_for: true
  - name: bulk
    listen: 127.0.0.1:{tcp_port}
    mode: tcp
    backend: bulk
    maxconn: {maxconn}
backends:
  - name: web
    balance: roundrobin
    retries: 3
    server_timeout_ms: 60000
    check: {{type: http, path: /healthz, interval_ms: 1000, rise: 2, fall: 2}}
    servers:
{servers}  - name: bulk
    balance: roundrobin
    check: {{type: tcp, interval_ms: 1000}}
    servers:
{servers}"""


def start_backends(children: Children, tmp: Path, ports: list, fd_limit: int) -> subprocess.Popen:
    (tmp / "www").mkdir()
    (tmp / "www" / "big").write_bytes(os.urandom(BIG_BYTES))
    (tmp / "nginx-tmp").mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, ports, fd_limit))
    return children.start("nginx", ["nginx", "-e", str(tmp / "nginx-error.log"),
                                    "-p", str(tmp), "-c", str(conf)])


def start_proxy(children: Children, tmp: Path, name: str, kind: str, bin_dir: Path,
                threads: int, maxconn: int, ports: tuple, backends: list) -> Target:
    """Start a proxy of `kind` ("haproxy" or "bulwark") in the column `name`."""
    http_port, tcp_port = ports
    if kind == "haproxy":
        conf = tmp / f"{name}.cfg"
        conf.write_text(haproxy_conf(threads, maxconn, http_port, tcp_port, backends))
        argv = ["haproxy", "-f", str(conf), "-db"]
    else:
        conf = tmp / f"{name}.yaml"
        conf.write_text(bulwark_conf(threads, maxconn, http_port, tcp_port, backends))
        argv = [str(bin_dir / "bulwark-proxy"), "--config", str(conf)]
    return Target(name, http_port, tcp_port, children.start(name, argv))


def wait_listening(children: Children, port: int):
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        children.check_alive()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing accepts connections on 127.0.0.1:{port}")
            time.sleep(0.05)


def wait_balanced(children: Children, target: Target, port: int):
    """Wait until requests on new connections through `port` have reached all
    three backends (each answers / with its own name): a proxy that has not
    yet seen its servers pass their health checks would otherwise be measured
    with fewer of them."""
    seen = set()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(seen) < SERVER_COUNT:
        children.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{target.name} on port {port} reached only {sorted(seen)} "
                               f"after {READY_TIMEOUT_S:.0f} s")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                seen.add(body.strip().decode(errors="replace"))
            else:
                time.sleep(0.1)
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
        finally:
            conn.close()


TIME_UNITS_US = {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
BYTE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_wrk(out: str) -> WrkResult:
    def find(pattern):
        m = re.search(pattern, out)
        if not m:
            raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{out}")
        return m

    def latency(pct):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
        return float(m.group(1)) * TIME_UNITS_US[m.group(2)] if m else float("nan")

    transfer = find(r"Transfer/sec:\s+([\d.]+)([KMGT]?)B")
    errors = []
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors.append(f"{non2xx.group(1)} non-2xx/3xx responses")
    sock = re.search(r"Socket errors: (.*)", out)
    if sock:
        errors.append("socket errors: " + sock.group(1))
    return WrkResult(
        requests=int(find(r"(\d+) requests in").group(1)),
        requests_per_s=float(find(r"Requests/sec:\s+([\d.]+)").group(1)),
        p50_us=latency(50), p99_us=latency(99),
        mib_per_s=float(transfer.group(1)) * BYTE_UNITS[transfer.group(2)] / (1 << 20),
        errors="; ".join(errors))


def run_wrk(children: Children, target: Target, threads: int, conns: int, seconds: int,
            port: int, path: str) -> WrkResult:
    argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency",
            f"http://127.0.0.1:{port}{path}"]
    cpu_before = cpu_seconds(target.proc.pid)
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    cpu_used = cpu_seconds(target.proc.pid) - cpu_before
    # A proxy that crashed under load shows up here rather than as a
    # suspiciously fast column of errors.
    children.check_alive()
    result = parse_wrk(out)
    if result.requests:
        result.cpu_us_per_request = cpu_used * 1e6 / result.requests
    if result.errors:
        print(f"  warning: {target.name}: {result.errors} ({shlex.join(argv)})", flush=True)
    return result


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def response_complete(buf: bytes) -> bool:
    """True once `buf` holds one whole 200 response (Content-Length or
    chunked body)."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = buf[:head_end].decode("latin-1").lower()
    status = head.split("\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != "200":
        raise RuntimeError(f"idle-connection request answered with {head.splitlines()[0]!r}")
    m = re.search(r"^content-length:\s*(\d+)", head, re.M)
    if m:
        return len(buf) >= head_end + 4 + int(m.group(1))
    if re.search(r"^transfer-encoding:.*chunked", head, re.M):
        return buf.endswith(b"0\r\n\r\n")
    raise RuntimeError("idle-connection response has neither Content-Length nor chunked body")


def open_batch(port: int, count: int, deadline: float) -> list:
    """Open `count` connections at once, send one keep-alive request on each
    and read its whole response; return the sockets, still open."""
    sel = selectors.DefaultSelector()
    pending = {}
    done = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.setblocking(False)
            pending[s] = bytearray()
            s.connect_ex(("127.0.0.1", port))
            sel.register(s, selectors.EVENT_WRITE)
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} idle connections got no response in time")
            for key, events in sel.select(timeout=1):
                s = key.fileobj
                if events & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise RuntimeError(f"connect to port {port}: {os.strerror(err)}")
                    # A fresh socket's send buffer always takes these few bytes.
                    if s.send(IDLE_REQUEST) != len(IDLE_REQUEST):
                        raise RuntimeError("short send of the idle-connection request")
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                data = s.recv(65536)
                if not data:
                    raise RuntimeError("the proxy closed an idle connection before answering")
                pending[s] += data
                if response_complete(bytes(pending[s])):
                    sel.unregister(s)
                    del pending[s]
                    done.append(s)
        return done
    except BaseException:
        for s in list(pending) + done:
            s.close()
        raise
    finally:
        sel.close()


def still_open(s: socket.socket) -> bool:
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def idle_memory(target: Target, count: int, settle_s: float) -> tuple:
    """MiB of resident memory the proxy adds per 10,000 idle keep-alive client
    connections (each has served one request, so the proxy also holds the
    server connections it pooled for them). Returns (MiB per 10k, RSS before
    in MiB, RSS after in MiB, connections still open when measured)."""
    pid = target.proc.pid
    before = rss_kib(pid)
    conns = []
    try:
        deadline = time.monotonic() + 60
        while len(conns) < count:
            conns += open_batch(target.http_port, min(IDLE_BATCH, count - len(conns)), deadline)
        time.sleep(settle_s)
        after = rss_kib(pid)
        alive = sum(1 for s in conns if still_open(s))
    finally:
        for s in conns:
            s.close()
    per_10k = (after - before) / 1024 * 10000 / count
    return per_10k, before / 1024, after / 1024, alive


def tool_versions() -> dict:
    def out(argv):
        r = subprocess.run(argv, capture_output=True, text=True)
        return (r.stdout + r.stderr).strip()

    return {"haproxy": out(["haproxy", "-v"]).split()[2],
            "nginx": out(["nginx", "-v"]).split("/")[-1],
            "wrk": out(["wrk", "-v"]).split()[1].removeprefix("debian/")}


def machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / (1 << 30)
    return (f"{len(os.sched_getaffinity(0))} cores ({model}), {mem_gib:.0f} GiB, "
            f"Linux {os.uname().release}")


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" with uncommitted changes" if git("status", "--porcelain",
                                                      "--untracked-files=no") else "")


@dataclass
class Row:
    label: str
    values: dict  # column name -> number; a missing column prints "-"
    fmt: str
    better: str = ""  # "higher" or "lower" (than haproxy); empty: no target


def verdict(better: str, haproxy: float, bulwark: float) -> str:
    """PASS or FAIL at the precision the ratio column shows, so that a ratio
    printed as 1.00x never fails; the raw values decide when there is no
    ratio (haproxy added no latency)."""
    if haproxy > 0:
        ratio = round(bulwark / haproxy, 2)
        ok = ratio >= 1 if better == "higher" else ratio <= 1
    else:
        ok = bulwark >= haproxy if better == "higher" else bulwark <= haproxy
    return "PASS" if ok else "FAIL"


def cells(row: Row, columns: list) -> list:
    out = [row.label]
    for col in columns:
        v = row.values.get(col)
        out.append("-" if v is None else format(v, row.fmt))
    h, b = row.values.get("haproxy"), row.values.get("bulwark")
    both = h is not None and b is not None
    out.append(f"{b / h:.2f}x" if both and h > 0 else "-")
    if row.better:
        out.append(">= 1.0x" if row.better == "higher" else "<= haproxy")
        out.append(verdict(row.better, h, b) if both else "-")
    else:
        out += ["", ""]
    return out


HEADER = ["metric", "direct", "haproxy", "bulwark", "bulwark/haproxy", "target", "result"]


def text_table(rows: list) -> str:
    lines = [HEADER] + [cells(r, HEADER[1:4]) for r in rows]
    widths = [34, 11, 11, 11, 17, 12, 6]
    return "\n".join("".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in lines)


def markdown_table(rows: list) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---:|---:|---:|---:|---|---|"]
    lines += ["| " + " | ".join(cells(r, HEADER[1:4])) + " |" for r in rows]
    return "\n".join(lines)


def interleaved(label: str, targets: list, repeats: int, run, show) -> dict:
    """Run `run(target)` on every target, `repeats` rounds, and return each
    target's list of results. A round takes every target in turn, so a change
    in the machine's speed hits all of them; the proxies swap places every
    round, so neither always runs right after the direct baseline."""
    results = {t.name: [] for t in targets}
    for i in range(repeats):
        order = targets[:1] + (targets[1:] if i % 2 == 0 else targets[:0:-1])
        for t in order:
            results[t.name].append(run(t))
        print(f"{label}, round {i + 1}/{repeats}: " + "  ".join(
            f"{n} {show(r[-1])}" for n, r in results.items()), flush=True)
    return results


def measure(children: Children, targets: list, args, repeats: int, short_s: int,
            idle_conns: int, notes: list) -> list:
    """Run every measurement and return the table's rows; add to `notes`
    what makes a figure doubtful."""
    threads = max(1, args.threads)
    median = statistics.median

    print("warm-up: 1 s of keep-alive load through each proxy", flush=True)
    for t in targets[1:]:
        run_wrk(children, t, threads, KEEPALIVE_CONNS, 1, t.http_port, "/")

    keepalive = interleaved(
        "keep-alive req/s", targets, repeats * 2 - 1,
        lambda t: run_wrk(children, t, threads, KEEPALIVE_CONNS, args.duration, t.http_port, "/"),
        lambda r: f"{r.requests_per_s:.0f} ({r.cpu_us_per_request:.1f} us cpu/req)")
    # A p99 from one short run swings with the scheduler more than the
    # proxies differ: latency gets more rounds than the other figures.
    latency = interleaved(
        "latency p50/p99 us at 1 conn", targets, repeats * 2 - 1,
        lambda t: run_wrk(children, t, 1, 1, short_s, t.http_port, "/"),
        lambda r: f"{r.p50_us:.0f}/{r.p99_us:.0f}")
    bulk = interleaved(
        "tcp bulk MiB/s", targets, repeats,
        lambda t: run_wrk(children, t, 1, BULK_CONNS, short_s, t.tcp_port, "/big"),
        lambda r: f"{r.mib_per_s:.0f}")
    for label, results in (("keep-alive", keepalive), ("latency", latency), ("bulk", bulk)):
        for name, runs in results.items():
            if any(r.errors for r in runs):
                notes.append(f"{label} {name}: wrk reported errors (see the warnings above)")

    mem = {}
    for t in targets[1:]:
        per_10k, before, after, alive = idle_memory(t, idle_conns, settle_s=2.0)
        mem[t.name] = per_10k
        print(f"idle connections, {t.name}: RSS {before:.1f} -> {after:.1f} MiB with "
              f"{idle_conns} open ({alive} still open when measured): "
              f"{per_10k:.1f} MiB per 10k", flush=True)
        if alive < idle_conns:
            notes.append(f"{t.name} closed {idle_conns - alive} of the {idle_conns} idle "
                         f"connections before its memory was read")

    def added(name, field):
        """Median over rounds of the proxy's latency minus the direct one of
        the same round: latency on this kind of machine drifts between rounds
        by more than a proxy adds."""
        pairs = zip(latency[name], latency["direct"])
        return median(getattr(p, field) - getattr(d, field) for p, d in pairs)

    proxies = [t.name for t in targets[1:]]
    return [
        Row("http keep-alive req/s",
            {n: median(r.requests_per_s for r in runs) for n, runs in keepalive.items()},
            ".0f", "higher"),
        Row("cpu per keep-alive request (us)",
            {n: median(r.cpu_us_per_request for r in runs) for n, runs in keepalive.items()
             if n != "direct"}, ".2f"),
        Row("latency p50 at 1 conn (us)",
            {n: median(r.p50_us for r in runs) for n, runs in latency.items()}, ".0f"),
        Row("latency p99 at 1 conn (us)",
            {n: median(r.p99_us for r in runs) for n, runs in latency.items()}, ".0f"),
        Row("added latency p50 (us)", {n: added(n, "p50_us") for n in proxies}, ".0f", "lower"),
        Row("added latency p99 (us)", {n: added(n, "p99_us") for n in proxies}, ".0f", "lower"),
        Row("tcp bulk MiB/s", {n: median(r.mib_per_s for r in runs) for n, runs in bulk.items()},
            ".0f", "higher"),
        Row("memory per 10k idle conns MiB", mem, ".1f", "lower"),
    ]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=REPO / "build" / "bin",
                    help="directory holding bulwark-proxy (default: build/bin of this repo)")
    ap.add_argument("--threads", type=int, default=1,
                    help="proxy worker threads = haproxy nbthread = wrk threads (default 1)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per keep-alive wrk run")
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 2 s runs, 1 keep-alive run instead of 3, 1000 idle conns")
    ap.add_argument("--markdown", type=Path, help="append a results section to this file")
    ap.add_argument("--only", choices=["haproxy", "bulwark"], help="run only this proxy")
    ap.add_argument("--bulwark-cmd-is-haproxy", action="store_true",
                    help="debug: run a second haproxy in the bulwark column, to test this "
                         "script without bulwark-proxy")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.idle_conns = 2, 1000
    return args


def busy_percent(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over `seconds`, from /proc/stat. Taken while
    nothing of the benchmark runs, it shows other work that would skew it."""
    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def check_quiet(when: str, notes: list):
    busy = busy_percent()
    if busy > 10:
        note = (f"the machine was {busy:.0f} % busy with other work {when} the run: "
                f"these figures are not reliable")
        print("warning: " + note, flush=True)
        notes.append(note)


def append_markdown(path: Path, started: str, header: str, settings: str, rows: list,
                    notes: list):
    section = [f"### bench/proxy, {started.split()[0]}", "",
               f"Command: `{shlex.join([sys.executable] + sys.argv)}`", "",
               f"Machine: {header}.", "",
               f"Settings: {settings}.", "",
               markdown_table(rows), ""]
    section += [f"- {note}" for note in notes] + ([""] if notes else [])
    with open(path, "a") as f:
        f.write("\n" + "\n".join(section))


def start_all(children: Children, tmp: Path, args, names: list, fd_limit: int,
              maxconn: int) -> list:
    """Start the backends and the proxies; return the targets (direct first)
    once every listener accepts and every proxy reaches all backends."""
    ports = free_ports(SERVER_COUNT + 2 * len(names))
    backends = ports[:SERVER_COUNT]
    nginx = start_backends(children, tmp, backends, fd_limit)
    targets = [Target("direct", backends[0], backends[0], nginx)]
    for i, name in enumerate(names):
        kind = "haproxy" if name == "haproxy" or args.bulwark_cmd_is_haproxy else "bulwark"
        pair = tuple(ports[SERVER_COUNT + 2 * i:SERVER_COUNT + 2 * i + 2])
        targets.append(start_proxy(children, tmp, name, kind, args.bin.resolve(), args.threads,
                                   maxconn, pair, backends))
    for port in ports:
        wait_listening(children, port)
    for t in targets[1:]:
        wait_balanced(children, t, t.http_port)
        wait_balanced(children, t, t.tcp_port)
    print("all listeners up, every proxy reaches all 3 backends", flush=True)
    return targets


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    names = [args.only] if args.only else ["haproxy", "bulwark"]
    bulwark_bin = args.bin.resolve() / "bulwark-proxy"
    if "bulwark" in names and not args.bulwark_cmd_is_haproxy and \
            not os.access(bulwark_bin, os.X_OK):
        sys.exit(f"no executable {bulwark_bin} (see --bin, or --only haproxy)")
    repeats = 1 if args.quick else 3
    # Latency and bulk runs are repeated like the keep-alive ones but shorter:
    # a few seconds already give tens of thousands of samples.
    short_s = max(2, args.duration // 3)
    notes = []

    fd_limit = raise_fd_limit()
    maxconn = proxy_maxconn(fd_limit)
    idle_conns = min(args.idle_conns, maxconn - FD_RESERVE)
    if idle_conns < args.idle_conns:
        notes.append(f"the descriptor limit is {fd_limit}, so the proxies got maxconn "
                     f"{maxconn} and the idle test {idle_conns} connections instead of "
                     f"{args.idle_conns} (scaled to 10k)")
    if args.bulwark_cmd_is_haproxy:
        notes.append("run with --bulwark-cmd-is-haproxy: the bulwark column is a second haproxy")

    versions = tool_versions()
    started = time.strftime("%Y-%m-%d %H:%M")
    header = (f"{machine()}; haproxy {versions['haproxy']}, nginx {versions['nginx']}, "
              f"wrk {versions['wrk']}; bulwark-proxy {bulwark_bin} at commit {commit()}")
    settings = (f"{args.threads} proxy thread(s) (haproxy nbthread, bulwark workers, wrk -t), "
                f"medians of {repeats * 2 - 1} interleaved round(s) ({repeats} for bulk): "
                f"keep-alive {args.duration} s, "
                f"latency and bulk {short_s} s; {idle_conns} idle connections, "
                f"maxconn {maxconn}")
    print(f"bench/proxy, {started}\n{header}\n{settings}", flush=True)
    for note in notes:
        print("note: " + note, flush=True)
    check_quiet("before", notes)

    tmp = Path(tempfile.mkdtemp(prefix="bulwark-proxy-bench-"))
    children = Children(tmp)
    try:
        targets = start_all(children, tmp, args, names, fd_limit, maxconn)
        rows = measure(children, targets, args, repeats, short_s, idle_conns, notes)
        check_quiet("after", notes)
    finally:
        children.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(text_table(rows))
    for note in notes:
        print("note: " + note)
    if args.markdown:
        append_markdown(args.markdown, started, header, settings, rows, notes)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Everything started is already stopped (main's finally clause).
        sys.exit("interrupted")
    except RuntimeError as e:
        # A setup failure (a proxy that exits, never listens or never reaches
        # its backends) is not a measurement: say why and exit non-zero.
        sys.exit(f"proxy_bench: {e}")
