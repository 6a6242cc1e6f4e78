#!/usr/bin/env python3
"""Runs a private nginx for Sonde's end-to-end tests.

Usage: nginx_server.py <port> <workdir> [--tls CERT KEY]

Writes <workdir>/nginx.conf from nginx.conf.template (beside this file),
serving HTTPS (HTTP/1.1) with the given PEM certificate and key under --tls,
creates the static files under <workdir>/www, starts
`nginx -c <workdir>/nginx.conf -p <workdir>` as a child (master + 1 worker),
waits until 127.0.0.1:<port> accepts, prints "READY <port>" and runs until
SIGTERM/SIGINT, when it stops nginx and waits for it. If nginx dies by
itself, this wrapper exits with status 1 and copies error.log to stderr.

The nginx master's pid is reported on stderr as "nginx master pid <pid>".
"""

import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "nginx.conf.template")

BYTES_SIZES = (0, 1, 10, 100, 1024, 4096, 10000, 65536, 100000, 1048576)
CHUNKED_SIZES = (100, 1024, 4096, 10000, 30000, 65536, 100000, 1048576)

PR_SET_PDEATHSIG = 1


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def make_tree(workdir):
    for sub in ("www/bytes", "www/chunked", "tmp"):
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    # POST/PUT/DELETE on this file make the static handler answer 405, which
    # the config turns into /upload's 200 once the body has been read.
    write_file(os.path.join(workdir, "www", "upload"), b"got 0\n")
    for n in BYTES_SIZES:
        write_file(os.path.join(workdir, "www", "bytes", str(n)), b"x" * n)
    # Text that does not compress to almost nothing, so the gzip stream of the
    # larger files spans several chunks.
    rng = random.Random(1234)
    letters = b"abcdefghijklmnopqrstuvwxyz     \n"
    for n in CHUNKED_SIZES:
        write_file(os.path.join(workdir, "www", "chunked", str(n)),
                   bytes(rng.choices(letters, k=n)))


def write_config(port, workdir, tls=None):
    with open(TEMPLATE) as f:
        conf = f.read()
    if tls:
        cert, key = (os.path.abspath(p) for p in tls)
        listen_ssl = " ssl"
        ssl_lines = ("ssl_certificate %s;\n        ssl_certificate_key %s;\n"
                     "        ssl_protocols TLSv1.2 TLSv1.3;" % (cert, key))
    else:
        listen_ssl = ssl_lines = ""
    conf = conf.replace("@LISTEN_SSL@", listen_ssl).replace("@SSL_LINES@", ssl_lines)
    conf = conf.replace("@PORT@", str(port)).replace("@WORKDIR@", workdir)
    conf = conf.replace("@USER@", "user root;" if os.geteuid() == 0 else "")
    path = os.path.join(workdir, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def die_with_parent():
    """Runs in the child: nginx gets SIGTERM if this wrapper dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def dump_error_log(workdir):
    try:
        with open(os.path.join(workdir, "error.log")) as f:
            sys.stderr.write(f.read())
    except OSError:
        pass


def main():
    extra = sys.argv[3:]
    if len(sys.argv) < 3 or (extra and (extra[0] != "--tls" or len(extra) != 3)):
        sys.stderr.write("usage: nginx_server.py <port> <workdir> [--tls CERT KEY]\n")
        return 2
    tls = (extra[1], extra[2]) if extra else None
    port = int(sys.argv[1])
    workdir = os.path.abspath(sys.argv[2])
    os.makedirs(workdir, exist_ok=True)
    make_tree(workdir)
    conf = write_config(port, workdir, tls)

    proc = None
    stopping = []

    def on_signal(*_):
        # Only flag and forward here; the main loop does the waiting.
        stopping.append(time.monotonic())
        if proc is not None and proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)  # nginx's fast shutdown
            except ProcessLookupError:
                pass

    def wait_stopped():
        deadline = stopping[0] + 5
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                break
            time.sleep(0.05)
        return 0

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    proc = subprocess.Popen(["nginx", "-c", conf, "-p", workdir + "/"],
                            stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
                            preexec_fn=die_with_parent)
    sys.stderr.write("nginx master pid %d\n" % proc.pid)
    sys.stderr.flush()
    if stopping:  # the signal came before nginx was started
        on_signal()

    deadline = time.monotonic() + 30
    while not stopping and not accepts(port):
        if proc.poll() is not None:
            dump_error_log(workdir)
            sys.stderr.write("nginx exited with %s before accepting\n" % proc.returncode)
            return 1
        if time.monotonic() > deadline:
            dump_error_log(workdir)
            sys.stderr.write("nginx did not accept on port %d\n" % port)
            on_signal()
            wait_stopped()
            return 1
        time.sleep(0.05)

    if not stopping:
        sys.stdout.write("READY %d\n" % port)
        sys.stdout.flush()

    while not stopping and proc.poll() is None:
        time.sleep(0.2)
    if stopping:
        return wait_stopped()
    dump_error_log(workdir)
    sys.stderr.write("nginx exited by itself with %s\n" % proc.returncode)
    return 1


if __name__ == "__main__":
    sys.exit(main())
