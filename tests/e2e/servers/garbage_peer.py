#!/usr/bin/env python3
"""Server and clients of random bytes for Sonde's random-bytes end-to-end test
(Python sockets; TLS through the ssl module, i.e. the system libssl, so the
agent's uprobes see the garbage in cleartext).

  garbage_peer.py server PLAIN_PORT TLS_PORT CERT KEY
      Listens on 127.0.0.1:PLAIN_PORT (TCP) and 127.0.0.1:TLS_PORT (TLS),
      prints "READY PLAIN_PORT" once both accept, and runs until killed. A
      connection's bytes are read and discarded, and the first bytes of every
      read (up to 512) are echoed back, so garbage flows both ways. A
      connection that starts with "GET /ok" is HTTP instead: every request
      head on it gets "200 ok", so a normal request can be counted after the
      garbage.
  garbage_peer.py client PORT CAFILE|- SEED MEGABYTES
      Writes at least MEGABYTES MB of garbage (random.Random(SEED), so a run
      can be repeated) over many connections, TLS trusting CAFILE unless "-":
      pure random bytes in chunk sizes from 1 byte to 1 MB; a valid request
      line then garbage; "HTTP/1.1 " then garbage; a valid head announcing a
      huge body of garbage; the HTTP/2 preface then frames with random types,
      flags, streams and payloads (HPACK garbage included). Prints the bytes
      written.
  garbage_peer.py normal PORT CAFILE|- COUNT
      COUNT requests "GET /ok", one connection each; prints the statuses.
"""

import random
import signal
import socket
import ssl
import sys
import threading

ECHO_BYTES = 512
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


def serve_connection(conn):
    try:
        first = conn.recv(1 << 20)
        if first.startswith(b"GET /ok"):
            buffered = first
            while True:
                while b"\r\n\r\n" in buffered:
                    _, buffered = buffered.split(b"\r\n\r\n", 1)
                    conn.sendall(OK_RESPONSE)
                data = conn.recv(65536)
                if not data:
                    return
                buffered += data
        data = first
        while data:
            conn.sendall(data[:ECHO_BYTES])
            data = conn.recv(1 << 20)
    except OSError:
        pass  # the client's garbage may end in a reset or a TLS alert
    finally:
        conn.close()


def accept_forever(listener, context):
    while True:
        conn, _ = listener.accept()

        def run(conn=conn):
            if context is not None:
                try:
                    conn = context.wrap_socket(conn, server_side=True)
                except OSError:
                    conn.close()
                    return
            serve_connection(conn)
        threading.Thread(target=run, daemon=True).start()


def server(plain_port, tls_port, cert, key):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listeners = []
    for port, ctx in ((plain_port, None), (tls_port, context)):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(128)
        listeners.append((s, ctx))
    for s, ctx in listeners:
        threading.Thread(target=accept_forever, args=(s, ctx), daemon=True).start()
    print(f"READY {plain_port}", flush=True)
    threading.Event().wait()


def connect(port, cafile):
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    if cafile == "-":
        return sock
    context = ssl.create_default_context(cafile=cafile)
    return context.wrap_socket(sock, server_hostname="127.0.0.1")


def drain_echo(conn, stop):
    """Reads the echoes so the server never blocks on a full socket."""
    try:
        while not stop.is_set() and conn.recv(1 << 20):
            pass
    except OSError:
        pass


def h2_garbage_frames(rng, size):
    """The HTTP/2 preface, then frames with a valid 9-byte header and random
    type, flags, stream and payload (lengths within the default 16 KB)."""
    out = bytearray(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    while len(out) < size:
        length = rng.randrange(0, 16385)
        out += length.to_bytes(3, "big") + bytes([rng.randrange(0, 12), rng.randrange(256)])
        out += rng.randrange(0, 1 << 31).to_bytes(4, "big") + rng.randbytes(length)
    return bytes(out)


PREFIXES = [
    b"",
    b"GET / HTTP/1.1\r\n",
    b"HTTP/1.1 ",
    b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nX-Junk: ",
    None,  # HTTP/2 preface and garbage frames
]
CHUNK_SIZES = [1, 7, 100, 1000, 4096, 16384, 65536, 262144, 1 << 20]


def client(port, cafile, seed, megabytes):
    rng = random.Random(seed)
    budget = megabytes << 20
    written = 0
    index = 0
    while written < budget:
        prefix = PREFIXES[index % len(PREFIXES)]
        # Mostly big connections; every few, one in tiny writes (many syscalls).
        size = min(budget - written, rng.choice([1 << 20, 4 << 20, 8 << 20]))
        if prefix is None:
            payload = h2_garbage_frames(rng, size)
        else:
            payload = prefix + rng.randbytes(max(size - len(prefix), 1))
        small = index % 7 == 3
        conn = connect(port, cafile)
        stop = threading.Event()
        reader = threading.Thread(target=drain_echo, args=(conn, stop), daemon=True)
        reader.start()
        try:
            pos = 0
            while pos < len(payload):
                n = rng.choice(CHUNK_SIZES[:4] if small else CHUNK_SIZES)
                conn.sendall(payload[pos:pos + n])
                pos += n
                if small and pos > 256 << 10:
                    break  # tiny writes: a quarter MB is plenty of syscalls
            written += min(pos, len(payload))
        except OSError:
            pass
        finally:
            stop.set()
            try:
                conn.shutdown(socket.SHUT_RDWR)  # the reader's recv returns
            except OSError:
                pass
            # Joined before close: an SSL object freed while the reader is inside
            # SSL_read crashes the client (seen once: SIGSEGV in libcrypto's BIO code).
            reader.join(5)
            conn.close()
        index += 1
    print(written, flush=True)
    return 0


def normal(port, cafile, count):
    for _ in range(count):
        conn = connect(port, cafile)
        conn.sendall(b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response = b""
        while len(response) < len(OK_RESPONSE):
            chunk = conn.recv(65536)
            if not chunk:
                break
            response += chunk
        conn.close()
        print(response.split(b" ", 2)[1].decode(), flush=True)
    return 0


def main(argv):
    if len(argv) == 5 and argv[0] == "server":
        return server(int(argv[1]), int(argv[2]), argv[3], argv[4])
    if len(argv) == 5 and argv[0] == "client":
        return client(int(argv[1]), argv[2], int(argv[3]), int(argv[4]))
    if len(argv) == 4 and argv[0] == "normal":
        return normal(int(argv[1]), argv[2], int(argv[3]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
