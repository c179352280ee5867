#!/usr/bin/python3
"""The network-namespace testbed (DESIGN.md, "Testbeds"): N hosts and one
client on a bridge of their own, addresses in 192.0.2.0/24 only, a Bulwark
cluster (or keepalived) running on the hosts, faults by power loss, process
signals, link state and nftables drops, and measurement helpers for tests and
benchmarks. See README.md beside this file.

Everything a run makes carries its tag (`bwt` + 5 hex digits): namespaces
TAG-n1..TAG-nN and TAG-client, bridge TAG-br, veth host ends TAG-n1..TAG-c,
temp dir /tmp/bulwark-testbed-TAG, and BULWARK_TESTBED=TAG in the
environment of every process it starts. Nothing else in the root namespace
changes: no address, route or nftables rule is added there. Teardown runs on
normal exit, on exceptions, on SIGINT/SIGTERM and at interpreter exit.

Python 3.11 standard library; shells out to `ip` and `nft` only.
"""

import atexit
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PROBE = str(HERE / "probe.py")
FENCE_AGENT = str(HERE / "fence_testbed")
if str(HERE) not in sys.path:  # the modules below live beside this file
    sys.path.insert(0, str(HERE))

from keepalived_mode import Keepalived  # noqa: E402,F401  (testbed.Keepalived)
from probe import ClientLoop, HolderSampler  # noqa: E402
from hostops import (  # noqa: E402,F401  (re-exported: testbed.run, testbed.leftovers...)
    IP, NFT, TAG_PREFIX, TAG_RE, MARKER, STATE_FILE, KILL_WAIT_S, COMMAND_TIMEOUT_S, _cmdline,
    _disable_ipv6, _kill, _proc_stat, _process_start_ticks, addresses_of, all_tags, boot_services,
    cleanup, kill_netns, leftovers, link_is_up, link_set, list_links, list_netns, load_state,
    marked_pids, netns_pids, claim_tag, owner_alive, power_off, prepare_boot, run, service_env,
    session_pids, signal_netns, spawn_detached, state_dir, state_dirs,
)


SUBNET = "192.0.2"
PREFIX_LEN = 24
CLIENT = "client"
CLIENT_ADDRESS = "192.0.2.200"
NODES_MAX = 16  # addresses .1-.16; keeps every interface name within 15 chars
PART_TABLE = "bwt_partition"


# --------------------------------------------------------------------------
# teardown on signals and at exit

_live = []
_saved_handlers = {}
_pending_signals = []
_atexit_done = False


def _down_all():
    for tb in list(_live):
        try:
            tb.down()
        except Exception as e:  # keep tearing down the others
            print(f"testbed {tb.tag}: teardown failed: {e}", file=sys.stderr)


def _reraise(sig, previous, frame):
    if callable(previous):
        previous(sig, frame)  # e.g. Python's SIGINT handler: KeyboardInterrupt
    elif previous == signal.SIG_IGN:
        return
    else:
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)


def _on_signal(sig, frame):
    previous = _saved_handlers.get(sig, signal.SIG_DFL)
    if any(tb._downing for tb in _live):
        # A teardown is in progress in this very thread: let it finish, it
        # re-delivers the signal at its end.
        _pending_signals.append((sig, previous))
        return
    _down_all()
    _reraise(sig, previous, frame)


def _register(tb):
    global _atexit_done
    _live.append(tb)
    if not _atexit_done:
        atexit.register(_down_all)
        _atexit_done = True
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if sig not in _saved_handlers:
                _saved_handlers[sig] = signal.getsignal(sig)
                signal.signal(sig, _on_signal)


def _unregister(tb):
    if tb in _live:
        _live.remove(tb)
    if _live or threading.current_thread() is not threading.main_thread():
        return
    for sig, previous in list(_saved_handlers.items()):
        if signal.getsignal(sig) is _on_signal:
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        del _saved_handlers[sig]
    if _pending_signals:
        sig, previous = _pending_signals.pop(0)
        _pending_signals.clear()
        _reraise(sig, previous, None)


# --------------------------------------------------------------------------
# the testbed


class Testbed:
    """N hosts (n1..nN at 192.0.2.1..N) and a client (192.0.2.200) on a
    bridge of their own; with bulwark=True a cluster on the hosts. Use as a
    context manager, or call up() and down()."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, nodes=3, bin_dir=None, fencing=True, heartbeat_ms=None, lease_ms=None,
                 bulwark=True, start_timeout_s=90, keep_dir=False, cluster_name=None,
                 profile=None):
        if not 1 <= nodes <= NODES_MAX:
            raise ValueError(f"nodes must be between 1 and {NODES_MAX}")
        self.tag = None
        self.nodes = [f"n{i}" for i in range(1, nodes + 1)]
        self.bin_dir = Path(bin_dir or os.environ.get("BULWARK_BIN_DIR", REPO / "build" / "bin"))
        self.fencing = fencing
        self.heartbeat_ms = heartbeat_ms
        self.lease_ms = lease_ms
        self.profile = profile  # `bulwark init --profile`
        self.bulwark = bulwark
        self.start_timeout_s = start_timeout_s
        self.keep_dir = keep_dir or os.environ.get("BULWARK_TESTBED_KEEP") == "1"
        self.cluster_name = cluster_name
        self.dir = None
        self.config = None
        self.events = []  # (monotonic s, what, node): when each fault was applied
        self.state = "new"
        self._downing = False
        self._procs = []  # [(Popen, ns key)] started by this object
        self._services = {}  # node -> {service name: {"argv", "log"}}
        self._blocked = {}  # destination ns key -> {source ns key}; see block()
        self._block_arp = {}
        self._macs = {}
        self._readers = {}
        self._samplers = []
        self._owner = True
        self._owner_pid = None
        self._owner_start_ticks = None

    # --- names ------------------------------------------------------------
    @property
    def bridge(self):
        return f"{self.tag}-br"

    @property
    def client_ns(self):
        return f"{self.tag}-{CLIENT}"

    def hosts(self):
        """Every namespace key: the nodes and the client."""
        return self.nodes + [CLIENT]

    def netns(self, key):
        """Namespace name of a node ("n1"), of "client", or a full name."""
        if self.tag and key.startswith(self.tag + "-"):
            return key
        if key != CLIENT and key not in self.nodes:
            raise KeyError(f"no host {key!r} in this testbed (hosts: {self.hosts()})")
        return f"{self.tag}-{key}"

    def veth(self, key):
        return f"{self.tag}-{'c' if key == CLIENT else key}"

    def address(self, key):
        if key == CLIENT:
            return CLIENT_ADDRESS
        return f"{SUBNET}.{self.nodes.index(key) + 1}"

    def node_of_address(self, address):
        for key in self.hosts():
            if self.address(key) == address:
                return key
        return None

    def endpoint(self, node):
        return f"https://{self.address(node)}:7400"

    def bin(self, name):
        return str(self.bin_dir / name)

    def run_dir(self, node):
        """The host's /run: emptied by boot(), for pid files."""
        return self.dir / "run" / node

    def _event(self, what, node=None):
        self.events.append((time.monotonic(), what, node))

    # --- lifecycle --------------------------------------------------------
    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()
        return False

    def up(self):
        if self.state != "new":
            raise RuntimeError(f"testbed is {self.state}; a Testbed is brought up once")
        self.state = "starting"
        _register(self)
        try:
            if self.bulwark:
                for name in ("bulwark", "bulwarkd"):
                    if not os.access(self.bin(name), os.X_OK):
                        raise FileNotFoundError(f"no {self.bin(name)} (make build, or set "
                                                "BULWARK_BIN_DIR or bin_dir=)")
            self.tag, self.dir = claim_tag()
            self._owner_pid = os.getpid()
            self._owner_start_ticks = _process_start_ticks(os.getpid())
            self._write_state()  # first, so `cleanup --stale` finds a half-made run
            self._make_network()
            if self.bulwark:
                self._init_cluster()
                for node in self.nodes:
                    self.start_daemon(node)
                self.wait_coordinator(timeout_s=self.start_timeout_s)
            self.state = "up"
        except BaseException:
            self.down()
            raise
        return self

    def _make_network(self):
        br = self.bridge
        # No STP (ports forward at once), no multicast snooping (VRRP and
        # IPv6 multicast are flooded). The root namespace must stay out of
        # the testbed's L2: no address, no IPv6 on the bridge, and no ARP, as
        # the root kernel would otherwise answer ARP on the bridge for its
        # own addresses (arp_ignore=0 answers for any local address on any
        # interface), and a machine whose own network is 192.0.2.0/24 would
        # then hijack a testbed host's address.
        run([IP, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0",
             "mcast_snooping", "0"])
        run([IP, "link", "set", br, "addrgenmode", "none", "arp", "off"])
        _disable_ipv6(br)
        run([IP, "link", "set", br, "up"])
        for key in self.hosts():
            ns, veth = self.netns(key), self.veth(key)
            run([IP, "netns", "add", ns])
            run([IP, "-n", ns, "link", "set", "lo", "up"])
            run([IP, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            run([IP, "link", "set", veth, "addrgenmode", "none", "arp", "off"])
            _disable_ipv6(veth)
            run([IP, "link", "set", veth, "master", br])
            run([IP, "link", "set", veth, "up"])
            run([IP, "-n", ns, "addr", "add", f"{self.address(key)}/{PREFIX_LEN}", "dev", "eth0"])
            run([IP, "-n", ns, "link", "set", "eth0", "up"])
            self._macs[key] = json.loads(run([IP, "-j", "-n", ns, "link", "show", "dev",
                                              "eth0"]).stdout)[0]["address"]

    def _init_cluster(self):
        cdir = self.dir / "cluster"
        argv = [self.bin("bulwark"), "init", "--dir", cdir,
                "--cluster", self.cluster_name or f"tb-{self.tag}"]
        for node in self.nodes:
            argv += ["--node", f"{node}={self.address(node)}"]
        if self.profile is not None:
            argv += ["--profile", self.profile]
        if self.heartbeat_ms is not None:
            argv += ["--heartbeat-ms", self.heartbeat_ms]
        if self.lease_ms is not None:
            argv += ["--lease-ms", self.lease_ms]
        run(argv, timeout=60)
        self.config = cdir / "bulwark.yaml"
        if self.fencing:
            # JSON is YAML: the agent's path and the state dir quoted safely.
            with open(self.config, "a") as f:
                f.write("fencing:\n"
                        f"  command: [{json.dumps(FENCE_AGENT)}]\n"
                        f"  params: {{testbed: {json.dumps(str(self.dir))}}}\n"
                        "  action: \"off\"\n"
                        "  timeout_ms: 10000\n")
        endpoints = ",".join(self.endpoint(n) for n in self.nodes)
        (cdir / "env").write_text(f"export BULWARK_ENDPOINT={endpoints}\n"
                                  f"export BULWARK_TOKEN_FILE={cdir / 'admin.token'}\n"
                                  f"export BULWARK_CA_FILE={cdir / 'tls' / 'ca.crt'}\n")
        for node in self.nodes:
            log = self.dir / "cluster" / "data" / node / "bulwarkd.out"
            self._services.setdefault(node, {})["bulwarkd"] = {
                "argv": [IP, "netns", "exec", self.netns(node), self.bin("bulwarkd"),
                         "--config", str(self.config), "--node", node],
                "log": str(log)}
        self._write_state()

    def _write_state(self):
        state = {
            "tag": self.tag, "dir": str(self.dir), "owner_pid": self._owner_pid,
            "owner_start_ticks": self._owner_start_ticks,
            "bridge": self.bridge, "nodes": self.nodes,
            "netns": {k: self.netns(k) for k in self.hosts()},
            "addresses": {k: self.address(k) for k in self.hosts()},
            "macs": self._macs, "bin_dir": str(self.bin_dir),
            "run_dirs": {n: str(self.run_dir(n)) for n in self.nodes},
            "config": str(self.config) if self.config else None,
            "services": self._services,
        }
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.dir / STATE_FILE)
        # The same hosts for fence_testbed's sh part, which reads no JSON.
        tmp = self.dir / "hosts.txt.tmp"
        tmp.write_text("".join(f"{n} {self.netns(n)}\n" for n in self.nodes))
        tmp.replace(self.dir / "hosts.txt")

    def down(self):
        """Tears everything down; idempotent, safe from a signal handler.
        Returns what was left (should be [])."""
        if self.state in ("new", "down") or self._downing or not self._owner:
            return []
        self._downing = True
        left = []
        try:
            for s in list(self._samplers):
                s.stop()
            for r in self._readers.values():
                r.close()
            self._readers.clear()
            if self.tag:
                # Every process of the run's sessions while their leaders
                # are unreaped children of ours (their PIDs cannot have been
                # reused), then everything left in the namespaces.
                for p, _ in self._procs:
                    if p.returncode is None:
                        for pid in session_pids(p.pid):
                            _kill(pid, signal.SIGKILL)
                for key in self.hosts():
                    kill_netns(self.netns(key))
                for p, _ in self._procs:
                    try:
                        p.kill()
                        p.wait(timeout=KILL_WAIT_S)
                    except (OSError, subprocess.TimeoutExpired):
                        pass
                if self.keep_dir and self.dir:
                    kept = self.dir.with_name(f"bulwark-testbed-kept-{self.tag}")
                    self.dir.rename(kept)
                    print(f"testbed {self.tag}: kept {kept}", file=sys.stderr)
                left = cleanup(self.tag)
                if left:
                    print(f"testbed {self.tag}: left behind: {left}", file=sys.stderr)
        finally:
            self.state = "down"
            self._downing = False
            _unregister(self)
        return left

    # --- processes --------------------------------------------------------
    def _reap(self):
        self._procs = [(p, k) for p, k in self._procs if p.poll() is None]

    def spawn(self, key, argv, log, service=None):
        """Starts `argv` in host `key`'s namespace, in its own session, output
        to `log`. With `service`, the host starts it again on boot()."""
        self._reap()
        full = [IP, "netns", "exec", self.netns(key), *map(str, argv)]
        if service:
            self._services.setdefault(key, {})[service] = {"argv": full, "log": str(log)}
            self._write_state()
        p = spawn_detached(full, log, service_env(self.tag))
        self._procs.append((p, key))
        return p

    def _spawn_service(self, key, name):
        svc = self._services[key][name]
        p = spawn_detached(svc["argv"], svc["log"], service_env(self.tag))
        if self._owner:  # an attached command line leaves it to the owner
            self._procs.append((p, key))
        return p

    def ns_exec(self, key, argv, check=False, timeout=COMMAND_TIMEOUT_S, input=None, env=None):
        """Runs a command in host `key`'s namespace to completion."""
        full_env = service_env(self.tag)
        if env:
            full_env.update(env)
        return run([IP, "netns", "exec", self.netns(key), *argv], check=check, timeout=timeout,
                   input=input, env=full_env)

    def pids(self, key):
        return netns_pids(self.netns(key))

    def addresses(self, key):
        return addresses_of(self.netns(key))

    def mac(self, key):
        return self._macs[key]

    def node_of_mac(self, mac):
        for key, m in self._macs.items():
            if m == mac:
                return key
        return None

    # --- the cluster ------------------------------------------------------
    def env(self):
        out = {}
        env_file = self.dir / "cluster" / "env"
        for line in env_file.read_text().splitlines():
            if line.startswith("export "):
                k, v = line[len("export "):].split("=", 1)
                out[k] = v
        return out

    def cli(self, *args, node=None, check=True, timeout=30, ns=CLIENT):
        """Runs the `bulwark` CLI in the client namespace (or `ns`), against
        every node or only `node`."""
        env = self.env()
        if node:
            env["BULWARK_ENDPOINT"] = self.endpoint(node)
        proc = self.ns_exec(ns, [self.bin("bulwark"), *map(str, args)], timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise RuntimeError(f"bulwark {' '.join(map(str, args))} exited {proc.returncode}:\n"
                               f"{proc.stdout}\n{proc.stderr}")
        return proc

    def status(self, node=None):
        return json.loads(self.cli("status", "--json", node=node, timeout=10).stdout)

    def coordinator(self, node=None):
        """The coordinator as `node` (or any node) sees it, if that view is
        quorate and the coordinator online in it; else None."""
        s = self.status(node)
        if not s.get("quorate") or s.get("coordinator") is None:
            return None
        online = {n["name"]: n.get("online") for n in s.get("nodes", [])}
        return s["coordinator"] if online.get(s["coordinator"]) else None

    def wait_coordinator(self, timeout_s=60, node=None, exclude=()):
        """Waits (bounded) until there is a coordinator not in `exclude`."""
        def ready():
            c = self.coordinator(node)
            return c if c and c not in exclude else None
        return wait_until(ready, timeout_s, what=f"a coordinator (testbed {self.tag})",
                          on_timeout=self.log_tails)

    def start_daemon(self, node):
        """Starts the node's bulwarkd (again)."""
        if self.daemon_pids(node):
            raise RuntimeError(f"bulwarkd of {node} is running already")
        Path(self._services[node]["bulwarkd"]["log"]).parent.mkdir(parents=True, exist_ok=True)
        self._event("start_daemon", node)
        return self._spawn_service(node, "bulwarkd")

    def daemon_pids(self, node):
        want = f"--node\0{node}\0".encode()
        out = []
        for pid in self.pids(node):
            cmd = b"\0".join(_cmdline(pid)) + b"\0"
            if b"bulwarkd" in cmd.split(b"\0")[0] and want in cmd:
                out.append(pid)
        return out

    def find(self, token):
        """{node: [pid, ...]} of the hosts' live processes whose command line
        contains `token` (what the kernel says runs, not what the cluster
        reports)."""
        out = {}
        for node in self.nodes:
            for pid in self.pids(node):
                if token.encode() in b" ".join(_cmdline(pid)):
                    out.setdefault(node, []).append(pid)
        return out

    def log_tails(self, lines=20):
        out = []
        for node in self.nodes:
            svc = self._services.get(node, {}).get("bulwarkd")
            if svc and Path(svc["log"]).exists():
                tail = Path(svc["log"]).read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {node}: {svc['log']}\n" + "\n".join(tail))
        return "\n".join(out)

    # --- faults -----------------------------------------------------------
    def kill(self, node):
        """Power loss: every process of the host frozen, eth0 down, then all
        SIGKILLed (hostops.power_off). The host's addresses (a VIP too) stay
        configured until boot(). The event's time is when eth0 was down."""
        silent_at = power_off(self.netns(node))
        if silent_at is None:
            raise RuntimeError(f"{node} still has processes after SIGKILL: {self.pids(node)}")
        self.events.append((silent_at, "kill", node))
        self._reap()

    def boot(self, node):
        """Power on: only the node's own address, link up, its services
        (bulwarkd, responders, keepalived) started again."""
        if self.pids(node):
            raise RuntimeError(f"{node} is running (processes {self.pids(node)}); "
                               "boot() follows kill()")
        self._event("boot", node)
        prepare_boot(self.netns(node), self.address(node), self.run_dir(node))
        for name in sorted(self._services.get(node, {})):
            self._spawn_service(node, name)

    def kill_daemon(self, node):
        """SIGKILLs bulwarkd alone; its children live or die on their own."""
        self._event("kill_daemon", node)
        deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < deadline:
            pids = self.daemon_pids(node)
            if not pids:
                break
            for pid in pids:
                _kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        self._reap()
        if self.daemon_pids(node):
            raise RuntimeError(f"bulwarkd of {node} survived SIGKILL")

    def pause(self, node):
        """SIGSTOP to every process of the host (its kernel still answers
        ARP and completes TCP handshakes into listen queues)."""
        self._event("pause", node)
        signal_netns(self.netns(node), signal.SIGSTOP)

    def resume(self, node):
        self._event("resume", node)
        signal_netns(self.netns(node), signal.SIGCONT)

    def link_down(self, node):
        self._event("link_down", node)
        link_set(self.netns(node), False)

    def link_up(self, node):
        self._event("link_up", node)
        link_set(self.netns(node), True)

    def partition(self, groups, one_way=False, arp=False):
        """Replaces any current partition. `groups` is a list of lists of
        host keys, or a string "n1|n2,n3". Two-way: no IP packet passes
        between hosts of different groups. one_way (two groups A, B): A's
        packets to B are dropped, B's to A pass. Hosts in no group (the client
        unless named) reach everyone. ARP passes unless arp=True."""
        if isinstance(groups, str):
            groups = [[h.strip() for h in g.split(",") if h.strip()] for g in groups.split("|")]
        for g in groups:
            for h in g:
                self.netns(h)  # validates
        self.heal(event=False)
        self._event(f"partition{' one-way' if one_way else ''} "
                    + "|".join(",".join(g) for g in groups))
        if one_way:
            if len(groups) != 2:
                raise ValueError("a one-way partition has two groups: from A to B")
            self.block(groups[0], groups[1], arp=arp, event=False)
            return
        for i, a in enumerate(groups):
            for j, b in enumerate(groups):
                if i != j:
                    self.block(a, b, arp=arp, event=False)

    def block(self, sources, destinations, arp=False, event=True):
        """Adds a drop of every IP packet from `sources` arriving at
        `destinations` (at each destination's eth0 ingress, by source MAC and
        by source address). Adds to what is blocked already."""
        if event:
            self._event(f"block {','.join(sources)}>{','.join(destinations)}")
        for d in destinations:
            self._blocked.setdefault(d, set()).update(s for s in sources if s != d)
            self._block_arp[d] = self._block_arp.get(d, False) or arp
            self._apply_blocks(d)

    def _apply_blocks(self, dst):
        srcs = sorted(self._blocked.get(dst, ()))
        if not srcs:
            return
        macs = ", ".join(self._macs[s] for s in srcs)
        addrs = ", ".join(self.address(s) for s in srcs)
        types = "ip, ip6, arp" if self._block_arp.get(dst) else "ip, ip6"
        # Whole tables replaced in one transaction: add (so that delete
        # cannot fail), delete, define.
        script = (f"table netdev {PART_TABLE}\ndelete table netdev {PART_TABLE}\n"
                  f"table ip {PART_TABLE}\ndelete table ip {PART_TABLE}\n"
                  f"table netdev {PART_TABLE} {{\n"
                  f"  chain ingress {{\n"
                  f"    type filter hook ingress device \"eth0\" priority -500; policy accept;\n"
                  f"    ether saddr {{ {macs} }} ether type {{ {types} }} drop\n"
                  f"  }}\n}}\n"
                  f"table ip {PART_TABLE} {{\n"
                  f"  chain prerouting {{\n"
                  f"    type filter hook prerouting priority -300; policy accept;\n"
                  f"    ip saddr {{ {addrs} }} drop\n"
                  f"  }}\n}}\n")
        self.ns_exec(dst, [NFT, "-f", "-"], check=True, input=script)

    def heal(self, event=True):
        """Removes every partition rule from every host."""
        if event:
            self._event("heal")
        script = (f"table netdev {PART_TABLE}\ndelete table netdev {PART_TABLE}\n"
                  f"table ip {PART_TABLE}\ndelete table ip {PART_TABLE}\n")
        for key in self.hosts():
            self.ns_exec(key, [NFT, "-f", "-"], check=True, input=script)
        self._blocked.clear()
        self._block_arp.clear()

    def rules(self, key):
        """The host's nftables ruleset (text)."""
        return self.ns_exec(key, [NFT, "list", "ruleset"], check=True).stdout

    # --- probes -----------------------------------------------------------
    def start_responders(self, port=7000, hosts=None):
        """A TCP responder (answers its host's name) and UDP logger on
        0.0.0.0:port in each host; restarted on boot(). Waits until each
        answers from the client."""
        hosts = hosts or self.nodes
        for key in hosts:
            udp_log = self.dir / "probe" / f"{key}.udp.jsonl"
            udp_log.parent.mkdir(parents=True, exist_ok=True)
            self.spawn(key, [PYTHON, PROBE, "respond", "--port", port, "--name", key,
                             "--udp-log", udp_log],
                       self.dir / "probe" / f"{key}.responder.out", service=f"responder-{port}")
        for key in hosts:
            src = CLIENT if key != CLIENT else self.nodes[0]
            wait_until(lambda: self.connect(src, key, port, timeout_ms=500) == key, 10,
                       what=f"responder on {key}:{port}")

    def connect(self, src, dst, port, timeout_ms=300):
        """One TCP connection from host `src` to `dst` (host key or IP):
        the name the responder answered, or None."""
        target = dst if dst[0].isdigit() else self.address(dst)
        proc = self.ns_exec(src, [PYTHON, PROBE, "connect", "--target", f"{target}:{port}",
                                  "--timeout-ms", timeout_ms], timeout=10 + timeout_ms / 1000)
        try:
            return json.loads(proc.stdout.strip().splitlines()[-1])["node"]
        except (ValueError, IndexError, KeyError):
            return None

    def udp_send(self, src, dst, port, data):
        target = dst if dst[0].isdigit() else self.address(dst)
        self.ns_exec(src, [PYTHON, PROBE, "udp", "--target", f"{target}:{port}", "--data", data])

    def udp_received(self, key, data=None):
        """Datagrams host `key`'s responder got: [{"t", "from", "data"}]."""
        path = self.dir / "probe" / f"{key}.udp.jsonl"
        if not path.exists():
            return []
        out = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [d for d in out if data is None or d["data"] == data]

    def reaches_udp(self, src, dst, port, timeout_s=1.0):
        """True if a datagram from `src` arrives at `dst`'s responder."""
        tag = f"{src}>{dst}:{secrets.token_hex(4)}"
        deadline = time.monotonic() + timeout_s
        self.udp_send(src, dst, port, tag)
        while time.monotonic() < deadline:
            if self.udp_received(dst, tag):
                return True
            time.sleep(0.02)
        return False

    def client_loop(self, target, port, duration_s, interval_ms=10, timeout_ms=50):
        """Starts the client loop (probe.py loop) in the client namespace:
        a fresh connection to target:port every interval_ms. Returns a
        ClientLoop; .wait() gives [{"t", "node", "ms", "error"}]."""
        out = self.dir / "probe" / f"loop-{len(self._procs)}-{time.monotonic_ns()}.jsonl"
        p = self.spawn(CLIENT, [PYTHON, PROBE, "loop", "--target", f"{target}:{port}",
                                "--duration-s", duration_s, "--interval-ms", interval_ms,
                                "--timeout-ms", timeout_ms], out)
        return ClientLoop(p, out, duration_s)

    def reader(self, key):
        if key not in self._readers:
            from nladdr import AddressReader
            self._readers[key] = AddressReader(f"/run/netns/{self.netns(key)}")
        return self._readers[key]

    def holders(self, vip, answering=False):
        """Hosts that have `vip` (with or without /len) on eth0 right now,
        read over netlink. A powered-off host keeps it configured; with
        answering=True only hosts whose eth0 is up count (a paused host does:
        its kernel still answers ARP for the VIP)."""
        ip = vip.split("/")[0]
        return [n for n in self.nodes if ip in self.reader(n).addresses()
                and (not answering or self.reader(n).link_up())]

    def sample_holders(self, vip, interval_ms=10):
        """Starts a HolderSampler thread; stop() it to get the samples."""
        s = HolderSampler(self, vip, interval_ms)
        self._samplers.append(s)
        s.start()
        return s

    def wait_holders(self, vip, count=1, timeout_s=30, exclude=()):
        def ok():
            h = [n for n in self.holders(vip) if n not in exclude]
            return h if len(h) == count else None
        return wait_until(ok, timeout_s, interval_s=0.02, what=f"{count} holder(s) of {vip}")

    def neighbour(self, ip, key=CLIENT):
        """The MAC that host `key` (the client) has in its neighbour cache
        for `ip`, or None."""
        ip = ip.split("/")[0]
        proc = self.ns_exec(key, [IP, "-j", "neigh", "show"], check=True)
        for e in json.loads(proc.stdout or "[]"):
            if e.get("dst") == ip and e.get("lladdr"):
                return e["lladdr"]
        return None


def wait_until(predicate, timeout_s=20.0, interval_s=0.05, what="condition", on_timeout=None):
    """Polls `predicate` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as e:  # the cluster may be in the middle of a change
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval_s)
    extra = ("\n" + on_timeout()) if on_timeout else ""
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r}){extra}")


# --------------------------------------------------------------------------
# command line


def _attach(tag):
    """A Testbed object for a run made by another process, for faults from
    the command line (it does not own the run: its down() does nothing)."""
    dirs = state_dirs(tag)
    if not dirs:
        raise SystemExit(f"no state dir for testbed {tag} in {tempfile.gettempdir()}")
    st = load_state(dirs[0])
    tb = Testbed(nodes=len(st["nodes"]), bin_dir=st["bin_dir"], bulwark=bool(st["config"]))
    tb.tag, tb.dir, tb.state, tb._owner = st["tag"], Path(st["dir"]), "attached", False
    tb.config = st["config"]
    tb._macs = st["macs"]
    tb._services = st["services"]
    tb._owner_pid, tb._owner_start_ticks = st["owner_pid"], st["owner_start_ticks"]
    return tb


def _cmd_up(args):
    tb = Testbed(nodes=args.nodes, bin_dir=args.bin_dir, fencing=not args.no_fencing,
                 heartbeat_ms=args.heartbeat_ms, lease_ms=args.lease_ms, profile=args.profile,
                 bulwark=not args.no_bulwark and not args.keepalived)
    with tb:
        if args.responders:
            tb.start_responders(args.responders)
        if args.keepalived:
            Keepalived(tb, vip=args.vip, advert_int=args.advert_int,
                       version=args.vrrp_version).start()
        print(f"testbed {tb.tag} is up in {tb.dir}")
        for key in tb.hosts():
            print(f"  {key:7} {tb.address(key):12} ip netns exec {tb.netns(key)} ...")
        if tb.bulwark:
            print(f"  coordinator: {tb.coordinator()}")
            print(f"  CLI: ip netns exec {tb.client_ns} env $(sed 's/^export //' "
                  f"{tb.dir}/cluster/env | xargs) {tb.bin('bulwark')} status")
        print(f"  faults: {sys.argv[0]} do {tb.tag} kill n1 | boot n1 | partition 'n1|n2,n3' ...")
        print("Ctrl-C (or SIGTERM) tears it down.", flush=True)
        deadline = time.monotonic() + args.hold_s if args.hold_s else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    return 0


def _cmd_do(args):
    tb = _attach(args.tag)
    action = args.action.replace("-", "_")
    rest = args.args
    if action == "partition":
        tb.partition(rest[0], one_way="--one-way" in rest)
    elif action == "heal":
        tb.heal()
    elif action == "status":
        print(json.dumps(tb.status(rest[0] if rest else None), indent=2))
    elif action == "holders":
        print(" ".join(tb.holders(rest[0])))
    elif action in ("kill", "boot", "kill_daemon", "start_daemon", "pause", "resume",
                    "link_down", "link_up"):
        for node in rest:
            # What boot or start_daemon start outlives this process; the
            # run's owner ends it with the namespace.
            getattr(tb, action)(node)
    else:
        raise SystemExit(f"unknown action {args.action}")
    return 0


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Bulwark's network-namespace testbed")
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="bring a testbed up and hold it until Ctrl-C")
    u.add_argument("--nodes", type=int, default=3)
    u.add_argument("--bin-dir")
    u.add_argument("--no-fencing", action="store_true")
    u.add_argument("--no-bulwark", action="store_true")
    u.add_argument("--profile", choices=("default", "fast"), help="bulwark init --profile")
    u.add_argument("--heartbeat-ms", type=int)
    u.add_argument("--lease-ms", type=int)
    u.add_argument("--responders", type=int, metavar="PORT")
    u.add_argument("--keepalived", action="store_true", help="keepalived instead of bulwarkd")
    u.add_argument("--vip", default="192.0.2.100/24")
    u.add_argument("--advert-int", type=float, default=1.0)
    u.add_argument("--vrrp-version", type=int, default=2)
    u.add_argument("--hold-s", type=float, default=0, help="tear down after this long")
    d = sub.add_parser("do", help="apply a fault to a running testbed")
    d.add_argument("tag")
    d.add_argument("action", help="kill|boot|kill-daemon|start-daemon|pause|resume|link-down|"
                                  "link-up NODE...; partition GROUPS [--one-way]; heal; "
                                  "status [NODE]; holders VIP")
    d.add_argument("args", nargs=argparse.REMAINDER)
    lo = sub.add_parser("leftovers", help="list what runs left behind")
    lo.add_argument("tag", nargs="?")
    c = sub.add_parser("cleanup", help="remove a run by tag, or every run whose owner is gone")
    c.add_argument("tag", nargs="?")
    c.add_argument("--stale", action="store_true")
    args = p.parse_args(argv)
    if args.cmd == "up":
        return _cmd_up(args)
    if args.cmd == "do":
        return _cmd_do(args)
    if args.cmd == "leftovers":
        found = False
        for tag in [args.tag] if args.tag else all_tags():
            for item in leftovers(tag):
                print(f"{tag}: {item}")
                found = True
        return 1 if found else 0
    if args.cmd == "cleanup":
        if args.tag:
            tags = [args.tag]
        elif args.stale:
            tags = [t for t in all_tags() if not owner_alive(t)]
        else:
            raise SystemExit("cleanup needs a TAG or --stale")
        bad = 0
        for tag in tags:
            left = cleanup(tag)
            print(f"{tag}: {'removed' if not left else 'left ' + ', '.join(left)}")
            bad += bool(left)
        return 1 if bad else 0
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, KeyError, ValueError, TimeoutError, FileNotFoundError) as e:
        print(f"testbed: {e}", file=sys.stderr)
        sys.exit(1)
