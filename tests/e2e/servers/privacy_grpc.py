#!/usr/bin/python3
"""The gRPC greeter of grpc_greeter.py with secrets everywhere gRPC carries
them, for Sonde's privacy end-to-end test. Run with /usr/bin/python3.

  privacy_grpc.py server STUBS PORT MARKER [--tls CERT KEY]
      Serves helloworld.Greeter on 127.0.0.1:PORT, prints "READY PORT".
      SayHello sends initial metadata (x-secret-initial, a -bin key too) and
      trailing metadata (x-secret-trailing) holding MARKER plus a tag, and
      answers "<MARKER>respmessage <name>"; a name starting with "missing"
      fails NOT_FOUND with details (grpc-message) "<MARKER>respdetails".
  privacy_grpc.py client STUBS PORT MARKER [--tls CA] NAME...
      First opens and closes one TCP connection to PORT, prints "CONNECTED"
      and waits for a line on stdin (the test waits until the agent
      instruments this process). Then one channel; each call sends the
      metadata authorization, cookie, x-secret and x-secret-bin holding
      MARKER plus a tag, and the request message NAME. Prints "<name> <status code name>" per call.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpc_greeter import load_stubs, open_channel, run_greeter_server  # noqa: E402


def serve(stubs, port, marker, tls):
    import grpc
    pb2, pb2_grpc = load_stubs(stubs)

    class Greeter(pb2_grpc.GreeterServicer):
        def SayHello(self, request, context):
            context.send_initial_metadata((("x-secret-initial", f"{marker}respinitial"),
                                           ("x-secret-initial-bin", f"{marker}respbin".encode())))
            context.set_trailing_metadata((("x-secret-trailing", f"{marker}resptrailing"),))
            if request.name.startswith("missing"):
                context.abort(grpc.StatusCode.NOT_FOUND, f"{marker}respdetails")
            return pb2.HelloReply(message=f"{marker}respmessage {request.name}")

    return run_greeter_server(Greeter(), pb2_grpc, port, tls)


def client(stubs, port, marker, ca, names):
    import grpc
    pb2, pb2_grpc = load_stubs(stubs)
    socket.create_connection(("127.0.0.1", port), timeout=30).close()
    print("CONNECTED", flush=True)
    sys.stdin.readline()
    channel = open_channel(port, ca)
    stub = pb2_grpc.GreeterStub(channel)
    metadata = (("authorization", f"Bearer {marker}reqauth"),
                ("cookie", f"session={marker}reqcookie"),
                ("x-secret", f"{marker}reqheader"),
                ("x-secret-bin", f"{marker}reqbin".encode()))
    for name in names:
        try:
            stub.SayHello(pb2.HelloRequest(name=name), metadata=metadata, timeout=30)
            code = "OK"
        except grpc.RpcError as err:
            code = err.code().name
        print(f"{name} {code}", flush=True)
    channel.close()
    return 0


def main(argv):
    if len(argv) >= 4 and argv[0] in ("server", "client"):
        mode, stubs, port, marker, rest = argv[0], argv[1], int(argv[2]), argv[3], argv[4:]
        if mode == "server":
            if rest and not (rest[0] == "--tls" and len(rest) == 3):
                raise SystemExit(__doc__)
            return serve(stubs, port, marker, tuple(rest[1:]) if rest else None)
        ca = None
        if rest[:1] == ["--tls"]:
            ca, rest = rest[1], rest[2:]
        return client(stubs, port, marker, ca, rest)
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
