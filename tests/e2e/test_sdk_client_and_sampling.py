"""Issue 4, proved with real programs: a real OpenTelemetry SDK client (Node's
@opentelemetry/sdk-trace-node, injecting traceparent with the SDK's own W3C
propagator) is continued by Sonde's server span at an independent OTLP
receiver; and the head samplers, set by OTEL_TRACES_SAMPLER, keep the
expected share of root traces, every child of a sampled parent, no child of an
unsampled one, and nothing at all with always_off, while the metrics still
count every request."""

import json
import os
import random
import subprocess
import time
import unittest

import harness as h
from test_otlp_export import Receiver, attrs

SDK_CLIENT = os.path.join(h.REPO, "tests", "e2e", "otlp_receiver", "sdk_client.js")
SCHEDULE_DELAY_MS = 200
SPAN_KIND_SERVER = 2


def otlp_env(receiver, port, **extra):
    return dict({
        "SONDE_OPEN_PORT": str(port),
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{receiver.grpc_port}",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        "OTEL_BSP_SCHEDULE_DELAY": str(SCHEDULE_DELAY_MS),
    }, **extra)


def server_spans(receiver, port):
    """Server spans of the server under test (the test process and the SDK client
    connect to the watched port too, so Sonde also reports client spans)."""
    return [span for _, _, span in receiver.spans()
            if span["kind"] == SPAN_KIND_SERVER and attrs(span).get("server.port") == str(port)]


def wait_stable(receiver, port, timeout=20):
    """Waits until the number of exported server spans has not changed for 5
    schedule delays (1 s), i.e. the exporter has flushed what it had."""
    quiet = 5 * SCHEDULE_DELAY_MS / 1000
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        n = len(server_spans(receiver, port))
        now = time.monotonic()
        if n != last:
            last, since = n, now
        elif now - since >= quiet:
            return server_spans(receiver, port)
        if now > deadline:
            raise AssertionError(f"exported span count still changing after {timeout}s ({n})")
        time.sleep(0.1)


def printed_server_spans(agent, port):
    return {(s["trace_id"], s["span_id"]) for s in agent.spans()
            if s["kind"] == "server" and s["local_port"] == port}


def send_all(port, requests, connections=4, depth=10):
    """Sends (path, headers) requests over `connections` keep-alive connections,
    pipelining `depth` requests per write, and checks every status."""
    per_conn = (len(requests) + connections - 1) // connections
    for c in range(connections):
        chunk = requests[c * per_conn:(c + 1) * per_conn]
        conn = h.RawConnection(port)
        for i in range(0, len(chunk), depth):
            batch = chunk[i:i + depth]
            conn.send(b"".join(h.request_bytes("GET", path, headers=headers)
                               for path, headers in batch))
            for path, _ in batch:
                status = conn.read_response().status
                assert status == int(path.rsplit("/", 1)[1]), (path, status)
        conn.close()


def ratio_keeps(trace_id, ratio):
    """The TraceIdRatioBased rule Sonde implements (src/pipeline/sampler.cpp, as in
    the OTel specification's consistent-probability form): the trace id's last 7
    bytes, read as a big-endian integer, are at least 2^56 - round(ratio * 2^56)."""
    threshold = (1 << 56) - round(ratio * (1 << 56))
    return int(trace_id[-14:], 16) >= threshold


class SdkClientTraceContextTest(unittest.TestCase):
    REQUESTS = 3

    def test_server_span_continues_the_sdk_client_span(self):
        receiver = Receiver()
        try:
            port = h.free_port()
            with h.Agent(env=otlp_env(receiver, port)) as agent, h.go_server(port) as srv:
                agent.wait_server_instrumented(srv)
                run = subprocess.run(
                    ["node", SDK_CLIENT, f"http://127.0.0.1:{port}/status/200", str(self.REQUESTS)],
                    capture_output=True, timeout=30)
                self.assertEqual(run.returncode, 0, run.stderr.decode(errors="replace"))
                sent = [json.loads(line) for line in run.stdout.decode().splitlines() if line]
                self.assertEqual(len(sent), self.REQUESTS)
                for s in sent:
                    self.assertEqual(s["status"], 200)
                    # The SDK really injected its own span's context.
                    self.assertEqual(s["traceparent_sent"], f"00-{s['trace_id']}-{s['span_id']}-01")
                agent.wait_server_requests(port, self.REQUESTS)
                h.wait_until(lambda: len(server_spans(receiver, port)) >= self.REQUESTS, 15,
                             what=f"{self.REQUESTS} server spans at the OTLP receiver")
                spans = wait_stable(receiver, port)
                print(f"\nSDK client: {len(sent)} requests sent, {len(spans)} server spans exported")
                for s in sent:
                    print(f"  sdk trace={s['trace_id']} span={s['span_id']}")
                for span in spans:
                    print(f"  sonde server span trace={span['traceId']} span={span['spanId']} "
                          f"parent={span['parentSpanId']}")
                self.assertEqual(len(spans), self.REQUESTS)
                by_trace = {span["traceId"]: span for span in spans}
                self.assertEqual(set(by_trace), {s["trace_id"] for s in sent})
                for s in sent:
                    span = by_trace[s["trace_id"]]
                    self.assertEqual(span["kind"], SPAN_KIND_SERVER)
                    self.assertEqual(span["parentSpanId"], s["span_id"])
                    self.assertRegex(span["spanId"], r"^[0-9a-f]{16}$")
                    self.assertNotEqual(span["spanId"], s["span_id"])
                    self.assertEqual(attrs(span)["url.path"], "/status/200")
                    self.assertEqual(attrs(span)["http.response.status_code"], "200")
        finally:
            receiver.stop()


class SamplerTest(unittest.TestCase):
    def test_parentbased_traceidratio_quarter(self):
        roots, sampled_children, unsampled_children, ratio = 2000, 200, 200, 0.25
        rng = random.Random()
        sampled = {os.urandom(16).hex(): os.urandom(8).hex() for _ in range(sampled_children)}
        unsampled = {os.urandom(16).hex(): os.urandom(8).hex() for _ in range(unsampled_children)}
        # Roots answer 200, sampled children 201, unsampled children 202, so each
        # kind has its own count in the metrics; all shuffled together.
        requests = [("/status/200", {})] * roots
        requests += [("/status/201", {"traceparent": f"00-{t}-{p}-01"}) for t, p in sampled.items()]
        requests += [("/status/202", {"traceparent": f"00-{t}-{p}-00"}) for t, p in unsampled.items()]
        rng.shuffle(requests)
        total = len(requests)

        receiver = Receiver()
        try:
            port = h.free_port()
            env = otlp_env(receiver, port, OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                           OTEL_TRACES_SAMPLER_ARG=str(ratio))
            with h.Agent(env=env) as agent, h.go_server(port) as srv:
                agent.wait_server_instrumented(srv)
                started = time.monotonic()
                send_all(port, requests)
                sent_in = time.monotonic() - started
                # Metrics count every request, whatever the sampler decided.
                agent.wait_server_requests(port, total, timeout=30)
                spans = wait_stable(receiver, port)
                counted = {code: agent.server_requests(port, http_response_status_code=code)
                           for code in (200, 201, 202)}

                root_spans = [s for s in spans if not s["parentSpanId"]]
                child_spans = [s for s in spans if s["parentSpanId"]]
                kept = len(root_spans) / roots
                children = {s["traceId"]: s for s in child_spans}
                print(f"\nparentbased_traceidratio {ratio}: {total} requests sent in {sent_in:.1f}s, "
                      f"Prometheus counted {agent.server_requests(port):.0f} "
                      f"(200: {counted[200]:.0f}, 201: {counted[201]:.0f}, 202: {counted[202]:.0f}); "
                      f"exported {len(spans)} server spans: {len(root_spans)}/{roots} roots "
                      f"= {kept:.3f} kept, {sum(t in children for t in sampled)}/{sampled_children} "
                      f"sampled-parent children, {sum(t in children for t in unsampled)}"
                      f"/{unsampled_children} unsampled-parent children")

                self.assertEqual(counted, {200: roots, 201: sampled_children, 202: unsampled_children})
                self.assertGreaterEqual(kept, 0.20)
                self.assertLessEqual(kept, 0.30)
                for span in root_spans:
                    self.assertEqual(attrs(span)["http.response.status_code"], "200")
                    self.assertTrue(ratio_keeps(span["traceId"], ratio),
                                    f"root trace {span['traceId']} exported against the ratio rule")
                self.assertEqual(len({s["traceId"] for s in root_spans}), len(root_spans))
                # Every child of a sampled parent, with its trace and parent; none of the others.
                self.assertEqual(len(child_spans), sampled_children)
                self.assertEqual(set(children), set(sampled))
                for trace_id, parent in sampled.items():
                    span = children[trace_id]
                    self.assertEqual(span["parentSpanId"], parent)
                    self.assertNotEqual(span["spanId"], parent)
                    self.assertEqual(attrs(span)["http.response.status_code"], "201")
                # The trace printer shows exactly the spans the sampler kept.
                exported = {(s["traceId"], s["spanId"]) for s in spans}
                h.wait_until(lambda: printed_server_spans(agent, port) == exported, 5,
                             what="the trace printer to show the exported server spans")
                samples = agent.metrics()
                self_metrics = {name: h.metric_sum(samples, f"sonde_{name}_total")
                                for name in ("spans_produced", "spans_exported")}
                for reason in ("queue_full", "failed"):
                    self_metrics[f"span_export_dropped[{reason}]"] = h.metric_sum(
                        samples, "sonde_span_export_dropped_total", reason=reason)
                self.assertEqual(self_metrics["span_export_dropped[queue_full]"], 0)
                self.assertEqual(self_metrics["span_export_dropped[failed]"], 0)
                print("  agent self-metrics (all spans, client spans of the test process too): "
                      + ", ".join(f"{k}={v:.0f}" for k, v in self_metrics.items()))
                # Children of sampled parents are kept whatever the ratio rule says.
                print(f"  sampled-parent children whose trace id the ratio alone would drop: "
                      f"{sum(not ratio_keeps(t, ratio) for t in sampled)}")
        finally:
            receiver.stop()

    def test_always_off_exports_nothing(self):
        total, with_parent = 300, 100
        requests = [("/status/200", {})] * (total - with_parent)
        requests += [("/status/200", {"traceparent": f"00-{os.urandom(16).hex()}-"
                                                     f"{os.urandom(8).hex()}-01"})
                     for _ in range(with_parent)]
        random.shuffle(requests)

        receiver = Receiver()
        try:
            port = h.free_port()
            env = otlp_env(receiver, port, OTEL_TRACES_SAMPLER="always_off")
            with h.Agent(env=env) as agent, h.go_server(port) as srv:
                agent.wait_server_instrumented(srv)
                send_all(port, requests)
                agent.wait_server_requests(port, total, timeout=30)
                # Let several export periods pass: nothing may arrive.
                time.sleep(5 * SCHEDULE_DELAY_MS / 1000)
                counted = agent.server_requests(port)
                traces = [e for e in receiver.exports() if e["signal"] == "traces"]
                spans = receiver.spans()
                print(f"\nalways_off: {total} requests ({with_parent} with a sampled traceparent), "
                      f"Prometheus counted {counted:.0f}, receiver got {len(traces)} trace exports "
                      f"holding {len(spans)} spans (of any kind or port)")
                self.assertEqual(counted, total)
                self.assertEqual(spans, [])
                self.assertEqual(agent.spans(), [])  # the trace printer saw nothing either
                self.assertEqual(h.metric_sum(agent.metrics(), "sonde_spans_exported_total"), 0)
        finally:
            receiver.stop()


if __name__ == "__main__":
    unittest.main()
