#!/usr/bin/env python3
"""HTTP server that starts a client program per request (as a shell or a job
runner would): GET /spawn/<port> forks and execs a Python client that sends
one GET /status/200 to 127.0.0.1:<port>, then stays alive for 5 s; the answer
is the client's pid.

Usage: spawning_server.py <port>; prints "READY <port>" once listening.
"""

import http.server
import subprocess
import sys

CLIENT = """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /status/200 HTTP/1.1\\r\\nHost: spawned\\r\\nConnection: close\\r\\n\\r\\n")
while s.recv(65536):
    pass
s.close()
time.sleep(5)
"""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) != 3 or parts[1] != "spawn" or not parts[2].isdigit():
            self.send_error(404)
            return
        child = subprocess.Popen([sys.executable, "-c", CLIENT, parts[2]])
        body = str(child.pid).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1])
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    print(f"READY {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
