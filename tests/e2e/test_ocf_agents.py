"""OCF agents as Pacemaker runs them, on a real cluster: Debian's
ocf:heartbeat:anything, whose start launches its daemon in the background
and returns; an agent that implements notify without declaring it in its
meta-data (as rabbitmq-cluster does); and validate-all at apply, given the
parameters as a node would run them (${BULWARK_NODE} expanded)."""

import os
import signal
import time
from pathlib import Path

from conftest import wait_until
from resource_support import apply, instances, ocf_meta_data, ocf_root

# Declares no notify action but implements it (logging each call); its
# validate-all refuses a state path that still holds an unexpanded ${.
QUIET = r"""#!/bin/sh
case "$1" in
""" + ocf_meta_data("Quiet", ["log", "state"]) + r"""  validate-all)
    case "$OCF_RESKEY_state" in
      *'${'*) echo "state '$OCF_RESKEY_state' is not a path"; exit 6 ;;
    esac
    exit 0 ;;
  start) touch "$OCF_RESKEY_state"; exit 0 ;;
  stop) rm -f "$OCF_RESKEY_state"; exit 0 ;;
  monitor) [ -f "$OCF_RESKEY_state" ] && exit 0; exit 7 ;;
  notify)
    echo "$OCF_RESKEY_CRM_meta_on_node" \
      "$OCF_RESKEY_CRM_meta_notify_type-$OCF_RESKEY_CRM_meta_notify_operation" \
      >> "$OCF_RESKEY_log"
    exit 0 ;;
esac
exit 3
"""


def agents_cluster(cluster_factory):
    """A 2-node dev cluster whose OCF root holds the test agent and Debian's
    heartbeat agents, unchanged."""
    c = cluster_factory()
    root = ocf_root(c.dir.parent, "test", "Quiet", QUIET)
    (root / "resource.d" / "heartbeat").symlink_to("/usr/lib/ocf/resource.d/heartbeat")
    return c.up(2, ocf_root=root)


def test_notify_not_declared_is_called_and_validate_all_sees_expanded_params(
        cluster_factory):
    cluster = agents_cluster(cluster_factory)
    log = cluster.dir.parent / "quiet.log"
    state = cluster.dir.parent / "quiet-${BULWARK_NODE}.state"
    proc = apply(cluster, f"""\
        resources:
          - name: q
            agent: ocf:test:Quiet
            params: {{log: "{log}", state: "{state}"}}
            clone: {{notify: true}}
            monitor: {{interval_ms: 500}}
        """, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "declares no notify action in its meta-data: it is called anyway" in proc.stderr
    wait_until(lambda: instances(cluster, "q") == ["n1", "n2"], what="q on both nodes")
    for node in ("n1", "n2"):
        assert (cluster.dir.parent / f"quiet-{node}.state").exists()
    # Each start was told to the instances active after it.
    wait_until(lambda: log.exists() and
               {line.split()[0] for line in log.read_text().splitlines()
                if line.split()[1] == "post-start"} == {"n1", "n2"},
               what="post-start notifications on both nodes")


def test_the_daemon_a_start_launches_in_the_background_keeps_running(cluster_factory):
    cluster = agents_cluster(cluster_factory)
    pidfile = cluster.dir.parent / "anything.pid"
    pid = None

    def daemon_pid():
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        return int(text) if text.isdigit() else None

    def alive_sleeper(p):
        # Ours only: the pid still runs the command the agent started.
        try:
            return p is not None and \
                Path(f"/proc/{p}/cmdline").read_bytes() == b"/bin/sleep\x00300\x00"
        except OSError:
            return False

    resources = """\
        resources:
          - name: sleeper
            agent: ocf:heartbeat:anything
            params: {{binfile: /bin/sleep, cmdline_options: "300", pidfile: "{pidfile}"}}
            monitor: {{interval_ms: 500}}
            enabled: {enabled}
        """
    try:
        apply(cluster, resources.format(pidfile=pidfile, enabled="true"))
        (node,) = wait_until(lambda: instances(cluster, "sleeper"), what="sleeper to start")
        pid = wait_until(daemon_pid, what="the daemon's pid file")
        assert alive_sleeper(pid), "the daemon the start launched did not survive the start"
        # Monitors pass for a while: the same daemon, never restarted.
        time.sleep(3)
        assert alive_sleeper(pid)
        assert daemon_pid() == pid
        assert instances(cluster, "sleeper") == [node]
        apply(cluster, resources.format(pidfile=pidfile, enabled="false"))
        wait_until(lambda: not instances(cluster, "sleeper"), what="sleeper to stop")
        wait_until(lambda: not alive_sleeper(pid), what="the agent's stop to end the daemon")
    finally:
        # `su -` in the agent drops the dev node's marker: dev down cannot
        # find this process, so end it here should the test have failed.
        pid = pid or daemon_pid()
        if alive_sleeper(pid):
            os.kill(pid, signal.SIGKILL)
