"""Changes and restarts that never surprise (issue 12), on real 3-node
clusters through the real CLI: an apply that shows before it acts and
refuses what would delete everything by accident, definition changes that
take effect (stop with the old definition, start with the new, a clone one
instance at a time), daemon restarts in maintenance that keep every
process, a removed node that cannot come back on its old data, and
commands that say what they did or why they cannot."""

import json
import os
import signal
import time
from pathlib import Path

from conftest import wait_until
from resource_support import (ExclusivityWatch, apply, instances, nodes_running,
                              ocf_meta_data, ocf_root, processes, resources)

NODES = ["n1", "n2", "n3"]

# Tokens no other test uses: the singleton's argv, the clone's port.
SINGLETON = "86400.31"
PORT = 18131


def basic(port=PORT, singleton=SINGLETON, interval_ms=500, extra=""):
    return f"""\
        resources:
          - name: web
            agent: exec
            command: [/usr/bin/python3, -m, http.server, --bind, "${{BULWARK_NODE_ADDRESS}}",
                      "{port}"]
            clone: {{}}
            monitor: {{interval_ms: {interval_ms}, timeout_ms: 2000,
                       tcp: "${{BULWARK_NODE_ADDRESS}}:{port}"}}
          - name: volume
            agent: exec
            command: [/bin/sleep, "{singleton}"]
            singleton: true
            monitor: {{interval_ms: 500}}
{extra}"""


def settled(cluster, port=PORT, singleton=SINGLETON, node=None):
    """web runs on every node, volume on one, and the kernel agrees."""
    if len(instances(cluster, "web", node=node)) != 3 or len(instances(cluster, "volume",
                                                                       node=node)) != 1:
        return False
    web = processes(cluster, f" {port}")
    return len(web) == 3 and len(processes(cluster, singleton)) == 1


def pids(cluster, *tokens):
    return {t: sorted(processes(cluster, t)) for t in tokens}


def write(cluster, name, text):
    import textwrap
    path = cluster.dir / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_apply_shows_before_it_acts_and_refuses_to_delete_by_accident(cluster):
    apply(cluster, basic())
    wait_until(lambda: settled(cluster), what="the resources to start")
    before = pids(cluster, f" {PORT}", SINGLETON)
    revision = json.loads(cluster.cli("resource", "list", "--json").stdout)["revision"]

    # A directory, a missing file, an empty file: refused, nothing changed.
    proc = cluster.cli("apply", str(cluster.dir), check=False)
    assert proc.returncode == 2 and "is not a regular file" in proc.stderr, proc.stderr
    proc = cluster.cli("apply", str(cluster.dir / "nosuch.yaml"), check=False)
    assert proc.returncode == 2 and "no such file" in proc.stderr, proc.stderr
    empty = write(cluster, "empty.yaml", "")
    proc = cluster.cli("apply", empty, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "names no resource" in proc.stderr and "web, volume" in proc.stderr, proc.stderr
    # --json: the error as JSON on stdout.
    proc = cluster.cli("apply", empty, "--json", check=False)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == "invalid", proc.stdout

    # The same file again: nothing written.
    proc = cluster.cli("apply", str(cluster.dir / "resources.yaml"))
    assert "no changes" in proc.stdout and f"(revision {revision})" in proc.stdout, proc.stdout

    # A dry run of a file that changes a command, adds and deletes: listed,
    # nothing changed.
    changed = write(cluster, "changed.yaml", """\
        resources:
          - name: web
            agent: exec
            command: [/usr/bin/python3, -m, http.server, --bind, "${BULWARK_NODE_ADDRESS}",
                      "18131"]
            clone: {}
            monitor: {interval_ms: 500, timeout_ms: 2000, tcp: "${BULWARK_NODE_ADDRESS}:18131"}
          - name: extra
            agent: exec
            command: [/bin/sleep, "86400.32"]
            singleton: true
        """)
    for flag in ("--dry-run", "--diff"):
        proc = cluster.cli("apply", changed, flag)
        assert "dry run" in proc.stdout and "nothing was changed" in proc.stdout, proc.stdout
        lines = proc.stdout.splitlines()
        assert any(line.split()[:2] == ["start", "extra"] for line in lines if line.strip()), lines
        assert any(line.split()[:2] == ["delete", "volume"] for line in lines if line.strip())
    time.sleep(1)
    assert pids(cluster, f" {PORT}", SINGLETON) == before
    exported = cluster.cli("resource", "export").stdout
    assert exported == (cluster.dir / "resources.yaml").read_text()

    # Two operators: the one who read an older revision is refused.
    proc = cluster.cli("apply", changed, "--expect-revision", str(revision - 1), check=False)
    assert proc.returncode == 1 and "changed since revision" in proc.stderr, proc.stderr
    proc = cluster.cli("apply", changed, "--expect-revision", str(revision))
    assert any(line.split()[:2] == ["delete", "volume"] for line in proc.stdout.splitlines()
               if line.strip()), proc.stdout
    wait_until(lambda: not processes(cluster, SINGLETON) and processes(cluster, "86400.32"),
               what="the deleted resource to stop and the new one to start")
    assert sorted(processes(cluster, f" {PORT}")) == before[f" {PORT}"]  # web untouched
    assert cluster.cli("resource", "export").stdout == Path(changed).read_text()

    # Deleting everything, when asked for.
    proc = cluster.cli("apply", empty, "--allow-delete")
    assert "delete" in proc.stdout
    wait_until(lambda: not processes(cluster, f" {PORT}") and not processes(cluster, "86400.32"),
               what="every resource to stop")


def test_definition_changes_take_effect(cluster_factory):
    cluster = cluster_factory().up(3)
    dummy_dir = cluster.dir.parent / "dummy"
    dummy_dir.mkdir()
    template = f"""\
          - name: dummy
            agent: ocf:heartbeat:Dummy
            params: {{fake: "FAKE", state: "{dummy_dir}/STATE-${{BULWARK_NODE}}.state"}}
            singleton: true
            monitor: {{interval_ms: 1000}}
"""

    class Dummy:
        def format(self, fake, state):
            return template.replace("FAKE", fake).replace("STATE", state)

    dummy = Dummy()
    apply(cluster, basic(extra=dummy.format(fake="1", state="a")))
    wait_until(lambda: settled(cluster) and instances(cluster, "dummy"), what="the start")
    dummy_node = instances(cluster, "dummy")[0]
    web = pids(cluster, f" {PORT}")[f" {PORT}"]

    # Monitor only: applied in place, nothing restarts.
    proc = apply(cluster, basic(interval_ms=700, extra=dummy.format(fake="1", state="a")))
    assert "update" in proc.stdout and "nothing restarts" in proc.stdout, proc.stdout
    time.sleep(1.5)
    assert sorted(processes(cluster, f" {PORT}")) == web

    # The singleton's command and the clone's port and monitor together:
    # the singleton is stopped and started with the new command (never two),
    # the clone one instance at a time, and the new monitor never probes
    # the old process (no failure counted).
    new_port = PORT + 1
    with ExclusivityWatch(cluster, "86400.3") as watch, ExclusivityWatch(cluster, "http.server") as count:
        proc = apply(cluster, basic(port=new_port, singleton="86400.33",
                                    extra=dummy.format(fake="1", state="a")))
        assert "restart  volume" in proc.stdout and "restart  web" in proc.stdout, proc.stdout
        wait_until(lambda: settled(cluster, port=new_port, singleton="86400.33"), timeout_s=30,
                   what="the restarts")
    assert not processes(cluster, SINGLETON) and not processes(cluster, f" {PORT}")
    assert watch.overlaps == [], watch.overlaps
    assert count.low >= 2, f"the clone restarted more than one instance at a time ({count.low})"
    r = resources(cluster)
    assert r["web"]["fail_count"] == 0 and r["volume"]["fail_count"] == 0, r
    assert not any(i["outdated"] for i in r["web"]["instances"])

    # OCF: a parameter the agent cannot reload restarts it, and the stop
    # runs with the old parameters (the old state file goes).
    old_state = dummy_dir / f"a-{dummy_node}.state"
    assert old_state.exists()
    proc = apply(cluster, basic(port=new_port, singleton="86400.33",
                                extra=dummy.format(fake="1", state="b")))
    assert "restart  dummy" in proc.stdout and "params (state)" in proc.stdout, proc.stdout
    wait_until(lambda: (dummy_dir / f"b-{dummy_node}.state").exists() and not old_state.exists(),
               what="dummy restarted with its new state file, the old one removed")
    # A reloadable parameter (Dummy's fake, not unique): reloaded in place.
    proc = apply(cluster, basic(port=new_port, singleton="86400.33",
                                extra=dummy.format(fake="2", state="b")))
    assert "reload   dummy" in proc.stdout, proc.stdout
    log = cluster.dir / "data" / dummy_node / "logs" / "dummy.log"
    wait_until(lambda: "Reloading" in log.read_text(), what="the agent's reload")
    assert (dummy_dir / f"b-{dummy_node}.state").exists()
    assert resources(cluster)["dummy"]["fail_count"] == 0


def test_daemon_restarts_in_maintenance_keep_every_process(cluster):
    """The upgrade recipe of docs/operations.md: maintenance on, every
    daemon restarted one after another, maintenance off; no resource
    process is ever stopped or started, and nothing is fenced."""
    apply(cluster, basic())
    wait_until(lambda: settled(cluster), what="the resources to start")
    before = pids(cluster, f" {PORT}", SINGLETON)
    cluster.cli("maintenance", "on")
    for node in NODES:
        cluster.kill(node, "TERM")
        wait_until(lambda: not cluster.node(node)["running"], what=f"{node}'s daemon to stop")
        assert pids(cluster, f" {PORT}", SINGLETON) == before, f"{node}'s shutdown stopped some"
        cluster.start(node)
        wait_until(lambda: resources(cluster, node)["web"] and settled(cluster, node=node),
                   what=f"{node} to adopt what runs")
        assert pids(cluster, f" {PORT}", SINGLETON) == before
    cluster.cli("maintenance", "off")
    time.sleep(2)
    assert pids(cluster, f" {PORT}", SINGLETON) == before
    assert all(r["fail_count"] == 0 for r in resources(cluster).values())

    # One node in maintenance: its daemon restarts, its singleton stays,
    # it is not fenced, and nothing moves.
    node = nodes_running(cluster, SINGLETON)[0]
    cluster.cli("node", "maintenance", node)
    cluster.kill(node, "TERM")
    wait_until(lambda: not cluster.node(node)["running"], what=f"{node}'s daemon to stop")
    time.sleep(1.5)  # several leases: a lost node would be fenced by now
    assert pids(cluster, f" {PORT}", SINGLETON) == before
    cluster.start(node)
    cluster.cli("node", "online", node)
    wait_until(lambda: settled(cluster), what="management to resume")
    assert pids(cluster, f" {PORT}", SINGLETON) == before
    log = "".join((cluster.dir / "data" / n / "bulwarkd.log").read_text() for n in NODES)
    assert "fencing: " not in log


def test_removed_node_is_refused_and_a_replacement_needs_empty_data(cluster):
    cluster.kill("n2")  # power loss
    cluster.cli("node", "remove", "n2", env_extra={"BULWARK_DEV_DIR": ""})
    # Started on its old data: refused within seconds, before its etcd
    # member or any resource starts.
    log = cluster.dir / "data" / "n2" / "bulwarkd.log"
    lines_before = len(log.read_text().splitlines())
    t0 = time.monotonic()
    proc = cluster.dev("start", "n2", check=False)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 1 and "is not a member of cluster" in proc.stderr, proc.stderr
    new_lines = "\n".join(log.read_text().splitlines()[lines_before:])
    assert "etcd: started member" not in new_lines and "agent:" not in new_lines, new_lines
    status = cluster.status("n1")
    assert [n["name"] for n in status["nodes"]] == ["n1", "n3"]

    # Added again under its name: the old data is an earlier node's.
    address = cluster.node("n2")["address"]
    cluster.cli("node", "add", "n2", "--address", address)
    proc = cluster.dev("start", "n2", check=False)
    assert proc.returncode == 1 and "holds the data of an earlier node" in proc.stderr, proc.stderr
    import shutil
    shutil.rmtree(cluster.dir / "data" / "n2")
    cluster.start("n2")
    wait_until(lambda: all(n["online"] for n in cluster.status("n1")["nodes"]),
               what="the replacement to join")

    # `node remove` of a dev cluster's node also takes it out of the
    # cluster's directory: `dev up` no longer starts it.
    cluster.cli("node", "remove", "n2")
    assert [n["name"] for n in cluster.ls()] == ["n1", "n3"]
    proc = cluster.dev("start", "n2", check=False)
    assert proc.returncode == 2 and "no node 'n2'" in proc.stderr, proc.stderr


def test_commands_say_what_they_did_or_why_they_cannot(cluster):
    # app is placed before volume (file order), and volume keeps apart
    # from it: volume can never go to app's node.
    apply(cluster, f"""\
        resources:
          - name: app
            agent: exec
            command: [/bin/sleep, "86400.34"]
            singleton: true
          - name: web
            agent: exec
            command: [/usr/bin/python3, -m, http.server, --bind, "${{BULWARK_NODE_ADDRESS}}",
                      "{PORT}"]
            clone: {{}}
            monitor: {{interval_ms: 500, timeout_ms: 2000,
                       tcp: "${{BULWARK_NODE_ADDRESS}}:{PORT}"}}
          - name: volume
            agent: exec
            command: [/bin/sleep, "{SINGLETON}"]
            singleton: true
          - name: spare
            agent: exec
            command: [/bin/sleep, "86400.35"]
            enabled: false
        constraints:
          - {{colocate: volume, apart: app}}
        """)
    wait_until(lambda: settled(cluster) and nodes_running(cluster, "86400.34"),
               what="the resources to start")
    app_node = nodes_running(cluster, "86400.34")[0]
    volume_node = nodes_running(cluster, SINGLETON)[0]
    other = next(n for n in NODES if n not in (app_node, volume_node))

    # A move a constraint forbids: refused, naming it; nothing recorded.
    proc = cluster.cli("resource", "move", "volume", "--node", app_node, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "colocated apart from app" in proc.stderr, proc.stderr
    assert "moved_to" not in resources(cluster)["volume"]
    # A clone on every node has nowhere to go.
    proc = cluster.cli("resource", "move", "web", "--node", "n1", check=False)
    assert proc.returncode == 2 and "runs on every eligible node" in proc.stderr, proc.stderr
    proc = cluster.cli("resource", "move", "nosuch", "--node", "n1", "--json", check=False)
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"]["code"] == "not_found"
    # A move that can happen, waited for.
    with ExclusivityWatch(cluster, SINGLETON) as watch:
        proc = cluster.cli("resource", "move", "volume", "--node", other, "--wait")
        assert f"volume moves to {other}" in proc.stdout and "done" in proc.stdout, proc.stdout
        assert nodes_running(cluster, SINGLETON) == [other]
    assert watch.overlaps == []

    # disable / enable.
    proc = cluster.cli("resource", "disable", "app")
    assert f"app is disabled: it stops on {app_node}" in proc.stdout, proc.stdout
    wait_until(lambda: not processes(cluster, "86400.34"), what="app to stop")
    assert resources(cluster)["app"]["disabled_by"] == "operator"
    cluster.cli("resource", "enable", "app")
    wait_until(lambda: processes(cluster, "86400.34"), what="app to start again")
    proc = cluster.cli("resource", "enable", "spare", check=False)
    assert proc.returncode == 2 and "disabled in the resources file" in proc.stderr, proc.stderr

    # restart: every instance, the clone one at a time.
    web = sorted(processes(cluster, f" {PORT}"))
    with ExclusivityWatch(cluster, f" {PORT}") as count:
        proc = cluster.cli("resource", "restart", "web", "--wait")
        assert "one instance at a time" in proc.stdout and "done" in proc.stdout, proc.stdout
    assert not set(web) & set(processes(cluster, f" {PORT}"))
    assert count.low >= 2, count.low
    proc = cluster.cli("resource", "restart", "spare", check=False)
    assert proc.returncode == 2 and "runs nowhere" in proc.stderr

    # unmanage: a dead process stays dead; manage: it is restarted.
    cluster.cli("resource", "unmanage", "app")
    wait_until(lambda: all(i["unmanaged"] for i in resources(cluster)["app"]["instances"]),
               what="app to be left alone")
    (pid, node), = processes(cluster, "86400.34").items()
    os.kill(pid, signal.SIGKILL)
    time.sleep(1.5)
    assert not processes(cluster, "86400.34")
    cluster.cli("resource", "manage", "app")
    wait_until(lambda: processes(cluster, "86400.34"), what="app to be restarted")

    assert resources(cluster)["app"]["fail_count"] == 1  # the exit, seen once managed again
    # cleanup without a name: every resource.
    proc = cluster.cli("resource", "cleanup")
    assert "every resource" in proc.stdout, proc.stdout
    wait_until(lambda: all(r["fail_count"] == 0 for r in resources(cluster).values()),
               what="every fail count to be reset")


# An OCF agent whose stop fails while a flag file exists; its state is a
# file in HA_RSCTMP (one per node).
STUCK_AGENT = r"""#!/bin/sh
state="$HA_RSCTMP/stuck-$OCF_RESOURCE_INSTANCE"
case "$1" in
""" + ocf_meta_data("Stuck", ["flag"]) + r"""  validate-all) exit 0 ;;
  start) echo started > "$state"; exit 0 ;;
  stop) [ -e "$OCF_RESKEY_flag" ] && exit 1; rm -f "$state"; exit 0 ;;
  monitor) [ -f "$state" ] || exit 7; exit 0 ;;
esac
exit 3
"""


def stuck_root(base):
    return ocf_root(base, "test", "Stuck", STUCK_AGENT)


def stuck_resource(flag):
    return f"""\
        resources:
          - name: stuck
            agent: ocf:test:Stuck
            params: {{flag: "{flag}"}}
            singleton: true
            stop_timeout_ms: 2000
            monitor: {{interval_ms: 500}}
        """


def test_failed_stop_is_cleared_by_the_operator_or_fenced(cluster_factory):
    # Without fencing: blocked until the operator says it is stopped.
    c = cluster_factory()
    c.up(3, ocf_root=stuck_root(c.dir.parent), fencing=False)
    flag = c.dir.parent / "stop-fails"
    flag.touch()
    apply(c, stuck_resource(flag))
    node = wait_until(lambda: instances(c, "stuck") and instances(c, "stuck")[0],
                      what="stuck to start")
    c.cli("resource", "disable", "stuck")
    wait_until(lambda: instances(c, "stuck", "blocked") == [node], what="the stop to fail")
    proc = c.cli("resource", "cleanup", "stuck")
    assert "blocked on " + node in proc.stdout and "--force" in proc.stdout, proc.stdout
    time.sleep(1)
    wait_until(lambda: instances(c, "stuck", "blocked") == [node], what="the stop to fail again")
    # The operator stops it by hand, then says so.
    (c.dir / "data" / node / "run" / "ocf" / "stuck-stuck").unlink()
    proc = c.cli("resource", "cleanup", "stuck", "--force")
    assert "counted as stopped" in proc.stdout, proc.stdout
    wait_until(lambda: resources(c)["stuck"]["instances"] == [], what="the instance to be cleared")
    flag.unlink()
    c.cli("resource", "enable", "stuck")
    wait_until(lambda: instances(c, "stuck"), what="stuck to start again")

    # With fencing (dev clusters' default): the node whose stop failed is
    # fenced, and the singleton runs elsewhere.
    f = cluster_factory()
    f.up(3, ocf_root=stuck_root(f.dir.parent))
    flag = f.dir.parent / "stop-fails"
    apply(f, stuck_resource(flag))
    # Only the coordinator fences, and never its own node: stuck runs on
    # another one.
    coordinator = wait_until(lambda: f.coordinator(), what="a coordinator")
    node, other = [n for n in NODES if n != coordinator]
    f.cli("resource", "move", "stuck", "--node", node, "--wait")
    flag.touch()
    f.cli("resource", "move", "stuck", "--node", other)
    wait_until(lambda: not f.node(node)["running"], what=f"{node} to be fenced")
    flag.unlink()
    wait_until(lambda: instances(f, "stuck", node=other) == [other], timeout_s=30,
               what="stuck to run on " + other)
    log = "".join((f.dir / "data" / n / "bulwarkd.log").read_text() for n in NODES)
    assert f"fencing: {node}: its stop of stuck failed" in log, log
