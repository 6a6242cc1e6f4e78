"""Issue 8, bounded memory: a soak at a steady rate with connection churn.

Two nginx servers are instrumented, one plain and one over TLS (uprobes), and
three hey clients drive them at fixed rates for SOAK_S seconds:
keep-alive requests, a new TCP connection per request, and a new TLS session
per request. The agent exports to Prometheus and, over OTLP, metrics and a
sampled share of the spans to the test receiver, so every stage that holds
memory (tracker, parsers, routes, metric series, span queue) is exercised.

The agent's VmRSS is sampled every SAMPLE_S seconds. After a warm-up (the
larger of 30 s and 15 % of the run: allocator arenas and the per-connection
state of the steady load fill up), the drift is the median RSS of the last
10 % of the run against the median of the first 10 % after the warm-up; it
must stay within 5 %. At the end: every request hey completed is counted
exactly once, nothing was dropped anywhere (ring buffer, request queues,
connection cap, series cap), the tracker and the kernel's per-connection
maps are back to their idle size.

`make test` runs it for 2 minutes; `make soak` sets SONDE_E2E_SOAK_SECONDS=1800.
"""

import os
import re
import statistics
import subprocess
import time
import unittest

import harness as h
from test_faults import KernelFilter
from test_otlp_export import Receiver

SOAK_S = float(os.environ.get("SONDE_E2E_SOAK_SECONDS", "120"))
SAMPLE_S = 2.0
DRIFT_BOUND = 0.05
# (name, TLS, keep-alive, workers, requests per second per worker)
LOADS = (
    ("keep-alive", False, True, 3, 50),
    ("connection per request", False, False, 3, 20),
    ("TLS session per request", True, False, 2, 10),
)


def hey(url, secs, workers, rate_per_worker, keep_alive):
    argv = ["hey", "-z", f"{secs:.0f}s", "-c", str(workers), "-q", str(rate_per_worker),
            "-disable-compression"]
    if not keep_alive:
        argv.append("-disable-keepalive")
    return subprocess.Popen(argv + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)


def hey_counts(output):
    """(responses by status, errors) from hey's summary."""
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", output)}
    in_errors = output.split("Error distribution:", 1)
    errors = (sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", in_errors[1], re.M))
              if len(in_errors) == 2 else 0)
    return codes, errors


def drift(samples, duration):
    """(reference KiB, final KiB, relative drift) as the module docstring defines them."""
    warm_up = max(30.0, 0.15 * duration)
    window = max(2 * SAMPLE_S, 0.10 * duration)
    reference = [kib for t, kib in samples if warm_up <= t < warm_up + window]
    final = [kib for t, kib in samples if t >= duration - window]
    ref, end = statistics.median(reference), statistics.median(final)
    return ref, end, (end - ref) / ref


class SoakTest(unittest.TestCase):
    def test_steady_load_with_connection_churn_keeps_memory_flat(self):
        plain_port, tls_port = h.free_port(), h.free_port()
        cert, key = h.self_signed_cert("sonde-soak")
        self.addCleanup(h.remove_cert, cert, key)
        receiver = Receiver()
        self.addCleanup(receiver.stop)
        env = {"SONDE_OPEN_PORT": f"{plain_port},{tls_port}",
               "SONDE_TRACE_PRINTER": "disabled",
               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.grpc_port}",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
               "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.05",
               "OTEL_METRIC_EXPORT_INTERVAL": "5000"}
        with h.Agent(env=env) as agent, h.nginx_server(plain_port) as plain, \
                h.https_nginx_server(tls_port, cert, key) as tls:
            agent.wait_server_instrumented(plain, tls, timeout=20)
            kernel = KernelFilter(agent)
            idle_maps = kernel.per_connection()

            sampler = h.RssSampler(agent.proc, SAMPLE_S)
            sampler.start()
            clients = []
            for name, over_tls, keep_alive, workers, rate in LOADS:
                port = tls_port if over_tls else plain_port
                url = f"{'https' if over_tls else 'http'}://127.0.0.1:{port}/status/200"
                clients.append((name, port, hey(url, SOAK_S, workers, rate, keep_alive)))
            outputs = {}
            for name, port, proc in clients:
                out, _ = proc.communicate(timeout=SOAK_S + 120)
                outputs[name] = (port, out)
            sampler.stop()

            completed = {plain_port: 0, tls_port: 0}
            for name, (port, out) in outputs.items():
                codes, errors = hey_counts(out)
                self.assertEqual(errors, 0, f"hey {name}:\n{out}")
                self.assertEqual(set(codes), {200}, f"hey {name}:\n{out}")
                completed[port] += codes[200]
            for port, n in completed.items():
                agent.wait_server_requests(port, n, timeout=30)
            h.wait_until(lambda: h.metric_sum(agent.metrics(), "sonde_connections_tracked")
                         == 0, 20, what="tracker back to no connection")
            kernel.wait_clean(set(kernel.tracked()), idle_maps, timeout=20)
            time.sleep(1)
            samples = agent.metrics()
            ref, end, relative = drift(sampler.samples, SOAK_S)
            peak = sampler.max_kib
            print(f"\n  soak {SOAK_S:.0f}s: {sum(completed.values())} requests "
                  f"({sum(completed.values()) / SOAK_S:.0f}/s; plain {completed[plain_port]}, "
                  f"TLS {completed[tls_port]}); RSS reference {ref / 1024:.1f} MB, final "
                  f"{end / 1024:.1f} MB, drift {relative * 100:+.2f} %, peak "
                  f"{peak / 1024:.1f} MB; spans exported "
                  f"{h.metric_sum(samples, 'sonde_spans_exported_total'):.0f}")

            for port, n in completed.items():
                self.assertEqual(agent.server_requests(port), n, f"port {port}")
            must_stay_zero = ("sonde_kernel_ringbuf_full_total", "sonde_dropped_requests_total",
                              "sonde_connections_evicted_total",
                              "sonde_metric_series_dropped_total",
                              "sonde_span_export_dropped_total",
                              "sonde_metric_export_dropped_total",
                              "sonde_events_malformed_total", "sonde_parse_errors_total",
                              # hey, a Go client, writes and reads a connection on different
                              # threads: a response's record can reach the ring before its
                              # request's, and must still be paired.
                              "sonde_unpaired_responses_total")
            for name in must_stay_zero:
                self.assertEqual(h.metric_sum(samples, name), 0, name)
            self.assertGreater(h.metric_sum(samples, "sonde_spans_exported_total"), 0)
            # The ledger balances: every request seen (server side, and hey's plaintext
            # requests as a client of a watched port) reached an exporter.
            seen = h.metric_sum(samples, "sonde_requests_seen_total")
            self.assertGreaterEqual(seen, sum(completed.values()))
            self.assertEqual(h.metric_sum(samples, "sonde_requests_exported_total"), seen)
            self.assertEqual(h.metric_sum(samples, "sonde_requests_filtered_total"), 0)
            # None of them logged either.
            lost_lines = re.findall(r"data lost: (\w+)", agent.logs())
            self.assertEqual([n for n in lost_lines if n in must_stay_zero], [])
            self.assertLessEqual(abs(relative), DRIFT_BOUND,
                                 f"RSS {ref} -> {end} KiB: samples {sampler.samples}")


if __name__ == "__main__":
    unittest.main()
