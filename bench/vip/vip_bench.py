#!/usr/bin/python3
"""VIP failover of Bulwark against keepalived (issue 5), on the
network-namespace testbed (tests/netns), in one run on one machine.

Systems (three hosts each, the VIP 192.0.2.100/24 on eth0):
  bulwark         `bulwark init` defaults (heartbeat 50 ms, lease 300 ms),
                  fencing by the testbed's fence agent, one `vip` resource
  bulwark-fast    `bulwark init --profile fast` (heartbeat 20 ms, lease
                  120 ms, etcd heartbeat 20 ms and election 150 ms)
  keepalived-1    Debian's keepalived, VRRPv2, advert_int 1 (its default)
  keepalived-0.1  keepalived with vrrp_version 3, advert_int 0.1

Faults, each applied to the VIP's holder: kill (power loss), link_down (its
eth0 down) and partition (the holder alone on one side, the other hosts on
the other; the client reaches both sides).

One trial: wait until the system is stable (exactly one host holds the VIP
and answers for it, the same at the start and the end of one second; for
Bulwark every node online and the coordinator's placement not on hold; for
keepalived, which preempts, the highest-priority host n1 holding it), start
the client loop (a fresh TCP connection to the VIP every 10 ms from the
client namespace) and the holder sampler (which hosts have the VIP on eth0,
every 10 ms, over netlink); 0.5 s later apply the fault; hold it until 1 s
after the VIP answered from another host (a partition at most 5 s after it
began; a trial without an answer within 15 s is a failure); heal (boot,
link up, heal the partition, and boot a host that Bulwark fenced); wait
until stable again (at most 90 s, else the system's remaining trials are
not run); stop the loop and the sampler.

Per system and fault kind: time until the VIP answers again, from the
fault to the end of the first connection answered by another host (median,
worst); time with two holders, from the sampler's timestamps: samples in
which more than one host with its link up had the VIP (total over all trials,
and the worst trial); the whole trial counts, heal included. Also the
longest time without an answer after the heal (a system can lose the VIP
again when the faulted host returns).

The binaries are copied to a private directory first, so that a build
running beside the benchmark cannot swap them mid-run.

Usage (root; see bench/vip/README.md):
  vip_bench.py --bin build/bin [--trials 20] [--kinds kill,link_down,partition]
               [--systems bulwark,bulwark-fast,keepalived-1,keepalived-0.1]
               [--json FILE]
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NETNS = REPO / "tests" / "netns"
sys.path.insert(0, str(NETNS))

import testbed as T  # noqa: E402
from keepalived_mode import KEEPALIVED  # noqa: E402
from testbed import Keepalived, Testbed  # noqa: E402

VIP = "192.0.2.100"
PORT = 7000
NODES = 3
KINDS = ("kill", "link_down", "partition")

# Bulwark's default profile passes nothing to `bulwark init`: what is
# measured is its defaults; the fast one is `bulwark init --profile fast`
# (the run prints the values the cluster's config has).
SYSTEMS = {
    "bulwark": {"kind": "bulwark", "profile": None},
    "bulwark-fast": {"kind": "bulwark", "profile": "fast"},
    "keepalived-1": {"kind": "keepalived", "advert_int": 1, "version": 2},
    "keepalived-0.1": {"kind": "keepalived", "advert_int": 0.1, "version": 3},
}

# Targets (issue 5), on kill and link_down; zero time with two holders in
# every trial of every kind for both Bulwark profiles.
TARGETS_MS = {"bulwark": {"median": 500, "worst": 1000},
              "bulwark-fast": {"median": 250, "worst": 500}}
TARGET_KINDS = ("kill", "link_down")

RESOURCES = f"""\
    resources:
      - name: vip
        agent: vip
        params: {{address: {VIP}, prefix: "24", interface: eth0}}
        monitor: {{interval_ms: 500}}
    """

LOOP_INTERVAL_MS = 10
SAMPLE_INTERVAL_MS = 10
PRE_FAULT_S = 0.5
LOOP_FIRST_ANSWER_BOUND_S = 5.0
RECOVERY_BOUND_S = 15.0
HOLD_AFTER_RECOVERY_S = 1.0
PARTITION_HOLD_MAX_S = 5.0
SETTLE_S = 1.0
STABLE_BOUND_S = 90.0
# The loop ends on its own after this long even if this process is killed
# without a chance to stop it; a trial is bounded well below it.
LOOP_DURATION_S = (PRE_FAULT_S + LOOP_FIRST_ANSWER_BOUND_S + RECOVERY_BOUND_S
                   + STABLE_BOUND_S + 2 * SETTLE_S + 30)
POLL_S = 0.01
CONNECT_CHECK_TIMEOUT_MS = 300
SAMPLE_GAP_WARN_MS = 50
LOG_LINES_ON_FAILURE = 40  # of every bulwarkd, kept in the JSON of a failed trial
TRIAL_ATTEMPTS_MAX = 3  # per planned trial, when a trial errs before its fault


class PreFault(Exception):
    """A trial went wrong before its fault (no stable holder to start from,
    a client loop that never answered): it is run again."""


class Unstable(Exception):
    """The system did not become stable (System.wait_stable) within
    STABLE_BOUND_S: the remaining trials of this system would measure
    something else, so they are not run."""


# --------------------------------------------------------------------------
# the systems under test


class System:
    """A testbed running one system, with its notion of "stable"."""

    def __init__(self, name, spec, bin_dir):
        self.name = name
        self.spec = spec
        self.bin_dir = bin_dir
        self.tb = None
        self.profile = {}
        self.unstable_why = None

    def answer(self):
        """The host that answers a fresh connection to the VIP, or None."""
        return self.tb.connect(T.CLIENT, VIP, PORT, timeout_ms=CONNECT_CHECK_TIMEOUT_MS)

    def holder_if_stable(self):
        """The VIP's single holder if the system looks stable, else None."""
        raise NotImplementedError

    def wait_stable(self):
        """Waits (bounded) until the same single holder answers at the start
        and at the end of SETTLE_S; returns it."""
        deadline = time.monotonic() + STABLE_BOUND_S
        last = None
        while time.monotonic() < deadline:
            try:
                h = self.holder_if_stable()
                if h and self.answer() == h:
                    time.sleep(SETTLE_S)
                    if self.holder_if_stable() == h and self.answer() == h:
                        return h
                last = (self.unstable_why or "") + f" holders {self.tb.holders(VIP)}"
            except (RuntimeError, ValueError, TimeoutError, subprocess.SubprocessError) as e:
                last = str(e).splitlines()[0] if str(e) else type(e).__name__
            time.sleep(0.1)
        raise Unstable(f"{self.name}: not stable within {STABLE_BOUND_S:.0f} s (last: {last})")

    def coordinator(self):
        return None

    def heal(self, kind, node):
        """Undoes `kind` on `node`; returns what was done."""
        tb = self.tb
        if kind == "kill":
            tb.boot(node)
            return "boot"
        if kind == "link_down":
            tb.link_up(node)
            return "link_up"
        tb.heal()
        return "heal"

    def restore(self):
        """After a trial that went wrong: every host powered on, linked and
        unpartitioned."""
        tb = self.tb
        tb.heal()
        for n in tb.nodes:
            if not tb.pids(n):
                tb.boot(n)
            elif not T.link_is_up(tb.netns(n)):
                tb.link_up(n)

    def down(self):
        if self.tb is not None:
            self.tb.down()


class BulwarkSystem(System):
    def up(self):
        self.tb = Testbed(nodes=NODES, bin_dir=self.bin_dir, fencing=True,
                          profile=self.spec["profile"])
        self.tb.up()
        self.tb.start_responders(PORT)
        path = self.tb.dir / "resources.yaml"
        path.write_text(textwrap.dedent(RESOURCES))
        self.tb.cli("apply", path)
        lease = self.tb.status().get("lease", {})
        self.profile = {"heartbeat_ms": lease.get("heartbeat_ms"),
                        "lease_ms": lease.get("lease_ms")}
        # etcd's timings, as `bulwark init` wrote them (status does not
        # report them).
        for line in Path(self.tb.config).read_text().splitlines():
            key, _, value = line.strip().partition(":")
            if key in ("etcd_heartbeat_ms", "etcd_election_ms"):
                self.profile[key] = int(value)

    def holder_if_stable(self):
        s = self.tb.status()
        nodes = s.get("nodes", [])
        if not s.get("quorate") or len(nodes) != NODES or not all(n.get("online") for n in nodes):
            self.unstable_why = "not every node online"
            return None
        # Placement on hold (a returning node that has not reported its
        # probe, say) is not a steady state: a fault now would measure the
        # hold, not the failover.
        c = s.get("coordinator")
        cs = s if s.get("node") == c else self.tb.status(c)
        waiting = (cs.get("role") or {}).get("waiting_for")
        if waiting:
            self.unstable_why = f"placement waits: {waiting}"
            return None
        self.unstable_why = None
        held = self.tb.holders(VIP)
        return held[0] if len(held) == 1 and held == self.tb.holders(VIP, answering=True) else None

    def coordinator(self):
        try:
            return self.tb.coordinator()
        except (RuntimeError, ValueError, subprocess.SubprocessError):
            return None

    def heal(self, kind, node):
        # Bulwark fences a holder it lost (the testbed's agent powers it
        # off: no process left, eth0 down), and the VIP moves only after
        # that. A fenced host is booted; bringing its link up alone would
        # give a dead host with the VIP still configured.
        tb = self.tb
        if kind == "partition":
            tb.heal()
            if not tb.pids(node):
                tb.boot(node)
                return "heal+boot (fenced)"
            return "heal"
        if kind == "link_down" and not tb.pids(node):
            tb.boot(node)
            return "boot (fenced)"
        return super().heal(kind, node)


class KeepalivedSystem(System):
    def up(self):
        self.tb = Testbed(nodes=NODES, bin_dir=self.bin_dir, bulwark=False)
        self.tb.up()
        self.tb.start_responders(PORT)
        self.ka = Keepalived(self.tb, vip=f"{VIP}/24", advert_int=self.spec["advert_int"],
                             version=self.spec["version"]).start()
        self.profile = {"vrrp_version": self.spec["version"],
                        "advert_int_s": self.spec["advert_int"]}

    def holder_if_stable(self):
        # keepalived preempts: with every host up, the highest priority
        # (n1) takes the VIP back. Until it has, the next fault would land
        # in the middle of that move.
        top = self.tb.nodes[0]
        if not all(self.ka.pids(n) for n in self.tb.nodes):
            return None
        held = self.tb.holders(VIP)
        return top if held == [top] and self.tb.holders(VIP, answering=True) == [top] else None


def make_system(name, bin_dir):
    spec = SYSTEMS[name]
    cls = BulwarkSystem if spec["kind"] == "bulwark" else KeepalivedSystem
    return cls(name, spec, bin_dir)


# --------------------------------------------------------------------------
# one trial


class LoopTail:
    """The client loop's JSON lines as they are written."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def new(self):
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def answered_at(rec):
    """When the client had the answer: the attempt's end."""
    return rec["t"] + rec["ms"] / 1000.0


def recovery(results, fault_t, old):
    """The first attempt answered by a host other than `old` that ended
    after the fault, or None."""
    for r in results:
        if r["node"] and r["node"] != old and answered_at(r) >= fault_t:
            return r
    return None


def heal_outage_ms(results, heal_t):
    """The longest time without an answer after the heal (until the trial
    ended): a system can lose the VIP again when the faulted host returns."""
    if heal_t is None:
        return None
    worst = 0.0
    start = None
    for r in results:
        if r["node"] is None:
            if start is None:
                start = r["t"]
            end = answered_at(r)
        else:
            end = answered_at(r)
            if start is not None and end > heal_t:
                worst = max(worst, end - max(start, heal_t))
            start = None
    if start is not None and end > heal_t:
        worst = max(worst, end - max(start, heal_t))
    return round(worst * 1000, 1)


def two_holder_windows(samples):
    """[(start_t, end_t, holders)] of runs of samples in which more than one
    host with its link up had the VIP; a run lasts until the next sample
    that shows otherwise (so its length is measured, not counted)."""
    windows = []
    start = None
    who = set()
    for i, (t, _held, answering) in enumerate(samples):
        if len(answering) > 1:
            if start is None:
                start, who = t, set()
            who |= set(answering)
        elif start is not None:
            windows.append((start, t, sorted(who)))
            start = None
    if start is not None:
        end = samples[-1][0] + SAMPLE_INTERVAL_MS / 1000.0
        windows.append((start, end, sorted(who)))
    return windows


def inject(system, kind, node, others):
    tb = system.tb
    if kind == "kill":
        tb.kill(node)
    elif kind == "link_down":
        tb.link_down(node)
    elif kind == "partition":
        tb.partition([[node], others])
    else:
        raise ValueError(f"unknown fault kind {kind}")
    return tb.events[-1][0]


def run_trial(system, kind, timeout_ms):
    """One trial; returns its record. Raises Unstable when the system does
    not settle afterwards."""
    tb = system.tb
    started = time.monotonic()
    holder = system.wait_stable()
    others = [n for n in tb.nodes if n != holder]
    rec = {"system": system.name, "kind": kind, "holder": holder,
           "coordinator": system.coordinator(), "recovery_ms": None, "failure": None}
    loop = tb.client_loop(VIP, PORT, LOOP_DURATION_S, interval_ms=LOOP_INTERVAL_MS,
                          timeout_ms=timeout_ms)
    tail = LoopTail(loop.out)
    sampler = tb.sample_holders(VIP, interval_ms=SAMPLE_INTERVAL_MS)
    fault_t = heal_t = None
    results, samples = [], []
    try:
        # The loop is a fresh process: its first answer shows it runs.
        deadline = time.monotonic() + LOOP_FIRST_ANSWER_BOUND_S
        while not any(r["node"] == holder for r in tail.new()):
            if time.monotonic() > deadline:
                raise PreFault(f"the client loop got no answer from {holder}")
            time.sleep(POLL_S)
        time.sleep(PRE_FAULT_S)
        if system.tb.holders(VIP, answering=True) != [holder]:
            raise PreFault(f"the holder changed from {holder} before the fault")
        fault_t = inject(system, kind, holder, others)
        hold_until = fault_t + RECOVERY_BOUND_S
        recovered_t = None
        while time.monotonic() < hold_until:
            if recovered_t is None:
                r = recovery(tail.new(), fault_t, holder)
                if r:
                    recovered_t = answered_at(r)
                    hold_until = recovered_t + HOLD_AFTER_RECOVERY_S
                    if kind == "partition":
                        hold_until = min(hold_until, fault_t + PARTITION_HOLD_MAX_S)
            time.sleep(POLL_S)
        heal_t = time.monotonic()
        rec["heal"] = system.heal(kind, holder)
        try:
            rec["holder_after"] = system.wait_stable()
        except Unstable as e:
            # The trial itself is measured; the system's remaining trials
            # are not run (run_system).
            rec["unstable"] = str(e)
        rec["stable_after_heal_ms"] = round((time.monotonic() - heal_t) * 1000)
    finally:
        samples = sampler.stop()
        results = loop.stop()
        rec["trial_s"] = round(time.monotonic() - started, 2)
        if fault_t is not None:
            summarize_trial(rec, results, samples, fault_t, heal_t, holder)
        if rec["recovery_ms"] is None and tb.bulwark:
            rec["logs"] = tb.log_tails(LOG_LINES_ON_FAILURE)
    return rec


def summarize_trial(rec, results, samples, fault_t, heal_t, holder):
    first = recovery(results, fault_t, holder)
    if first:
        rec["recovery_ms"] = round((answered_at(first) - fault_t) * 1000, 1)
        rec["new_holder"] = first["node"]
        after = [r for r in results if r["t"] > first["t"] and (heal_t is None or r["t"] < heal_t)]
        rec["failed_after_recovery"] = sum(1 for r in after if r["node"] is None)
    else:
        rec["failure"] = f"no answer from another host within {RECOVERY_BOUND_S:.0f} s"
    old = [r for r in results if r["node"] == holder and answered_at(r) >= fault_t
           and (heal_t is None or r["t"] < heal_t)]
    rec["old_holder_answered_until_ms"] = (
        round((answered_at(old[-1]) - fault_t) * 1000, 1) if old else None)
    # When another host had the VIP configured: what separates the
    # system's decision from the client's neighbour cache catching up.
    taken = next((t for t, held, _ in samples if t >= fault_t and any(h != holder for h in held)),
                 None)
    rec["vip_moved_ms"] = round((taken - fault_t) * 1000, 1) if taken is not None else None
    rec["fault_held_ms"] = round(((heal_t or fault_t) - fault_t) * 1000)
    rec["heal_outage_ms"] = heal_outage_ms(results, heal_t)
    rec["attempts"] = len(results)
    windows = two_holder_windows(samples)
    rec["two_holder_ms"] = round(sum(e - s for s, e, _ in windows) * 1000, 1)
    rec["two_holder_windows"] = [{"from_fault_ms": round((s - fault_t) * 1000, 1),
                                  "ms": round((e - s) * 1000, 1), "hosts": w}
                                 for s, e, w in windows]
    gaps = [b[0] - a[0] for a, b in zip(samples, samples[1:])]
    rec["samples"] = len(samples)
    rec["sample_gap_max_ms"] = round(max(gaps) * 1000, 1) if gaps else None


# --------------------------------------------------------------------------
# a whole system


def run_system(name, args, kinds, log, records, infos):
    """Brings the system up, runs args.trials trials of every kind
    (interleaved), tears it down. Appends every trial's record to `records`
    and the system's info to `infos` as it goes, so that an interrupted run
    still reports what it measured."""
    system = make_system(name, args.bin)
    info = {"system": name, "setup_s": None, "aborted": None}
    infos.append(info)
    t0 = time.monotonic()
    try:
        system.up()
        info["profile"] = system.profile
        info["setup_s"] = round(time.monotonic() - t0, 1)
        log(f"{name}: up in {info['setup_s']} s, {system.profile}, testbed {system.tb.tag}")
        for i in range(args.trials):
            for kind in kinds:
                rec = run_with_retries(system, kind, i + 1, args.timeout_ms, log)
                records.append(rec)
                if rec.get("unstable"):
                    raise Unstable(rec["unstable"])
    except Unstable as e:
        info["aborted"] = str(e)
        log(f"{name}: ABORTED: {e}")
        tails = system.tb.log_tails(10) if system.tb and system.tb.bulwark else ""
        if tails:
            log(tails)
    finally:
        system.down()
        info["elapsed_s"] = round(time.monotonic() - t0, 1)


def run_with_retries(system, kind, index, timeout_ms, log):
    """A trial, again (up to TRIAL_ATTEMPTS_MAX) if it went wrong before its
    fault; an error after the fault is that trial's result (a failure)."""
    for attempt in range(1, TRIAL_ATTEMPTS_MAX + 1):
        try:
            rec = run_trial(system, kind, timeout_ms)
        except PreFault as e:
            log(f"  {system.name} {kind} #{index}: before the fault: {e}; again")
            if attempt < TRIAL_ATTEMPTS_MAX:
                continue
            raise Unstable(f"{system.name}: {TRIAL_ATTEMPTS_MAX} trials in a row went wrong "
                           f"before their fault (last: {e})")
        except (RuntimeError, TimeoutError, OSError, ValueError,
                subprocess.SubprocessError) as e:
            text = str(e).splitlines()[0] if str(e) else type(e).__name__
            log(f"  {system.name} {kind} #{index}: error: {text}")
            rec = {"system": system.name, "kind": kind, "recovery_ms": None,
                   "failure": f"error: {text}"}
            try:
                system.restore()
            except (RuntimeError, OSError, subprocess.SubprocessError) as e2:
                raise Unstable(f"{system.name}: cannot restore the hosts: {e2}") from e2
        rec["trial"] = index
        log_trial(rec, log)
        return rec
    raise AssertionError("unreachable")


def log_trial(rec, log):
    rtt = f"{rec['recovery_ms']:.0f} ms" if rec["recovery_ms"] is not None else "FAILED"
    extra = f" ({rec['failure']})" if rec.get("failure") else ""
    two = rec.get("two_holder_ms")
    log(f"  {rec['system']:14} {rec['kind']:9} #{rec['trial']:<3} holder {rec.get('holder')}"
        f" -> {rec.get('new_holder')}: {rtt}{extra} (VIP moved at {rec.get('vip_moved_ms')} ms),"
        f" two holders {two} ms, {rec.get('heal')}, heal outage {rec.get('heal_outage_ms')} ms,"
        f" stable after {rec.get('stable_after_heal_ms')} ms,"
        f" trial {rec.get('trial_s')} s")


# --------------------------------------------------------------------------
# the report


def fmt(v):
    return "-" if v is None else f"{v:.0f}"


def summarize(records, systems, kinds):
    out = {}
    for s in systems:
        for k in kinds:
            rs = [r for r in records if r["system"] == s and r["kind"] == k]
            if not rs:
                continue
            ok = [r["recovery_ms"] for r in rs if r["recovery_ms"] is not None]
            two = [r.get("two_holder_ms") or 0.0 for r in rs]
            out[(s, k)] = {
                "trials": len(rs), "failures": len(rs) - len(ok),
                "median_ms": statistics.median(ok) if ok else None,
                "worst_ms": max(ok) if ok else None,
                "two_holder_total_ms": sum(two), "two_holder_worst_ms": max(two),
                "two_holder_trials": sum(1 for v in two if v > 0),
                "heal_outage_worst_ms": max((r.get("heal_outage_ms") or 0.0 for r in rs),
                                            default=None),
            }
    return out


def report(summary, systems, kinds, infos, print_):
    print_("| system | fault | trials | failures | recovery median ms | recovery worst ms "
           "| two holders total ms | two holders worst trial ms | trials with two "
           "| after heal: worst outage ms |")
    print_("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in systems:
        for k in kinds:
            v = summary.get((s, k))
            if v is None:
                continue
            print_(f"| {s} | {k} | {v['trials']} | {v['failures']} | {fmt(v['median_ms'])} "
                   f"| {fmt(v['worst_ms'])} | {fmt(v['two_holder_total_ms'])} "
                   f"| {fmt(v['two_holder_worst_ms'])} | {v['two_holder_trials']} "
                   f"| {fmt(v['heal_outage_worst_ms'])} |")
    for info in infos:
        if info.get("aborted"):
            print_(f"\n{info['system']} aborted: {info['aborted']}")

    pairs = [(ka, bw) for ka in systems if SYSTEMS[ka]["kind"] == "keepalived"
             for bw in systems if SYSTEMS[bw]["kind"] == "bulwark"]
    if pairs:
        print_("\nRecovery medians, keepalived / Bulwark:\n")
        print_("| fault | " + " | ".join(f"{ka} / {bw}" for ka, bw in pairs) + " |")
        print_("|---|" + "---:|" * len(pairs))
        for k in kinds:
            cells = []
            for ka, bw in pairs:
                a, b = summary.get((ka, k)), summary.get((bw, k))
                if a and b and a["median_ms"] is not None and b["median_ms"]:
                    cells.append(f"{a['median_ms'] / b['median_ms']:.1f}x")
                else:
                    cells.append("-")
            print_(f"| {k} | " + " | ".join(cells) + " |")

    verdicts = targets(summary, systems, kinds)
    if verdicts:
        print_("\nBulwark targets:\n")
        for line, ok in verdicts:
            print_(f"- {'PASS' if ok else 'FAIL'}: {line}")
    return all(ok for _, ok in verdicts)


def targets(summary, systems, kinds):
    out = []
    for s in systems:
        if s not in TARGETS_MS:
            continue
        t = TARGETS_MS[s]
        for k in kinds:
            v = summary.get((s, k))
            if v is None:
                continue
            if k in TARGET_KINDS:
                med, worst = v["median_ms"], v["worst_ms"]
                out.append((f"{s} {k}: median {fmt(med)} ms <= {t['median']} ms",
                            v["failures"] == 0 and med is not None and med <= t["median"]))
                out.append((f"{s} {k}: worst {fmt(worst)} ms <= {t['worst']} ms"
                            + (f", {v['failures']} failed trial(s)" if v["failures"] else ""),
                            v["failures"] == 0 and worst is not None and worst <= t["worst"]))
            out.append((f"{s} {k}: two holders {fmt(v['two_holder_total_ms'])} ms in "
                        f"{v['two_holder_trials']} of {v['trials']} trials (0 required)",
                        v["two_holder_total_ms"] == 0))
    return out


def loadavg():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def version_line(bin_dir, with_bulwark):
    """What ran: the tree's commit (+dirty when it has local changes), when
    bulwarkd was built, keepalived's version, the machine."""
    parts = []
    if with_bulwark:
        try:
            git = ["git", "-C", str(REPO)]
            rev = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
            dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=30).stdout.strip()
            if rev:
                parts.append(f"bulwark {rev}{'+dirty' if dirty else ''}")
        except (OSError, subprocess.SubprocessError):
            pass
        try:
            built = time.strftime("%Y-%m-%d %H:%M",
                                  time.localtime((bin_dir / "bulwarkd").stat().st_mtime))
            parts.append(f"bulwarkd built {built}")
        except OSError:
            pass
    try:
        ka = subprocess.run([KEEPALIVED, "--version"], capture_output=True, text=True,
                            timeout=10)
        first = (ka.stderr or ka.stdout).strip().splitlines()
        if first:
            parts.append(first[0])
    except (OSError, subprocess.SubprocessError):
        pass
    parts.append(f"{os.cpu_count()} CPUs, Linux {os.uname().release}")
    return "; ".join(parts)


# --------------------------------------------------------------------------
# the command line


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=REPO / "build" / "bin", type=Path,
                    help="directory with bulwark and bulwarkd (default build/bin)")
    ap.add_argument("--trials", type=int, default=20, help="trials per system and fault kind")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: " + ",".join(KINDS))
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help="comma-separated: " + ",".join(SYSTEMS))
    ap.add_argument("--timeout-ms", type=int, default=20,
                    help="the client's bound on one connection (default 20)")
    ap.add_argument("--json", type=Path, help="write every trial's record to this file")
    args = ap.parse_args(argv)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [k for k in args.kinds if k not in KINDS] + [s for s in args.systems if s not in SYSTEMS]
    if bad or not args.kinds or not args.systems:
        ap.error(f"unknown or missing kinds/systems: {bad}")
    if not 1 <= args.trials <= 1000:
        ap.error("--trials is between 1 and 1000")
    if not 1 <= args.timeout_ms <= 1000:
        ap.error("--timeout-ms is between 1 and 1000")
    args.bin = args.bin.resolve()
    return args


BINARIES = ("bulwark", "bulwarkd", "bulwark-proxy")
SNAPSHOT_ATTEMPTS_MAX = 5


def snapshot_binaries(src):
    """Copies the binaries to a private directory: a build running beside
    the benchmark must not swap them in the middle of a run (a rebuilt
    bulwarkd cannot be exec'd while the linker writes it). Returns the
    directory; the caller removes it."""
    dst = Path(tempfile.mkdtemp(prefix="bulwark-bench-vip-bin-"))
    try:
        for attempt in range(SNAPSHOT_ATTEMPTS_MAX):
            before = {b: (src / b).stat().st_mtime_ns for b in BINARIES if (src / b).exists()}
            for b in before:
                shutil.copy2(src / b, dst / b)
            after = {b: (src / b).stat().st_mtime_ns for b in BINARIES if (src / b).exists()}
            usable = all(subprocess.run([str(dst / b), "--help"], capture_output=True,
                                        timeout=30).returncode == 0
                         for b in ("bulwark", "bulwarkd"))
            if before == after and usable:
                return dst
            time.sleep(5)  # a build is writing them: let it finish
        raise RuntimeError(f"the binaries in {src} kept changing while copied")
    except BaseException:
        shutil.rmtree(dst, ignore_errors=True)
        raise


def preflight(args):
    if os.geteuid() != 0:
        return "needs root: it makes network namespaces (run it with sudo)"
    for tool in (T.IP, T.NFT):
        if not os.access(tool, os.X_OK):
            return f"needs {tool} (iproute2 / nftables)"
    if any(SYSTEMS[s]["kind"] == "bulwark" for s in args.systems):
        for b in ("bulwark", "bulwarkd"):
            if not os.access(args.bin / b, os.X_OK):
                return f"no {args.bin / b}: build first (make build) or pass --bin"
    if any(SYSTEMS[s]["kind"] == "keepalived" for s in args.systems):
        if not shutil.which(KEEPALIVED):
            return "needs keepalived (apt-get install keepalived)"
    return None


def main(argv=None):
    args = parse_args(argv)
    problem = preflight(args)
    if problem:
        print(f"vip_bench: {problem}", file=sys.stderr)
        return 2
    def terminated(signum, frame):
        raise KeyboardInterrupt
    # SIGTERM ends the run like Ctrl-C: the testbed tears down (its own
    # handler runs first, then this one), the snapshot is removed.
    signal.signal(signal.SIGTERM, terminated)
    out = []

    def print_(line=""):
        out.append(line)
        print(line, flush=True)

    def log(line):
        print(line, file=sys.stderr, flush=True)

    command = shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(argv)
    print_(f"$ {command}")
    with_bulwark = any(SYSTEMS[s]["kind"] == "bulwark" for s in args.systems)
    print_(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {version_line(args.bin, with_bulwark)}")
    load_before = loadavg()
    started = time.monotonic()
    records, infos = [], []
    interrupted = False
    snapshot = None
    try:
        if with_bulwark:
            snapshot = snapshot_binaries(args.bin)
            args.bin = snapshot
        for name in args.systems:
            run_system(name, args, args.kinds, log, records, infos)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: the testbed is torn down; the trials so far follow")
    finally:
        if snapshot:
            shutil.rmtree(snapshot, ignore_errors=True)
    elapsed = time.monotonic() - started
    load_after = loadavg()

    print_(f"trials: {args.trials} per system and fault; client connect every "
           f"{LOOP_INTERVAL_MS} ms, {args.timeout_ms} ms timeout; holders sampled every "
           f"{SAMPLE_INTERVAL_MS} ms")
    for info in infos:
        prof = ", ".join(f"{k} {v}" for k, v in (info.get("profile") or {}).items())
        print_(f"  {info['system']}: {prof}")
    print_()
    summary = summarize(records, args.systems, args.kinds)
    met = report(summary, args.systems, args.kinds, infos, print_)
    n = len(records)
    print_(f"\n{n} trials in {elapsed / 60:.1f} min"
           + (f" ({statistics.mean(r['trial_s'] for r in records if 'trial_s' in r):.1f} s "
              "per trial)" if any("trial_s" in r for r in records) else "")
           + (f"; load average {load_before:.1f} before, {load_after:.1f} after"
              if load_before is not None and load_after is not None else ""))
    cpus = os.cpu_count() or 1
    # Before the run only others work; after it the load includes the run's own.
    if (load_before or 0) > cpus / 2 or (load_after or 0) > cpus:
        print_("warning: other work kept the machine busy; the figures are less reliable")
    gaps = [r["sample_gap_max_ms"] for r in records if r.get("sample_gap_max_ms")]
    if gaps and max(gaps) > SAMPLE_GAP_WARN_MS:
        print_(f"warning: the holder sampler stalled for up to {max(gaps):.0f} ms: a shorter "
               "two-holder window could have been missed")
    if interrupted:
        print_("warning: interrupted; these are partial results")
    if args.json:
        doc = {"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "trials_per_kind": args.trials, "timeout_ms": args.timeout_ms,
               "systems": infos, "summary": [dict(system=s, kind=k, **v)
                                             for (s, k), v in summary.items()],
               "trials": records, "output": out}
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"raw results: {args.json}", file=sys.stderr)
    if interrupted:
        return 130
    return 0 if met and not any(i.get("aborted") for i in infos) else 1


if __name__ == "__main__":
    sys.exit(main())
