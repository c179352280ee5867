"""Adding, removing and replacing nodes (issue 2, item 6)."""

import time

from conftest import session_alive, wait_until


def coordinator_of(cluster, nodes):
    seen = {cluster.coordinator(n) for n in nodes}
    return seen.pop() if len(seen) == 1 and None not in seen else None


def healthy_status(cluster, node):
    """The node's status once its store is loaded and quorate and its etcd
    member is healthy. Heartbeats show a new node online before its member's
    health is next sampled (once a second), so callers wait for this rather
    than read it once."""
    s = cluster.status(node)
    return s if s["store"]["loaded"] and s["quorate"] and s["etcd"]["healthy"] else None


def test_add_then_remove_a_node(cluster):
    wait_until(lambda: coordinator_of(cluster, ["n1", "n2", "n3"]), what="a coordinator")
    cluster.dev("add")
    wait_until(lambda: [n["online"] for n in cluster.status("n1")["nodes"]] == [True] * 4,
               what="n4 to join and be online")
    s = wait_until(lambda: healthy_status(cluster, "n4"), what="n4's store and etcd member")
    assert s["lease"]["members"] == 4 and s["lease"]["majority"] == 3
    cluster.cli("node", "attr", "n4", "zone=new", endpoint=cluster.endpoint("n4"))
    pid = cluster.node("n4")["pid"]
    cluster.cli("node", "remove", "n4", endpoint=cluster.endpoint("n1"))
    names = [n["name"] for n in cluster.status("n1")["nodes"]]
    assert names == ["n1", "n2", "n3"]
    # The removed node notices and stops by itself.
    wait_until(lambda: not session_alive(pid), what="the removed node's daemon to exit")
    assert cluster.status("n2")["lease"]["members"] == 3


def test_remove_the_coordinator(cluster):
    coord = wait_until(lambda: coordinator_of(cluster, ["n1", "n2", "n3"]), what="a coordinator")
    pid = cluster.node(coord)["pid"]
    rest = [n for n in ["n1", "n2", "n3"] if n != coord]
    cluster.cli("node", "remove", coord, endpoint=cluster.endpoint(rest[0]))
    new = wait_until(lambda: coordinator_of(cluster, rest), what="a new coordinator")
    assert new != coord
    wait_until(lambda: not session_alive(pid), what="the removed coordinator to exit")
    cluster.cli("node", "attr", rest[1], "after=removal", endpoint=cluster.endpoint(rest[1]))
    s = cluster.status(rest[0])
    assert [n["name"] for n in s["nodes"]] == rest
    assert s["lease"]["majority"] == 2


def test_replace_a_failed_node(cluster):
    """Replacing = remove + add with an empty data dir (docs/operations.md)."""
    wait_until(lambda: coordinator_of(cluster, ["n1", "n2", "n3"]), what="a coordinator")
    cluster.kill("n3")  # the node "fails for good"
    cluster.cli("node", "remove", "n3", endpoint=cluster.endpoint("n1"))
    cluster.dev("add", "n5")
    wait_until(lambda: {n["name"]: n["online"] for n in cluster.status("n1")["nodes"]}
               == {"n1": True, "n2": True, "n5": True}, what="n5 to replace n3")
    wait_until(lambda: healthy_status(cluster, "n5"), what="n5's store and etcd member")


def test_node_add_is_refused_without_quorum(cluster):
    wait_until(lambda: coordinator_of(cluster, ["n1", "n2", "n3"]), what="a coordinator")
    cluster.kill("n2")
    cluster.kill("n3")
    wait_until(lambda: not cluster.status("n1")["quorate"], what="n1 to lose quorum")
    proc = cluster.cli("node", "add", "n9", "--address", "127.0.0.99",
                       endpoint=cluster.endpoint("n1"), check=False)
    assert proc.returncode == 3 and "no quorum" in proc.stderr
    cluster.start("n2")
    cluster.start("n3")
    wait_until(lambda: coordinator_of(cluster, ["n1", "n2", "n3"]), what="healing")
    assert "n9" not in [n["name"] for n in cluster.status("n2")["nodes"]]


def test_etcd_member_is_restarted_when_it_dies(cluster):
    import os
    import signal
    wait_until(lambda: coordinator_of(cluster, ["n1", "n2", "n3"]), what="a coordinator")
    before = cluster.status("n2")["etcd"]
    os.kill(before["member_pid"], signal.SIGKILL)
    wait_until(lambda: (e := cluster.status("n2")["etcd"])["member_restarts"] >= 1
               and e["member_pid"] != before["member_pid"], what="the member to be restarted")
    wait_until(lambda: cluster.status("n2")["etcd"]["healthy"], what="etcd healthy again")
    time.sleep(0.1)
    cluster.cli("node", "attr", "n2", "survived=etcd-crash", endpoint=cluster.endpoint("n2"))


def test_node_add_that_would_cost_the_lease_is_refused(cluster):
    """With n3 down, a fourth node would need 3 of 4 reachable: only 2 are."""
    wait_until(lambda: coordinator_of(cluster, ["n1", "n2", "n3"]), what="a coordinator")
    cluster.kill("n3")
    wait_until(lambda: not [n for n in cluster.status("n1")["nodes"] if n["name"] == "n3"][0]["online"],
               what="n3 offline")
    proc = cluster.cli("node", "add", "n4", "--address", "127.0.0.99", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "would make the majority 3 of 4" in proc.stderr
    s = cluster.status("n1")
    assert s["quorate"] and [n["name"] for n in s["nodes"]] == ["n1", "n2", "n3"]


def test_node_that_lost_its_data_must_be_replaced(cluster):
    """A member that ran before must not rejoin with an empty log."""
    import shutil
    wait_until(lambda: coordinator_of(cluster, ["n1", "n2", "n3"]), what="a coordinator")
    cluster.kill("n3")
    shutil.rmtree(cluster.dir / "data" / "n3" / "etcd")
    proc = cluster.dev("start", "n3", check=False)
    assert proc.returncode == 1 and "is an etcd member that has run before" in proc.stderr, \
        proc.stderr
    assert not cluster.node("n3")["running"]
    # The documented way back: replace it, with an empty data dir. (The
    # dev cluster keeps n3 in its directory: the same "host" comes back.)
    keep = {"BULWARK_DEV_DIR": ""}
    cluster.cli("node", "remove", "n3", endpoint=cluster.endpoint("n1"), env_extra=keep)
    cluster.cli("node", "add", "n3", "--address", cluster.node("n3")["address"],
                endpoint=cluster.endpoint("n1"), env_extra=keep)
    for entry in (cluster.dir / "data" / "n3").iterdir():
        if entry.name != "bulwarkd.log":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    cluster.start("n3")
    wait_until(lambda: all(n["online"] for n in cluster.status("n1")["nodes"]), what="n3 back")
    wait_until(lambda: cluster.status("n3")["etcd"]["healthy"], what="n3's new member healthy")
