"""Helpers for the bulwark-proxy tests: real backend processes
(proxy/backend_server.py), a real bulwark-proxy process with a YAML config
written from a dict, and plain-socket HTTP clients. Everything a test starts
is registered with a ProxyLab and ended (by PID) at teardown, also when the
test fails; the proxy's log is printed on failure and checked for sanitizer
reports."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import shutil
import time
from pathlib import Path

from conftest import bin_dir, wait_until

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def to_yaml(value, indent=0):
    """JSON is YAML: write the config as JSON, one key per line, so that
    error messages in tests point at stable lines."""
    return json.dumps(value, indent=2) + "\n"


class Backend:
    def __init__(self, lab, name, mode="http", health_file=None, port=0):
        self.name = name
        args = [PYTHON, str(HERE / "proxy" / "backend_server.py"), "--name", name,
                "--mode", mode, "--port", str(port)]
        if health_file:
            args += ["--health-file", str(health_file)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        lab.procs.append(self.proc)
        self.port = int(self.proc.stdout.readline().strip())
        self.address = f"127.0.0.1:{self.port}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


class Proxy:
    def __init__(self, lab, config):
        self.lab = lab
        self.dir = lab.dir
        self.config_path = self.dir / "proxy.yaml"
        self.control = str(self.dir / "control.sock")
        self.stats_port = free_port()
        config.setdefault("global", {})
        config["global"].setdefault("stats", f"127.0.0.1:{self.stats_port}")
        config["global"].setdefault("control_socket", self.control)
        config["global"].setdefault("workers", 2)
        config["global"].setdefault("grace_ms", 3000)
        self.write(config)
        self.log_path = self.dir / "proxy.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(bin_dir() / "bulwark-proxy"), "--config",
                                      str(self.config_path)], stdout=self.log, stderr=self.log)
        lab.procs.append(self.proc)
        lab.proxies.append(self)
        for f in config["frontends"]:
            host, port = f["listen"].rsplit(":", 1)
            wait_until(lambda: self._connects(host, int(port)), 20, what=f"{f['listen']} listening")
        wait_until(lambda: self.stats(), 20, what="stats endpoint")

    def write(self, config):
        self.config = config
        self.config_path.write_text(to_yaml(config))

    @staticmethod
    def _connects(host, port):
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    def stats(self):
        status, _, body = http_request("127.0.0.1", self.stats_port, "GET", "/stats")
        assert status == 200
        return json.loads(body)

    def metrics(self):
        return http_request("127.0.0.1", self.stats_port, "GET", "/metrics")[2].decode()

    def server(self, backend, name):
        for b in self.stats()["backends"]:
            if b["name"] == backend:
                for s in b["servers"]:
                    if s["name"] == name:
                        return s
        return None

    def ctl(self, *words, check=True):
        proc = subprocess.run([str(bin_dir() / "bulwark-proxy"), "ctl", "--socket", self.control,
                               *words], capture_output=True, text=True, timeout=30)
        if check:
            assert proc.returncode == 0, f"ctl {words}: {proc.returncode} {proc.stderr}"
        return proc

    def reload(self, config):
        self.write(config)
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("bulwark-proxy did not stop on SIGTERM")
        return self.proc.returncode

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")


class ProxyLab:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="bulwark-proxy-e2e-"))
        self.procs = []
        self.proxies = []

    def backend(self, name, **kw):
        return Backend(self, name, **kw)

    def proxy(self, config):
        return Proxy(self, config)

    def teardown(self, failed):
        reports = []
        for p in self.proxies:
            code = p.stop()
            text = p.log_text()
            if failed:
                print(f"--- {p.log_path} (last 40 lines)\n" + "\n".join(text.splitlines()[-40:]))
            if "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text:
                reports.append(text[-4000:])
            elif code not in (0, None):
                reports.append(f"bulwark-proxy exited {code}:\n{text[-2000:]}")
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
        assert not reports, "bulwark-proxy failures:\n" + "\n".join(reports)


# --- clients ----------------------------------------------------------------

def read_response(sock, method="GET"):
    """Reads one HTTP/1.1 response from a socket; returns (status, headers,
    body). Handles Content-Length, chunked and read-until-close bodies."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            if not data:
                raise ConnectionError("connection closed before a response")
            raise ConnectionError(f"connection closed inside a response head: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", rest
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        buf = rest
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            size_line, buf = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in buf:
                    buf += sock.recv(65536)
                buf = buf.split(b"\r\n", 1)[1]
                return status, headers, body, buf
            while len(buf) < size + 2:
                buf += sock.recv(65536)
            body += buf[:size]
            buf = buf[size + 2:]
    if "content-length" in headers:
        n = int(headers["content-length"])
        body = rest
        while len(body) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed inside a body")
            body += chunk
        return status, headers, body[:n], body[n:]
    body = rest
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return status, headers, body, b""
        body += chunk


def http_request(host, port, method, path, body=None, headers=None, timeout=10, source=None):
    """One request on a fresh connection; returns (status, headers, body)."""
    with socket.create_connection((host, port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as s:
        s.sendall(format_request(method, path, body, headers))
        status, h, b, _ = read_response(s, method)
        return status, h, b


def format_request(method, path, body=None, headers=None, host="test"):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return data + (body or b"")


class KeepAliveClient:
    """Requests over one keep-alive connection."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.pending = b""

    def request(self, method, path, body=None, headers=None):
        self.sock.sendall(format_request(method, path, body, headers))
        status, h, b, rest = read_response(_Prefixed(self), method)
        self.pending = rest
        return status, h, b

    def close(self):
        self.sock.close()


class _Prefixed:
    """A socket view that first returns bytes left over from the last response."""

    def __init__(self, client):
        self.client = client

    def recv(self, n):
        if self.client.pending:
            data, self.client.pending = self.client.pending, b""
            return data
        return self.client.sock.recv(n)


def who(status_headers_body):
    status, _, body = status_headers_body
    assert status == 200, f"status {status}: {body!r}"
    return json.loads(body)["server"]
