"""Issue 8, privacy by default: spans and metrics carry no body bytes, no header
values and no query strings, and `url.full` is never exported.

One agent exports spans and metrics over OTLP to the independent receiver
(test_otlp_export.Receiver), serves Prometheus and prints spans as JSON, while
clients and servers of every protocol path it parses exchange requests full of
secret markers (harness.SECRET_MARKER, then a per-run token, then a tag naming
the place):

- HTTP/1.1 in plaintext and through OpenSSL (the uprobes' cleartext): Python
  http.server (privacy_server.py) answering curl and a raw-socket client;
- HTTP/2, h2c and h2 over TLS: Node's node:http2 (privacy_h2_peer.js)
  answering curl and a node:http2 client;
- gRPC in plaintext and over TLS: Python grpcio (privacy_grpc.py).

Markers sit in request and response bodies (a chunked one, its trailer, gRPC
messages), request header values (Authorization, Cookie, User-Agent, Referer,
a custom X-Secret, gRPC metadata, a -bin one too), response header values and
trailers (Set-Cookie, WWW-Authenticate, ETag, Location, grpc-message),
query strings, fragments, the userinfo of an absolute-form request target, and
the tracestate. Host and :authority hold markers too: Sonde takes
server.address from the connection's address, never from Host (docs/spans.md),
so no host name the client wrote is exported. Paths and methods do not: they
are exported on purpose (url.path, http.route, rpc.method).

Everything the agent emitted is then searched, whole and not only attributes:
every OTLP export the receiver decoded (as JSON, ids and bytes as hex), every
Prometheus scrape, every printed span, and the agent's log at its default
level. No marker may appear, as text, as hex or as the base64 a -bin gRPC value
travels in; the one exception is the W3C tracestate, which the agent uses: it
propagates it in the span's own traceState field (as W3C Trace Context asks),
and it must appear nowhere else. No attribute key is url.full, url.query,
url.fragment or a captured header (http.request.header.*,
http.response.header.*, rpc.grpc.request.metadata.*, ...). And the capture is
not empty: every server's spans, clients' spans and histograms arrived.
"""

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import unittest

import harness as h
from test_http2_grpc import STUBS, generate_greeter_stubs
from test_otlp_export import Receiver

PY = "/usr/bin/python3"
TRACE = "5af7183fb1d4cf5f8e3a2c6d9b0e4f17"
PARENT = "6e0c63257de34c92"
# Attribute keys that would carry what must not leave the node.
FORBIDDEN_KEYS = re.compile(
    r"^(url\.full|url\.query|url\.fragment|http\.request\.header\..*|http\.response\.header\..*"
    r"|rpc\.(grpc\.)?(request|response)\.metadata\..*|http\.request\.body|http\.response\.body"
    r"|user_agent\.original|.*cookie.*|.*authorization.*)$", re.I)

CERT = KEY = None


def setUpModule():
    global CERT, KEY
    CERT, KEY = h.self_signed_cert("sonde-e2e-privacy")
    generate_greeter_stubs()


def tearDownModule():
    h.remove_cert(CERT, KEY)


class Markers:
    """Secret markers for one run: SECRET_MARKER + a token + the place's tag."""

    def __init__(self):
        self.prefix = h.SECRET_MARKER + secrets.token_hex(3)
        self.binary = []  # values sent base64-encoded (gRPC -bin metadata)

    def __call__(self, tag):
        return self.prefix + tag


def traceparent():
    return f"00-{TRACE}-{PARENT}-01"


def curl_argv(m, scheme, port, http2, tag):
    """curl with secrets in the query, fragment, headers, cookie and body."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
            "-H", f"Authorization: Bearer {m(tag + 'auth')}",
            "-b", f"session={m(tag + 'cookie')}",
            "-A", m(tag + "useragent"),
            "-H", f"X-Secret: {m(tag + 'header')}",
            "-H", f"Host: {m(tag + 'host')}",
            "-H", f"Referer: https://example.com/?{m(tag + 'referer')}",
            "-H", f"traceparent: {traceparent()}",
            "-H", f"tracestate: v={m(tag + 'tracestate')}",
            "--data-binary", m(tag + "body")]
    if scheme == "https":
        argv += ["--cacert", CERT]
    argv += ["--http2-prior-knowledge" if http2 and scheme == "http"
             else "--http2" if http2 else "--http1.1"]
    argv.append(f"{scheme}://127.0.0.1:{port}/status/201?token={m(tag + 'query')}"
                f"&x=1#{m(tag + 'fragment')}")
    return argv


def raw_http1_requests(m, port, tag):
    """Request bytes a browser or proxy could send, each on its own connection."""
    common = (f"Authorization: Basic {m(tag + 'auth')}\r\nCookie: a={m(tag + 'cookie')}\r\n"
              f"User-Agent: {m(tag + 'useragent')}\r\nX-Secret: {m(tag + 'header')}\r\n"
              f"Connection: close\r\n")
    chunk = m(tag + "chunk")
    return [
        f"GET /status/200?token={m(tag + 'query')}#{m(tag + 'fragment')} HTTP/1.1\r\n"
        f"Host: {m(tag + 'host')}\r\n{common}traceparent: {traceparent()}\r\n"
        f"tracestate: v={m(tag + 'tracestate')}\r\n\r\n",
        f"GET http://user:{m(tag + 'userinfo')}@{m(tag + 'abshost')}:{port}/status/404"
        f"?token={m(tag + 'absquery')}#{m(tag + 'absfragment')} HTTP/1.1\r\n"
        f"Host: {m(tag + 'host2')}\r\n{common}\r\n",
        f"POST /status/500?q={m(tag + 'query2')} HTTP/1.1\r\nHost: 127.0.0.1\r\n{common}"
        f"Transfer-Encoding: chunked\r\n\r\n{len(chunk):x}\r\n{chunk}\r\n0\r\n"
        f"X-Trailer: {m(tag + 'trailer')}\r\n\r\n",
    ]


def h2_plan(m, tag):
    headers = {"authorization": f"Bearer {m(tag + 'auth')}", "cookie": f"a={m(tag + 'cookie')}",
               "user-agent": m(tag + "useragent"), "x-secret": m(tag + "header"),
               "traceparent": traceparent(), "tracestate": f"v={m(tag + 'tracestate')}"}
    return [
        {"method": "GET", "path": f"/status/200?token={m(tag + 'query')}#{m(tag + 'fragment')}",
         "headers": headers, "body": None},
        {"method": "POST", "path": f"/status/404?token={m(tag + 'query2')}",
         "headers": headers, "body": m(tag + "body")},
        # Node's server resets this stream (nghttp2 refuses the :path); it was sent all the same.
        {"method": "GET", "path": f"http://user:{m(tag + 'userinfo')}@{m(tag + 'abshost')}/x"
                                  f"?token={m(tag + 'absquery')}#{m(tag + 'absfragment')}",
         "headers": headers, "body": None},
    ]


def run(argv, timeout=60):
    p = subprocess.run(argv, capture_output=True, timeout=timeout)
    assert p.returncode == 0, f"{argv[:3]}: rc {p.returncode}: {p.stderr.decode()}"
    return p.stdout.decode().split()


def run_held(agent, argv, timeout=60):
    """Runs one of the privacy clients, which connect once and wait: it goes on
    once the agent instruments it, so its own requests are traced from their
    first byte (a short-lived client can be done before the agent sees it)."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline()
        assert line == b"CONNECTED\n", (line, p.stderr.read1().decode())
        agent.wait_instrumented(p.pid)
        out, err = p.communicate(b"go\n", timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, f"{argv[:3]}: rc {p.returncode}: {err.decode()}"
    return out.decode().split()


def attribute_keys(node, found):
    """Every attribute key anywhere in a decoded export."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "attributes" and isinstance(value, list):
                found.update(a["key"] for a in value)
            attribute_keys(value, found)
    elif isinstance(node, list):
        for item in node:
            attribute_keys(item, found)
    return found


class PrivacyTest(unittest.TestCase):
    def test_no_body_header_value_or_query_string_leaves_the_agent(self):
        m = Markers()
        receiver = Receiver()
        ports = {name: h.free_port() for name in
                 ("h1", "h1tls", "h2c", "h2tls", "grpc", "grpctls")}
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.grpc_port}",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
               "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "1000",
               "SONDE_OPEN_PORT": ",".join(str(p) for p in ports.values()),
               # The most revealing route setting: the raw path is the route.
               "SONDE_ROUTES_UNMATCHED": "path"}
        servers = [
            h.Server(["python3", os.path.join(h.SERVERS, "privacy_server.py"), "server",
                      str(ports["h1"]), m("h1server")], ports["h1"], exe_hint="python3"),
            h.Server(["python3", os.path.join(h.SERVERS, "privacy_server.py"), "server",
                      str(ports["h1tls"]), m("h1tlsserver"), "--tls", CERT, KEY],
                     ports["h1tls"], exe_hint="python3"),
            h.Server(["node", os.path.join(h.SERVERS, "privacy_h2_peer.js"), "server",
                      str(ports["h2c"]), m("h2cserver")], ports["h2c"], exe_hint="node"),
            h.Server(["node", os.path.join(h.SERVERS, "privacy_h2_peer.js"), "server",
                      str(ports["h2tls"]), m("h2tlsserver"), "--tls", CERT, KEY],
                     ports["h2tls"], exe_hint="node"),
            h.Server([PY, os.path.join(h.SERVERS, "privacy_grpc.py"), "server", STUBS,
                      str(ports["grpc"]), m("grpcserver")], ports["grpc"], exe_hint="python3"),
            h.Server([PY, os.path.join(h.SERVERS, "privacy_grpc.py"), "server", STUBS,
                      str(ports["grpctls"]), m("grpctlsserver"), "--tls", CERT, KEY],
                     ports["grpctls"], exe_hint="python3"),
        ]
        agent = h.Agent(env=env)
        # The harness sets the log level; this test reads the log at the default level.
        del agent.env["SONDE_LOG_LEVEL"]
        started, passed = [], False
        try:
            try:
                agent.start()
                for server in servers:
                    started.append(server.start())
                    agent.wait_instrumented(server.pid)
                expected = self.drive(agent, m, ports)
                self.wait_for_everything(agent, receiver, ports, expected)
                scrape = agent.metrics_text()
            finally:
                for server in reversed(started):
                    server.stop()
                agent.stop()  # its log and printed spans are complete from here on
                receiver.stop(remove=False)
            self.check_nothing_leaked(m, agent, receiver, scrape)
            passed = True
        finally:
            if passed:
                os.unlink(receiver.out)
                shutil.rmtree(agent.workdir, ignore_errors=True)
            else:
                print(f"agent outputs kept in {agent.workdir}, OTLP exports in {receiver.out}")

    def drive(self, agent, m, ports):
        """Every client against its server; returns {port name: server spans expected}.
        curl runs as it is (its client spans are a bonus: it may be done before the agent
        instruments it); the other clients wait until they are instrumented."""
        h1 = os.path.join(h.SERVERS, "privacy_server.py")
        h2 = os.path.join(h.SERVERS, "privacy_h2_peer.js")
        grpc = os.path.join(h.SERVERS, "privacy_grpc.py")
        expected = {}
        for name, scheme in (("h1", "http"), ("h1tls", "https")):
            port = ports[name]
            self.assertEqual(run(curl_argv(m, scheme, port, False, name + "curl")), ["201"])
            requests = raw_http1_requests(m, port, name + "raw")
            self.assertEqual(run_held(agent, ["python3", h1, "client", str(port),
                                              CERT if scheme == "https" else "-",
                                              json.dumps(requests)]),
                             ["200", "200", "500"])  # the absolute form's path is not /status/
            expected[name] = 1 + len(requests)
        for name, scheme in (("h2c", "http"), ("h2tls", "https")):
            port = ports[name]
            self.assertEqual(run(curl_argv(m, scheme, port, True, name + "curl")), ["201"])
            plan = h2_plan(m, name + "node")
            got = run_held(agent, ["node", h2, "client", f"{scheme}://127.0.0.1:{port}",
                                   CERT if scheme == "https" else "-", json.dumps(plan)])
            self.assertEqual(got, ["200", "404", "reset"])
            expected[name] = 1 + len(plan)
        for name in ("grpc", "grpctls"):
            names = [m(name + "message"), "missing" + m(name + "message2")]
            tls = ["--tls", CERT] if name == "grpctls" else []
            got = run_held(agent, [PY, grpc, "client", STUBS, str(ports[name]),
                                   m(name + "client")] + tls + names)
            self.assertEqual(got, [names[0], "OK", names[1], "NOT_FOUND"])
            m.binary.append(m(name + "clientreqbin"))
            m.binary.append(m(name + "serverrespbin"))
            expected[name] = len(names)
        return expected

    def wait_for_everything(self, agent, receiver, ports, expected):
        """Waits until every server's spans, the clients' spans and the histograms arrived."""
        by_port = {str(p): n for n, p in ports.items()}

        def server_spans():
            counts = {}
            for _, _, span in receiver.spans():
                a = {x["key"]: x["value"] for x in span["attributes"]}
                port = a.get("server.port", {}).get("intValue")
                if span["kind"] == 2 and port in by_port:
                    counts[by_port[port]] = counts.get(by_port[port], 0) + 1
            return counts
        # The reset HTTP/2 stream may or may not make a span: at least the others.
        least = {n: c - (1 if n.startswith("h2") else 0) for n, c in expected.items()}
        h.wait_until(lambda: all(server_spans().get(n, 0) >= c for n, c in least.items()), 30,
                     interval=0.2, what=f"server spans {least} at the receiver")
        got = server_spans()
        for name, count in expected.items():
            self.assertLessEqual(got[name], count, got)
        # Both sides: the clients that waited to be instrumented were traced as well.
        clients = {x["value"].get("intValue") for _, _, span in receiver.spans()
                   if span["kind"] == 3 for x in span["attributes"] if x["key"] == "server.port"}
        self.assertEqual([n for p, n in by_port.items() if p not in clients], [],
                         "servers without client spans")

        def histograms():
            names = set()
            for export in receiver.metric_exports():
                for rm in export["body"]["resourceMetrics"]:
                    for sm in rm["scopeMetrics"]:
                        names.update(x["name"] for x in sm["metrics"])
            return names
        h.wait_until(lambda: {"http.server.request.duration", "http.client.request.duration",
                              "rpc.server.call.duration", "rpc.client.call.duration",
                              "http.server.request.body.size"} <= histograms(), 15,
                     interval=0.2, what="HTTP and RPC histograms at the receiver")
        samples = agent.metrics()
        for name in ("h1", "h1tls", "h2c", "h2tls"):
            counted = h.metric_sum(samples, "http_server_request_duration_seconds_count",
                                   server_port=ports[name])
            self.assertGreaterEqual(counted, least[name], name)
        for name in ("grpc", "grpctls"):
            self.assertEqual(h.metric_sum(samples, "rpc_server_call_duration_seconds_count",
                                          server_port=ports[name]), expected[name], name)

    def check_nothing_leaked(self, m, agent, receiver, scrape):
        exports = receiver.exports()
        self.assertTrue(any(e["signal"] == "traces" for e in exports))
        self.assertTrue(any(e["signal"] == "metrics" for e in exports))
        # The tracestate is used: carried in the span's traceState, as W3C Trace Context asks.
        propagated = 0
        for export in exports:
            if export["signal"] != "traces":
                continue
            for rs in export["body"]["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        state = span.get("traceState", "")
                        if state:
                            self.assertRegex(state, rf"^v={m.prefix}\w+tracestate$")
                            self.assertEqual(span["traceId"], TRACE)
                            span["traceState"] = ""
                            propagated += 1
        self.assertGreater(propagated, 0, "no span carries the incoming tracestate")
        # And the traceparent is used: server spans continue the incoming trace.
        self.assertTrue(any(span["traceId"] == TRACE and span["parentSpanId"] == PARENT
                            for _, _, span in receiver.spans()))

        keys = attribute_keys(exports, set())
        self.assertIn("url.path", keys)
        self.assertIn("rpc.method", keys)
        self.assertEqual(sorted(k for k in keys if FORBIDDEN_KEYS.match(k)), [])

        needles = [m.prefix, m.prefix.encode().hex()]
        needles += [base64.b64encode(v.encode()).decode().rstrip("=") for v in m.binary]
        dumps = {"OTLP exports": json.dumps(exports), "the Prometheus scrape": scrape,
                 "the printed spans": open(agent.stdout_path, errors="replace").read(),
                 "the agent's log": agent.logs()}
        self.assertGreater(dumps["the printed spans"].count("\n"), 10)
        leaks = []
        for where, text in dumps.items():
            for needle in needles:
                for found in re.finditer(re.escape(needle) + r"\w*", text, re.I):
                    at = found.start()
                    leaks.append(f"{where}: {found.group()} in ...{text[max(0, at - 200):at]}")
        self.assertEqual(leaks, [], "\n\n".join(leaks))
        self.assertNotIn("url.full", dumps["OTLP exports"])


if __name__ == "__main__":
    unittest.main()
