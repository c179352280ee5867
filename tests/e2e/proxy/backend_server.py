"""A small HTTP/1.1 backend for the proxy tests: it says who it is, echoes
what it received, can be slow, can answer in chunks, can fail its health
check on demand, and in `--mode reset` resets every connection after reading
a request (a server dying mid-request). Prints its port on stdout once
listening. Run with /usr/bin/python3; stdlib only."""

import argparse
import http.server
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse


def read_chunked(rfile):
    body = b""
    while True:
        size_line = rfile.readline()
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return body
        body += rfile.read(size)
        rfile.readline()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_name_tag = "?"
    health_file = None

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return read_chunked(self.rfile)
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

    def handle_any(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        received = self.body()
        if url.path == "/healthz":
            ok = not (self.health_file and os.path.exists(self.health_file))
            return self.reply(200 if ok else 503, "ok\n" if ok else "failing\n")
        if url.path == "/upgrade" and self.headers.get("Upgrade"):
            # Switch to a raw echo protocol, as a WebSocket server switches.
            self.send_response(101)
            self.send_header("Upgrade", self.headers["Upgrade"])
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            while True:
                data = self.connection.recv(65536)
                if not data:
                    return None
                self.connection.sendall(data.upper())
        if url.path == "/until-close":
            # An HTTP/1.0-style response: no length, ended by closing.
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                             + self.server_name_tag.encode() + b" until close\n")
            self.wfile.flush()
            self.close_connection = True
            return None
        if url.path == "/slow":
            time.sleep(int(query.get("ms", ["500"])[0]) / 1000.0)
        if url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (self.server_name_tag.encode(), b"-part2", b"-part3\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return None
        info = {
            "server": self.server_name_tag,
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_len": len(received),
            "body": received.decode(errors="replace")[:200],
        }
        return self.reply(200, json.dumps(info) + "\n", {"Content-Type": "application/json",
                                                         "X-Server": self.server_name_tag})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


def serve_reset(sock):
    """Reads a request head, then resets the connection: no response byte."""
    def one(conn):
        try:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            conn.close()
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=one, args=(conn,), daemon=True).start()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--health-file")
    p.add_argument("--mode", default="http", choices=["http", "reset"])
    a = p.parse_args()
    if a.mode == "reset":
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((a.host, a.port))
        sock.listen(128)
        print(sock.getsockname()[1], flush=True)
        serve_reset(sock)
        return
    Handler.server_name_tag = a.name
    Handler.health_file = a.health_file
    srv = Server((a.host, a.port), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
