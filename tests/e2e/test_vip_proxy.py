"""The cluster's own load balancer on a local cluster (issue 5): a clone of
small HTTP services, a loopback VIP, and a `proxy` clone whose frontend
listens on the VIP and whose servers are wherever the service runs. Only
the VIP's holder serves it; the servers follow the service (standby takes a
node's server out, online puts it back) with no proxy restart; when the
holder's node dies, the VIP and its frontend move."""

import json
import socket
import threading
import time
import urllib.request

from conftest import wait_until
from resource_support import apply, instances, processes

PORT = 18700  # the service on each node's address
VIP_PORT = 18780

# Answers every GET with its node's name, every POST the same after 0.3 s
# (a request that is in flight when the service stops: SIGTERM ends it at
# once, and a POST is never retried by the proxy).
SERVICE = (
    "import http.server,sys,time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def answer(self):\n"
    "        body = sys.argv[3].encode()\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def do_GET(self): self.answer()\n"
    "    def do_POST(self):\n"
    "        self.rfile.read(int(self.headers.get('Content-Length', 0)))\n"
    "        time.sleep(0.3)\n"
    "        self.answer()\n"
    "    def log_message(self, *a): pass\n"
    "http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()\n")


def vip_of(cluster):
    """A loopback VIP in the cluster's own 127.0.K.0/24 (unique per cluster)."""
    k = cluster.node("n1")["address"].split(".")[2]
    return f"127.0.{k}.100"


def resources_yaml(vip):
    return f"""\
        resources:
          - name: web
            agent: exec
            command: [/usr/bin/python3, -c, {json.dumps(SERVICE)},
                      "${{BULWARK_NODE_ADDRESS}}", "{PORT}", "${{BULWARK_NODE}}"]
            clone: {{}}
            monitor: {{interval_ms: 500, tcp: "${{BULWARK_NODE_ADDRESS}}:{PORT}"}}
          - name: vip
            agent: vip
            params: {{address: {vip}}}
            monitor: {{interval_ms: 500}}
          - name: lb
            agent: proxy
            clone: {{}}
            proxy:
              global: {{workers: 1}}
              frontends: [{{name: api, listen: "{vip}:{VIP_PORT}", backend: web}}]
              backends:
                - name: web
                  servers_from: {{resource: web, port: {PORT}}}
                  check: {{type: http, path: /, interval_ms: 300, rise: 1, fall: 1}}
        """


def get(vip):
    """The node that served a GET through the VIP, or None."""
    try:
        with urllib.request.urlopen(f"http://{vip}:{VIP_PORT}/", timeout=1) as r:
            return r.read().decode()
    except (OSError, ValueError):
        return None


def served_by(vip, n=30):
    return {get(vip) for _ in range(n)} - {None}


def listening(address, port):
    """Whether something accepts on address:port right now."""
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_the_vip_and_its_proxy_serve_every_node_and_move_together(cluster):
    vip = vip_of(cluster)
    apply(cluster, resources_yaml(vip))
    wait_until(lambda: len(instances(cluster, "web")) == 3 and len(instances(cluster, "lb")) == 3
               and len(instances(cluster, "vip")) == 1, what="web, lb and the vip to run")
    (holder,) = instances(cluster, "vip")
    # Every node's service answers through the one VIP.
    wait_until(lambda: served_by(vip) == {"n1", "n2", "n3"}, timeout_s=20,
               what="requests through the VIP to reach every node")
    # Three proxies run (a clone), but only the holder listens on the VIP.
    assert len(processes(cluster, "bulwark-proxy")) == 3
    conf = {n: (cluster.dir / "data" / n / "run" / "lb.proxy.yaml").read_text()
            for n in ["n1", "n2", "n3"]}
    assert all((f"{vip}:{VIP_PORT}" in text) == (n == holder) for n, text in conf.items())

    # Standby takes a node's service out of every proxy, with no restart.
    pids = sorted(processes(cluster, "bulwark-proxy"))
    other = next(n for n in ["n1", "n2", "n3"] if n != holder)
    cluster.cli("node", "standby", other)
    wait_until(lambda: served_by(vip) == {"n1", "n2", "n3"} - {other}, timeout_s=20,
               what=f"{other}'s server to leave the proxies")
    cluster.cli("node", "online", other)
    wait_until(lambda: served_by(vip) == {"n1", "n2", "n3"}, timeout_s=20,
               what=f"{other}'s server to come back")
    remaining = [p for p in pids if p in processes(cluster, "bulwark-proxy")]
    assert len(remaining) >= 2  # the proxies that stayed were reloaded, not restarted

    # The holder's node dies: the VIP and its frontend move to another node.
    cluster.kill(holder)
    wait_until(lambda: (i := instances(cluster, "vip", node=next(
        n for n in ["n1", "n2", "n3"] if n != holder))) and i != [holder],
        timeout_s=20, what="the vip to move")
    survivors = {"n1", "n2", "n3"} - {holder}
    wait_until(lambda: served_by(vip) == survivors, timeout_s=20,
               what="the VIP to serve again from the new holder")
    assert listening(vip, VIP_PORT)
    cluster.start(holder)
    wait_until(lambda: served_by(vip) == {"n1", "n2", "n3"}, timeout_s=30,
               what="the returning node's service to rejoin the proxies")
    time.sleep(1)
    assert holder not in instances(cluster, "vip", node=next(iter(survivors)))


def post(vip):
    """The node that answered a slow POST through the VIP, or None."""
    request = urllib.request.Request(f"http://{vip}:{VIP_PORT}/", data=b"x", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.read().decode()
    except (OSError, ValueError):
        return None


def test_a_planned_stop_drains_its_server_first_and_loses_no_request(cluster):
    vip = vip_of(cluster)
    apply(cluster, resources_yaml(vip))
    wait_until(lambda: served_by(vip) == {"n1", "n2", "n3"}, timeout_s=30,
               what="requests through the VIP to reach every node")
    (holder,) = instances(cluster, "vip")
    other = next(n for n in ["n1", "n2", "n3"] if n != holder)
    answers = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            answers.append(post(vip))

    clients = [threading.Thread(target=client) for _ in range(6)]
    for c in clients:
        c.start()
    time.sleep(1)
    # Standby stops `other`'s service while slow POSTs are in flight to it:
    # every proxy first stops sending it requests, waits for those in
    # flight, and only then lets it stop.
    cluster.cli("node", "standby", other)
    # Once drained it stops: well before notify_timeout_ms (20 s), which
    # every drain used to wait for.
    wait_until(lambda: other not in instances(cluster, "web"), timeout_s=10,
               what=f"{other}'s service to stop")
    time.sleep(1)
    stop.set()
    for c in clients:
        c.join(10)
    assert answers and None not in answers, f"{answers.count(None)} of {len(answers)} failed"
    assert other in answers  # it did serve until it was drained

    # A server that crashes has nothing to drain: it leaves the proxies and
    # restarts at once (it used to wait notify_timeout_ms + 3 s for a drain
    # acknowledgement that a dead server never gets).
    cluster.cli("node", "online", other)
    wait_until(lambda: len(instances(cluster, "web")) == 3, what="web on every node again")
    victim = next(p for p, n in processes(cluster, str(PORT)).items() if n == other)
    import os
    import signal
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: other in processes(cluster, str(PORT)).values(), timeout_s=20,
               what=f"{other}'s service to restart")
    assert time.monotonic() - t0 < 5, f"restarted after {time.monotonic() - t0:.1f} s"


def test_a_bad_proxy_section_is_refused_with_its_position(cluster):
    proc = apply(cluster, """\
        resources:
          - name: web
            agent: exec
            command: [/bin/sleep, "1000"]
            clone: {}
          - name: lb
            agent: proxy
            clone: {}
            proxy:
              frontends: [{name: api, listen: "127.0.0.1:80", backend: nope}]
              backends: [{name: web, servers_from: {resource: web, port: 80}}]
        """, check=False)
    assert proc.returncode == 2
    assert "resources.yaml:10:64: no backend named 'nope'" in proc.stderr, proc.stderr
    proc = apply(cluster, """\
        resources:
          - name: lb
            agent: proxy
            proxy:
              frontends: []
              backends: [{name: web, servers_from: {resource: ghost, port: 80}}]
        """, check=False)
    assert proc.returncode == 2
    assert "no resource named 'ghost'" in proc.stderr, proc.stderr
