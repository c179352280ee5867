"""Helpers for resource tests: apply a resources file through the CLI, read
`bulwark resource list --json`, and find a dev cluster's resource processes
by what the kernel says (their command line and the BULWARK_* environment
Bulwark gave them), never by what the cluster reports about itself."""

import json
import os
import textwrap
from pathlib import Path


def apply(cluster, text, check=True, endpoint=None):
    path = cluster.dir / "resources.yaml"
    path.write_text(textwrap.dedent(text))
    return cluster.cli("apply", str(path), check=check, endpoint=endpoint)


def resources(cluster, node=None):
    ep = cluster.endpoint(node) if node else None
    out = json.loads(cluster.cli("resource", "list", "--json", endpoint=ep, timeout=10).stdout)
    return {r["name"]: r for r in out["resources"]}


def instances(cluster, name, state="started", node=None):
    """Nodes where the cluster reports `name` in `state`."""
    r = resources(cluster, node).get(name)
    return sorted(i["node"] for i in r["instances"] if i["state"] == state) if r else []


def processes(cluster, token):
    """{pid: node} of live processes of this cluster whose command line
    contains `token`."""
    marker = f"BULWARK_DEV_NODE={cluster.dir}/".encode()
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if stat[stat.rfind(")") + 2] in "ZX":
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if token.encode() not in cmdline or not any(e.startswith(marker) for e in env):
            continue
        node = next((e.split(b"=", 1)[1].decode() for e in env
                     if e.startswith(b"BULWARK_NODE=")), None)
        out[int(entry)] = node
    return out


def nodes_running(cluster, token):
    return sorted(processes(cluster, token).values())


class ExclusivityWatch:
    """Samples, on a thread, on which nodes processes with `token` live;
    `overlaps` lists every sample where more than one node ran one, `low`
    is the fewest processes any sample saw (a clone's rolling restart)."""

    def __init__(self, cluster, token, interval_s=0.01):
        import threading
        self.cluster, self.token, self.interval_s = cluster, token, interval_s
        self.overlaps = []
        self.samples = 0
        self.low = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            found = processes(self.cluster, self.token)
            nodes = set(found.values())
            self.samples += 1
            self.low = len(found) if self.low is None else min(self.low, len(found))
            if len(nodes) > 1:
                self.overlaps.append(sorted(nodes))
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


COMMON_ACTIONS = ("start", "stop", "monitor", "meta-data", "validate-all")


def ocf_meta_data(name, params, actions=COMMON_ACTIONS):
    """The `meta-data)` branch of a test agent's `case "$1" in`: the XML of
    an agent `name` whose `params` are all required strings, offering
    `actions` (monitor every second)."""
    parameters = "\n".join(f'<parameter name="{p}" required="1"><content type="string"/></parameter>'
                           for p in params)
    offered = "\n".join(
        f'<action name="{a}" timeout="5s"' + (' interval="1s"' if a == "monitor" else "") + "/>"
        for a in actions)
    return f"""  meta-data) cat <<'EOF'
<?xml version="1.0"?>
<resource-agent name="{name}" version="1.0">
<version>1.0</version>
<parameters>
{parameters}
</parameters>
<actions>
{offered}
</actions>
</resource-agent>
EOF
    exit 0 ;;
"""


def ocf_root(base, provider, agent, script):
    """A private OCF root (agents.ocf_root, `dev up --ocf-root`) under `base`
    holding the test agent `script` as ocf:PROVIDER:AGENT, with Debian's
    shell functions linked in."""
    root = base / "ocf"
    path = root / "resource.d" / provider / agent
    path.parent.mkdir(parents=True)
    path.write_text(script)
    path.chmod(0o755)
    (root / "lib").symlink_to("/usr/lib/ocf/lib")
    return root
