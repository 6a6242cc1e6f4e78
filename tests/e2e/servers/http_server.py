#!/usr/bin/env python3
"""Test HTTP/1.1 server for Sonde's end-to-end tests (Python http.server).

Usage: http_server.py <port> [--tls CERT KEY] [--tls-later CERT KEY PORT2]

Listens on 127.0.0.1:<port>, prints "READY <port>" once accepting, and runs
until killed.

  --tls CERT KEY   serve HTTPS (TLS via the ssl module, i.e. the system's
                   libssl.so.3) on <port> instead of plain HTTP. The TLS
                   handshake runs in the connection's own thread.
  --tls-later CERT KEY PORT2
                   start WITHOUT the ssl module: libssl.so.3 is not mapped
                   until a client asks for it. <port> serves plain HTTP with
                   one extra route, GET /enable-tls, which imports ssl (that
                   dlopens _ssl*.so and with it libssl.so.3), starts an HTTPS
                   listener with the same routes on 127.0.0.1:PORT2 in a
                   thread and, once that accepts, answers 200 "tls on\n"
                   (also on later calls). "TLS READY <PORT2>" goes to stderr.

Routes (any method):
  /status/<code>  -> <code>, body "status <code>\n"
  /sleep/<ms>     -> sleeps, then 200 "slept <ms>\n"
  /bytes/<n>      -> 200, n bytes of 'x', Content-Length
  /chunked/<n>    -> 200, n bytes of 'x' as a chunked body in up to 4 chunks
  /upload         -> reads the whole body, 200 "got <N>\n"
  anything else   -> 404 "not found\n"
The request body (Content-Length or chunked) is always read first.
"""

import sys

# http.server imports http.client, which imports ssl when it can; with
# --tls-later the process must not map libssl.so.3 before /enable-tls, so the
# import is refused until then (http.client then only lacks HTTPSConnection).
TLS_LATER = "--tls-later" in sys.argv[1:]
if TLS_LATER:
    sys.modules["ssl"] = None

import http.server  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

if TLS_LATER:
    del sys.modules["ssl"]

NO_BODY_STATUSES = (204, 304)


def parse_tail(path, prefix):
    """Returns the integer after prefix in path, or None."""
    if not path.startswith(prefix):
        return None
    tail = path[len(prefix):]
    if not tail.isdigit():
        return None
    return int(tail)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sonde-e2e-python"
    # Headers and body go out in separate writes: without this, Nagle plus
    # delayed ACK can add 40 ms to keep-alive requests.
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 - keep stderr quiet
        pass

    def read_body(self):
        """Reads and discards the request body; returns its length."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            total = 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # Trailers, up to the empty line.
                    while True:
                        line = self.rfile.readline(65537)
                        if line in (b"\r\n", b"\n", b""):
                            break
                    return total
                total += self.discard(size)
                self.rfile.readline(65537)  # CRLF after the chunk data
        length = int(self.headers.get("Content-Length", "0") or "0")
        return self.discard(length)

    def discard(self, n):
        left = n
        while left > 0:
            data = self.rfile.read(min(left, 65536))
            if not data:
                raise ConnectionError("eof in body")
            left -= len(data)
        return n

    def send_fixed(self, code, body):
        self.send_response(code)
        if code not in NO_BODY_STATUSES:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD" and code not in NO_BODY_STATUSES and body:
            self.wfile.write(body)

    def send_chunked(self, n):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        parts = 4
        base, extra = divmod(n, parts)
        for i in range(parts):
            size = base + (1 if i < extra else 0)
            if size == 0:
                continue
            self.wfile.write(b"%x\r\n" % size + b"x" * size + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def handle_any(self):
        try:
            got = self.read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            self.send_fixed(400, b"bad body\n")
            return
        path = self.path.split("?", 1)[0]

        code = parse_tail(path, "/status/")
        if code is not None and 100 <= code <= 599:
            self.send_fixed(code, b"status %d\n" % code)
            return
        ms = parse_tail(path, "/sleep/")
        if ms is not None:
            time.sleep(ms / 1000.0)
            self.send_fixed(200, b"slept %d\n" % ms)
            return
        n = parse_tail(path, "/bytes/")
        if n is not None:
            self.send_fixed(200, b"x" * n)
            return
        n = parse_tail(path, "/chunked/")
        if n is not None:
            self.send_chunked(n)
            return
        if path == "/upload":
            self.send_fixed(200, b"got %d\n" % got)
            return
        if path == "/enable-tls" and self.server.enable_tls is not None:
            try:
                self.server.enable_tls()
            except Exception as err:  # noqa: BLE001 - reported to the client
                self.send_fixed(500, ("tls failed: %s\n" % err).encode())
                return
            self.send_fixed(200, b"tls on\n")
            return
        self.send_fixed(404, b"not found\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True
    # An ssl.SSLContext for HTTPS, None for plain HTTP.
    tls_context = None
    # With --tls-later on the plain server: starts the HTTPS listener.
    enable_tls = None

    def finish_request(self, request, client_address):
        """Runs in the connection's thread; with TLS, handshakes there."""
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except OSError:  # ssl.SSLError included: a failed handshake
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            # wrap_socket detached `request`; the caller's shutdown_request on
            # it is then a harmless no-op, so close the TLS socket here.
            self.shutdown_request(tls)


def make_tls_context(cert, key):
    import ssl  # only here: --tls-later must not map libssl before /enable-tls

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def libssl_mapped():
    with open("/proc/self/maps") as f:
        return any("libssl" in line for line in f)


class LateTls:
    """The HTTPS listener of --tls-later, started on the first /enable-tls."""

    def __init__(self, cert, key, port):
        self.cert, self.key, self.port = cert, key, port
        self.lock = threading.Lock()
        self.server = None

    def __call__(self):
        with self.lock:
            if self.server is not None:
                return
            server = Server(("127.0.0.1", self.port), Handler)  # listening now
            server.tls_context = make_tls_context(self.cert, self.key)
            server.enable_tls = self  # /enable-tls over HTTPS: 200 as well
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.server = server
            sys.stderr.write("TLS READY %d\n" % self.port)
            sys.stderr.flush()


def parse_args(argv):
    """(port, tls, tls_later) from the command line, or None on misuse."""
    if not argv or not argv[0].isdigit():
        return None
    port, rest = int(argv[0]), argv[1:]
    tls = tls_later = None
    while rest:
        if rest[0] == "--tls" and len(rest) >= 3:
            tls, rest = (rest[1], rest[2]), rest[3:]
        elif rest[0] == "--tls-later" and len(rest) >= 4 and rest[3].isdigit():
            tls_later, rest = (rest[1], rest[2], int(rest[3])), rest[4:]
        else:
            return None
    if tls and tls_later:
        return None
    return port, tls, tls_later


def main():
    args = parse_args(sys.argv[1:])
    if args is None:
        sys.stderr.write("usage: http_server.py <port> [--tls CERT KEY] "
                         "[--tls-later CERT KEY PORT2]\n")
        return 2
    port, tls, tls_later = args
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = Server(("127.0.0.1", port), Handler)
    if tls:
        server.tls_context = make_tls_context(*tls)
    if tls_later:
        if "ssl" in sys.modules or libssl_mapped():
            sys.stderr.write("--tls-later: ssl already loaded at startup (pid %d)\n" % os.getpid())
            return 1
        server.enable_tls = LateTls(*tls_later)
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
