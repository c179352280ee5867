"""Bad input gets a clear error and changes nothing (issue 2, item 10)."""

import re
import shutil
import socket
import subprocess

import pytest

from conftest import bin_dir, wait_until
from test_security import api


def bulwarkd(*args, timeout=20):
    return subprocess.run([str(bin_dir() / "bulwarkd"), *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def cluster_files(tmp_path):
    d = tmp_path / "c"
    subprocess.run([str(bin_dir() / "bulwark"), "init", "--dir", str(d), "--cluster", "bad",
                    "--node", "n1=127.0.0.201", "--node", "n2=127.0.0.202"], check=True,
                   capture_output=True)
    return d


@pytest.mark.parametrize("edit, rule, line", [
    (lambda t: t.replace("  lease_ms: 300", "  lease_ms: 300\n  leese_ms: 3"), "unknown key 'leese_ms'", 8),
    (lambda t: t.replace("address: 127.0.0.202", "address: 127.0.0.300"), "is not an IPv4 or IPv6", None),
    (lambda t: t.replace("name: n2", "name: n1"), "duplicate node name 'n1'", None),
    (lambda t: t.replace("heartbeat_ms: 50", "heartbeat_ms: fast"), "must be an integer", 6),
    (lambda t: t.replace("mode: embedded", "mode: sideways"), "store.mode must be", None),
    (lambda t: t + "bogus: [\n", "", None),
])
def test_config_errors_name_file_line_column(cluster_files, edit, rule, line):
    config = cluster_files / "bulwark.yaml"
    config.write_text(edit(config.read_text()))
    r = bulwarkd("--config", str(config), "--node", "n1")
    assert r.returncode == 2, r.stderr
    m = re.search(re.escape(str(config)) + r":(\d+):(\d+): (.*)", r.stderr)
    assert m, r.stderr
    assert rule in m.group(3)
    if line:
        assert int(m.group(1)) == line
    assert not (cluster_files / "data" / "n1" / "etcd").exists(), "nothing may be started"


def test_unknown_node_and_missing_files(cluster_files):
    config = cluster_files / "bulwark.yaml"
    r = bulwarkd("--config", str(config), "--node", "n7")
    assert r.returncode == 2 and "node 'n7' is not in the configuration (nodes: n1, n2)" in r.stderr
    (cluster_files / "tls" / "n1.crt").unlink()
    r = bulwarkd("--config", str(config), "--node", "n1")
    assert r.returncode == 2 and "n1.crt: missing or not a PEM certificate" in r.stderr
    (cluster_files / "secret").write_text("")
    r = bulwarkd("--config", str(config), "--node", "n2")
    assert r.returncode == 2 and "secret" in r.stderr
    r = bulwarkd("--config", str(cluster_files / "nope.yaml"), "--node", "n1")
    assert r.returncode == 2 and "cannot read" in r.stderr
    assert bulwarkd("--node", "n1").returncode == 2
    assert not (cluster_files / "data").exists()


def test_init_refuses_bad_nodes_and_overwrites(tmp_path, cluster_files):
    b = str(bin_dir() / "bulwark")
    r = subprocess.run([b, "init", "--dir", str(tmp_path / "x"), "--cluster", "c", "--node", "n1=nowhere"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "is not an IPv4 or IPv6 address" in r.stderr
    assert not (tmp_path / "x").exists()
    r = subprocess.run([b, "init", "--dir", str(cluster_files), "--cluster", "c", "--node", "n1=127.0.0.1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "already exists" in r.stderr


def test_malformed_api_requests_get_4xx(cluster):
    wait_until(lambda: cluster.coordinator("n1"), what="a coordinator")
    assert api(cluster, "POST", "/v1/nodes", "{not json")[0] == 400
    assert api(cluster, "POST", "/v1/nodes", '{"name": 5}')[0] == 400
    status, reply = api(cluster, "POST", "/v1/nodes", '{"name": "n9", "address": "nowhere"}')
    assert status == 422 and "not an IPv4 or IPv6" in reply["error"]["message"]
    status, reply = api(cluster, "POST", "/v1/nodes", '{"name": "n2", "address": "127.0.0.9"}')
    assert status == 409
    assert api(cluster, "PATCH", "/v1/nodes/n1/attributes", '{"set": {"k": 1}}')[0] == 400
    assert api(cluster, "PATCH", "/v1/nodes/n1/attributes", '{}')[0] == 400
    assert api(cluster, "PATCH", "/v1/nodes/ghost/attributes", '{"set": {"k": "v"}}')[0] == 404
    assert api(cluster, "GET", "/v1/nowhere")[0] == 404
    assert api(cluster, "DELETE", "/v1/nodes/ghost")[0] == 404
    # Garbage on the API port and the heartbeat port: the node stays up.
    addr = cluster.node("n1")["address"]
    with socket.create_connection((addr, 7400), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x05garbage" * 50)
    before = cluster.status("n1")["heartbeat"]["rejected_datagrams"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for i in range(50):
            u.sendto(bytes([i]) * (i * 7 % 1500 + 1), (addr, 7401))
    wait_until(lambda: cluster.status("n1")["heartbeat"]["rejected_datagrams"] >= before + 40,
               what="garbage datagrams to be counted")
    # Nothing changed.
    nodes = cluster.status("n1")["nodes"]
    assert [n["name"] for n in nodes] == ["n1", "n2", "n3"]
    assert all(n["attributes"] == {} for n in nodes)
    # The CLI maps refusals to exit codes.
    assert cluster.cli("node", "attr", "ghost", "a=b", check=False).returncode == 2
    assert cluster.cli("node", "attr", "n1", "novalue", check=False).returncode == 2
    assert cluster.cli("node", "add", "n9", "--address", "bad", check=False).returncode == 2


def test_cli_tries_endpoints_in_order(cluster):
    wait_until(lambda: cluster.coordinator("n1"), what="a coordinator")
    cluster.kill("n1")
    eps = ",".join(cluster.endpoint(n) for n in ["n1", "n2", "n3"])
    r = cluster.cli("status", "--json", endpoint=eps)
    assert '"node": "n2"' in r.stdout
    r = cluster.cli("node", "attr", "n3", "via=n2", endpoint=eps)
    assert r.returncode == 0
