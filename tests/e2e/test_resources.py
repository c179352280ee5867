"""Resource management with real processes on a local cluster (issue 4):
exec clones and singletons, an unchanged OCF agent from Debian's
resource-agents, restarts, failover, standby, adoption by a restarted
daemon, and the lease rule that stops a singleton on a node that lost its
majority."""

import os
import signal

from conftest import wait_until
from resource_support import ExclusivityWatch, apply, instances, nodes_running, processes, resources

NODES = ["n1", "n2", "n3"]

# The singleton's process is `sleep` with an argument no other test uses.
SINGLETON = "86400.25"

BASIC = f"""\
resources:
  - name: web
    agent: exec
    command: [/usr/bin/python3, -m, http.server, --bind, "${{BULWARK_NODE_ADDRESS}}", "18080"]
    clone: {{}}
    monitor: {{interval_ms: 500, timeout_ms: 2000, tcp: "${{BULWARK_NODE_ADDRESS}}:18080"}}
  - name: volume
    agent: exec
    command: [/bin/sleep, "{SINGLETON}"]
    singleton: true
    monitor: {{interval_ms: 500}}
  - name: dummy
    agent: ocf:heartbeat:Dummy
    params: {{fake: "1"}}
    singleton: true
    monitor: {{interval_ms: 1000}}
constraints:
  - {{colocate: volume, with: web}}
  - {{order: [web, volume]}}
"""


def settled(cluster, node=None):
    """The basic resources all run where the cluster says they do."""
    r = resources(cluster, node)
    if len(instances(cluster, "web", node=node)) != 3:
        return False
    volume = instances(cluster, "volume", node=node)
    dummy = instances(cluster, "dummy", node=node)
    if len(volume) != 1 or len(dummy) != 1:
        return False
    return r if nodes_running(cluster, SINGLETON) == volume else False


def test_apply_list_and_run(cluster):
    apply(cluster, BASIC)
    r = wait_until(lambda: settled(cluster), what="the resources to start")
    assert r["web"]["kind"] == "clone" and r["volume"]["kind"] == "singleton"
    assert r["dummy"]["agent"] == "ocf:heartbeat:Dummy"
    assert all(r[n]["fail_count"] == 0 for n in r)
    # The clone really serves on every node's own address: ${BULWARK_NODE_ADDRESS}.
    web = processes(cluster, "http.server")
    assert sorted(web.values()) == NODES
    for n in cluster.ls():
        import urllib.request
        with urllib.request.urlopen(f"http://{n['address']}:18080/", timeout=5) as resp:
            assert resp.status == 200
    # Every agent gets its instance's variables.
    pid = next(iter(processes(cluster, SINGLETON)))
    env = dict(e.split("=", 1) for e in
               open(f"/proc/{pid}/environ", "rb").read().decode().split("\0") if "=" in e)
    node = env["BULWARK_NODE"]
    assert env["BULWARK_RESOURCE"] == "volume"
    assert env["BULWARK_INSTANCE"] == f"volume:{node}"
    assert env["BULWARK_NODE_ADDRESS"] == cluster.node(node)["address"]
    # The OCF agent ran unchanged: Dummy keeps its state file in the node's
    # runtime directory (HA_RSCTMP), on exactly the node that runs it.
    dummy_node = instances(cluster, "dummy")[0]
    states = {n: (cluster.dir / "data" / n / "run" / "ocf" / "Dummy-dummy.state").exists()
              for n in NODES}
    assert states == {n: n == dummy_node for n in NODES}
    # Every node shows the same picture.
    for n in NODES:
        wait_until(lambda: settled(cluster, n), what=f"{n} to show the same placement")


def test_bad_input_is_refused_and_nothing_is_committed(cluster):
    apply(cluster, BASIC)
    wait_until(lambda: settled(cluster), what="the resources to start")
    before = resources(cluster)
    cases = {
        "resources: [{name: a, agent: 'ocf:heartbeat:NoSuchAgent'}]\n":
            "NoSuchAgent is not installed",
        "resources: [{name: a, agent: exec, command: [/bin/true]}, "
        "{name: b, agent: exec, command: [/bin/true]}]\n"
        "constraints: [{order: [a, b]}, {order: [b, a]}]\n": "resources.yaml:",
        "resources: [{name: a, agent: exec, command: [/bin/true]}, "
        "{name: b, agent: exec, command: [/bin/true], enabled: false}]\n"
        "constraints: [{colocate: a, with: b}]\n": "cannot run on any node",
        "resources: [{name: a, agent: teleport}]\n": "resources.yaml:1:",
        # The OCF agent's own meta-data: a misspelt parameter, a missing one.
        "resources: [{name: a, agent: 'ocf:heartbeat:Dummy', params: {fake: '1', stat: x}}]\n":
            "has no parameter 'stat' (it takes: fake, state)",
        "resources: [{name: a, agent: 'ocf:heartbeat:IPaddr2'}]\n": "needs parameter 'ip'",
        # What the resource needs of the agent, its meta-data must offer.
        "resources: [{name: a, agent: 'ocf:heartbeat:Dummy', params: {fake: '1'}, "
        "promotable: {}}]\n": "has no promote action in its meta-data (promotable needs it)",
        # The agent's own validate-all (OCF exit 6: invalid everywhere).
        "resources: [{name: a, agent: 'ocf:heartbeat:IPaddr2', params: {ip: not-an-ip}}]\n":
            "validate-all says the configuration is invalid",
    }
    for text, expected in cases.items():
        proc = apply(cluster, text, check=False)
        assert proc.returncode == 2, (text, proc.stdout, proc.stderr)
        assert expected in proc.stderr, (text, proc.stderr)
    # The loop and the bad agent class are caught by the CLI already; the
    # daemon refuses the same file on its own (a client that skips the check).
    import json
    from pathlib import Path
    body = json.dumps({"text": "resources: [{name: a, agent: teleport}]\n", "source": "x.yaml"})
    token = Path(cluster.env()["BULWARK_TOKEN_FILE"]).read_text().strip()
    import subprocess
    out = subprocess.run(["curl", "-s", "--cacert", cluster.env()["BULWARK_CA_FILE"], "-X", "PUT",
                          "-H", f"Authorization: Bearer {token}", "--data", body,
                          cluster.endpoint("n1") + "/v1/resources"],
                         capture_output=True, text=True, timeout=10)
    assert "x.yaml:1:" in out.stdout, out.stdout
    after = resources(cluster)
    assert sorted(after) == sorted(before)
    assert settled(cluster)


def test_killed_exec_process_is_restarted_in_place(cluster):
    apply(cluster, BASIC)
    wait_until(lambda: settled(cluster), what="the resources to start")
    (pid, node), = processes(cluster, SINGLETON).items()
    os.kill(pid, signal.SIGKILL)
    new = wait_until(lambda: (p := processes(cluster, SINGLETON)) and pid not in p and p,
                     timeout_s=10, what="the singleton to be restarted")
    assert list(new.values()) == [node]  # in place: below the migration threshold
    r = wait_until(lambda: (v := resources(cluster)["volume"])["fail_count"] == 1 and v,
                   what="the failure to be counted")
    assert [i["node"] for i in r["instances"] if i["fail_count"] == 1] == [node]
    assert "exited" in next(i for i in r["instances"] if i["node"] == node)["last_failure"]
    cluster.cli("resource", "cleanup", "volume")
    wait_until(lambda: resources(cluster)["volume"]["fail_count"] == 0, what="the cleanup")


def test_killed_node_moves_its_singleton_and_never_runs_it_twice(cluster):
    apply(cluster, BASIC)
    wait_until(lambda: settled(cluster), what="the resources to start")
    node = nodes_running(cluster, SINGLETON)[0]
    rest = [n for n in NODES if n != node]
    with ExclusivityWatch(cluster, SINGLETON) as watch:
        cluster.kill(node)
        moved = wait_until(lambda: (r := nodes_running(cluster, SINGLETON)) and r[0] != node and r,
                           timeout_s=15, what="the singleton to run elsewhere")
        assert moved[0] in rest
        # The node comes back: stickiness keeps the singleton where it is.
        cluster.start(node)
        wait_until(lambda: node in instances(cluster, "web", node=rest[0]),
                   what="the node to rejoin")
        wait_until(lambda: settled(cluster), what="the cluster to settle")
    assert nodes_running(cluster, SINGLETON) == moved
    assert watch.overlaps == [], watch.overlaps
    assert watch.samples > 20


def test_standby_evacuates_and_online_does_not_pull_back(cluster):
    apply(cluster, BASIC)
    wait_until(lambda: settled(cluster), what="the resources to start")
    node = nodes_running(cluster, SINGLETON)[0]
    # A node that runs a singleton cannot be removed: once removed it could
    # be neither fenced nor proven gone.
    proc = cluster.cli("node", "remove", node, check=False)
    assert proc.returncode == 2 and f"node {node} may still run volume" in proc.stderr, proc.stderr
    with ExclusivityWatch(cluster, SINGLETON) as watch:
        cluster.cli("node", "standby", node)
        wait_until(lambda: node not in processes(cluster, "http.server").values()
                   and len(nodes_running(cluster, SINGLETON)) == 1
                   and nodes_running(cluster, SINGLETON)[0] != node,
                   what="the node to be evacuated")
        assert not any(n == node for n in processes(cluster, SINGLETON).values())
        moved = nodes_running(cluster, SINGLETON)
        cluster.cli("node", "online", node)
        wait_until(lambda: node in processes(cluster, "http.server").values(),
                   what="the clone to return to the node")
    assert nodes_running(cluster, SINGLETON) == moved
    assert watch.overlaps == []


def test_restarted_daemon_adopts_what_runs(cluster_factory):
    # The daemon must be back before the coordinator sees its node lost:
    # later, fencing it is right (it may run a singleton, and nothing else
    # can tell), and the fence ends the new daemon too. A long lease gives
    # a restart under ASan (a CLI call or two) the time it needs.
    cluster = cluster_factory().up(3, lease_ms=3000)
    apply(cluster, BASIC)
    wait_until(lambda: settled(cluster), what="the resources to start")
    (pid, node), = processes(cluster, SINGLETON).items()
    web_pids = {p for p, n in processes(cluster, "http.server").items() if n == node}
    daemon = cluster.node(node)["pid"]
    with ExclusivityWatch(cluster, SINGLETON) as watch:
        os.kill(daemon, signal.SIGKILL)  # the daemon alone; its resources keep running
        wait_until(lambda: not cluster.node(node)["running"], what="the daemon to die")
        cluster.start(node)
        wait_until(lambda: cluster.node(node)["running"], what="the daemon to start")
        wait_until(lambda: settled(cluster, node), what="the restarted node to settle")
    # Adopted, not restarted: the same processes, and never a twin.
    assert processes(cluster, SINGLETON) == {pid: node}
    assert {p for p, n in processes(cluster, "http.server").items() if n == node} == web_pids
    assert resources(cluster)["volume"]["fail_count"] == 0
    assert watch.overlaps == []


def test_move_ban_clear_and_maintenance(cluster):
    apply(cluster, BASIC)
    wait_until(lambda: settled(cluster), what="the resources to start")
    node = instances(cluster, "dummy")[0]
    target = next(n for n in NODES if n != node)
    cluster.cli("resource", "move", "dummy", "--node", target)
    wait_until(lambda: instances(cluster, "dummy") == [target], what="the move")
    assert resources(cluster)["dummy"]["moved_to"] == target
    cluster.cli("resource", "ban", "dummy", "--node", target)
    wait_until(lambda: (i := instances(cluster, "dummy")) and i != [target], what="the ban")
    cluster.cli("resource", "clear", "dummy")
    assert "banned_from" not in resources(cluster)["dummy"]
    # Maintenance: nothing is managed; a dead process stays dead until it ends.
    cluster.cli("maintenance", "on")
    wait_until(lambda: resources(cluster)["dummy"] and
               cluster.status()["nodes"] is not None, what="maintenance to be seen")
    (pid, vnode), = processes(cluster, SINGLETON).items()
    os.kill(pid, signal.SIGKILL)
    import time
    time.sleep(2)
    assert processes(cluster, SINGLETON) == {}
    cluster.cli("maintenance", "off")
    wait_until(lambda: len(processes(cluster, SINGLETON)) == 1, what="management to resume")
    proc = cluster.cli("resource", "move", "nosuch", "--node", "n1", check=False)
    assert proc.returncode == 2 and "no resource or group named 'nosuch'" in proc.stderr


def test_node_that_loses_its_majority_stops_its_singleton(cluster):
    apply(cluster, BASIC)
    wait_until(lambda: settled(cluster), what="the resources to start")
    node = nodes_running(cluster, SINGLETON)[0]
    others = [n for n in NODES if n != node]
    # Pause both other nodes at once: the singleton's node is alone, a
    # minority (paused one after the other, the first could be fenced by a
    # majority still formed with the second).
    cluster.kill_together(others, "STOP")
    try:
        wait_until(lambda: nodes_running(cluster, SINGLETON) == [], timeout_s=5,
                   what="the lone node to stop its singleton")
        # Clones are not exclusive: they keep running on the lone node.
        assert node in processes(cluster, "http.server").values()
    finally:
        cluster.kill_together(others, "CONT")
    wait_until(lambda: len(nodes_running(cluster, SINGLETON)) == 1, what="the singleton to return")


def test_paused_node_is_fenced_before_its_singleton_moves(cluster):
    apply(cluster, BASIC)
    wait_until(lambda: settled(cluster), what="the resources to start")
    node = nodes_running(cluster, SINGLETON)[0]
    rest = [n for n in NODES if n != node]
    with ExclusivityWatch(cluster, SINGLETON) as watch:
        # A paused node is not dead: its processes (the singleton among
        # them) exist, stopped, and would run again on SIGCONT.
        cluster.kill(node, "STOP")
        moved = wait_until(lambda: (r := nodes_running(cluster, SINGLETON)) and r[0] != node and r,
                           timeout_s=15, what="the singleton to run elsewhere")
        assert moved[0] in rest
        # The dev fence agent power-killed the paused node's whole tree.
        assert not cluster.node(node)["running"]
        assert nodes_running(cluster, SINGLETON) == moved
    assert watch.overlaps == [], watch.overlaps
    log = "".join((cluster.dir / "data" / n / "bulwarkd.log").read_text() for n in rest)
    assert f"{node} is fenced" in log
    cluster.start(node)
    wait_until(lambda: settled(cluster), what="the fenced node to rejoin")
    assert nodes_running(cluster, SINGLETON) == moved
