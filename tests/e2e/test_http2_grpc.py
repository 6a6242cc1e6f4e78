"""Acceptance: HTTP/2 and gRPC, traced from real programs with no change to them.

- HTTP/2 requests (nginx `listen ... ssl http2;` and h2c, Node's node:http2, curl
  --http2 / --http2-prior-knowledge, h2load's multiplexed streams) become spans with
  the same fields as HTTP/1 spans and protocol_version "2", counted once in
  http_{server,client}_request_duration_seconds with the HTTP/1 labels.
- gRPC calls (content-type application/grpc: Python grpcio's greeter over h2c and
  TLS, grpc-go's health service) become RPC spans (rpc_system_name "grpc",
  rpc_method "/package.Service/Method", rpc_response_status_code the status name,
  rpc_grpc_status_code its number) counted in rpc_{server,client}_call_duration_seconds
  and never in the http_* histograms.
- A gRPC connection whose HPACK dynamic table was filled before the agent started
  yields one span per later call, none garbled: what could not be decoded is left
  empty and the span is marked partial (sonde_partial_exchanges_total counts them).

Processes are selected only by the free ports these tests pick (SONDE_OPEN_PORT):
the servers listen on them, the clients connect to them, so both sides are traced.
Peers: /usr/bin/python3 (the only Python here that imports Debian's grpc; stubs made
by grpc_tools.protoc into the e2e cache), grpc-go 1.33 from /usr/share/gocode (GOPATH
mode, binary cached), nginx 1.22, Node 20, curl 7.88, h2load (nghttp2-client).
"""

import collections
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

import harness as h

PY = "/usr/bin/python3"
GREETER = os.path.join(h.SERVERS, "grpc_greeter.py")
STUBS = os.path.join(h.CACHE, "grpc_greeter_py")
GREETER_METHOD = "/helloworld.Greeter/SayHello"
HEALTH_METHOD = "/grpc.health.v1.Health/Check"

GRPC_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}
CODE_NAMES = {v: k for k, v in GRPC_CODES.items()}
# OTel RPC conventions: a server span fails only on the codes that blame the server.
SERVER_FAULT_CODES = {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL",
                      "UNAVAILABLE", "DATA_LOSS"}

# Greeter names: "missing*" -> NOT_FOUND, "bad*" -> INVALID_ARGUMENT, others OK.
GREETER_NAMES = ["alice", "missing1", "bob", "bad1", "carol", "missing2", "dave", "erin",
                 "bad2", "frank"]

CERT = KEY = None


def setUpModule():
    global CERT, KEY
    CERT, KEY = h.self_signed_cert("sonde-e2e-h2")
    generate_greeter_stubs()


def tearDownModule():
    h.remove_cert(CERT, KEY)


# ---- peers

def generate_greeter_stubs():
    """greeter_pb2*.py from greeter.proto, once per change of the .proto."""
    proto = os.path.join(h.SERVERS, "greeter.proto")
    outs = [os.path.join(STUBS, n) for n in ("greeter_pb2.py", "greeter_pb2_grpc.py")]
    if all(os.path.exists(p) and os.path.getmtime(p) >= os.path.getmtime(proto) for p in outs):
        return
    os.makedirs(STUBS, exist_ok=True)
    subprocess.run([PY, "-m", "grpc_tools.protoc", "-I", h.SERVERS, "--python_out", STUBS,
                    "--grpc_python_out", STUBS, proto], check=True)


def go_grpc_binary(source, name):
    """A Go program using grpc-go from /usr/share/gocode (GOPATH mode), cached."""
    os.makedirs(h.CACHE, exist_ok=True)
    out = os.path.join(h.CACHE, name)
    src = os.path.join(h.SERVERS, source)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        env = dict(os.environ, GO111MODULE="off",
                   GOPATH=os.path.join(h.CACHE, "gopath") + ":/usr/share/gocode",
                   GOCACHE=os.path.join(h.CACHE, "gocache"), GOFLAGS="")
        subprocess.run(["go", "build", "-o", out, src], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return out


def greeter_server(port, tls=False):
    argv = [PY, GREETER, "server", STUBS, str(port)]
    if tls:
        argv += ["--tls", CERT, KEY]
    return h.Server(argv, port, name="python grpc greeter", exe_hint="python3")


def health_server(port):
    return h.Server([go_grpc_binary("grpc_health.go", "grpc_health"), "server", str(port)],
                    port, name="go grpc health", exe_hint="grpc_health")


def nginx_h2_server(port, tls=False):
    workdir = tempfile.mkdtemp(prefix="sonde-e2e-nginx-h2-")
    argv = ["python3", os.path.join(h.SERVERS, "nginx_h2_server.py"), str(port), workdir]
    if tls:
        argv += ["--tls", CERT, KEY]
    return h.Server(argv, port, name="nginx h2", exe_hint="nginx", process_count=2)


def node_h2_server(port, tls=False):
    argv = ["node", os.path.join(h.SERVERS, "http2_peer.js"), "server", str(port)]
    if tls:
        argv += ["--tls", CERT, KEY]
    return h.Server(argv, port, name="node http2", exe_hint="node")


class Call:
    """One gRPC call a client made and the status it got."""

    def __init__(self, pid, method, code, local_port):
        self.pid, self.method, self.code, self.local_port = pid, method, code, local_port

    def __repr__(self):
        return f"{self.method} -> {self.code} (pid {self.pid}, port {self.local_port})"


Request = h.ClientRequest
run_client = h.run_client


def expected_greeter_code(name):
    if name.startswith("missing"):
        return "NOT_FOUND"
    if name.startswith("bad"):
        return "INVALID_ARGUMENT"
    return "OK"


def parse_greeter_lines(pid, names, lines):
    assert len(lines) == len(names), lines
    calls = []
    for name, line in zip(names, lines):
        got_name, code, local = line.split()
        assert got_name == name and code == expected_greeter_code(name), f"{name}: {line}"
        calls.append(Call(pid, GREETER_METHOD, code, int(local)))
    return calls


def greeter_client(port, names, tls=False):
    """One client process, one channel; [Call] in call order."""
    argv = [PY, GREETER, "client", STUBS, str(port)] + (["--tls", CERT] if tls else []) + names
    pid, lines = run_client("grpc greeter client", argv)
    return parse_greeter_lines(pid, names, lines)


# Check(service) of grpc_health.go's server: known services answer OK, others NOT_FOUND.
HEALTH_SERVICES = ["-", "sonde.Serving", "nope", "sonde.Down", "-", "also.missing",
                   "sonde.Serving", "nope", "-"]
HEALTH_EXPECTED = {"-": ("OK", "SERVING"), "sonde.Serving": ("OK", "SERVING"),
                   "sonde.Down": ("OK", "NOT_SERVING")}


def health_client(port, services):
    argv = [go_grpc_binary("grpc_health.go", "grpc_health"), "client", str(port)] + services
    pid, lines = run_client("go grpc health client", argv)
    assert len(lines) == len(services), lines
    calls = []
    for service, line in zip(services, lines):
        got, code, serving, local = line.split()
        want = HEALTH_EXPECTED.get(service, ("NOT_FOUND", "-"))
        assert got == service and (CODE_NAMES[int(code)], serving) == want, f"{service}: {line}"
        calls.append(Call(pid, HEALTH_METHOD, CODE_NAMES[int(code)], int(local)))
    return calls


def curl_h2(port, plan, tls):
    """One curl per request over HTTP/2 (ALPN h2 with TLS, prior knowledge without)."""
    done = []
    for method, path, body, want in plan:
        argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{local_port} %{http_version}",
                "-X", method]
        argv += ["--http2", "--cacert", CERT] if tls else ["--http2-prior-knowledge"]
        if body is not None:
            argv += ["--data-binary", body]
        argv.append(f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}")
        pid, lines = run_client("curl", argv, timeout=30)
        status, local_port, version = lines[0].split()
        assert (int(status), version) == (want, "2"), f"{method} {path}: {lines[0]}"
        done.append(Request(pid, method, path, want, int(local_port), len(body or "")))
    return done


def curl_h2_keepalive(port, plan):
    """One curl process, GETs of every path of `plan` on one TLS HTTP/2 connection (curl
    7.88 cannot reuse an h2c prior-knowledge connection)."""
    argv = ["curl", "-sS", "--http2", "--cacert", CERT, "-w",
            "%{http_code} %{local_port} %{http_version}\\n"]
    for _method, path, _body, _want in plan:
        argv += ["-o", "/dev/null", f"https://127.0.0.1:{port}{path}"]
    pid, lines = run_client("curl (keep-alive)", argv, timeout=30)
    assert len(lines) == len(plan), lines
    done = []
    for (method, path, _body, want), line in zip(plan, lines):
        status, local_port, version = line.split()
        assert (int(status), version) == (want, "2"), f"{path}: {line}"
        done.append(Request(pid, method, path, want, int(local_port)))
    assert len({r.local_port for r in done}) == 1, f"one connection: {done}"
    return done


def h2load(urls, total=200, clients=4, streams=10):
    """h2load's multiplexed streams; (pid, Counter of (method, path, status)). With
    several URLs each client cycles through them, so each gets total/len(urls)."""
    argv = ["h2load", "-c", str(clients), "-m", str(streams), "-n", str(total)] + urls
    pid, lines = run_client("h2load", argv, timeout=60)
    text = "\n".join(lines)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done", text)
    assert m and int(m.group(3)) == total, text
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    assert codes, text
    got = dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, codes.groups())))
    # /status/200 answers 2xx, /status/404 answers 4xx: one class per URL.
    want = collections.Counter()
    per_url = total // len(urls)
    assert per_url * len(urls) == total and total % clients == 0
    for url in urls:
        status = int(url.rsplit("/", 1)[1])
        want[("GET", "/" + url.split("/", 3)[3], status)] += per_url
    by_class = collections.Counter()
    for (_m, _p, status), n in want.items():
        by_class[f"{status // 100}xx"] += n
    assert {k: v for k, v in got.items() if v} == dict(by_class), f"{got} vs {want}\n{text}"
    return pid, want


NODE_PLAN = [
    ("GET", "/status/200", None, 200),
    ("POST", "/status/201", "name=sonde", 201),
    ("GET", "/bytes/1024", None, 200),
    ("GET", "/status/404", None, 404),
    ("PUT", "/status/500", "x" * 300, 500),
    ("GET", "/nope", None, 404),
    ("DELETE", "/status/204", None, 204),
    ("GET", "/status/200", None, 200),
]


def node_h2_client(base, plan, tls):
    argv = ["node", os.path.join(h.SERVERS, "http2_peer.js"), "client", base,
            CERT if tls else "-", json.dumps([[m, p, b] for m, p, b, _ in plan])]
    pid, lines = run_client("node http2 client", argv)
    assert len(lines) == len(plan), lines
    done = []
    for (method, path, body, want), line in zip(plan, lines):
        status, local_port = (int(v) for v in line.split())
        assert status == want, f"{method} {path}: {status}, wanted {want}"
        done.append(Request(pid, method, path, status, local_port, len(body or "")))
    assert len({r.local_port for r in done}) == 1, f"one session: {done}"
    return done


# ---- reading what the agent reported

def describe(spans):
    rows = []
    for s in spans:
        row = (f"    {s.get('kind')} pid={s.get('pid')} {s.get('method')!r} {s.get('path')!r} "
               f"{s.get('status')} v={s.get('protocol_version')} scheme={s.get('scheme')} "
               f"local={s.get('local_port')} peer={s.get('peer_port')}")
        if "rpc_method" in s or "rpc_system_name" in s:
            row += (f" rpc={s.get('rpc_system_name')} {s.get('rpc_method')!r} "
                    f"{s.get('rpc_response_status_code')!r}/{s.get('rpc_grpc_status_code')}")
        for flag in ("partial", "stream_reset"):
            if s.get(flag):
                row += f" {flag}"
        if s.get("error_type"):
            row += f" error={s['error_type']}"
        rows.append(row)
    return "\n".join(rows) or "    (none)"


def by_start(spans):
    return sorted(spans, key=lambda s: s["start_unix_ns"])


class Http2TestCase(unittest.TestCase):
    def wait_spans(self, agent, select, count, what, timeout=10):
        """Waits for `count` spans matching select(span); then, after a pause in
        which extras would show up, returns all of them (maybe more)."""
        deadline = time.monotonic() + timeout
        while len(got := [s for s in agent.spans() if select(s)]) < count:
            if time.monotonic() > deadline:
                every = agent.spans()
                self.fail(f"wanted {count} {what} within {timeout}s, got {len(got)}:\n"
                          f"{describe(got)}\n  every span the agent printed ({len(every)}):\n"
                          f"{describe(every[:40])}")
            time.sleep(0.1)
        time.sleep(0.4)
        return [s for s in agent.spans() if select(s)]

    def server_spans(self, agent, port, count, exclude=()):
        return self.wait_spans(
            agent, lambda s: s["kind"] == "server" and s["local_port"] == port
            and s["span_id"] not in exclude, count, f"server spans on port {port}")

    def client_spans(self, agent, pids, count, exclude=()):
        return self.wait_spans(
            agent, lambda s: s["kind"] == "client" and s["pid"] in pids
            and s["span_id"] not in exclude, count, f"client spans from pids {sorted(pids)}")

    # -- HTTP/2

    def check_h2_span(self, s, scheme, port):
        self.assertEqual(s.get("protocol_version"), "2", s)
        self.assertEqual(s.get("scheme"), scheme, s)
        self.assertEqual(s.get("server_port"), port, s)
        self.assertEqual(s.get("server_address"), "127.0.0.1", s)
        self.assertNotIn("rpc_method", s, f"an HTTP/2 request is not an RPC: {s}")
        self.assertFalse(s.get("partial"), s)
        self.assertFalse(s.get("stream_reset"), s)

    def assert_h2_requests(self, agent, port, scheme, server_pids, requests, client_pids=None,
                           exclude=()):
        """Exactly one server span per request (and one client span when the client is
        known), HTTP/2, matched to the request by its connection's port. Returns the
        spans' ids."""
        n = len(requests)
        want = collections.Counter(r.key for r in requests)
        by_port = collections.defaultdict(collections.Counter)
        for r in requests:
            by_port[r.local_port][r.key] += 1

        server = self.server_spans(agent, port, n, exclude)
        self.assertEqual(len(server), n, describe(server))
        self.assertEqual(collections.Counter((s["method"], s["path"], s["status"])
                                             for s in server), want, describe(server))
        got_by_port = collections.defaultdict(collections.Counter)
        for s in server:
            self.check_h2_span(s, scheme, port)
            self.assertIn(s["pid"], server_pids, s)
            self.assertEqual(s["local_address"], "127.0.0.1", s)
            self.assertEqual(s["peer_address"], "127.0.0.1", s)
            got_by_port[s["peer_port"]][(s["method"], s["path"], s["status"])] += 1
        self.assertEqual(dict(got_by_port), dict(by_port), describe(server))

        client = []
        if client_pids is not None:
            client = self.client_spans(agent, client_pids, n, exclude)
            self.assertEqual(len(client), n, describe(client))
            self.assertEqual(collections.Counter((s["method"], s["path"], s["status"])
                                                 for s in client), want, describe(client))
            got_by_port = collections.defaultdict(collections.Counter)
            for s in client:
                self.check_h2_span(s, scheme, port)
                self.assertEqual(s["peer_port"], port, s)
                got_by_port[s["local_port"]][(s["method"], s["path"], s["status"])] += 1
            self.assertEqual(dict(got_by_port), dict(by_port), describe(client))

        # Body sizes: the DATA frames' payload, as for HTTP/1 the body.
        body_of = {}
        for r in requests:
            body_of.setdefault((r.local_port, r.key), set()).add(r.body_len)
        for s in server + client:
            conn = s["peer_port"] if s["kind"] == "server" else s["local_port"]
            key = (s["method"], s["path"], s["status"])
            self.assertIn(s["request_body_bytes"], body_of[(conn, key)], s)
            if s["path"] == "/bytes/1024":
                self.assertEqual(s["response_body_bytes"], 1024, s)
        return {s["span_id"] for s in server + client}

    def assert_http_metrics(self, agent, port, scheme, sent, sides=("server", "client")):
        """http_*_request_duration_seconds_count per method and status = `sent`
        (Counter of (method, path, status)), nothing under the RPC histograms."""
        samples = agent.metrics()
        by_method_status = collections.Counter()
        for (method, _path, status), n in sent.items():
            by_method_status[(method, status)] += n
        total = sum(sent.values())
        for side in sides:
            family = f"http_{side}_request_duration_seconds_count"
            self.assertEqual(h.metric_sum(samples, family, server_port=port), total, family)
            self.assertEqual(h.metric_sum(samples, family, server_port=port, url_scheme=scheme,
                                          server_address="127.0.0.1"), total, family)
            for (method, status), n in by_method_status.items():
                self.assertEqual(
                    h.metric_sum(samples, family, server_port=port, http_request_method=method,
                                 http_response_status_code=status), n,
                    f"{family} {method} {status}")
            self.assertEqual(h.metric_sum(samples, f"rpc_{side}_call_duration_seconds_count",
                                          server_port=port), 0,
                             f"HTTP/2 requests counted as RPCs ({side})")

    # -- gRPC

    def check_rpc_span(self, s, call, scheme, port, partial_ok=False):
        """An RPC span for `call`; with partial_ok, fields the agent could not decode may
        be empty (the span must then say partial)."""
        self.assertEqual(s.get("protocol_version"), "2", s)
        self.assertEqual(s.get("scheme"), scheme, s)
        self.assertEqual(s.get("server_port"), port, s)
        self.assertEqual(s.get("server_address"), "127.0.0.1", s)
        self.assertFalse(s.get("stream_reset"), s)
        if partial_ok and s.get("partial"):
            # Never a wrong value: what is there is exact, the rest is empty.
            self.assertIn(s.get("rpc_method"), (call.method, "", None), s)
            self.assertIn(s.get("path"), (call.method, ""), s)
            if s.get("rpc_system_name") is not None:
                self.assertEqual(s["rpc_system_name"], "grpc", s)
            if s.get("rpc_response_status_code"):
                self.assertEqual(s["rpc_response_status_code"], call.code, s)
            if s.get("rpc_grpc_status_code") is not None:
                self.assertEqual(s["rpc_grpc_status_code"], GRPC_CODES[call.code], s)
            return
        self.assertFalse(s.get("partial"), s)
        self.assertEqual(s.get("rpc_system_name"), "grpc", s)
        self.assertEqual(s.get("rpc_method"), call.method, s)
        self.assertEqual(s.get("path"), call.method, s)
        self.assertEqual(s.get("method"), "POST", s)
        self.assertEqual(s.get("status"), 200, s)
        self.assertEqual(s.get("rpc_response_status_code"), call.code, s)
        self.assertEqual(s.get("rpc_grpc_status_code"), GRPC_CODES[call.code], s)
        fails = call.code in SERVER_FAULT_CODES if s["kind"] == "server" else call.code != "OK"
        self.assertEqual(s.get("error_type"), call.code if fails else "", s)

    def assert_grpc_calls(self, agent, port, scheme, server_pids, calls, client_pids=None):
        """One server span (and client span) per call, in call order (every client here
        makes its calls one after the other), with the call's method and status."""
        n = len(calls)
        client_ports = {c.local_port for c in calls}
        server = by_start(self.server_spans(agent, port, n))
        self.assertEqual(len(server), n, describe(server))
        self.assertEqual([(s.get("rpc_method"), s.get("rpc_response_status_code"))
                          for s in server], [(c.method, c.code) for c in calls],
                         describe(server))
        for s, c in zip(server, calls):
            self.check_rpc_span(s, c, scheme, port)
            self.assertIn(s["pid"], server_pids, s)
            self.assertEqual(s["peer_port"], c.local_port, s)
        sides = [("server", server)]
        if client_pids is not None:
            client = by_start(self.client_spans(agent, client_pids, n))
            self.assertEqual(len(client), n, describe(client))
            self.assertEqual([(s.get("rpc_method"), s.get("rpc_response_status_code"))
                              for s in client], [(c.method, c.code) for c in calls],
                             describe(client))
            for s, c in zip(client, calls):
                self.check_rpc_span(s, c, scheme, port)
                self.assertEqual(s["pid"], c.pid, s)
                self.assertEqual(s["peer_port"], port, s)
                self.assertIn(s["local_port"], client_ports, s)
            sides.append(("client", client))
        self.assert_rpc_metrics(agent, port, sides, calls)

    def assert_rpc_metrics(self, agent, port, sides, calls):
        samples = agent.metrics()
        n = len(calls)
        want = collections.Counter((c.method, c.code) for c in calls)
        for side, spans in sides:
            services = {s["service_name"] for s in spans}
            self.assertEqual(len(services), 1, f"{side}: {services}")
            service = services.pop()
            family = f"rpc_{side}_call_duration_seconds_count"
            self.assertEqual(h.metric_sum(samples, family, server_port=port), n,
                             f"{family}: {[x for x in samples if x[0] == family]}")
            for (method, code), count in want.items():
                self.assertEqual(
                    h.metric_sum(samples, family, rpc_system_name="grpc", rpc_method=method,
                                 rpc_response_status_code=code,
                                 rpc_grpc_status_code=GRPC_CODES[code],
                                 service_name=service,
                                 server_address="127.0.0.1", server_port=port), count,
                    f"{family} {method} {code}: {[x for x in samples if x[0] == family]}")
            self.assertEqual(
                h.metric_sum(samples, f"http_{side}_request_duration_seconds_count",
                             server_port=port), 0, f"gRPC calls counted as HTTP ({side})")


# ---- 1. Python grpcio greeter, server and client both traced

class GrpcPythonGreeterTest(Http2TestCase):
    def run_greeter(self, tls):
        port = h.free_port()
        scheme = "https" if tls else "http"
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            with greeter_server(port, tls) as srv:
                agent.wait_server_instrumented(srv)
                if tls:
                    self.assertTrue(h.maps_libssl(srv.pid), "grpcio without the system libssl?")
                calls = greeter_client(port, GREETER_NAMES, tls)
                self.assertEqual(len({c.local_port for c in calls}), 1, "one channel")
                self.assert_grpc_calls(agent, port, scheme, {srv.pid}, calls,
                                       client_pids={calls[0].pid})

    def test_greeter_h2c(self):
        self.run_greeter(tls=False)

    def test_greeter_tls(self):
        self.run_greeter(tls=True)


# ---- 2. grpc-go health service, server and client both traced

class GrpcGoHealthTest(Http2TestCase):
    def test_health_check_h2c(self):
        go_grpc_binary("grpc_health.go", "grpc_health")  # build outside the timed part
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            with health_server(port) as srv:
                agent.wait_server_instrumented(srv)
                calls = health_client(port, HEALTH_SERVICES)
                self.assertIn("NOT_FOUND", {c.code for c in calls})
                self.assert_grpc_calls(agent, port, "http", {srv.pid}, calls,
                                       client_pids={calls[0].pid})


# ---- 3. nginx: curl (one connection per request, and one keep-alive connection)
# and h2load's multiplexed streams

# The POST goes to /upload, which reads the whole body before it answers: a `return`
# location may answer before curl's DATA frame has been read, and the server span then
# ends with request_body_bytes=0 (observed; it depends on how curl's writes land).
NGINX_PLAN = [
    ("GET", "/bytes/1024", None, 200),
    ("GET", "/missing.txt", None, 404),
    ("POST", "/upload", "name=sonde", 200),
    ("GET", "/status/200", None, 200),
    ("GET", "/status/404", None, 404),
]
NGINX_KEEPALIVE = [
    ("GET", "/status/200", None, 200),
    ("GET", "/bytes/1024", None, 200),
    ("GET", "/nothing/here", None, 404),
    ("GET", "/status/200", None, 200),
]


class Http2NginxTest(Http2TestCase):
    def run_nginx(self, tls):
        port = h.free_port()
        scheme = "https" if tls else "http"
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            with nginx_h2_server(port, tls) as srv:
                agent.wait_server_instrumented(srv)
                workers = set(h.nginx_worker_pids(srv))
                self.assertTrue(workers, "no nginx worker found")
                requests = curl_h2(port, NGINX_PLAN, tls)
                if tls:
                    requests += curl_h2_keepalive(port, NGINX_KEEPALIVE)
                seen = self.assert_h2_requests(agent, port, scheme, workers, requests,
                                               client_pids={r.pid for r in requests})
                sent = collections.Counter(r.key for r in requests)
                self.assert_http_metrics(agent, port, scheme, sent)

                base = f"{scheme}://127.0.0.1:{port}"
                pid, load = h2load([f"{base}/status/200", f"{base}/status/404"])
                total = sum(load.values())
                server = self.server_spans(agent, port, total, exclude=seen)
                self.assertEqual(len(server), total, describe(server))
                self.assertEqual(collections.Counter((s["method"], s["path"], s["status"])
                                                     for s in server), load, describe(server[:20]))
                for s in server:
                    self.check_h2_span(s, scheme, port)
                    self.assertIn(s["pid"], workers, s)
                self.assertEqual(len({s["peer_port"] for s in server}), 4, "h2load -c 4")
                client = self.client_spans(agent, {pid}, total, exclude=seen)
                self.assertEqual(len(client), total, describe(client[:20]))
                self.assertEqual(collections.Counter((s["method"], s["path"], s["status"])
                                                     for s in client), load, describe(client[:20]))
                for s in client:
                    self.check_h2_span(s, scheme, port)
                self.assert_http_metrics(agent, port, scheme, sent + load)

    def test_nginx_h2_tls_curl_and_h2load(self):
        self.run_nginx(tls=True)

    def test_nginx_h2c_curl_and_h2load(self):
        self.run_nginx(tls=False)


# ---- 4. Node http2 server and client (and curl for h2c)

class Http2NodeTest(Http2TestCase):
    def test_node_h2_tls(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            with node_h2_server(port, tls=True) as srv:
                agent.wait_server_instrumented(srv)
                requests = node_h2_client(f"https://127.0.0.1:{port}", NODE_PLAN, tls=True)
                self.assert_h2_requests(agent, port, "https", {srv.pid}, requests,
                                        client_pids={requests[0].pid})
                self.assert_http_metrics(agent, port, "https",
                                         collections.Counter(r.key for r in requests))

    def test_node_h2c_with_node_client_and_curl(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            with node_h2_server(port, tls=False) as srv:
                agent.wait_server_instrumented(srv)
                requests = node_h2_client(f"http://127.0.0.1:{port}", NODE_PLAN, tls=False)
                requests += curl_h2(port, [("GET", "/status/200", None, 200),
                                           ("POST", "/status/201", "abc", 201),
                                           ("GET", "/bytes/1024", None, 200),
                                           ("GET", "/status/503", None, 503)], tls=False)
                self.assert_h2_requests(agent, port, "http", {srv.pid}, requests,
                                        client_pids={r.pid for r in requests})
                self.assert_http_metrics(agent, port, "http",
                                         collections.Counter(r.key for r in requests))


# ---- W3C trace context in HTTP/2 headers (gRPC metadata travels the same way)

class Http2TraceContextTest(Http2TestCase):
    TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
    PARENT = "00f067aa0ba902b7"

    def test_traceparent_header_continues_the_trace(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            with node_h2_server(port, tls=False) as srv:
                agent.wait_server_instrumented(srv)
                argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{local_port}",
                        "--http2-prior-knowledge", "-H",
                        f"traceparent: 00-{self.TRACE}-{self.PARENT}-01",
                        f"http://127.0.0.1:{port}/status/200"]
                _pid, lines = run_client("curl", argv, timeout=30)
                status, local_port = (int(v) for v in lines[0].split())
                self.assertEqual(status, 200)
                server = self.wait_spans(
                    agent, lambda s: s.get("kind") == "server" and s.get("peer_port") == local_port,
                    1, "server span of the traced request")
                self.assertEqual(len(server), 1, describe(server))
                span = server[0]
                self.assertEqual(span.get("protocol_version"), "2", span)
                self.assertEqual(span.get("trace_id"), self.TRACE, span)
                self.assertEqual(span.get("parent_span_id"), self.PARENT, span)
                self.assertRegex(span.get("span_id", ""), r"^[0-9a-f]{16}$")
                self.assertNotEqual(span.get("span_id"), self.PARENT)


# ---- 5. A gRPC connection older than the agent: its HPACK dynamic table was
# filled by calls the agent never saw.

WARM_CALLS = 5
LATE_NAMES = ["late1", "missing-late", "late2", "late3", "bad-late", "late4", "late5",
              "missing-late2"]


class GrpcPreexistingConnectionTest(Http2TestCase):
    def run_preexisting(self, tls):
        port = h.free_port()
        scheme = "https" if tls else "http"
        with greeter_server(port, tls) as srv:
            argv = [PY, GREETER, "client", STUBS, str(port)] + (["--tls", CERT] if tls else [])
            client = subprocess.Popen(argv + ["--warm", str(WARM_CALLS)] + LATE_NAMES,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
            try:
                warm = client.stdout.readline().decode().split()
                self.assertEqual(warm[:1], ["WARM"], client.stderr.read().decode()
                                 if client.poll() is not None else warm)
                warm_port = int(warm[1])
                with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
                    agent.wait_instrumented(srv.pid)
                    agent.wait_instrumented(client.pid)
                    samples = agent.metrics()
                    self.assertIn("sonde_partial_exchanges_total", {n for n, _, _ in samples},
                                  "the agent exports no sonde_partial_exchanges_total")
                    self.assertEqual(h.metric_sum(samples, "sonde_partial_exchanges_total"), 0)
                    client.stdin.write(b"go\n")
                    client.stdin.flush()
                    out, err = client.communicate(timeout=60)
                    self.assertEqual(client.returncode, 0, err.decode())
                    calls = parse_greeter_lines(client.pid, LATE_NAMES, out.decode().splitlines())
                    self.assertEqual({c.local_port for c in calls}, {warm_port},
                                     "the late calls reuse the warm channel's connection")
                    self.assert_late_calls(agent, port, scheme, srv.pid, calls)
            finally:
                if client.poll() is None:
                    client.kill()
                    client.wait()

    def assert_late_calls(self, agent, port, scheme, server_pid, calls):
        m = len(calls)
        server = by_start(self.server_spans(agent, port, m))
        client = by_start(self.client_spans(agent, {calls[0].pid}, m))
        self.assertEqual(len(server), m, describe(server))
        self.assertEqual(len(client), m, describe(client))
        for s, c in zip(server, calls):
            self.check_rpc_span(s, c, scheme, port, partial_ok=True)
            self.assertEqual(s["pid"], server_pid, s)
            self.assertEqual(s["peer_port"], c.local_port, s)
        for s, c in zip(client, calls):
            self.check_rpc_span(s, c, scheme, port, partial_ok=True)
            self.assertEqual(s["local_port"], c.local_port, s)
        partial = [s for s in server + client if s.get("partial")]
        exact = [s for s in server + client if not s.get("partial")]
        self.assertEqual(len(exact) + len(partial), 2 * m)
        print(f"\n  late calls on a pre-agent connection ({scheme}): {m} per side, "
              f"{len(partial)} partial spans "
              f"(server {sum(1 for s in server if s.get('partial'))}, "
              f"client {sum(1 for s in client if s.get('partial'))})")
        samples = agent.metrics()
        every_partial = [s for s in agent.spans() if s.get("partial")]
        self.assertEqual(h.metric_sum(samples, "sonde_partial_exchanges_total"),
                         len(every_partial), describe(every_partial))
        # What the spans say about the method is what the histograms count.
        for side, spans in (("server", server), ("client", client)):
            named = collections.Counter((s.get("rpc_response_status_code"))
                                        for s in spans if s.get("rpc_method") == GREETER_METHOD)
            family = f"rpc_{side}_call_duration_seconds_count"
            for code, count in named.items():
                if not code:
                    continue
                self.assertEqual(
                    h.metric_sum(samples, family, rpc_system_name="grpc",
                                 rpc_method=GREETER_METHOD, rpc_response_status_code=code,
                                 server_port=port), count, f"{family} {code}")

    def test_late_calls_on_preexisting_h2c_channel(self):
        self.run_preexisting(tls=False)

    def test_late_calls_on_preexisting_tls_channel(self):
        self.run_preexisting(tls=True)


if __name__ == "__main__":
    unittest.main()
