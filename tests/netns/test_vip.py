"""The built-in `vip` resource on real hosts (issue 5): a 3-node Bulwark
cluster in network namespaces (testbed.py), a client on the same bridge, a
TCP responder on every host that answers with its node's name. The VIP
answers from exactly one host; after a power loss, a link loss, a pause or
a crashed daemon of its holder it answers from another, the client's
neighbour cache pointing at the new holder; a holder cut off from the
majority drops it; and at no sample do two hosts with their link up hold
it. Needs root; skipped otherwise.

Run: /usr/bin/python3 -m pytest -q tests/netns/test_vip.py
"""

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import testbed as T  # noqa: E402
from testbed import Testbed, wait_until  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the netns testbed needs root"),
    pytest.mark.skipif(not (os.path.exists(T.IP) and os.path.exists(T.NFT)),
                       reason="needs ip (iproute2) and nft (nftables)"),
]

PORT = 7000
VIP = "192.0.2.100"
RESOURCES = f"""\
    resources:
      - name: vip
        agent: vip
        params: {{address: {VIP}, prefix: "24", interface: eth0}}
        monitor: {{interval_ms: 500}}
    """


def vip_cluster(fencing=True):
    tb = Testbed(nodes=3, fencing=fencing)
    tb.up()
    tb.start_responders(PORT)
    path = tb.dir / "resources.yaml"
    path.write_text(textwrap.dedent(RESOURCES))
    tb.cli("apply", path)
    return tb


@pytest.fixture
def tb():
    t = vip_cluster()
    try:
        yield t
    finally:
        t.down()


@pytest.fixture
def tb_unfenced():
    t = vip_cluster(fencing=False)
    try:
        yield t
    finally:
        t.down()


def answer(tb):
    """The node that answers a fresh connection to the VIP, or None."""
    return tb.connect(T.CLIENT, VIP, PORT, timeout_ms=300)


def holder(tb, exclude=()):
    (h,) = tb.wait_holders(VIP, 1, timeout_s=30, exclude=exclude)
    wait_until(lambda: answer(tb) == h, 10, what=f"{h} to answer for the VIP",
               on_timeout=tb.log_tails)
    return h


def moves_away(tb, old, fault):
    """Applies `fault` to the holder `old` while sampling holders; returns
    the new holder once it answers, and the samples."""
    sampler = tb.sample_holders(VIP)
    fault(old)
    new = wait_until(lambda: (a := answer(tb)) not in (None, old) and a, 30,
                     what="another node to answer for the VIP", on_timeout=tb.log_tails)
    samples_ok = sampler.stop()
    return new, sampler.multi(), samples_ok


def test_the_vip_answers_from_exactly_one_node(tb):
    h = holder(tb)
    assert tb.holders(VIP) == [h]
    for _ in range(5):
        assert answer(tb) == h
    assert tb.neighbour(VIP) == tb.mac(h)
    listed = json.loads(tb.cli("resource", "list", "--json").stdout)["resources"]
    s = {r["name"]: r for r in listed}
    assert [i["node"] for i in s["vip"]["instances"] if i["state"] == "started"] == [h]


def test_power_loss_of_the_holder_moves_the_vip_and_the_neighbour_cache(tb):
    old = holder(tb)
    # The client's cache points at the holder; the entry must be older than
    # the kernel's locktime (1 s) for an announcement to replace it.
    assert tb.neighbour(VIP) == tb.mac(old)
    time.sleep(1.2)
    sampler = tb.sample_holders(VIP)
    tb.kill(old)
    new = tb.wait_holders(VIP, 1, timeout_s=30, exclude=(old,))[0]
    # Announced: the client's cache moves without the client asking.
    wait_until(lambda: tb.neighbour(VIP) == tb.mac(new), 5,
               what="the client's neighbour cache to point at the new holder")
    wait_until(lambda: answer(tb) == new, 10, what=f"{new} to answer")
    sampler.stop()
    assert sampler.multi() == []
    tb.boot(old)
    wait_until(lambda: tb.status(old)["quorate"], 60, what=f"{old} to rejoin",
               on_timeout=tb.log_tails)
    # The returning node does not pull the VIP back, and never holds it.
    time.sleep(2)
    assert tb.holders(VIP) == [new]


@pytest.mark.parametrize("fault", ["link_down", "pause", "kill_daemon"])
def test_a_lost_holder_is_replaced_and_never_answers_alongside(tb, fault):
    old = holder(tb)
    new, multi, _ = moves_away(tb, old, getattr(tb, fault))
    assert new != old
    assert multi == [], f"two hosts held the VIP with their link up: {multi[:5]}"
    if fault in ("pause", "kill_daemon"):
        # Its kernel would still answer for the VIP: it was fenced (powered
        # off: nothing runs, its link is down) before the VIP moved.
        assert tb.pids(old) == [] and not T.link_is_up(tb.netns(old))


def test_a_holder_cut_off_from_the_majority_drops_the_vip_and_it_stays_moved(tb_unfenced):
    tb = tb_unfenced
    old = holder(tb)
    others = [n for n in tb.nodes if n != old]
    sampler = tb.sample_holders(VIP)
    tb.partition([[old], others])
    # Without fencing, the holder itself must let go (its lease is lost),
    # and only then may the majority take the VIP.
    wait_until(lambda: old not in tb.holders(VIP), 5, what=f"{old} to drop the VIP",
               on_timeout=tb.log_tails)
    new = tb.wait_holders(VIP, 1, timeout_s=30, exclude=(old,))[0]
    wait_until(lambda: answer(tb) == new, 10, what=f"{new} to answer")
    tb.heal()
    wait_until(lambda: tb.status(old)["quorate"], 60, what=f"{old} to rejoin",
               on_timeout=tb.log_tails)
    time.sleep(2)
    sampler.stop()
    assert sampler.multi() == [], sampler.multi()[:5]
    assert tb.holders(VIP) == [new]  # healing does not move it back


def test_a_one_way_partition_never_yields_two_holders(tb_unfenced):
    tb = tb_unfenced
    old = holder(tb)
    others = [n for n in tb.nodes if n != old]
    sampler = tb.sample_holders(VIP)
    # The holder hears the others but they do not hear it.
    tb.partition([others, [old]], one_way=True)
    time.sleep(3)
    tb.heal()
    time.sleep(2)
    sampler.stop()
    assert sampler.multi() == [], sampler.multi()[:5]
    assert len(tb.holders(VIP)) == 1
