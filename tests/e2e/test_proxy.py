"""bulwark-proxy against real backend processes and real clients: balance
modes, health checks, hiding a backend's death, live changes, reloads,
limits, stats, and bad input."""

import collections
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import bin_dir, wait_until
from proxy_support import (KeepAliveClient, free_port, format_request, http_request,
                           read_response, who)


def http_config(servers, balance="roundrobin", check=None, backend_extra=None,
                frontend_extra=None, mode="http"):
    port = free_port()
    backend = {"name": "app", "balance": balance, "servers": servers}
    if check:
        backend["check"] = check
    backend.update(backend_extra or {})
    frontend = {"name": "web", "listen": f"127.0.0.1:{port}", "mode": mode, "backend": "app"}
    frontend.update(frontend_extra or {})
    return {"frontends": [frontend], "backends": [backend]}, port


def in_flight_at_a_server(proxy):
    """Waits until a request is in flight at one of the first backend's
    servers: a fixed sleep before acting on a slow request lost that race on
    a loaded machine under ASan."""
    wait_until(lambda: any(s["active"] >= 1 for s in proxy.stats()["backends"][0]["servers"]),
               10, what="a request in flight at a server")


def server(b, **kw):
    return {"name": b.name, "address": b.address, **kw}


def get(port, path="/who", **kw):
    return http_request("127.0.0.1", port, "GET", path, **kw)


# --- balancing -----------------------------------------------------------------

def test_roundrobin_follows_weights(proxy_lab):
    a, b, c = (proxy_lab.backend(n) for n in "abc")
    config, port = http_config([server(a), server(b), server(c, weight=2)])
    proxy_lab.proxy(config)
    counts = collections.Counter(who(get(port)) for _ in range(40))
    assert counts == {"a": 10, "b": 10, "c": 20}
    # Per request, also on one keep-alive connection.
    client = KeepAliveClient(port)
    counts = collections.Counter(who(client.request("GET", "/who")) for _ in range(40))
    client.close()
    assert counts == {"a": 10, "b": 10, "c": 20}


def test_leastconn_avoids_the_busy_server(proxy_lab):
    a, b = proxy_lab.backend("a"), proxy_lab.backend("b")
    config, port = http_config([server(a), server(b)], balance="leastconn")
    proxy = proxy_lab.proxy(config)
    busy = []
    slow = threading.Thread(target=lambda: busy.append(who(get(port, "/slow?ms=3000"))))
    slow.start()
    in_flight_at_a_server(proxy)
    seen = set()
    for _ in range(10):
        # The previous request's server counts as active until the proxy has
        # finished with it, a moment after the client has its response: wait
        # for exactly one busy server, so that leastconn has one answer.
        wait_until(lambda: sum(s["active"] for s in proxy.stats()["backends"][0]["servers"]) == 1,
                   10, what="only the slow request in flight")
        seen.add(who(get(port)))
    slow.join()
    assert len(busy) == 1
    assert seen == {"b" if busy[0] == "a" else "a"}


def test_source_hash_is_sticky_per_client_address(proxy_lab):
    backends = [proxy_lab.backend(n) for n in "abc"]
    config, port = http_config([server(x) for x in backends], balance="source")
    proxy_lab.proxy(config)
    mapping = {}
    for i in range(2, 30):
        src = f"127.0.0.{i}"
        first = who(get(port, source=src))
        assert all(who(get(port, source=src)) == first for _ in range(3))
        mapping[src] = first
    assert len(set(mapping.values())) == 3, mapping


def test_first_sends_everything_to_one_server_and_moves_on_failure(proxy_lab):
    a, b = proxy_lab.backend("a"), proxy_lab.backend("b")
    config, port = http_config([server(a), server(b)], balance="first",
                               check={"type": "http", "path": "/healthz", "interval_ms": 200,
                                      "rise": 2, "fall": 2})
    proxy = proxy_lab.proxy(config)
    assert {who(get(port)) for _ in range(20)} == {"a"}
    a.kill()
    # The very next requests are retried on b: no client error.
    assert {who(get(port)) for _ in range(20)} == {"b"}
    wait_until(lambda: proxy.server("app", "a")["state"] == "down", 5, what="a down")


def test_backup_only_when_no_primary_is_up(proxy_lab):
    a, b, spare = (proxy_lab.backend(n) for n in ("a", "b", "spare"))
    config, port = http_config([server(a), server(b), server(spare, backup=True)],
                               check={"type": "tcp", "interval_ms": 200, "rise": 1, "fall": 1})
    proxy = proxy_lab.proxy(config)
    assert {who(get(port)) for _ in range(20)} == {"a", "b"}
    a.kill()
    b.kill()
    wait_until(lambda: proxy.server("app", "b")["state"] == "down", 5, what="b down")
    assert {who(get(port)) for _ in range(10)} == {"spare"}


# --- health checks ---------------------------------------------------------------

def test_killed_backend_is_marked_down_within_fall_times_interval(proxy_lab):
    a, b = proxy_lab.backend("a"), proxy_lab.backend("b")
    interval, fall = 300, 2
    config, port = http_config([server(a), server(b)],
                               check={"type": "http", "path": "/healthz", "interval_ms": interval,
                                      "rise": 2, "fall": fall})
    proxy = proxy_lab.proxy(config)
    wait_until(lambda: proxy.server("app", "a")["state"] == "up", 5, what="a up")
    a.kill()
    start = time.monotonic()
    wait_until(lambda: proxy.server("app", "a")["state"] == "down", 10, interval_s=0.02,
               what="a marked down")
    elapsed_ms = (time.monotonic() - start) * 1000
    # fall x interval, plus one interval of phase and some slack for a loaded CI machine.
    assert elapsed_ms <= (fall + 1) * interval + 500, elapsed_ms
    assert {who(get(port)) for _ in range(10)} == {"b"}


def test_http_check_status_and_recovery_after_rise(proxy_lab):
    flag = proxy_lab.dir / "a-failing"
    a = proxy_lab.backend("a", health_file=flag)
    b = proxy_lab.backend("b")
    config, port = http_config([server(a), server(b)],
                               check={"type": "http", "path": "/healthz", "interval_ms": 150,
                                      "rise": 3, "fall": 2})
    proxy = proxy_lab.proxy(config)
    flag.write_text("1")
    wait_until(lambda: proxy.server("app", "a")["state"] == "down", 5, what="a down on 503")
    assert {who(get(port)) for _ in range(6)} == {"b"}
    flag.unlink()
    wait_until(lambda: proxy.server("app", "a")["state"] == "up", 5, what="a back up")
    assert "a" in {who(get(port)) for _ in range(6)}


def test_command_check(proxy_lab):
    flag = proxy_lab.dir / "b-out-of-sync"
    script = proxy_lab.dir / "check.sh"
    script.write_text(f"#!/bin/sh\n[ \"$BULWARK_SERVER_NAME\" != b ] || [ ! -e {flag} ]\n")
    script.chmod(0o755)
    a, b = proxy_lab.backend("a"), proxy_lab.backend("b")
    config, port = http_config([server(a), server(b)],
                               check={"type": "command", "command": [str(script)],
                                      "interval_ms": 150, "rise": 1, "fall": 1})
    proxy = proxy_lab.proxy(config)
    flag.write_text("1")
    wait_until(lambda: proxy.server("app", "b")["state"] == "down", 5, what="b down")
    assert proxy.server("app", "a")["state"] == "up"
    flag.unlink()
    wait_until(lambda: proxy.server("app", "b")["state"] == "up", 5, what="b up")


def test_passive_errors_mark_a_server_down_without_active_checks(proxy_lab):
    a = proxy_lab.backend("a")
    dead_port = free_port()
    config, port = http_config([server(a), {"name": "dead", "address": f"127.0.0.1:{dead_port}"}],
                               backend_extra={"error_limit": 2})
    proxy = proxy_lab.proxy(config)
    assert {who(get(port)) for _ in range(10)} == {"a"}
    assert proxy.server("app", "dead")["state"] == "down"
    assert proxy.server("app", "dead")["connect_errors_total"] >= 2


# --- hiding failures ---------------------------------------------------------------

class Load:
    """Keep-alive clients sending requests to a frontend until stopped; every
    answer or error a client would see is kept."""

    def __init__(self, port, clients):
        self.port = port
        self.stop_event = threading.Event()
        self.results = []
        self.threads = [threading.Thread(target=self.client) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def client(self):
        client = None
        while not self.stop_event.is_set():
            try:
                if client is None:
                    client = KeepAliveClient(self.port)
                status, _, _ = client.request("GET", "/who")
                self.results.append(status)
            except Exception as e:  # noqa: BLE001 - every failure is a client-visible error
                self.results.append(repr(e))
                if client:
                    client.close()
                client = None
        if client:
            client.close()

    def stop_and_check(self, min_requests):
        self.stop_event.set()
        for t in self.threads:
            t.join()
        errors = [r for r in self.results if r != 200]
        assert len(self.results) >= min_requests
        assert not errors, f"{len(errors)} errors of {len(self.results)}: {errors[:5]}"


def test_no_client_error_when_a_backend_is_killed_under_load(proxy_lab):
    backends = [proxy_lab.backend(n) for n in "abc"]
    config, port = http_config([server(x) for x in backends], backend_extra={"retries": 3},
                               check={"type": "http", "path": "/healthz", "interval_ms": 500,
                                      "rise": 2, "fall": 2})
    proxy_lab.proxy(config)
    load = Load(port, clients=6)
    time.sleep(1.0)
    backends[0].kill()
    time.sleep(2.0)
    load.stop_and_check(min_requests=200)


def test_reset_before_response_is_retried_for_idempotent_requests_only(proxy_lab):
    bad = proxy_lab.backend("bad", mode="reset")
    good = proxy_lab.backend("good")
    config, port = http_config([server(bad), server(good)], balance="first")
    proxy = proxy_lab.proxy(config)
    assert who(get(port)) == "good"
    wait_until(lambda: proxy.server("app", "bad")["state"] == "up", 5, interval_s=0.2,
               what="bad given traffic again")
    status, _, _ = http_request("127.0.0.1", port, "POST", "/who", body=b"x")
    assert status == 502


# --- live changes ----------------------------------------------------------------

def test_drain_lets_established_requests_finish(proxy_lab):
    a, b = proxy_lab.backend("a"), proxy_lab.backend("b")
    config, port = http_config([server(a), server(b)], balance="first")
    proxy = proxy_lab.proxy(config)
    slow = []
    t = threading.Thread(target=lambda: slow.append(get(port, "/slow?ms=1000")))
    t.start()
    in_flight_at_a_server(proxy)
    proxy.ctl("drain", "app", "a")
    assert proxy.server("app", "a")["state"] == "drain"
    assert {who(get(port)) for _ in range(5)} == {"b"}
    t.join()
    assert who(slow[0]) == "a"
    proxy.ctl("ready", "app", "a")
    assert who(get(port)) == "a"


def test_live_add_remove_and_weight(proxy_lab):
    a, b = proxy_lab.backend("a"), proxy_lab.backend("b")
    config, port = http_config([server(a)])
    proxy = proxy_lab.proxy(config)
    proxy.ctl("add-server", "app", "b", b.address, "3")
    counts = collections.Counter(who(get(port)) for _ in range(40))
    assert counts == {"a": 10, "b": 30}
    proxy.ctl("set-weight", "app", "b", "1")
    counts = collections.Counter(who(get(port)) for _ in range(40))
    assert counts == {"a": 20, "b": 20}
    proxy.ctl("remove-server", "app", "a")
    assert {who(get(port)) for _ in range(10)} == {"b"}
    # Refused changes say why and change nothing.
    r = proxy.ctl("add-server", "app", "b", b.address, check=False)
    assert r.returncode != 0 and "already has a server 'b'" in r.stderr
    r = proxy.ctl("add-server", "nope", "x", b.address, check=False)
    assert r.returncode != 0 and "no backend named 'nope'" in r.stderr
    r = proxy.ctl("add-server", "app", "x", "localhost:80", check=False)
    assert r.returncode != 0 and "not an IP address" in r.stderr
    r = proxy.ctl("remove-server", "app", "zzz", check=False)
    assert r.returncode != 0 and "no server 'zzz'" in r.stderr
    assert [s["name"] for s in proxy.stats()["backends"][0]["servers"]] == ["b"]


def test_reload_under_load_loses_no_connection(proxy_lab):
    a, b, c = (proxy_lab.backend(n) for n in "abc")
    config, port = http_config([server(a), server(b)])
    proxy = proxy_lab.proxy(config)
    load = Load(port, clients=4)
    for i in range(6):
        time.sleep(0.3)
        servers = [server(a), server(b)] + ([server(c)] if i % 2 == 0 else [])
        new, _ = http_config(servers)
        new["frontends"][0]["listen"] = f"127.0.0.1:{port}"
        new["global"] = proxy.config["global"]
        proxy.reload(new)
    time.sleep(0.5)
    # A new frontend starts listening; a removed one stops.
    extra_port = free_port()
    new = dict(proxy.config)
    new["frontends"] = proxy.config["frontends"] + [
        {"name": "extra", "listen": f"127.0.0.1:{extra_port}", "backend": "app"}]
    proxy.reload(new)
    wait_until(lambda: who(get(extra_port)), 5, what="the new frontend")
    new = dict(new)
    new["frontends"] = new["frontends"][:1]
    proxy.reload(new)
    wait_until(lambda: not proxy._connects("127.0.0.1", extra_port), 5, what="frontend removed")
    # A broken file is refused; the running configuration stays.
    proxy.config_path.write_text("frontends: [\n")
    proxy.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    load.stop_and_check(min_requests=100)
    assert proxy.proc.poll() is None
    assert "reload refused" in proxy.log_text()
    assert who(get(port)) in {"a", "b", "c"}


# --- limits ------------------------------------------------------------------------

def test_reload_moves_keepalive_connections_to_the_new_backend(proxy_lab):
    a, b = proxy_lab.backend("a"), proxy_lab.backend("b")
    config, port = http_config([server(a)])
    config["backends"].append({"name": "other", "servers": [server(b)]})
    proxy = proxy_lab.proxy(config)
    client = KeepAliveClient(port)
    assert who(client.request("GET", "/who")) == "a"
    new = json.loads(json.dumps(proxy.config))
    new["frontends"][0]["backend"] = "other"
    proxy.reload(new)
    wait_until(lambda: who(get(port)) == "b", 5, what="new connections on the new backend")
    # The established connection follows on its next request.
    assert who(client.request("GET", "/who")) == "b"
    client.close()


def test_a_second_proxy_on_the_same_address_is_refused(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy_lab.proxy(config)
    second = proxy_lab.dir / "second.yaml"
    second.write_text(json.dumps({"frontends": config["frontends"],
                                  "backends": config["backends"]}))
    proc = subprocess.run([str(bin_dir() / "bulwark-proxy"), "--config", str(second)],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_server_maxconn_queues_then_serves(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a, maxconn=1)],
                               backend_extra={"queue_max": 10, "queue_timeout_ms": 5000})
    proxy_lab.proxy(config)
    results = []
    threads = [threading.Thread(target=lambda: results.append(get(port, "/slow?ms=300")[0]))
               for _ in range(3)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200, 200, 200]
    assert time.monotonic() - start >= 0.85  # served one at a time


def test_frontend_maxconn_holds_further_clients_in_the_backlog(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)], frontend_extra={"maxconn": 1})
    proxy = proxy_lab.proxy(config)
    first = KeepAliveClient(port)
    assert who(first.request("GET", "/who")) == "a"
    waiting = []
    t = threading.Thread(target=lambda: waiting.append(get(port, timeout=10)))
    t.start()
    time.sleep(0.8)
    assert not waiting, "a second client was served while the first held the only slot"
    assert proxy.stats()["frontends"][0]["current_connections"] == 1
    first.close()
    t.join()
    assert who(waiting[0]) == "a"


def test_full_queue_answers_503(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a, maxconn=1)], backend_extra={"queue_max": 0})
    proxy = proxy_lab.proxy(config)
    t = threading.Thread(target=lambda: get(port, "/slow?ms=2000"))
    t.start()
    in_flight_at_a_server(proxy)
    assert get(port)[0] == 503
    t.join()


def test_server_timeout_answers_504(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)], backend_extra={"server_timeout_ms": 300})
    proxy_lab.proxy(config)
    assert get(port, "/slow?ms=1500")[0] == 504


# --- HTTP semantics ----------------------------------------------------------------

def test_forwarding_headers_and_hop_by_hop(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)], frontend_extra={"forwarded": True})
    proxy_lab.proxy(config)
    status, headers, body = get(port, headers={"X-Forwarded-For": "192.0.2.7",
                                               "Connection": "keep-alive, X-Secret",
                                               "X-Secret": "hop", "Keep-Alive": "timeout=5"})
    seen = json.loads(body)["headers"]
    assert seen["x-forwarded-for"] == "192.0.2.7, 127.0.0.1"
    assert "for=127.0.0.1" in seen["forwarded"]
    assert "x-secret" not in seen and "keep-alive" not in seen
    assert seen["host"] == "test"


def test_chunked_bodies_both_ways_and_pipelining(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy_lab.proxy(config)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        chunked = (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        s.sendall(chunked + format_request("GET", "/chunked") + format_request("GET", "/one"))
        status, _, body, rest = read_response(s)
        assert status == 200 and json.loads(body)["body"] == "hello world"

        class Prefixed:
            def __init__(self, data):
                self.data = data

            def recv(self, n):
                if self.data:
                    d, self.data = self.data, b""
                    return d
                return s.recv(n)
        p = Prefixed(rest)
        status, headers, body, rest = read_response(p)
        assert headers.get("transfer-encoding") == "chunked" and body == b"a-part2-part3\n"
        p.data = rest
        status, _, body, _ = read_response(p)
        assert json.loads(body)["path"] == "/one"


def test_upgrade_becomes_a_tunnel(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy_lab.proxy(config)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                  b"Upgrade: shout\r\n\r\n")
        status, headers, _, rest = read_response(s)
        assert status == 101
        assert headers["upgrade"] == "shout" and headers["connection"].lower() == "upgrade"
        got = rest
        for word in (b"hello", b" tunnel"):
            s.sendall(word)
            while not got.endswith(word.upper()):
                got += s.recv(100)
        assert got == b"HELLO TUNNEL"
        # A half-close passes through: the server sees the end and closes.
        start = time.monotonic()
        s.shutdown(socket.SHUT_WR)
        assert s.recv(100) == b""
        assert time.monotonic() - start < 3
    # Without Connection: upgrade, Upgrade is a hop-by-hop field and is dropped.
    status, _, body = get(port, "/who", headers={"Upgrade": "shout"})
    assert status == 200 and "upgrade" not in json.loads(body)["headers"]


def test_response_ended_by_close_arrives_at_once(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy_lab.proxy(config)
    for _ in range(3):
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(format_request("GET", "/until-close"))
            status, headers, body, _ = read_response(s)
        assert status == 200 and body == b"a until close\n"
        assert headers.get("connection", "").lower() == "close"
        # The end of the body is the server's FIN: it must not wait for
        # server_timeout_ms (30 s) to be noticed.
        assert time.monotonic() - start < 3


def test_http10_client_and_head(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy_lab.proxy(config)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /who HTTP/1.0\r\n\r\n")
        status, headers, body, _ = read_response(s)
        assert status == 200 and headers.get("connection", "").lower() == "close"
        assert s.recv(10) == b""  # closed after the response
    status, headers, body = http_request("127.0.0.1", port, "HEAD", "/who")
    assert status == 200 and body == b""


def test_tcp_mode_splices_and_retries_connect(proxy_lab):
    a = proxy_lab.backend("a")
    dead = {"name": "dead", "address": f"127.0.0.1:{free_port()}"}
    config, port = http_config([dead, server(a)], mode="tcp", balance="first")
    proxy = proxy_lab.proxy(config)
    big = b"x" * 300000
    status, _, body = http_request("127.0.0.1", port, "POST", "/echo", body=big)
    assert status == 200 and json.loads(body)["body_len"] == len(big)
    assert who(get(port)) == "a"
    assert proxy.stats()["backends"][0]["retries_total"] >= 1


# --- stats ------------------------------------------------------------------------

def test_stats_json_and_prometheus(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy = proxy_lab.proxy(config)
    for _ in range(5):
        assert get(port)[0] == 200
    # A worker counts an exchange once it has forwarded the whole response,
    # a moment after the client may have read it: the counters settle.
    def settled():
        s = proxy.stats()
        fe, srv = s["frontends"][0], s["backends"][0]["servers"][0]
        return fe["responses"]["2xx"] == 5 and srv["response_time"]["count"] == 5

    wait_until(settled, 5, what="the counters of 5 exchanges")
    s = proxy.stats()
    fe = s["frontends"][0]
    assert fe["name"] == "web" and fe["requests_total"] == 5 and fe["responses"]["2xx"] == 5
    srv = s["backends"][0]["servers"][0]
    assert srv["requests_total"] == 5 and srv["state"] == "up"
    assert srv["bytes_in_total"] > 0 and srv["bytes_out_total"] > 0
    assert srv["response_time"]["count"] == 5
    m = proxy.metrics()
    assert 'bulwark_proxy_server_requests_total{backend="app",server="a"} 5' in m
    assert 'bulwark_proxy_server_response_seconds_bucket{backend="app",server="a",le="+Inf"} 5' in m
    assert "# TYPE bulwark_proxy_server_response_seconds histogram" in m
    shown = json.loads(proxy.ctl("show").stdout)
    assert shown["backends"][0]["name"] == "app"


# --- bad input ----------------------------------------------------------------------

def raw_exchange(port, data, timeout=5, half_close=False):
    """Sends `data` and reads until the proxy closes; `half_close` ends the
    sending side first, so that a request cut short ends at once instead
    of at the proxy's timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                      # no Host
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 20000 + b"\r\n\r\n", 431),
])
def test_malformed_requests_get_an_error_and_the_connection_closes(proxy_lab, request_bytes, status):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy_lab.proxy(config)
    out = raw_exchange(port, request_bytes)
    assert out.startswith(f"HTTP/1.1 {status} ".encode()), out[:100]
    assert b"connection: close" in out.lower()


def test_slow_client_is_cut_at_its_timeout(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)], frontend_extra={"http_request_timeout_ms": 400})
    proxy_lab.proxy(config)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        start = time.monotonic()
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        assert out.startswith(b"HTTP/1.1 408 ")
        assert 0.3 < time.monotonic() - start < 3


def test_random_bytes_never_crash_the_proxy(proxy_lab):
    import random
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy = proxy_lab.proxy(config)
    rng = random.Random(7)
    prefixes = [b"", b"GET / HTTP/1.1\r\nHost: a\r\n", b"POST / HTTP/1.1\r\nHost: a\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"]
    for i in range(150):
        data = rng.choice(prefixes) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        try:
            raw_exchange(port, data, timeout=2, half_close=True)
        except (socket.timeout, OSError):
            pass
    assert proxy.proc.poll() is None
    assert who(get(port)) == "a"


def test_check_validates_and_names_file_line_column(proxy_lab):
    path = proxy_lab.dir / "bad.yaml"
    path.write_text("frontends:\n  - name: web\n    listen: 127.0.0.1:80\n    backend: nope\n")
    proc = subprocess.run([str(bin_dir() / "bulwark-proxy"), "--check", "--config", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{path}:4:14: no backend named 'nope'" in proc.stderr
    a = proxy_lab.backend("a")
    config, _ = http_config([server(a)])
    good = proxy_lab.dir / "good.yaml"
    good.write_text(json.dumps(config))
    proc = subprocess.run([str(bin_dir() / "bulwark-proxy"), "--check", "--config", str(good)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_sigterm_lets_a_request_in_flight_finish(proxy_lab):
    a = proxy_lab.backend("a")
    config, port = http_config([server(a)])
    proxy = proxy_lab.proxy(config)
    result = []
    t = threading.Thread(target=lambda: result.append(get(port, "/slow?ms=1000")))
    t.start()
    in_flight_at_a_server(proxy)
    proxy.proc.send_signal(signal.SIGTERM)
    # Listening stops at once; the request in flight still finishes.
    wait_until(lambda: not proxy._connects("127.0.0.1", port), 2, what="listener closed")
    t.join()
    assert who(result[0]) == "a"
    assert proxy.stop() == 0
