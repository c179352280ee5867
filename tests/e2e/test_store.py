"""The store layer with real etcd: leader changes, external mode with its own
key prefix (issue 2, items 2-4)."""

import base64
import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import bin_dir, session_alive, wait_until
from test_security import tls_context


def test_etcd_leader_change_costs_no_node_its_lease(cluster):
    names = ["n1", "n2", "n3"]
    wait_until(lambda: all(cluster.status(n)["etcd"]["leader"] for n in names),
               what="an etcd leader known to every node")
    before = cluster.status("n1")
    leader, epoch = before["etcd"]["leader"], before["epoch"]
    term = before["etcd"]["raft_term"]
    samples, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            for n in names:
                try:
                    s = cluster.status(n)
                    samples.append((n, s["quorate"]))
                except Exception:
                    pass

    t = threading.Thread(target=poll)
    t.start()
    try:
        # Kill only the etcd member of the etcd leader's node: an etcd
        # election follows, and bulwarkd restarts the member.
        os.kill(cluster.status(leader)["etcd"]["member_pid"], signal.SIGKILL)
        wait_until(lambda: (s := cluster.status(leader))["etcd"]["raft_term"] > term
                   and s["etcd"]["healthy"], what="a new etcd term")
        # Keep watching for a while after the election, counted in answers
        # rather than seconds: under ASan on a busy machine one `status`
        # call can take a quarter of a second.
        after_election = len(samples)
        time.sleep(1.0)
        wait_until(lambda: len(samples) >= after_election + 3 * len(names),
                   what="three more answers from every node after the election")
    finally:
        stop.set()
        t.join()
    assert len(samples) > 10
    assert all(q for _, q in samples), [s for s in samples if not s[1]]
    assert cluster.status("n1")["epoch"] == epoch, "an etcd election must not move the coordinator"


def etcd_get(host, port, tls, key, prefix=False):
    import http.client
    ctx = tls_context(tls / "ca.crt", tls / "n1.crt", tls / "n1.key")
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
    body = {"key": base64.b64encode(key.encode()).decode()}
    if prefix:
        end = key[:-1] + chr(ord(key[-1]) + 1)
        body["range_end"] = base64.b64encode(end.encode()).decode()
    conn.request("POST", "/v3/kv/range", body=json.dumps(body))
    data = json.loads(conn.getresponse().read())
    conn.close()
    return [base64.b64decode(kv["key"]).decode() for kv in data.get("kvs", [])]


@pytest.fixture
def external_cluster(tmp_path):
    """Three bulwarkd in store mode external, sharing one etcd that the test
    runs itself, under the prefix /tenants/ext."""
    k = random.randint(1, 254)
    net = f"127.1.{k}"
    d = tmp_path / "c"
    bulwark = str(bin_dir() / "bulwark")
    subprocess.run([bulwark, "init", "--dir", str(d), "--cluster", "ext", "--node", f"n1={net}.1",
                    "--node", f"n2={net}.2", "--node", f"n3={net}.3"], check=True, capture_output=True)
    subprocess.run([bulwark, "cert", "etcd0", "--address", f"{net}.10", "--config",
                    str(d / "bulwark.yaml")], check=True, capture_output=True)
    tls = d / "tls"
    url = f"https://{net}.10"
    etcd = subprocess.Popen(
        ["/usr/bin/etcd", "--name=e0", f"--data-dir={tmp_path / 'etcd'}",
         f"--listen-client-urls={url}:2379", f"--advertise-client-urls={url}:2379",
         f"--listen-peer-urls={url}:2380", f"--initial-advertise-peer-urls={url}:2380",
         f"--initial-cluster=e0={url}:2380", f"--cert-file={tls / 'etcd0.crt'}",
         f"--key-file={tls / 'etcd0.key'}", f"--trusted-ca-file={tls / 'ca.crt'}",
         "--client-cert-auth=true", f"--peer-cert-file={tls / 'etcd0.crt'}",
         f"--peer-key-file={tls / 'etcd0.key'}", f"--peer-trusted-ca-file={tls / 'ca.crt'}",
         "--peer-client-cert-auth=true"],
        stdout=open(tmp_path / "etcd.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    config = (d / "bulwark.yaml").read_text().replace(
        "mode: embedded",
        f'mode: external\n  endpoints: ["{url}:2379"]\n  prefix: /tenants/ext')
    (d / "bulwark.yaml").write_text(config)
    procs = {}

    def start(n):
        procs[n] = subprocess.Popen([str(bin_dir() / "bulwarkd"), "--config", str(d / "bulwark.yaml"),
                                     "--node", n], stdout=open(tmp_path / f"{n}.log", "a"),
                                    stderr=subprocess.STDOUT, start_new_session=True)

    for n in ["n1", "n2", "n3"]:
        start(n)
    env = dict(os.environ, BULWARK_ENDPOINT=",".join(f"https://{net}.{i}:7400" for i in (1, 2, 3)),
               BULWARK_TOKEN_FILE=str(d / "admin.token"), BULWARK_CA_FILE=str(tls / "ca.crt"))

    def cli(*args, endpoint=None, check=True):
        e = dict(env)
        if endpoint:
            e["BULWARK_ENDPOINT"] = endpoint
        r = subprocess.run([bulwark, *args], capture_output=True, text=True, env=e, timeout=60)
        assert not check or r.returncode == 0, r.stderr
        return r

    class Ext:
        pass

    ext = Ext()
    ext.net, ext.dir, ext.tls, ext.procs, ext.cli, ext.start = net, d, tls, procs, cli, start
    try:
        yield ext
    finally:
        for p in list(procs.values()) + [etcd]:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in list(procs.values()) + [etcd]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("n*.log"))
        assert "AddressSanitizer" not in logs and "runtime error:" not in logs, logs[-4000:]
        assert not any(session_alive(p.pid) for p in list(procs.values()) + [etcd])


def test_external_store_mode_with_its_own_prefix(external_cluster):
    ext = external_cluster

    def coordinator(endpoint=None):
        s = json.loads(ext.cli("status", "--json", endpoint=endpoint).stdout)
        online = {n["name"]: n["online"] for n in s["nodes"]}
        return s["coordinator"] if s["quorate"] and online.get(s["coordinator"]) else None

    coord = wait_until(coordinator, what="a coordinator in external mode")
    s = json.loads(ext.cli("status", "--json").stdout)
    assert s["etcd"]["mode"] == "external" and "member_pid" not in s["etcd"]
    ext.cli("node", "attr", "n2", "zone=ext")
    keys = etcd_get(f"{ext.net}.10", 2379, ext.tls, "/", prefix=True)
    assert "/tenants/ext/nodes/n2" in keys and "/tenants/ext/coordinator" in keys
    assert all(k.startswith("/tenants/ext/") for k in keys), keys
    # The coordinator's daemon dies; another takes over through the same etcd.
    os.killpg(ext.procs[coord].pid, signal.SIGKILL)
    ext.procs[coord].wait()
    rest = [n for n in ["n1", "n2", "n3"] if n != coord]
    ep = ",".join(f"https://{ext.net}.{n[1]}:7400" for n in rest)
    wait_until(lambda: (c := coordinator(ep)) and c != coord, what="failover in external mode")
    ext.cli("node", "attr", rest[0], "after=failover", endpoint=ep)
