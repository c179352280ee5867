"""Operations on the testbed's hosts by namespace name, shared by the
Testbed object (testbed.py), its command line and the fence agent
(fence_testbed): running commands, finding and signalling a host's
processes, power off and boot, the state file, and finding and removing what
a run (known by its tag) left behind. Standard library; shells out to `ip`.
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


def _find_tool(name):
    # bulwarkd passes its environment to the fence agent; PATH may lack sbin.
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return shutil.which(name) or name


IP = _find_tool("ip")
NFT = _find_tool("nft")

TAG_PREFIX = "bwt"
TAG_RE = re.compile(r"^bwt[0-9a-f]{5}$")
MARKER = "BULWARK_TESTBED"
STATE_FILE = "testbed.json"
KILL_WAIT_S = 5.0
COMMAND_TIMEOUT_S = 30


# --------------------------------------------------------------------------
# commands and processes


def run(argv, check=True, timeout=COMMAND_TIMEOUT_S, input=None, env=None):
    """Runs a command to completion (bounded), output captured as text."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, input=input, env=env, stdin=None if input is not None
                          else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def netns_pids(netns):
    """PIDs of the live processes in namespace `netns` (`ip netns pids`);
    empty when the namespace is gone. Zombies are not listed."""
    proc = run([IP, "netns", "pids", netns], check=False, timeout=10)
    if proc.returncode != 0:
        return []
    me = os.getpid()
    return [int(p) for p in proc.stdout.split() if p.isdigit() and int(p) != me]


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def signal_netns(netns, sig, passes=3):
    """Sends `sig` to every process in the namespace; repeats while new
    PIDs show up (a process may fork between listing and signalling)."""
    seen = set()
    for _ in range(passes):
        pids = set(netns_pids(netns))
        if pids <= seen:
            break
        for pid in pids - seen:
            _kill(pid, sig)
        seen |= pids
    return sorted(seen)


def kill_netns(netns, timeout_s=KILL_WAIT_S):
    """SIGKILLs every process in the namespace until none is left (bounded);
    True if none is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = netns_pids(netns)
        if not pids:
            return True
        for pid in pids:
            _kill(pid, signal.SIGKILL)  # stopped processes die too
        time.sleep(0.01)
    return not netns_pids(netns)


def _proc_stat(pid):
    """(state, session id) of a process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2:].split()
    return rest[0], int(rest[3])


def session_pids(sid):
    """Live processes of session `sid`."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st and st[1] == sid and st[0] not in "ZX":
                out.append(int(entry))
    return out


def marked_pids(tag):
    """Live processes whose environment carries BULWARK_TESTBED=tag."""
    want = f"{MARKER}={tag}".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        st = _proc_stat(int(entry))
        if st and st[0] not in "ZX" and want in env:
            out.append(int(entry))
    return out


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _process_start_ticks(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[19])


def spawn_detached(argv, log_path, env):
    """Starts a long-running process in its own session, output appended to
    `log_path`; returns its Popen."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


# --------------------------------------------------------------------------
# host state shared by the Testbed object, the CLI and the fence agent


def load_state(directory):
    return json.loads((Path(directory) / STATE_FILE).read_text())


def link_set(netns, up):
    run([IP, "-n", netns, "link", "set", "eth0", "up" if up else "down"], timeout=10)


def link_is_up(netns):
    proc = run([IP, "-j", "-n", netns, "link", "show", "dev", "eth0"], check=False, timeout=10)
    if proc.returncode != 0:
        return False
    return "UP" in json.loads(proc.stdout)[0].get("flags", [])


def addresses_of(netns):
    """["ADDR/PREFIX", ...] on eth0 (IPv4 and global IPv6)."""
    proc = run([IP, "-j", "-n", netns, "addr", "show", "dev", "eth0"], check=False, timeout=10)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    out = []
    for link in json.loads(proc.stdout):
        for a in link.get("addr_info", []):
            if a.get("scope") == "link":
                continue
            out.append(f"{a['local']}/{a['prefixlen']}")
    return out


def power_off(netns, timeout_s=KILL_WAIT_S):
    """Power loss. Every process of the host is frozen first (SIGSTOP), so
    that none reacts to what follows (keepalived, seeing eth0 go down, would
    otherwise drop its VIP, which a machine losing power never does); then
    eth0 goes down (from that moment the host answers nothing, not even ARP
    or a TCP reset from its kernel); then everything is SIGKILLed. Addresses
    stay configured, as on a machine that is off. Returns the monotonic time
    at which eth0 was down, once no process of the host runs; None if one
    survived SIGKILL."""
    signal_netns(netns, signal.SIGSTOP)
    link_set(netns, False)
    silent_at = time.monotonic()
    return silent_at if kill_netns(netns, timeout_s) else None


def prepare_boot(netns, own_address, run_dir=None):
    """A booting machine comes up with its configured address only: any
    other address (a VIP it held when it lost power) is removed before the
    link comes up, so it never answers for one. Its /run is empty again:
    `run_dir` (where its services keep pid files) is emptied, or a stale pid
    file naming a not yet reaped zombie makes keepalived refuse to start
    ("daemon is already running")."""
    if run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    for a in addresses_of(netns):
        if a.split("/")[0] != own_address:
            run([IP, "-n", netns, "addr", "del", a, "dev", "eth0"], check=False, timeout=10)
    link_set(netns, True)


def boot_services(state, node, spawn):
    """Starts the node's services (bulwarkd, responders, keepalived) from the
    state file's records, through `spawn(argv, log)`."""
    for name, svc in sorted(state.get("services", {}).get(node, {}).items()):
        spawn(svc["argv"], svc["log"])


def _disable_ipv6(ifname):
    """IPv6 off on a root-namespace interface of the testbed (a setting of
    that interface only, gone with it)."""
    path = Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6")
    if path.exists():
        path.write_text("1\n")


def service_env(tag):
    env = dict(os.environ)
    env[MARKER] = tag
    return env


# --------------------------------------------------------------------------
# leftovers and cleanup by tag


def list_netns():
    proc = run([IP, "-j", "netns", "list"], check=False, timeout=10)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    return [n["name"] for n in json.loads(proc.stdout)]


def list_links():
    proc = run([IP, "-j", "link", "show"], check=False, timeout=10)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    return [link["ifname"] for link in json.loads(proc.stdout)]


def state_dir(tag):
    """A run's temp dir; creating it claims the tag."""
    return Path(tempfile.gettempdir()) / f"bulwark-testbed-{tag}"


def state_dirs(tag=None):
    if tag:
        return [state_dir(tag)] if state_dir(tag).exists() else []
    return sorted(Path(tempfile.gettempdir()).glob("bulwark-testbed-bwt*"))


def leftovers(tag):
    """Everything of run `tag` that still exists: ["netns NAME", "link NAME",
    "pid N", "dir PATH"]. Empty after a clean teardown."""
    assert TAG_RE.match(tag), f"not a testbed tag: {tag!r}"
    prefix = tag + "-"
    out = [f"netns {n}" for n in list_netns() if n.startswith(prefix)]
    out += [f"link {n}" for n in list_links() if n.startswith(prefix)]
    out += [f"pid {p}" for p in marked_pids(tag)]
    out += [f"dir {d}" for d in state_dirs(tag)]
    return out


def all_tags():
    """Tags of every testbed run that left something on this machine."""
    tags = set()
    for name in list_netns() + list_links():
        head = name.split("-", 1)[0]
        if TAG_RE.match(head) and "-" in name:
            tags.add(head)
    for d in state_dirs():
        head = d.name[len("bulwark-testbed-"):]
        if TAG_RE.match(head):
            tags.add(head)
    return sorted(tags)


def owner_alive(tag):
    """True if the process that made run `tag` still runs (per its state
    file); False when it is gone or the state file is missing (unless the
    dir is a few seconds old: a run being made writes it right away)."""
    for d in state_dirs(tag):
        try:
            st = load_state(d)
        except (OSError, ValueError):
            try:
                return time.time() - d.stat().st_mtime < 10
            except OSError:
                continue
        pid = st.get("owner_pid")
        if pid and _process_start_ticks(pid) == st.get("owner_start_ticks"):
            return True
    return False


def cleanup(tag):
    """Removes everything of run `tag`: kills the processes in its
    namespaces and those carrying its marker, deletes its veths, namespaces,
    bridge and temp dir. Returns what was left afterwards (should be [])."""
    assert TAG_RE.match(tag), f"not a testbed tag: {tag!r}"
    prefix = tag + "-"
    spaces = [n for n in list_netns() if n.startswith(prefix)]
    for ns in spaces:
        kill_netns(ns)
    for pid in marked_pids(tag):
        _kill(pid, signal.SIGKILL)
    links = [n for n in list_links() if n.startswith(prefix)]
    # veths first (deleting one end deletes its peer inside the namespace at
    # once; a namespace's own teardown in the kernel is asynchronous), then
    # namespaces, then the bridge.
    for link in sorted(links, key=lambda n: n.endswith("-br")):
        run([IP, "link", "del", link], check=False, timeout=10)
    for ns in spaces:
        run([IP, "netns", "del", ns], check=False, timeout=10)
    for d in state_dirs(tag):
        shutil.rmtree(d, ignore_errors=True)
    return leftovers(tag)


def claim_tag():
    """A fresh tag and its temp dir. Creating the dir (atomic) claims the
    tag, so two runs starting at once never share one."""
    for _ in range(100):
        tag = TAG_PREFIX + secrets.token_hex(3)[:5]
        if leftovers(tag):
            continue
        try:
            state_dir(tag).mkdir(mode=0o700)
        except FileExistsError:
            continue
        return tag, state_dir(tag)
    raise RuntimeError("no free testbed tag")
