"""Issue 4, acceptance 1: spans and RED histograms reach an independent OTLP
receiver (Node, @grpc/grpc-js + the official generated decoders) over gRPC and
over HTTP/protobuf, from curl's requests to a Python and a Go server: the HTTP
semantic-convention attributes, the services' resources, the incoming trace
context, and histogram counts equal to the requests and to Prometheus."""

import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

import harness as h

RECEIVER = os.path.join(h.REPO, "tests", "e2e", "otlp_receiver", "receiver.js")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Receiver:
    """The independent OTLP receiver (receiver.js). Port 0: the kernel picks;
    stop() then start() again serves the same ports and appends to the same file."""

    def __init__(self, grpc_port=0, http_port=0, tls=None):
        subprocess.run([os.path.join(h.REPO, "scripts", "install-otlp-receiver.sh")], check=True)
        fd, self.out = tempfile.mkstemp(prefix="sonde-e2e-otlp-", suffix=".jsonl")
        os.close(fd)
        self.grpc_port, self.http_port = grpc_port, http_port
        self.tls_args = ["--tls-cert", tls[0], "--tls-key", tls[1]] if tls else []
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["node", RECEIVER, "--grpc-port", str(self.grpc_port),
                                      "--http-port", str(self.http_port), "--out", self.out]
                                     + self.tls_args,
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("READY"), line
        fields = dict(part.split("=") for part in line.split()[1:])
        self.grpc_port, self.http_port = int(fields["grpc"]), int(fields["http"])

    def exports(self):
        with open(self.out) as f:
            return [json.loads(line) for line in f if line.strip()]

    def spans(self):
        found = []
        for export in self.exports():
            if export["signal"] != "traces" or export["answer"] != "ok":
                continue
            for rs in export["body"]["resourceSpans"]:
                resource = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        found.append((export, resource, span))
        return found

    def metric_exports(self):
        return [e for e in self.exports() if e["signal"] == "metrics" and e["answer"] == "ok"]

    def stop(self, remove=True):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if remove:
            os.unlink(self.out)


def data_points(export):
    """(resource attributes, metric, data point) of every histogram point in one metrics export."""
    found = []
    for rm in export["body"]["resourceMetrics"]:
        resource = attrs(rm["resource"])
        for sm in rm["scopeMetrics"]:
            for metric in sm["metrics"]:
                for point in metric["histogram"]["dataPoints"]:
                    found.append((resource, metric, point))
    return found


def attrs(item):
    """A span's, resource's or data point's attributes as {key: value}, values as text."""
    out = {}
    for a in item["attributes"]:
        v = a["value"]
        out[a["key"]] = v.get("stringValue") or v.get("intValue")
    return out


DEFAULT_DURATION_BOUNDS = [0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5,
                           7.5, 10]
DEFAULT_SIZE_BOUNDS = [0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]

# (method, path, body, status, response body bytes) sent by curl to each server.
REQUESTS = [
    ("GET", "/status/200?secret=1", None, 200, len("status 200\n")),
    ("POST", "/status/500", b"x" * 10, 500, len("status 500\n")),
    ("GET", "/status/404", None, 404, len("status 404\n")),
    ("GET", "/bytes/1000", None, 200, 1000),
]


def curl(port, method, path, body, traceparent=None):
    argv = ["curl", "-sS", "-o", "/dev/null", "-X", method, f"http://127.0.0.1:{port}{path}"]
    if body is not None:
        argv += ["--data-binary", body.decode()]
    if traceparent:
        argv += ["-H", f"traceparent: {traceparent}"]
    subprocess.run(argv, check=True, timeout=30)


class OtlpExportTest(unittest.TestCase):
    """Acceptance 1: spans and metrics reach the independent receiver over one
    transport, from curl requests to a Python and a Go server; every span
    field, resource attribute and histogram value is checked."""

    def run_export(self, transport, configure):
        receiver = Receiver()
        py_port, go_port = h.free_port(), h.free_port()
        try:
            env, config = configure(receiver, py_port, go_port)
            env = dict(env, OTEL_BSP_SCHEDULE_DELAY="200", OTEL_METRIC_EXPORT_INTERVAL="1000",
                       SONDE_CONFIG_PATH=h.write_config(config))
            started = time.time_ns()
            with h.Agent(env=env) as agent, h.python_server(py_port) as py, \
                    h.go_server(go_port) as go:
                agent.wait_instrumented(py.pid)
                agent.wait_instrumented(go.pid)
                for port in (py_port, go_port):
                    for i, (method, path, body, _, _) in enumerate(REQUESTS):
                        curl(port, method, path, body,
                             f"00-{TRACE}-{PARENT}-01" if i == 0 else None)
                for port in (py_port, go_port):
                    agent.wait_server_requests(port, len(REQUESTS))
                servers = {py_port: (py, "py-api", "python"), go_port: (go, "go-api", None)}
                self.check_spans(receiver, servers, transport, started)
                self.check_metrics(receiver, agent, servers, transport, started)
                self.assertNotIn("secret", json.dumps(receiver.exports()))
                h.wait_until(lambda: h.metric_sum(agent.metrics(),
                                                  "sonde_spans_exported_total") >= 16,
                             5, what="sonde_spans_exported_total >= 16")
                return receiver.exports()
        finally:
            receiver.stop()

    def check_spans(self, receiver, servers, transport, started):
        ports = set(servers)

        def wanted():
            out = []
            for export, resource, span in receiver.spans():
                a = attrs(span)
                if a.get("server.port") not in {str(p) for p in ports}:
                    continue
                name = resource.get("process.executable.name", {}).get("stringValue")
                if span["kind"] == 2 or name == "curl":
                    out.append((export, resource, span))
            return out
        h.wait_until(lambda: len(wanted()) >= 4 * len(REQUESTS), 20,
                     what="server spans and curl's client spans at the receiver")
        spans = wanted()
        self.assertEqual(len(spans), 4 * len(REQUESTS), [s[2]["name"] for s in spans])
        host = socket.gethostname()
        for export, resource, span in spans:
            self.assertEqual(export["transport"], transport)
            a = attrs(span)
            port = int(a["server.port"])
            server_proc, service, language = servers[port]
            method, path, body, status, response_bytes = next(
                r for r in REQUESTS if r[1].split("?")[0] == a["url.path"])
            server = span["kind"] == 2
            r = {k: v.get("stringValue") or v.get("intValue") for k, v in resource.items()}
            self.assertEqual(r["host.name"], host)
            self.assertEqual(r["telemetry.sdk.name"], "sonde")
            self.assertRegex(r["telemetry.sdk.version"], r"^\d+\.\d+\.\d+")
            if server:
                self.assertEqual(span["name"], f"{method} " + (
                    "/bytes/*" if path.startswith("/bytes") else "/status/*"))
                self.assertEqual(a["http.route"], span["name"].split(" ")[1])
                self.assertEqual(r["service.name"], service)
                self.assertEqual(r["service.namespace"], "shop")
                self.assertEqual(r["process.pid"], str(server_proc.pid))
                self.assertEqual(r["service.instance.id"], f"{host}:{server_proc.pid}")
                exe = os.path.realpath(f"/proc/{server_proc.pid}/exe")
                self.assertEqual(r["process.executable.path"], exe)
                self.assertEqual(r["process.executable.name"], os.path.basename(exe))
                self.assertEqual(r.get("telemetry.sdk.language"), language)
                self.assertEqual(a["client.address"], "127.0.0.1")
                self.assertEqual((span["status"] or {}).get("code", 0), 2 if status >= 500 else 0)
            else:
                self.assertEqual(span["kind"], 3)  # SPAN_KIND_CLIENT
                # curl was selected by connecting to the selector's port: it carries the
                # selector's name.
                self.assertEqual(r["service.name"], service)
                self.assertEqual(r["process.executable.name"], "curl")
                self.assertNotIn("client.address", a)
                self.assertEqual((span["status"] or {}).get("code", 0), 2 if status >= 400 else 0)
            if status >= (500 if server else 400):
                self.assertEqual(a["error.type"], str(status))
            else:
                self.assertNotIn("error.type", a)
            self.assertEqual(a["http.request.method"], method)
            self.assertEqual(a["http.response.status_code"], str(status))
            self.assertEqual(a["url.path"], path.split("?")[0])
            self.assertEqual(a["url.scheme"], "http")
            self.assertEqual(a["server.address"], "127.0.0.1")
            self.assertEqual(a["network.peer.address"], "127.0.0.1")
            peer_port = int(a["network.peer.port"])
            self.assertTrue(0 < peer_port < 65536)
            if server:
                self.assertNotEqual(peer_port, port)
            else:
                self.assertEqual(peer_port, port)
            self.assertEqual(a["network.protocol.version"], "1.1")
            self.assertEqual(a["http.request.body.size"], str(len(body or b"")))
            self.assertEqual(a["http.response.body.size"], str(response_bytes))
            self.assertNotIn("url.full", a)
            self.assertNotIn("url.query", a)
            start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
            self.assertTrue(started < start <= end < time.time_ns(), (started, start, end))
            self.assertRegex(span["spanId"], "^[0-9a-f]{16}$")
            if server and path.startswith("/status/200"):
                self.assertEqual(span["traceId"], TRACE)
                self.assertEqual(span["parentSpanId"], PARENT)
            elif server:
                self.assertRegex(span["traceId"], "^[0-9a-f]{32}$")
                self.assertNotEqual(span["traceId"], TRACE)
                self.assertEqual(span["parentSpanId"], "")

    def check_metrics(self, receiver, agent, servers, transport, started):
        def latest_points():
            exports = receiver.metric_exports()
            return data_points(exports[-1]) if exports else []

        def counted(points, name, **labels):
            return sum(int(p["count"]) for r, m, p in points if m["name"] == name and all(
                (r if k.startswith("service") else attrs(p)).get(k) == v
                for k, v in labels.items()))

        def complete():
            points = latest_points()
            return all(counted(points, "http.server.request.duration",
                               **{"service.name": svc}) == len(REQUESTS)
                       for _, svc, _ in servers.values())
        h.wait_until(complete, 15, what="metric export with every server request")
        exports = receiver.metric_exports()
        self.assertTrue(all(e["transport"] == transport for e in exports))
        points = data_points(exports[-1])
        prom = agent.metrics()
        units = {"http.server.request.duration": "s", "http.client.request.duration": "s",
                 "http.server.request.body.size": "By", "http.server.response.body.size": "By",
                 "http.client.request.body.size": "By", "http.client.response.body.size": "By"}
        names = {m["name"] for _, m, _ in points}
        self.assertTrue({"http.server.request.duration", "http.client.request.duration",
                         "http.server.request.body.size", "http.server.response.body.size"}
                        <= names, names)
        for resource, metric, point in points:
            self.assertEqual(metric["unit"], units[metric["name"]])
            self.assertEqual(metric["histogram"]["aggregationTemporality"], 2)  # CUMULATIVE
            bounds = [float(b) for b in point["explicitBounds"]]
            self.assertEqual(bounds, DEFAULT_DURATION_BOUNDS if metric["unit"] == "s"
                             else DEFAULT_SIZE_BOUNDS)
            self.assertEqual(len(point["bucketCounts"]), len(bounds) + 1)
            self.assertEqual(sum(int(c) for c in point["bucketCounts"]), int(point["count"]))
            start, now = int(point["startTimeUnixNano"]), int(point["timeUnixNano"])
            self.assertTrue(started < start < now, (started, start, now))  # since agent start
            self.assertEqual(resource["telemetry.sdk.name"], "sonde")
            self.assertEqual(resource["host.name"], socket.gethostname())
        for port, (_, service, _) in servers.items():
            for method, path, body, status, response_bytes in REQUESTS:
                route = "/bytes/*" if path.startswith("/bytes") else "/status/*"
                labels = {"service.name": service, "http.request.method": method,
                          "http.response.status_code": str(status), "http.route": route,
                          "server.port": str(port), "server.address": "127.0.0.1",
                          "url.scheme": "http"}
                same = [(r, m, p) for r, m, p in points
                        if m["name"] == "http.server.request.duration"
                        and all((r if k.startswith("service") else attrs(p)).get(k) == v
                                for k, v in labels.items())]
                expected = sum(1 for m2, p2, _, s2, _ in REQUESTS
                               if (m2, s2) == (method, status)
                               and ("/bytes/*" if p2.startswith("/bytes") else "/status/*")
                               == route)
                self.assertEqual(sum(int(p["count"]) for _, _, p in same), expected, labels)
                self.assertEqual(same[0][0]["service.namespace"], "shop")
                # The same count as the Prometheus endpoint.
                self.assertEqual(h.metric_sum(
                    prom, "http_server_request_duration_seconds_count", server_port=port,
                    http_request_method=method, http_response_status_code=status,
                    http_route=route), expected)
            sizes = {(attrs(p)["http.request.method"], attrs(p)["http.response.status_code"],
                      m["name"]): float(p["sum"]) for r, m, p in points
                     if r.get("service.name") == service and m["name"].endswith("body.size")}
            self.assertEqual(sizes[("POST", "500", "http.server.request.body.size")], 10)
            self.assertEqual(sizes[("GET", "404", "http.server.response.body.size")], 11)
            durations = [float(p["sum"]) for r, m, p in points
                         if r.get("service.name") == service
                         and m["name"] == "http.server.request.duration"]
            self.assertTrue(all(0 < d < 5 for d in durations), durations)
        # curl's requests: client histograms, under the name of the selector that chose it.
        for port, (_, service, _) in servers.items():
            self.assertEqual(counted(points, "http.client.request.duration",
                                     **{"service.name": service, "server.port": str(port)}),
                             len(REQUESTS))

    def test_grpc_from_yaml_like_the_seed(self):
        # ../shared/seed/configs/02-otlp-export.yml with the endpoints pointed here.
        def configure(receiver, py_port, go_port):
            endpoint = f"http://127.0.0.1:{receiver.grpc_port}"
            return {}, (
                f"otel_metrics_export:\n  endpoint: {endpoint}\n  protocol: grpc\n"
                f"otel_traces_export:\n  endpoint: {endpoint}\n  protocol: grpc\n"
                "discovery:\n  instrument:\n"
                f"    - open_ports: {py_port}\n      name: py-api\n      namespace: shop\n"
                f"    - open_ports: {go_port}\n      name: go-api\n      namespace: shop\n")
        exports = self.run_export("grpc", configure)
        self.assertTrue(any(e["signal"] == "metrics" for e in exports))

    def test_http_protobuf_from_otel_variables_with_headers_and_gzip(self):
        def configure(receiver, py_port, go_port):
            return {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.http_port}",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=blue%20team",
                    "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, (
                "discovery:\n  instrument:\n"
                f"    - open_ports: {py_port}\n      name: py-api\n      namespace: shop\n"
                f"    - open_ports: {go_port}\n      name: go-api\n      namespace: shop\n")
        exports = self.run_export("http", configure)
        for export in exports:
            self.assertEqual(export["headers"]["x-tenant"], "blue team")
            self.assertEqual(export["headers"]["content-encoding"], "gzip")
            self.assertEqual(export["headers"]["content-type"], "application/x-protobuf")



class OtlpTlsTest(unittest.TestCase):
    """https:// endpoints: gRPC over TLS for spans, HTTPS for metrics, trusting the
    receiver's self-signed certificate through OTEL_EXPORTER_OTLP_*_CERTIFICATE; without
    it the certificate is refused and the failures are counted."""

    def run_agent(self, receiver, port, certificate):
        env = {"SONDE_OPEN_PORT": str(port), "SONDE_TRACE_PRINTER": "disabled",
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"https://127.0.0.1:{receiver.grpc_port}",
               "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
               "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT":
                   f"https://127.0.0.1:{receiver.http_port}/v1/metrics",
               "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "500",
               "OTEL_EXPORTER_OTLP_TIMEOUT": "2000"}
        if certificate:
            env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = certificate
        return h.Agent(env=env)

    def test_https_and_grpc_over_tls(self):
        cert, key = h.self_signed_cert()
        receiver = Receiver(tls=(cert, key))
        port = h.free_port()
        try:
            with self.run_agent(receiver, port, cert) as agent, h.python_server(port) as srv:
                agent.wait_instrumented(srv.pid)
                curl(port, "GET", "/status/200", None)
                h.wait_until(lambda: any(s[2]["kind"] == 2 for s in receiver.spans())
                             and receiver.metric_exports(), 15,
                             what="a span over gRPC/TLS and metrics over HTTPS")
                self.assertEqual({e["transport"] for e in receiver.exports()}, {"grpc", "http"})
            with self.run_agent(receiver, port, None) as agent, h.python_server(port) as srv:
                before = len(receiver.exports())
                agent.wait_instrumented(srv.pid)
                curl(port, "GET", "/status/200", None)
                h.wait_until(lambda: h.metric_sum(agent.metrics(),
                                                  "sonde_metric_export_dropped_total",
                                                  reason="failed") > 0, 15,
                             what="metric export refused for an untrusted certificate")
                self.assertEqual(len(receiver.exports()), before)
        finally:
            receiver.stop()
            h.remove_cert(cert, key)


if __name__ == "__main__":
    unittest.main()
