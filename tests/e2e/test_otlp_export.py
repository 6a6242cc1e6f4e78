"""Issue 4 (spans over OTLP): sampled spans reach an independent OTLP receiver
(Node, @grpc/grpc-js + the official generated decoders) over gRPC and over
HTTP/protobuf, with the HTTP semantic-convention attributes, the service's
resource, and the incoming trace context continued."""

import json
import os
import subprocess
import tempfile
import unittest

import harness as h

RECEIVER = os.path.join(h.REPO, "tests", "e2e", "otlp_receiver", "receiver.js")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Receiver:
    def __init__(self):
        subprocess.run([os.path.join(h.REPO, "scripts", "install-otlp-receiver.sh")], check=True)
        fd, self.out = tempfile.mkstemp(prefix="sonde-e2e-otlp-", suffix=".jsonl")
        os.close(fd)
        self.proc = subprocess.Popen(["node", RECEIVER, "--grpc-port", "0", "--http-port", "0",
                                      "--out", self.out], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
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

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        os.unlink(self.out)


def attrs(span):
    out = {}
    for a in span["attributes"]:
        v = a["value"]
        out[a["key"]] = v.get("stringValue") or v.get("intValue")
    return out


class OtlpSpanExportTest(unittest.TestCase):
    def run_export(self, env, transport):
        receiver = Receiver()
        try:
            port = h.free_port()
            env = dict(env(receiver), SONDE_OPEN_PORT=str(port), SONDE_SERVICE_NAME="checkout",
                       OTEL_BSP_SCHEDULE_DELAY="200")
            with h.Agent(env=env) as agent, h.python_server(port) as srv:
                agent.wait_instrumented(srv.pid)
                conn = h.RawConnection(port)
                conn.send(h.request_bytes("GET", "/status/200?secret=1", headers={
                    "traceparent": f"00-{TRACE}-{PARENT}-01"}))
                conn.read_response()
                conn.send(h.request_bytes("POST", "/status/500", b"x" * 10))
                conn.read_response()
                conn.close()
                def server_spans():
                    # The test process is a client of the watched port too: keep server spans.
                    return [s for s in receiver.spans() if s[2]["kind"] == 2
                            and attrs(s[2]).get("server.port") == str(port)]
                h.wait_until(lambda: len(server_spans()) >= 2, 15,
                             what="2 server spans at the OTLP receiver")
                spans = server_spans()
                by_path = {attrs(s[2])["url.path"]: s for s in spans}
                export, resource, get = by_path["/status/200"]
                self.assertEqual(export["transport"], transport)
                self.assertEqual(get["name"], "GET /status/*")
                self.assertEqual(get["kind"], 2)  # SPAN_KIND_SERVER
                self.assertEqual(get["traceId"], TRACE)
                self.assertEqual(get["parentSpanId"], PARENT)
                a = attrs(get)
                self.assertEqual(a["http.request.method"], "GET")
                self.assertEqual(a["http.response.status_code"], "200")
                self.assertEqual(a["http.route"], "/status/*")
                self.assertEqual(a["server.address"], "127.0.0.1")
                self.assertNotIn("url.full", a)
                self.assertEqual(resource["service.name"]["stringValue"], "checkout")
                self.assertEqual(resource["process.pid"]["intValue"], str(srv.pid))
                _, _, post = by_path["/status/500"]
                self.assertEqual(post["status"]["code"], 2)  # STATUS_CODE_ERROR
                self.assertRegex(post["traceId"], "^[0-9a-f]{32}$")
                self.assertNotEqual(post["traceId"], TRACE)
                self.assertNotIn("secret", json.dumps(receiver.exports()))
                h.wait_until(lambda: h.metric_sum(agent.metrics(),
                                                  "sonde_spans_exported_total") >= 2,
                             5, what="sonde_spans_exported_total >= 2")
        finally:
            receiver.stop()

    def test_grpc(self):
        self.run_export(lambda r: {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{r.grpc_port}",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, "grpc")

    def test_http_protobuf_with_shared_endpoint(self):
        self.run_export(lambda r: {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{r.http_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "http")


if __name__ == "__main__":
    unittest.main()
