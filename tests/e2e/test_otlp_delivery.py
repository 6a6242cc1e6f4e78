"""Issue 4, acceptance 4 and 5: metrics-only mode (the seed's Go node pool:
metrics exported, not one span), and delivery through a collector outage
(receiver stopped for 60 s under steady traffic, then restarted: the agent
never blocks, its memory stays bounded, drops are counted, export resumes).
SONDE_E2E_OUTAGE_SECONDS lengthens the outage (`make soak`: 300); below 60 s the
span retries (about 45 s) outlast it and no span is dropped."""

import os
import threading
import time
import unittest

import harness as h
from test_otlp_export import Receiver, data_points, attrs


def server_count(points, port):
    return sum(int(p["count"]) for _, m, p in points
               if m["name"] == "http.server.request.duration"
               and attrs(p).get("server.port") == str(port))


class MetricsOnlyTest(unittest.TestCase):
    def test_seed_metrics_only_config_exports_metrics_and_no_span(self):
        receiver = Receiver()
        port = h.free_port()
        # ../shared/seed/configs/06-metrics-only.yml, selecting by port instead of a
        # Kubernetes namespace, and pointed at the test receiver.
        config = h.write_config(
            "discovery:\n  instrument:\n"
            f"    - open_ports: {port}\n"
            "otel_metrics_export:\n"
            f"  endpoint: http://127.0.0.1:{receiver.grpc_port}\n"
            "  protocol: grpc\n"
            "# (otel_traces_export intentionally omitted here)\n")
        try:
            env = {"SONDE_CONFIG_PATH": config, "SONDE_TRACE_PRINTER": "disabled",
                   "OTEL_METRIC_EXPORT_INTERVAL": "500"}
            with h.Agent(env=env) as agent, h.python_server(port) as srv:
                agent.wait_instrumented(srv.pid)
                sent = 50
                conn = h.RawConnection(port)
                for i in range(sent):
                    conn.send(h.request_bytes("GET", f"/status/{200 + i % 3}",
                                              headers={"traceparent":
                                                       f"00-{'ab' * 16}-{'cd' * 8}-01"}))
                    conn.read_response()
                conn.close()
                agent.wait_server_requests(port, sent)

                def exported():
                    exports = receiver.metric_exports()
                    return exports and server_count(data_points(exports[-1]), port) == sent
                h.wait_until(exported, 10, what=f"{sent} requests in an exported histogram")
                time.sleep(1.5)  # three more intervals: any span would have been sent by now
                points = data_points(receiver.metric_exports()[-1])
                print(f"\n  metrics-only: sent {sent}, exported histogram count "
                      f"{server_count(points, port)}, "
                      f"{len(receiver.metric_exports())} metric exports, "
                      f"{sum(1 for e in receiver.exports() if e['signal'] == 'traces')} "
                      "trace exports")
                self.assertEqual(server_count(points, port), sent)
                for status in (200, 201, 202):
                    self.assertEqual(sum(int(p["count"]) for _, m, p in points
                                         if m["name"] == "http.server.request.duration"
                                         and attrs(p).get("http.response.status_code")
                                         == str(status)),
                                     len([i for i in range(sent) if 200 + i % 3 == status]))
                self.assertEqual([e for e in receiver.exports() if e["signal"] == "traces"], [])
                self.assertEqual(h.metric_sum(agent.metrics(), "sonde_spans_exported_total"), 0)
                self.assertEqual(agent.spans(), [])
                self.assertIn("metric export every 500 ms", agent.logs())
                self.assertNotIn("exporting spans", agent.logs())
        finally:
            receiver.stop()
            os.unlink(config)


class CollectorOutageTest(unittest.TestCase):
    OUTAGE_S = float(os.environ.get("SONDE_E2E_OUTAGE_SECONDS", "60"))

    def test_receiver_down_for_a_minute_under_steady_traffic(self):
        # Issue 8, fault a: SONDE_E2E_OUTAGE_SECONDS=300 holds the outage for minutes.
        receiver = Receiver()
        port = h.free_port()
        sent = [0]
        stop = threading.Event()
        try:
            env = {"SONDE_OPEN_PORT": str(port), "SONDE_TRACE_PRINTER": "disabled",
                   "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{receiver.grpc_port}",
                   "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                   "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT":
                       f"http://127.0.0.1:{receiver.http_port}/v1/metrics",
                   "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
                   "OTEL_BSP_SCHEDULE_DELAY": "500", "OTEL_METRIC_EXPORT_INTERVAL": "2000"}
            with h.Agent(env=env) as agent, h.python_server(port) as srv:
                agent.wait_instrumented(srv.pid)

                def traffic():
                    conn = h.RawConnection(port)
                    while not stop.is_set():
                        conn.send(h.request_bytes("GET", "/status/200"))
                        conn.read_response()
                        sent[0] += 1
                        time.sleep(0.02)
                    conn.close()
                worker = threading.Thread(target=traffic)
                worker.start()
                h.wait_until(lambda: receiver.metric_exports() and receiver.spans(), 15,
                             what="spans and metrics before the outage")
                baseline_rss = h.rss_kib(agent.proc.pid)

                receiver.stop(remove=False)
                outage_start = time.monotonic()
                counted, rss, scrape_s = [], [], []
                while time.monotonic() - outage_start < self.OUTAGE_S:
                    t0 = time.monotonic()
                    counted.append(agent.server_requests(port))
                    scrape_s.append(time.monotonic() - t0)
                    rss.append(h.rss_kib(agent.proc.pid))
                    time.sleep(2)
                exports_before = len(receiver.exports())
                during = agent.metrics()
                receiver.start()
                restart = time.monotonic()

                def resumed(signal):
                    return any(e["signal"] == signal and e["answer"] == "ok"
                               for e in receiver.exports()[exports_before:])
                h.wait_until(lambda: resumed("metrics"), 2 + 10, what="metric export resumed")
                metrics_after = time.monotonic() - restart
                h.wait_until(lambda: resumed("traces"), 0.5 + 35, what="span export resumed")
                spans_after = time.monotonic() - restart
                stop.set()
                worker.join(30)
                agent.wait_server_requests(port, sent[0])
                final = agent.metrics()

                def dropped(name, reason):
                    return h.metric_sum(final, name, reason=reason)
                print(f"\n  outage {self.OUTAGE_S:.0f}s: {sent[0]} requests sent, counts during "
                      f"outage {counted[0]} -> {counted[-1]}, slowest scrape "
                      f"{max(scrape_s) * 1000:.0f} ms; RSS baseline {baseline_rss} KiB, max "
                      f"{max(rss)} KiB; spans dropped failed={dropped('sonde_span_export_dropped_total', 'failed')} "
                      f"queue_full={dropped('sonde_span_export_dropped_total', 'queue_full')}; "
                      f"metric points dropped failed="
                      f"{dropped('sonde_metric_export_dropped_total', 'failed')}; resumed: "
                      f"metrics {metrics_after:.1f}s, spans {spans_after:.1f}s after restart")
                # Never blocked: requests kept being counted through the outage, and every
                # request sent was counted in the end.
                self.assertGreater(counted[-1] - counted[0], 500)
                self.assertTrue(all(b >= a for a, b in zip(counted, counted[1:])))
                self.assertLess(max(scrape_s), 1.0)
                self.assertEqual(agent.server_requests(port), sent[0])
                # Bounded memory: the span queue is capped; growth stays far below what
                # keeping every span would take.
                self.assertLess(max(rss) - baseline_rss, 32 * 1024)
                # Drops are counted, by reason.
                self.assertGreater(dropped("sonde_span_export_dropped_total", "failed")
                                   + dropped("sonde_span_export_dropped_total", "queue_full"), 0)
                self.assertGreater(dropped("sonde_metric_export_dropped_total", "failed"), 0)
                self.assertGreater(h.metric_sum(during, "sonde_metric_export_dropped_total",
                                                reason="failed"), 0)
                # Resumed within one interval plus backoff (metrics: 2 s interval, retries
                # stop at the next collection; spans: 0.5 s delay plus at most 30 s backoff).
                self.assertLess(metrics_after, 2 + 2 + 1)
                self.assertLess(spans_after, 0.5 + 30 + 1)
                # The first export after the restart carries the cumulative totals.
                h.wait_until(lambda: server_count(data_points(receiver.metric_exports()[-1]),
                                                  port) == sent[0], 10,
                             what="exported histogram count equal to every request sent")
        finally:
            stop.set()
            receiver.stop()


if __name__ == "__main__":
    unittest.main()
