"""Security: mutual TLS on etcd, authenticated heartbeats, the admin token
(issue 2, item 7)."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import bin_dir, session_alive, wait_until


def tls_context(ca, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def etcd_reachable(host, port, ctx):
    """True if a TLS session with etcd's client port completes and etcd
    answers a read."""
    try:
        with socket.create_connection((host, port), timeout=3) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                body = b'{"key":"Lw=="}'
                s.sendall(b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                return s.recv(100).startswith(b"HTTP/1.1 200")
    except (ssl.SSLError, ConnectionError, OSError):
        return False


def test_etcd_needs_a_cluster_certificate(cluster, tmp_path):
    tls = cluster.dir / "tls"
    host = cluster.node("n1")["address"]
    # With the node's certificate the read works: the check can tell.
    assert etcd_reachable(host, 2379, tls_context(tls / "ca.crt", tls / "n1.crt", tls / "n1.key"))
    # Without a client certificate: refused.
    assert not etcd_reachable(host, 2379, tls_context(tls / "ca.crt"))
    # With a certificate from another CA: refused, for clients and peers.
    other = tmp_path / "other"
    subprocess.run([str(bin_dir() / "bulwark"), "init", "--dir", str(other), "--cluster", "evil",
                    "--node", f"n1={host}"], check=True, capture_output=True)
    foreign = tls_context(tls / "ca.crt", other / "tls" / "n1.crt", other / "tls" / "n1.key")
    assert not etcd_reachable(host, 2379, foreign)
    assert not etcd_reachable(host, 2380, foreign)


def start_rogue(config: Path, node: str, log: Path):
    return subprocess.Popen([str(bin_dir() / "bulwarkd"), "--config", str(config), "--node", node],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def test_heartbeats_with_the_wrong_key_are_rejected(cluster, tmp_path):
    wait_until(lambda: cluster.coordinator("n1"), what="a coordinator")
    cluster.kill("n3")
    wait_until(lambda: not [n for n in cluster.status("n1")["nodes"] if n["name"] == "n3"][0]["online"],
               what="n3 offline")
    before = cluster.status("n1")["heartbeat"]["rejected_datagrams"]
    # A rogue n3: right addresses and certificates, wrong cluster secret, and
    # no etcd of its own (external store that does not exist).
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    shutil.copytree(cluster.dir / "tls", rogue / "tls")
    (rogue / "secret").write_text("f" * 64 + "\n")
    shutil.copy(cluster.dir / "admin.token", rogue / "admin.token")
    config = (cluster.dir / "bulwark.yaml").read_text()
    config = config.replace("mode: embedded", "mode: external\n  endpoints: [\"https://127.0.0.1:9\"]")
    (rogue / "bulwark.yaml").write_text(config)
    proc = start_rogue(rogue / "bulwark.yaml", "n3", tmp_path / "rogue.log")
    try:
        wait_until(lambda: cluster.status("n1")["heartbeat"]["rejected_datagrams"] > before + 10,
                   what="n1 to reject the rogue's heartbeats")
        time.sleep(0.5)
        s = cluster.status("n1")
        n3 = [n for n in s["nodes"] if n["name"] == "n3"][0]
        assert n3["online"] is False
        assert "n3" not in s["lease"]["reachable"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not session_alive(proc.pid)


def api(cluster, method, path, body=None, token="file", node="n1"):
    import http.client
    import json
    n = cluster.node(node)
    ctx = tls_context(cluster.dir / "tls" / "ca.crt")
    conn = http.client.HTTPSConnection(n["address"], 7400, context=ctx, timeout=20)
    headers = {"Content-Type": "application/json"}
    if token == "file":
        token = (cluster.dir / "admin.token").read_text().strip()
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def test_api_writes_need_the_admin_token(cluster):
    wait_until(lambda: cluster.coordinator("n1"), what="a coordinator")
    body = '{"set": {"k": "v"}}'
    assert api(cluster, "PATCH", "/v1/nodes/n1/attributes", body, token=None)[0] == 401
    status, reply = api(cluster, "PATCH", "/v1/nodes/n1/attributes", body, token="0" * 64)
    assert status == 401 and reply["error"]["code"] == "unauthorized"
    # Reads from loopback are open.
    assert api(cluster, "GET", "/v1/status", token=None)[0] == 200
    # Nothing was committed by the refused writes.
    assert [n for n in cluster.status()["nodes"] if n["name"] == "n1"][0]["attributes"] == {}
    assert api(cluster, "PATCH", "/v1/nodes/n1/attributes", body)[0] == 200
    proc = cluster.cli("node", "attr", "n1", "x=y", env_extra={"BULWARK_TOKEN_FILE": "/dev/null"},
                       check=False)
    assert proc.returncode == 4 or proc.returncode == 2, proc.stderr
