"""Tests of the network-namespace testbed itself (testbed.py, probe.py,
fence_testbed): what it makes and removes, that two runs coexist, that each
fault does what it says (checked with real TCP and UDP between namespaces),
teardown on exceptions and signals, keepalived mode, and a real Bulwark
cluster on it whose coordinator survives a power loss and fences a paused
host through the testbed's fence agent. Needs root; skipped otherwise.

Run: /usr/bin/python3 -m pytest -q tests/netns
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import keepalived_mode  # noqa: E402
import testbed as T  # noqa: E402
from testbed import Keepalived, Testbed, wait_until  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the netns testbed needs root"),
    pytest.mark.skipif(not (os.path.exists(T.IP) and os.path.exists(T.NFT)),
                       reason="needs ip (iproute2) and nft (nftables)"),
]

PORT = 7000
VIP = "192.0.2.100"


def have_bulwark():
    bins = Path(os.environ.get("BULWARK_BIN_DIR", T.REPO / "build" / "bin"))
    return (bins / "bulwarkd").exists() and (bins / "bulwark").exists()


def root_snapshot():
    return (set(T.list_netns()), set(T.list_links()),
            T.run([T.NFT, "list", "ruleset"]).stdout)


def root_routes():
    return (T.run([T.IP, "-4", "route", "show", "table", "all"]).stdout
            + T.run([T.IP, "-6", "route", "show", "table", "all"]).stdout)


def foreign(names):
    """Names another concurrent testbed run may have made meanwhile."""
    return {n for n in names if T.TAG_RE.match(n.split("-", 1)[0])}


def test_up_down_leaves_nothing():
    ns_before, links_before, rules_before = root_snapshot()
    routes_before = root_routes()
    with Testbed(nodes=3, bulwark=False) as tb:
        tag = tb.tag
        assert T.TAG_RE.match(tag)
        for key in tb.hosts():
            assert tb.netns(key) in T.list_netns()
            assert len(tb.veth(key)) <= 15
            assert tb.addresses(key) == [f"{tb.address(key)}/24"]
            assert tb.address(key).startswith("192.0.2.")
            lo = json.loads(T.run([T.IP, "-j", "-n", tb.netns(key), "link", "show", "lo"]).stdout)
            assert "UP" in lo[0]["flags"]
        assert [tb.address(n) for n in tb.nodes] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        assert tb.address("client") == "192.0.2.200"
        # Nothing in the root namespace but the bridge and the veth host
        # ends, none of them with an address; no root nftables rule.
        for name in [tb.bridge] + [tb.veth(k) for k in tb.hosts()]:
            info = json.loads(T.run([T.IP, "-j", "addr", "show", "dev", name]).stdout)[0]
            assert info.get("addr_info", []) == [], name
        assert T.run([T.NFT, "list", "ruleset"]).stdout == rules_before
        assert root_routes() == routes_before
        tb.start_responders(PORT)
        assert T.leftovers(tag)  # the run is visible to the leftover scan
    assert T.leftovers(tag) == []
    ns_after, links_after, rules_after = root_snapshot()
    assert ns_after - ns_before - foreign(ns_after) == set()
    assert links_after - links_before - foreign(links_after) == set()
    assert not [n for n in ns_after | links_after if n.startswith(tag)]
    assert rules_after == rules_before


def test_two_testbeds_coexist():
    with Testbed(nodes=2, bulwark=False) as a, Testbed(nodes=2, bulwark=False) as b:
        assert a.tag != b.tag
        a.start_responders(PORT)
        b.start_responders(PORT)
        # Same addresses, separate networks: a fault in one is not seen in
        # the other.
        a.kill("n1")
        assert a.connect("client", "n1", PORT) is None
        assert b.connect("client", "n1", PORT) == "n1"
        assert a.connect("client", "n2", PORT) == "n2"
        tags = a.tag, b.tag
    assert T.leftovers(tags[0]) == [] and T.leftovers(tags[1]) == []


def test_kill_is_power_loss_and_boot_comes_back_clean():
    with Testbed(nodes=3, bulwark=False) as tb:
        tb.start_responders(PORT)
        T.run([T.IP, "-n", tb.netns("n1"), "addr", "add", f"{VIP}/24", "dev", "eth0"])
        assert tb.connect("client", VIP, PORT) == "n1"
        assert tb.neighbour(VIP) == tb.mac("n1")
        assert tb.pids("n1")
        tb.kill("n1")
        assert tb.pids("n1") == []
        assert not T.link_is_up(tb.netns("n1"))
        # Off, but the VIP stays configured, as on a powered-off machine.
        assert tb.holders(VIP) == ["n1"] and tb.holders(VIP, answering=True) == []
        assert tb.connect("client", "n1", PORT) is None
        assert tb.connect("n2", "n3", PORT) == "n3"
        tb.boot("n1")
        assert T.link_is_up(tb.netns("n1"))
        assert tb.addresses("n1") == ["192.0.2.1/24"]
        assert tb.holders(VIP) == []
        assert wait_until(lambda: tb.connect("client", "n1", PORT) == "n1", 10)
        assert [e[1:] for e in tb.events[-2:]] == [("kill", "n1"), ("boot", "n1")]


def test_pause_and_resume():
    with Testbed(nodes=2, bulwark=False) as tb:
        tb.start_responders(PORT)
        tb.pause("n2")
        states = [T._proc_stat(p)[0] for p in tb.pids("n2")]
        assert states and set(states) == {"T"}
        # The kernel still completes the handshake; the stopped responder
        # never answers.
        assert tb.connect("client", "n2", PORT, timeout_ms=300) is None
        assert tb.connect("client", "n1", PORT) == "n1"
        tb.resume("n2")
        assert wait_until(lambda: tb.connect("client", "n2", PORT) == "n2", 10)


def test_link_down_and_up():
    with Testbed(nodes=2, bulwark=False) as tb:
        tb.start_responders(PORT)
        tb.link_down("n1")
        assert tb.connect("client", "n1", PORT) is None
        assert tb.pids("n1")  # processes live on
        tb.link_up("n1")
        assert wait_until(lambda: tb.connect("client", "n1", PORT) == "n1", 10)


def test_two_way_partition_and_heal():
    with Testbed(nodes=3, bulwark=False) as tb:
        tb.start_responders(PORT)
        tb.partition("n1|n2,n3")
        assert tb.connect("n1", "n2", PORT) is None
        assert tb.connect("n2", "n1", PORT) is None
        assert tb.connect("n1", "n3", PORT) is None
        assert tb.connect("n3", "n1", PORT) is None
        assert tb.connect("n2", "n3", PORT) == "n3"
        assert not tb.reaches_udp("n1", "n2", PORT, 0.3)
        assert not tb.reaches_udp("n2", "n1", PORT, 0.3)
        # The client was not named: it reaches both sides.
        assert tb.connect("client", "n1", PORT) == "n1"
        assert tb.connect("client", "n2", PORT) == "n2"
        tb.heal()
        for key in tb.hosts():
            assert "bwt_partition" not in tb.rules(key)
        assert tb.connect("n1", "n2", PORT) == "n2"
        assert tb.connect("n2", "n1", PORT) == "n1"
        # Naming the client puts it on one side.
        tb.partition([["n1", "client"], ["n2", "n3"]])
        assert tb.connect("client", "n1", PORT) == "n1"
        assert tb.connect("client", "n2", PORT) is None
        tb.heal()
        assert tb.connect("client", "n2", PORT) == "n2"


def test_one_way_partition():
    with Testbed(nodes=3, bulwark=False) as tb:
        tb.start_responders(PORT)
        tb.partition([["n1"], ["n2"]], one_way=True)
        # n1's packets to n2 are dropped, n2's to n1 arrive: exactly one
        # direction fails.
        assert not tb.reaches_udp("n1", "n2", PORT, 0.3)
        assert tb.reaches_udp("n2", "n1", PORT)
        # TCP needs both directions, so it fails both ways.
        assert tb.connect("n1", "n2", PORT) is None
        assert tb.connect("n2", "n1", PORT) is None
        assert tb.connect("n1", "n3", PORT) == "n3"
        assert tb.connect("n3", "n2", PORT) == "n2"
        tb.heal()
        assert tb.reaches_udp("n1", "n2", PORT)
        assert tb.connect("n1", "n2", PORT) == "n2"


def fence(tb, options, from_node="n1"):
    """Calls the fence agent the way bulwarkd does: from a host's namespace,
    options on stdin."""
    text = "".join(f"{k}={v}\n" for k, v in options.items())
    return tb.ns_exec(from_node, [T.FENCE_AGENT], input=text, timeout=20)


def test_fence_agent_powers_off_and_on():
    with Testbed(nodes=3, bulwark=False) as tb:
        tb.start_responders(PORT)
        base = {"plug": "n2", "nodename": "n2", "testbed": str(tb.dir)}
        r = fence(tb, {**base, "action": "status"})
        assert (r.returncode, r.stdout.strip()) == (0, "Status: ON")
        assert fence(tb, {**base, "action": "monitor"}).returncode == 0
        assert "n1," in fence(tb, {"action": "list", "testbed": str(tb.dir)}).stdout
        assert "<resource-agent" in fence(tb, {"action": "metadata"}).stdout
        r = fence(tb, {**base, "action": "off"})
        assert r.returncode == 0, r.stderr
        assert tb.pids("n2") == []
        assert not T.link_is_up(tb.netns("n2"))
        r = fence(tb, {**base, "action": "status"})
        assert (r.returncode, r.stdout.strip()) == (2, "Status: OFF")
        assert tb.connect("client", "n2", PORT) is None
        r = fence(tb, {**base, "action": "on"})
        assert r.returncode == 0, r.stderr
        assert wait_until(lambda: tb.connect("client", "n2", PORT) == "n2", 10)
        # Bad input: exit 1, nothing done.
        assert fence(tb, {**base, "plug": "n9", "action": "off"}).returncode == 1
        assert fence(tb, {"plug": "n2", "action": "off"}).returncode == 1
        assert fence(tb, {**base, "action": "explode"}).returncode == 1
        assert tb.connect("client", "n2", PORT) == "n2"


def test_cleanup_after_an_exception():
    tag = None
    with pytest.raises(RuntimeError, match="boom"):
        with Testbed(nodes=2, bulwark=False) as tb:
            tag = tb.tag
            tb.start_responders(PORT)
            tb.pause("n1")
            raise RuntimeError("boom")
    assert T.leftovers(tag) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cleanup_on_signal(sig):
    proc = subprocess.Popen([T.PYTHON, str(HERE / "testbed.py"), "up", "--no-bulwark",
                             "--responders", str(PORT), "--hold-s", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "is up" in line, line + proc.stderr.read()
        tag = line.split()[1]
        assert T.leftovers(tag)
        proc.send_signal(sig)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The handler tore down, then re-raised: the process died of the
    # signal (SIGINT through KeyboardInterrupt) rather than exiting 0.
    assert proc.returncode != 0
    assert T.leftovers(tag) == []


def test_holder_sampler_and_client_loop():
    with Testbed(nodes=2, bulwark=False) as tb:
        tb.start_responders(PORT)
        sampler = tb.sample_holders(VIP, interval_ms=10)
        loop = tb.client_loop(VIP, PORT, duration_s=1.5)
        time.sleep(0.3)
        T.run([T.IP, "-n", tb.netns("n1"), "addr", "add", f"{VIP}/24", "dev", "eth0"])
        time.sleep(0.3)
        # Added on n2 before it leaves n1: a two-holder window.
        T.run([T.IP, "-n", tb.netns("n2"), "addr", "add", f"{VIP}/24", "dev", "eth0"])
        time.sleep(0.1)
        T.run([T.IP, "-n", tb.netns("n1"), "addr", "del", f"{VIP}/24", "dev", "eth0"])
        time.sleep(0.2)
        samples = sampler.stop()
        results = loop.wait()
        assert len(samples) > 50
        seen = [h for _, h, _ in samples]
        assert () in seen and ("n1",) in seen and ("n1", "n2") in seen and ("n2",) in seen
        assert sampler.multi()
        # An attempt every 10 ms at most; one that waits out its 50 ms
        # timeout (no VIP yet: ARP gets no answer) skips the slots it covered.
        assert 20 < len(results) <= 152
        # No gratuitous ARP from `ip addr add`: the client finds the VIP at
        # its next ARP probe (up to 1 s later), on whichever host has it then.
        answered = {r["node"] for r in results}
        assert None in answered and answered - {None} and answered <= {None, "n1", "n2"}
        assert all(r["ms"] < 200 for r in results)
        assert tb.neighbour(VIP) in (tb.mac("n1"), tb.mac("n2"))


@pytest.mark.skipif(not os.path.exists(keepalived_mode.KEEPALIVED), reason="keepalived is not installed")
def test_keepalived_mode_fails_over_and_preempts_back():
    with Testbed(nodes=3, bulwark=False) as tb:
        tb.start_responders(PORT)
        ka = Keepalived(tb, vip=f"{VIP}/24", advert_int=0.1, version=3).start()
        assert "vrrp_version 3" in ka.conf_text("n1") and "priority 99" in ka.conf_text("n2")
        tb.wait_holders(VIP, 1, timeout_s=15)
        assert wait_until(lambda: tb.holders(VIP) == ["n1"], 15, what="n1 (priority 100) master")
        assert wait_until(lambda: tb.connect("client", VIP, PORT) == "n1", 10)
        tb.kill("n1")
        # Frozen before its link went down: keepalived had no chance to drop
        # the VIP, which stays configured on the powered-off host.
        assert "n1" in tb.holders(VIP) and "n1" not in tb.holders(VIP, answering=True)
        assert wait_until(lambda: tb.connect("client", VIP, PORT, timeout_ms=100) == "n2", 10,
                          what="the VIP on n2", on_timeout=lambda: ka.log("n2")[-2000:])
        tb.boot("n1")  # keepalived starts again and, preempting, takes the VIP back
        assert wait_until(lambda: tb.connect("client", VIP, PORT, timeout_ms=100) == "n1", 15,
                          what="the VIP back on n1")
        assert wait_until(lambda: tb.holders(VIP) == ["n1"], 10)
        ka.stop()
        assert all(not ka.pids(n) for n in tb.nodes)
        assert tb.holders(VIP) == []  # a clean stop releases the VIP


SINGLETON = "86400.375"  # the singleton's `sleep` argument; no other test uses it

RESOURCES = f"""\
resources:
  - name: volume
    agent: exec
    command: [/bin/sleep, "{SINGLETON}"]
    singleton: true
    monitor: {{interval_ms: 300}}
"""


@pytest.mark.skipif(not have_bulwark(), reason="no bulwark binaries (make build)")
def test_bulwark_cluster_survives_power_loss_and_fences_through_the_testbed():
    with Testbed(nodes=3, fencing=True) as tb:
        assert tb.coordinator() in tb.nodes
        assert tb.daemon_pids("n1")
        # Power loss of the coordinator: another takes over; the node boots
        # and rejoins.
        first = tb.coordinator()
        tb.kill(first)
        assert tb.wait_coordinator(30, exclude=(first,)) != first
        tb.boot(first)

        def all_online():
            s = tb.status(first)
            return s["quorate"] and all(n["online"] for n in s["nodes"])
        wait_until(all_online, 60, what=f"{first} to rejoin", on_timeout=tb.log_tails)
        assert tb.coordinator() in tb.nodes

        # A paused host holding a singleton is fenced through fence_testbed
        # (run by the coordinator's bulwarkd in its own namespace) before
        # the singleton runs anywhere else.
        path = tb.dir / "resources.yaml"
        path.write_text(textwrap.dedent(RESOURCES))
        tb.cli("apply", path)
        holder = wait_until(lambda: len(h := tb.find(SINGLETON)) == 1 and next(iter(h)), 30,
                            what="the singleton to start", on_timeout=tb.log_tails)
        tb.pause(holder)
        moved = wait_until(lambda: (h := tb.find(SINGLETON)) and holder not in h and h, 30,
                           what="the singleton to move", on_timeout=tb.log_tails)
        assert len(moved) == 1
        assert tb.pids(holder) == [] and not T.link_is_up(tb.netns(holder))
        logs = "".join(Path(tb._services[n]["bulwarkd"]["log"]).read_text(errors="replace")
                       for n in tb.nodes if n != holder)
        assert f"{holder} is fenced" in logs
        tb.boot(holder)
        wait_until(lambda: tb.status(holder)["quorate"], 60, what=f"{holder} to rejoin",
                   on_timeout=tb.log_tails)
        assert list(tb.find(SINGLETON)) == list(moved)
