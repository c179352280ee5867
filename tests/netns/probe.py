#!/usr/bin/python3
"""Small measuring programs that the testbed runs inside its network
namespaces (`ip netns exec NS /usr/bin/python3 probe.py MODE ...`), and the
parsing of what they print. Standard library only.

Modes:
  respond  --port P --name N [--udp-log FILE]
           TCP on 0.0.0.0:P: writes "N\\n" to every connection and closes it.
           UDP on 0.0.0.0:P: appends {"t", "from", "data"} to FILE for every
           datagram (a one-way drop shows as a datagram that never arrives,
           which a request/answer probe cannot tell from a two-way drop).
  connect  --target IP:PORT [--timeout-ms T]
           One TCP connection; prints {"node": N or null, "ms": ..., "error": ...}.
  udp      --target IP:PORT --data TEXT
           Sends one datagram.
  loop     --target IP:PORT --duration-s D [--interval-ms 10] [--timeout-ms 50]
           A fresh TCP connection every interval, each bounded by the timeout;
           one JSON line per attempt: {"t": monotonic seconds, "node": N or
           null, "ms": duration, "error": text or null}. CLOCK_MONOTONIC is
           the same in every network namespace, so these times compare with
           the testbed's fault times and holder samples.

Imported by testbed.py for parse_lines(), outages() and the ClientLoop and
HolderSampler handles.
"""

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time


def split_target(target):
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def try_connect(host, port, timeout_s):
    """One TCP connection to host:port; returns (node, error). The node is
    what the responder wrote, None when nothing answered in time."""
    deadline = time.monotonic() + timeout_s
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        try:
            s.connect((host, port))
            data = b""
            while len(data) < 256:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, "timeout reading"
                s.settimeout(left)
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            return None, "timeout"
        except OSError as e:
            return None, e.strerror or str(e)
    name = data.decode(errors="replace").strip()
    return (name or None), (None if name else "empty answer")


def respond(args):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", args.port))
    tcp.listen(128)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", args.port))
    udp.setblocking(False)
    log = open(args.udp_log, "a", buffering=1) if args.udp_log else None
    answer = (args.name + "\n").encode()
    sel = selectors.DefaultSelector()
    sel.register(tcp, selectors.EVENT_READ, "tcp")
    sel.register(udp, selectors.EVENT_READ, "udp")
    print(f"responder {args.name} listening on {args.port}", flush=True)
    while True:
        for key, _ in sel.select():
            if key.data == "tcp":
                while True:
                    try:
                        conn, _ = tcp.accept()
                    except BlockingIOError:
                        break
                    try:
                        conn.setblocking(True)
                        conn.settimeout(0.5)
                        conn.sendall(answer)
                    except OSError:
                        pass
                    finally:
                        conn.close()
            else:
                while True:
                    try:
                        data, peer = udp.recvfrom(2048)
                    except BlockingIOError:
                        break
                    if log:
                        log.write(json.dumps({"t": time.monotonic(), "from": peer[0],
                                              "data": data.decode(errors="replace")}) + "\n")


def connect(args):
    host, port = split_target(args.target)
    start = time.monotonic()
    node, error = try_connect(host, port, args.timeout_ms / 1000.0)
    print(json.dumps({"node": node, "ms": round((time.monotonic() - start) * 1000, 3),
                      "error": error}), flush=True)
    return 0 if node else 1


def udp(args):
    host, port = split_target(args.target)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(args.data.encode(), (host, port))
        except OSError as e:  # e.g. no route: the datagram is lost either way
            print(json.dumps({"error": e.strerror or str(e)}), flush=True)
            return 1
    return 0


def loop(args):
    host, port = split_target(args.target)
    interval_s = args.interval_ms / 1000.0
    timeout_s = args.timeout_ms / 1000.0
    start = time.monotonic()
    end = start + args.duration_s
    # Attempts are due on a fixed grid; an attempt that overran skips the
    # slots it covered rather than bunching up, so the rate stays bounded.
    slot = 0
    out = sys.stdout
    attempts_max = int(args.duration_s / interval_s) + 2
    for _ in range(attempts_max):
        now = time.monotonic()
        if now >= end:
            break
        due = start + slot * interval_s
        if due > now:
            time.sleep(due - now)
        t = time.monotonic()
        node, error = try_connect(host, port, timeout_s)
        done = time.monotonic()
        out.write(json.dumps({"t": round(t, 6), "node": node,
                              "ms": round((done - t) * 1000, 3), "error": error}) + "\n")
        out.flush()
        slot = max(slot + 1, int((done - start) / interval_s) + 1)
    return 0


def parse_lines(text):
    """The JSON lines a `loop` printed (a torn last line is ignored)."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def outages(samples):
    """Runs of failed attempts in a `loop` result: [(start_t, end_t, count)],
    end_t being the time of the first answered attempt after the run (or of
    the last failed one if none followed)."""
    runs = []
    start = None
    count = 0
    for s in samples:
        if s["node"] is None:
            if start is None:
                start = s["t"]
            count += 1
        elif start is not None:
            runs.append((start, s["t"], count))
            start, count = None, 0
    if start is not None:
        runs.append((start, samples[-1]["t"], count))
    return runs


# --------------------------------------------------------------------------
# the testbed's side: handles on running measurements

KILL_WAIT_S = 5.0


class ClientLoop:
    """A running `loop` (started by Testbed.client_loop); its JSON lines go
    to the file `out`."""

    def __init__(self, proc, out, duration_s):
        self.proc = proc
        self.out = out
        self.duration_s = duration_s

    def wait(self):
        try:
            self.proc.wait(timeout=self.duration_s + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=KILL_WAIT_S)
        return self.results()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.results()

    def results(self):
        return parse_lines(self.out.read_text()) if self.out.exists() else []


class HolderSampler:
    """Records (monotonic s, holders, answering) every interval_ms in a
    thread: the hosts with the VIP on eth0, and those of them whose eth0 is
    up (a powered-off host keeps its VIP configured but answers nothing)."""

    SAMPLES_MAX = 1_000_000

    def __init__(self, tb, vip, interval_ms=10):
        # `tb` is a Testbed: its reader(node) gives an nladdr.AddressReader.
        self.tb = tb
        self.vip = vip.split("/")[0]
        self.interval_s = interval_ms / 1000.0
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="holder-sampler", daemon=True)
        self._readers = [(n, tb.reader(n)) for n in tb.nodes]

    def start(self):
        self._thread.start()

    def _run(self):
        next_t = time.monotonic()
        while not self._stop.is_set() and len(self.samples) < self.SAMPLES_MAX:
            t = time.monotonic()
            try:
                held = tuple(n for n, r in self._readers if self.vip in r.addresses())
                answering = tuple(n for n, r in self._readers if n in held and r.link_up())
            except OSError:
                break  # the testbed is going down
            self.samples.append((t, held, answering))
            next_t = max(next_t + self.interval_s, time.monotonic())
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        if self in self.tb._samplers:
            self.tb._samplers.remove(self)
        return self.samples

    def multi(self):
        """Samples where more than one host with eth0 up had the VIP."""
        return [s for s in self.samples if len(s[2]) > 1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("respond")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--udp-log")
    c = sub.add_parser("connect")
    c.add_argument("--target", required=True)
    c.add_argument("--timeout-ms", type=float, default=500)
    u = sub.add_parser("udp")
    u.add_argument("--target", required=True)
    u.add_argument("--data", default="probe")
    lp = sub.add_parser("loop")
    lp.add_argument("--target", required=True)
    lp.add_argument("--duration-s", type=float, required=True)
    lp.add_argument("--interval-ms", type=float, default=10)
    lp.add_argument("--timeout-ms", type=float, default=50)
    args = p.parse_args(argv)
    return {"respond": respond, "connect": connect, "udp": udp, "loop": loop}[args.mode](args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
