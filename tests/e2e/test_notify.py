"""A promotable OCF resource with notifications on a real 3-node cluster:
every start, stop, promotion and demotion is told to each active
instance before ("pre") and after ("post") it, with Pacemaker's lists, and
never two instances promoted at once. The agent is a test agent under a
private OCF root (agents.ocf_root); it logs every action it runs to one
file, in the order they ran."""

import threading
import time

from conftest import wait_until
from resource_support import apply, instances, ocf_meta_data, ocf_root

NODES = ["n1", "n2", "n3"]

# A promotable agent whose state is a file in HA_RSCTMP. Every action but
# monitor appends "NODE ACTION ..." to the file named by its `log`
# parameter; notify adds its type-operation and the lists it was given.
META_DATA = ocf_meta_data("Notes", ["log"], ("start", "stop", "monitor", "promote", "demote",
                                           "notify", "meta-data", "validate-all"))
AGENT = r"""#!/bin/sh
state="$HA_RSCTMP/notes-$OCF_RESOURCE_INSTANCE"
say() { echo "$OCF_RESKEY_CRM_meta_on_node $*" >> "$OCF_RESKEY_log"; }
p=OCF_RESKEY_CRM_meta_notify_
list() { eval "v=\${$p$1_uname}"; echo "$1=$(echo $v | tr ' ' ',')"; }
case "$1" in
""" + META_DATA + r"""  validate-all) exit 0 ;;
  start) say start; echo started > "$state"; exit 0 ;;
  stop) say stop; rm -f "$state"; exit 0 ;;
  promote) say promote; echo promoted > "$state"; exit 0 ;;
  demote) say demote; echo started > "$state"; exit 0 ;;
  monitor)
    [ -f "$state" ] || exit 7
    [ "$(cat "$state")" = promoted ] && exit 8
    exit 0 ;;
  notify)
    say notify "$OCF_RESKEY_CRM_meta_notify_type-$OCF_RESKEY_CRM_meta_notify_operation" \
      $(list start) $(list stop) $(list promote) $(list demote) $(list active) \
      $(list promoted) $(list master) $(list unpromoted) $(list all)
    exit 0 ;;
esac
exit 3
"""


def notify_cluster(cluster_factory):
    """A 3-node dev cluster whose OCF root holds the test agent and links
    Debian's shell functions."""
    c = cluster_factory()
    return c.up(3, ocf_root=ocf_root(c.dir.parent, "test", "Notes", AGENT))


class Log:
    """The agent's log: one entry per action, in the order they ran."""

    def __init__(self, path):
        self.entries = []
        for line in path.read_text().splitlines():
            node, action, *rest = line.split()
            fields = dict(f.split("=", 1) for f in rest[1:])
            lists = {k: v.split(",") if v else [] for k, v in fields.items()}
            self.entries.append((node, action, rest[0] if rest else None, lists))

    def index(self, node, action, event=None, after=-1):
        """The first entry at or after `after`+1 of `node` running `action`
        (for notify: of `event`)."""
        for i in range(after + 1, len(self.entries)):
            n, a, e, _ = self.entries[i]
            if n == node and a == action and (event is None or e == event):
                return i
        raise AssertionError(f"no {node} {action} {event or ''} after entry {after}:\n" +
                             "\n".join(" ".join(map(str, e[:3])) for e in self.entries))

    def lists(self, i):
        return self.entries[i][3]


class PromotedWatch:
    """Samples the agent's state files every 10 ms: `overlaps` lists the
    samples where more than one node's instance was promoted."""

    def __init__(self, cluster):
        self.files = [cluster.dir / "data" / n / "run" / "ocf" / "notes-db" for n in NODES]
        self.overlaps = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            promoted = []
            for f in self.files:
                try:
                    if f.read_text().strip() == "promoted":
                        promoted.append(f.parent.parent.parent.name)
                except OSError:
                    pass
            if len(promoted) > 1:
                self.overlaps.append(promoted)
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_promotable_with_notify_tells_every_instance_in_order(cluster_factory):
    cluster = notify_cluster(cluster_factory)
    log = cluster.dir.parent / "notes.log"
    apply(cluster, f"""\
        resources:
          - name: db
            agent: ocf:test:Notes
            params: {{log: "{log}"}}
            promotable: {{promoted: 1, notify: true}}
            monitor: {{interval_ms: 500}}
        """)
    with PromotedWatch(cluster) as watch:
        wait_until(lambda: len(instances(cluster, "db", "promoted")) == 1 and
                   len(instances(cluster, "db")) == 2, what="db to run, one promoted")
        (old,) = instances(cluster, "db", "promoted")
        others = [n for n in NODES if n != old]
        time.sleep(1)  # every status published: what follows is fully ordered

        # Banning the promoted node demotes it and stops it there; another
        # node is promoted once the demotion is done (maybe before the stop).
        mark = len(Log(log).entries) - 1
        cluster.cli("resource", "ban", "db", "--node", old)

        def moved():
            promoted = instances(cluster, "db", "promoted")
            return len(promoted) == 1 and promoted != [old] and \
                old not in instances(cluster, "db")
        wait_until(moved, what="the promotion to move")
        (new,) = instances(cluster, "db", "promoted")
        (bystander,) = [n for n in others if n != new]
        time.sleep(1)
        e = Log(log)
        demote = e.index(old, "demote", after=mark)
        stop = e.index(old, "stop", after=demote)
        promote = e.index(new, "promote", after=demote)
        for n in NODES:  # all three were active: each told before and after
            pre = e.index(n, "notify", "pre-demote", after=mark)
            assert pre < demote
            assert e.lists(pre)["demote"] == [old]
            assert e.lists(pre)["promoted"] == [old] and e.lists(pre)["master"] == [old]
            assert e.lists(pre)["active"] == NODES
            assert e.lists(pre)["unpromoted"] == others
            assert e.index(n, "notify", "post-demote", after=demote) < stop
            assert e.index(n, "notify", "pre-stop", after=demote) < stop
        for n in others:
            assert e.index(n, "notify", "post-stop", after=stop)
            pre = e.index(n, "notify", "pre-promote", after=demote)
            assert pre < promote
            assert e.lists(pre)["promote"] == [new]
            assert e.lists(pre)["promoted"] == []
            post = e.index(n, "notify", "post-promote", after=promote)
            assert e.lists(post)["promote"] == [new]
        # The stopped instance hears nothing more.
        assert not [x for x in e.entries[stop + 1:] if x[0] == old]

        # Clearing the ban starts it again, told to the others first; the
        # promotion stays where it is.
        mark = len(e.entries) - 1
        cluster.cli("resource", "clear", "db")
        wait_until(lambda: sorted(instances(cluster, "db")) == sorted([old, bystander]),
                   what="the banned node to run db again")
        time.sleep(1)
        e = Log(log)
        start = e.index(old, "start", after=mark)
        for n in others:
            pre = e.index(n, "notify", "pre-start", after=mark)
            assert pre < start
            assert e.lists(pre)["start"] == [old]
            assert e.lists(pre)["active"] == others
            assert e.lists(pre)["promoted"] == [new]
            assert e.index(n, "notify", "post-start", after=start)
        post = e.index(old, "notify", "post-start", after=start)  # the new instance too
        assert e.lists(post)["active"] == others
        assert instances(cluster, "db", "promoted") == [new]
    assert watch.overlaps == []
