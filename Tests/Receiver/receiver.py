#!/usr/bin/env python3
"""A real HTTP receiver on loopback for OnAir's tests: records every request it gets and answers
as the path tells it to, so each delivery outcome can be provoked on demand.

Usage: receiver.py LOGFILE [--tls DIR] [--idle-timeout SECONDS]
Prints the port it listens on and its pid as its first line. Every request is appended to LOGFILE as one JSON
line: method, path, headers, body (text), arrival (Unix seconds, float). With --tls it makes a CA
and a certificate for 127.0.0.1 with openssl in DIR (DIR/ca.pem is the CA) and speaks https.
With --idle-timeout it closes a kept-alive connection idle that long, as real servers do (otherwise never).

Paths:
  /ok/...                 200 "ok"
  /status/NNN/...         answers NNN
  /flaky/K/NNN/...        the first K requests to this exact path get NNN, later ones 200
  /retry-after/K/VALUE/.. the first K requests get 429 with Retry-After: VALUE, later ones 200
  /hang/SECONDS/...       waits, then 200
  /close/...              closes the connection without answering
  /redirect/...           301 to /ok
  /body/K/TEXT/...        200 with body "nothing" for the first K requests, then TEXT
"""
import http.server, json, os, socketserver, ssl, subprocess, sys, threading, time, urllib.parse

log_path = sys.argv[1]
lock = threading.Lock()
counts = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        arrival = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            counts[self.path] = counts.get(self.path, 0) + 1
            n = counts[self.path]
            with open(log_path, "a") as f:
                f.write(json.dumps({
                    "method": self.command, "path": self.path, "arrival": arrival, "peer": self.client_address[1],
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }) + "\n")
        parts = urllib.parse.urlparse(self.path).path.strip("/").split("/")
        kind = parts[0] if parts else ""
        if kind == "status":
            return self.answer(int(parts[1]))
        if kind == "flaky":
            return self.answer(int(parts[2]) if n <= int(parts[1]) else 200)
        if kind == "retry-after":
            if n <= int(parts[1]):
                return self.answer(429, headers={"Retry-After": urllib.parse.unquote(parts[2])})
            return self.answer(200)
        if kind == "hang":
            time.sleep(float(parts[1]))
            return self.answer(200)
        if kind == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if kind == "redirect":
            return self.answer(301, headers={"Location": "/ok"})
        if kind == "body":
            text = "nothing" if n <= int(parts[1]) else urllib.parse.unquote(parts[2])
            return self.answer(200, text)
        return self.answer(200)

    def answer(self, status, text="ok", headers=None):
        data = b"" if self.command == "HEAD" else text.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def make_certificates(directory):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=OnAir Test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(directory, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")


if "--idle-timeout" in sys.argv:
    Handler.timeout = float(sys.argv[sys.argv.index("--idle-timeout") + 1])
server = Server(("127.0.0.1", 0), Handler)
if "--tls" in sys.argv:
    directory = sys.argv[sys.argv.index("--tls") + 1]
    make_certificates(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(directory, "server.pem"), os.path.join(directory, "server.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], os.getpid(), flush=True)
server.serve_forever()
