#!/usr/bin/env python3
"""HTTP/1.1 server and raw client for Sonde's privacy end-to-end test (Python
http.server and sockets): secrets everywhere an application puts them, so the
test can prove none of them leaves the agent.

  privacy_server.py server PORT MARKER [--tls CERT KEY]
      Listens on 127.0.0.1:PORT (HTTPS through the ssl module, i.e. the system
      libssl, with --tls), prints "READY PORT" once accepting, and runs until
      killed. Any method, any path: the request body (Content-Length or
      chunked, trailers included) is read whole, then the answer is the status
      of a /status/<code> path (else 200) with the headers Set-Cookie,
      X-Secret-Response, WWW-Authenticate, ETag and Location holding MARKER
      followed by a tag naming the place, and the body "<MARKER>respbody "
      followed by the request body, so the request's secrets come back too.
  privacy_server.py client PORT CAFILE|- REQUEST_JSON
      First opens and closes one TCP connection to PORT, prints "CONNECTED"
      and waits for a line on stdin (the test waits until the agent
      instruments this process). Then sends each request of the JSON list of
      strings (latin-1, sent exactly as given, so request lines can carry
      fragments and absolute forms) on its own connection (TLS trusting
      CAFILE unless "-"), reads to the end and prints the response's status.
"""

import http.server
import json
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The test servers' HTTP(S) server: TLS handshakes in each connection's thread.
from http_server import Server, make_tls_context  # noqa: E402


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    marker = ""

    def log_message(self, format, *args):  # noqa: A002 - keep stderr quiet
        pass

    def read_body(self):
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            length = int(self.headers.get("Content-Length", "0") or "0")
            return self.rfile.read(length) if length else b""
        body = b""
        while True:
            size = int(self.rfile.readline(65537).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return body
            body += self.rfile.read(size)
            self.rfile.readline(65537)

    def handle_any(self):
        body = self.read_body()
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        status = 200
        if path.startswith("/status/") and path[len("/status/"):].isdigit():
            status = int(path[len("/status/"):])
        m = self.marker
        payload = f"{m}respbody ".encode() + body
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Set-Cookie", f"session={m}respcookie; HttpOnly")
        self.send_header("X-Secret-Response", f"{m}respheader")
        self.send_header("WWW-Authenticate", f'Bearer realm="{m}respauth"')
        self.send_header("ETag", f'"{m}respetag"')
        self.send_header("Location", f"/next?token={m}resplocation")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


def client(port, cafile, requests):
    context = None
    if cafile != "-":
        import ssl

        context = ssl.create_default_context(cafile=cafile)
    socket.create_connection(("127.0.0.1", port), timeout=30).close()
    print("CONNECTED", flush=True)
    sys.stdin.readline()
    for request in requests:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            conn = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
            conn.sendall(request.encode("latin-1"))
            response = b""
            while chunk := conn.recv(65536):
                response += chunk
            print(response.split(b" ", 2)[1].decode(), flush=True)
    return 0


def main(argv):
    if len(argv) == 4 and argv[0] == "client" and argv[1].isdigit():
        return client(int(argv[1]), argv[2], json.loads(argv[3]))
    if argv[:1] != ["server"] or len(argv) not in (3, 6) or not argv[1].isdigit() or (
            len(argv) == 6 and argv[3] != "--tls"):
        sys.stderr.write(__doc__)
        return 2
    port = int(argv[1])
    Handler.marker = argv[2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = Server(("127.0.0.1", port), Handler)
    if len(argv) == 6:
        server.tls_context = make_tls_context(argv[4], argv[5])
    print(f"READY {port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
