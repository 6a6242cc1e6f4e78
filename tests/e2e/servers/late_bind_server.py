"""An HTTP server that binds its port only after a delay, as services that
load data or wait for dependencies do. Prints 'READY <port>' right after its
listen() call.

usage: late_bind_server.py PORT DELAY_SECONDS
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_server  # noqa: E402  (the shared route set)


def main():
    port, delay = int(sys.argv[1]), float(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(delay)
    server = http_server.Server(("127.0.0.1", port), http_server.Handler)
    print(f"READY {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
