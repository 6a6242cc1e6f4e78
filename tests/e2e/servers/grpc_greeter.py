#!/usr/bin/python3
"""The gRPC greeter (helloworld.Greeter/SayHello) of Sonde's HTTP/2 end-to-end
tests: server and client, in Python's grpcio (C-core: its HTTP/2 and HPACK are
grpc's own; TLS goes through the system libssl). Run with /usr/bin/python3,
the only interpreter here that imports Debian's grpc.

  grpc_greeter.py server STUBS PORT [--tls CERT KEY]
      Serves on 127.0.0.1:PORT and prints "READY PORT". SayHello(name):
        name starting with "missing"  -> NOT_FOUND         ("no such name: ...")
        name starting with "bad"      -> INVALID_ARGUMENT  ("bad name: ...")
        anything else                 -> OK, "Hello NAME from PEER"
      where PEER is the caller's "ipv4:127.0.0.1:PORT" (also in the error
      details), so a client learns its own connection's local port.

  grpc_greeter.py client STUBS PORT [--tls CA] [--warm K] NAME...
      One channel (one HTTP/2 connection) for every call. With --warm K it
      first makes K OK calls, prints "WARM <local port>" and waits for a line
      on stdin before making the NAME calls. For each NAME call it prints
      "<name> <status code name> <local port>".

STUBS is a directory holding greeter_pb2.py and greeter_pb2_grpc.py; when they
are missing they are generated there from greeter.proto (beside this file)
with grpc_tools.protoc.
"""

import os
import signal
import subprocess
import sys
import threading
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "greeter.proto")


def load_stubs(stubs):
    os.makedirs(stubs, exist_ok=True)
    wanted = [os.path.join(stubs, n) for n in ("greeter_pb2.py", "greeter_pb2_grpc.py")]
    if not all(os.path.exists(p) and os.path.getmtime(p) >= os.path.getmtime(PROTO)
               for p in wanted):
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", HERE,
                        "--python_out", stubs, "--grpc_python_out", stubs, PROTO],
                       check=True)
    sys.path.insert(0, stubs)
    import greeter_pb2
    import greeter_pb2_grpc
    return greeter_pb2, greeter_pb2_grpc


def peer_port(peer):
    """'ipv4:127.0.0.1:54321' -> 54321."""
    return int(peer.rsplit(":", 1)[1])


def run_greeter_server(greeter, pb2_grpc, port, tls):
    """Serves `greeter` on 127.0.0.1:PORT (over TLS with tls=(CERT, KEY)),
    prints "READY PORT" and runs until SIGTERM or SIGINT."""
    import grpc
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_GreeterServicer_to_server(greeter, server)
    address = f"127.0.0.1:{port}"
    if tls:
        with open(tls[0], "rb") as f:
            cert = f.read()
        with open(tls[1], "rb") as f:
            key = f.read()
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        bound = server.add_insecure_port(address)
    if bound != port:
        sys.stderr.write(f"could not bind {address}\n")
        return 1
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"READY {port}", flush=True)
    stop.wait()
    server.stop(grace=1).wait()
    return 0


def open_channel(port, ca):
    """One channel to 127.0.0.1:PORT, over TLS trusting CA when given."""
    import grpc
    target = f"127.0.0.1:{port}"
    if ca:
        with open(ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel(target, creds)
    return grpc.insecure_channel(target)


def serve(stubs, port, tls):
    import grpc
    pb2, pb2_grpc = load_stubs(stubs)

    class Greeter(pb2_grpc.GreeterServicer):
        def SayHello(self, request, context):
            name, peer = request.name, context.peer()
            if name.startswith("missing"):
                context.abort(grpc.StatusCode.NOT_FOUND, f"no such name: {name} from {peer}")
            if name.startswith("bad"):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad name: {name} from {peer}")
            return pb2.HelloReply(message=f"Hello {name} from {peer}")

    return run_greeter_server(Greeter(), pb2_grpc, port, tls)


def call(stub, pb2, grpc, name):
    """(status code name, local port of the connection)."""
    try:
        reply = stub.SayHello(pb2.HelloRequest(name=name), timeout=30)
        return "OK", peer_port(reply.message.rsplit(" from ", 1)[1])
    except grpc.RpcError as err:
        details = err.details() or ""
        port = peer_port(details.rsplit(" from ", 1)[1]) if " from " in details else 0
        return err.code().name, port


def client(stubs, port, ca, warm, names):
    import grpc
    pb2, pb2_grpc = load_stubs(stubs)
    channel = open_channel(port, ca)
    stub = pb2_grpc.GreeterStub(channel)
    if warm:
        ports = set()
        for i in range(warm):
            code, local = call(stub, pb2, grpc, f"warm{i}")
            if code != "OK":
                sys.stderr.write(f"warm-up call {i}: {code}\n")
                return 1
            ports.add(local)
        print(f"WARM {' '.join(map(str, sorted(ports)))}", flush=True)
        if not sys.stdin.readline():
            return 1
    for name in names:
        code, local = call(stub, pb2, grpc, name)
        print(f"{name} {code} {local}", flush=True)
    channel.close()
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "server":
        rest = argv[3:]
        tls = (rest[1], rest[2]) if rest[:1] == ["--tls"] and len(rest) == 3 else None
        if rest and not tls:
            raise SystemExit(__doc__)
        return serve(argv[1], int(argv[2]), tls)
    if len(argv) >= 3 and argv[0] == "client":
        stubs, port, rest = argv[1], int(argv[2]), argv[3:]
        ca, warm = None, 0
        while rest and rest[0].startswith("--"):
            if rest[0] == "--tls":
                ca, rest = rest[1], rest[2:]
            elif rest[0] == "--warm":
                warm, rest = int(rest[1]), rest[2:]
            else:
                raise SystemExit(__doc__)
        return client(stubs, port, ca, warm, rest)
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
