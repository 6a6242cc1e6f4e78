#!/usr/bin/env python3
"""Test HTTP/1.1 server for Sonde's end-to-end tests (Python http.server).

Usage: http_server.py <port>

Listens on 127.0.0.1:<port>, prints "READY <port>" once accepting, and runs
until killed. Routes (any method):
  /status/<code>  -> <code>, body "status <code>\n"
  /sleep/<ms>     -> sleeps, then 200 "slept <ms>\n"
  /bytes/<n>      -> 200, n bytes of 'x', Content-Length
  /chunked/<n>    -> 200, n bytes of 'x' as a chunked body in up to 4 chunks
  /upload         -> reads the whole body, 200 "got <N>\n"
  anything else   -> 404 "not found\n"
The request body (Content-Length or chunked) is always read first.
"""

import http.server
import signal
import sys
import time

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
        self.send_fixed(404, b"not found\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: http_server.py <port>\n")
        return 2
    port = int(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = Server(("127.0.0.1", port), Handler)
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
