"""Issue 8: fault behaviour. Each fault is one TestCase (Fault...): the agent
keeps counting exactly, stays bounded, forgets what is gone (its own state and
its kernel map entries) and recovers when the fault ends.

  FaultCollectorHangTest      collectors that accept and never answer (OTLP/gRPC,
                              OTLP/HTTP) or answer the head and stall the body
  FaultTargetKilledTest       a server SIGKILLed mid-request, restarted on its port
  FaultShortLivedProcessesTest  ~1000 short-lived matching processes a minute
  FaultAgentKilledTest        the agent SIGKILLed and restarted under a live server
  FaultTracefsUnmountedTest   neither tracefs nor debugfs mounted
  FaultRingBufferFloodTest    the kernel ring overflowed while the agent is stopped
  FaultNoIdleCpuTest          every CPU kept busy by spinning processes under load

(The collector down for minutes is CollectorOutageTest in test_otlp_delivery.py.)
Longer runs for `make soak`: SONDE_E2E_CHURN_SECONDS (default 30) and
SONDE_E2E_HANG_SECONDS (default 8) stretch the churn and the hang.

Most servers are picked by an executable-path selector naming a private copy of
the Go test server, so that no port is watched: the test's own clients (this
process, wrk) are never instrumented and the gauges count exactly the targets.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness as h
from test_otlp_export import Receiver, attrs, data_points

SONDE_TRACKED_IGNORED = 2  # bpf/shared/sonde_events.h
CHURN_S = float(os.environ.get("SONDE_E2E_CHURN_SECONDS", "30"))
HANG_S = float(os.environ.get("SONDE_E2E_HANG_SECONDS", "8"))


def private_go_server(test, port):
    """The Go test server under an executable name no other process has; the
    selector SONDE_EXECUTABLE_NAME=server.selector picks it and nothing else."""
    workdir = tempfile.mkdtemp(prefix="sonde-e2e-fault-")
    test.addCleanup(shutil.rmtree, workdir, True)
    name = f"fault_srv_{os.getpid()}_{port}"
    exe = os.path.join(workdir, name)
    shutil.copy2(h.go_binary("http_server.go", "go_http_server"), exe)
    server = h.Server([exe, str(port)], port, name=f"go net/http as {name}", exe_hint=name)
    server.selector = f"/{name}$"
    test.addCleanup(server.stop)
    return server


@contextlib.contextmanager
def agent_that_counted_five(test, wrapper=None, env=None):
    """An agent picking a private Go server by its executable path (with `env` added to
    its environment), once it has counted 5 requests to it: yields (agent, port)."""
    port = h.free_port()
    srv = private_go_server(test, port).start()
    with h.Agent(env={"SONDE_EXECUTABLE_NAME": srv.selector, **(env or {})},
                 wrapper=wrapper) as agent:
        agent.wait_instrumented(srv.pid)
        h.send_gets(port, ["/status/200"] * 5)
        agent.wait_server_requests(port, 5)
        yield agent, port


def cpu_seconds(pid):
    """User plus system CPU time of `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_metric(agent, name):
    return h.metric_sum(agent.metrics(), name)


def start_ticks(pid):
    """Field 22 of /proc/PID/stat (what the agent writes as proc_start_ns), None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[19])


class KernelFilter:
    """The agent's PID filter (tracked_pids) and per-connection maps, read with bpftool
    through the map ids the agent itself holds."""

    PER_CONNECTION = ("ssl_sockets", "tls_sockets", "pending_ssl_wri")  # names: 15 chars

    def __init__(self, agent):
        self.maps = h.bpf_maps_of(agent.proc.pid)
        missing = {"tracked_pids", *self.PER_CONNECTION} - set(self.maps)
        assert not missing, f"agent maps {sorted(self.maps)} lack {sorted(missing)}"

    def entries(self):
        """{pid: (flags, proc_start)} of tracked_pids."""
        out = {}
        for e in h.bpftool_json("map", "dump", "id", str(self.maps["tracked_pids"])):
            v = e["formatted"]["value"]
            out[e["formatted"]["key"]] = (v["flags"], v["proc_start_ns"])
        return out

    def tracked(self):
        """Pids the kernel lets through (entries not marked ignored)."""
        return {pid for pid, (flags, _) in self.entries().items()
                if not flags & SONDE_TRACKED_IGNORED}

    def stale(self):
        """Entries naming no live process (or another process under a reused pid)."""
        out = {}
        for pid, (flags, start) in self.entries().items():
            now = start_ticks(pid)
            if now is None or (start and now != start):
                out[pid] = (flags, start)
        return out

    def per_connection(self):
        return {name: len(h.map_keys(self.maps[name])) for name in self.PER_CONNECTION}

    def wait_clean(self, tracked, per_connection, timeout=10):
        """Waits until exactly `tracked` pass the filter, no entry is stale, and the
        per-connection maps hold `per_connection` ({name: entries})."""
        def clean():
            return (self.tracked() == set(tracked) and not self.stale()
                    and self.per_connection() == per_connection)
        try:
            h.wait_until(clean, timeout, interval=0.25, what="kernel maps back to their baseline")
        except AssertionError:
            raise AssertionError(f"kernel maps not clean after {timeout}s: tracked "
                                 f"{sorted(self.tracked())} (want {sorted(tracked)}), stale "
                                 f"{self.stale()}, per-connection {self.per_connection()} (want "
                                 f"{per_connection})") from None


# ---- b. collectors that hang

class HangingCollector:
    """Accepts TCP connections on 127.0.0.1 and never completes an answer.
    mode "silent": reads and never writes a byte (an OTLP/gRPC or OTLP/HTTP
    endpoint stuck before its first answer byte). mode "head": answers each
    HTTP request's head with 200 and a Content-Length, then never sends the
    body. Records when each connection was accepted and when the client gave
    it up (EOF)."""

    def __init__(self, mode, port=0):
        self.mode = mode
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.connections = []  # [accepted_at, given_up_at or None]
        self.sockets = []
        self.lock = threading.Lock()
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            record = [time.monotonic(), None]
            with self.lock:
                self.connections.append(record)
                self.sockets.append(conn)
            threading.Thread(target=self._serve, args=(conn, record), daemon=True).start()

    def _serve(self, conn, record):
        buf = b""
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
                if self.mode == "head" and b"\r\n\r\n" in buf:
                    # One answer per request head: a retried request on the same
                    # connection would get another (curl opens a new one after a timeout).
                    buf = buf.split(b"\r\n\r\n", 1)[1]
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                                 b"Content-Length: 1000\r\n\r\n")
                buf = buf[-4:]
        except OSError:
            pass
        record[1] = time.monotonic()

    def closed_durations(self):
        with self.lock:
            return [gone - accepted for accepted, gone in self.connections if gone]

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.accepter.join(5)
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def pipelined_gets(port, count, depth=50):
    """`count` GETs on one keep-alive connection, `depth` per write (answered in order)."""
    conn = h.RawConnection(port)
    sent = 0
    while sent < count:
        n = min(depth, count - sent)
        conn.send(h.request_bytes("GET", "/status/200") * n)
        for _ in range(n):
            assert conn.read_response().status == 200
        sent += n
    conn.close()
    return sent


class HangingReceiver(Receiver):
    """receiver.js --hang: completes the HTTP/2 handshake, takes each gRPC export
    (and records it, answer "none") and never answers it."""

    def start(self):
        self.tls_args = ["--hang"]
        super().start()


class FaultCollectorHangTest(unittest.TestCase):
    """Collectors that hang: the agent keeps counting every request, no export waits
    longer than OTEL_EXPORTER_OTLP_TIMEOUT (2 s), what cannot be delivered is dropped and
    counted by reason, memory stays bounded, and a real receiver that takes over the same
    ports gets the rest."""

    TIMEOUT_S = 2.0
    REQUESTS = 6000  # more than the span queue (4096) plus one batch (512) hold

    def hanging(self, kind):
        """A hanging collector: "silent" and "head" (HangingCollector) or "hang" (gRPC only)."""
        if kind == "hang":
            collector = HangingReceiver()
            collector.port = collector.grpc_port
            collector.stop_hanging = lambda: collector.stop(remove=False)
        else:
            collector = HangingCollector(kind)
            collector.stop_hanging = collector.stop
        self.addCleanup(collector.stop)
        return collector

    def run_hang(self, traces, metrics):
        """traces, metrics: (protocol, how its collector hangs) of each signal."""
        kinds = {"traces": traces, "metrics": metrics}
        collectors = {name: self.hanging(kind) for name, (_, kind) in kinds.items()}
        port = h.free_port()
        srv = private_go_server(self, port)

        def endpoint(name):
            base = f"http://127.0.0.1:{collectors[name].port}"
            return base if kinds[name][0] == "grpc" else f"{base}/v1/{name}"
        env = {"SONDE_EXECUTABLE_NAME": srv.selector, "SONDE_TRACE_PRINTER": "disabled",
               "SONDE_LOG_LEVEL": "debug",  # one line per failed export, with its cause
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint("traces"),
               "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": traces[0],
               "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": endpoint("metrics"),
               "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": metrics[0],
               "OTEL_EXPORTER_OTLP_TIMEOUT": str(int(self.TIMEOUT_S * 1000)),
               "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
        srv.start()
        with h.Agent(env=env) as agent:
            agent.wait_instrumented(srv.pid)
            baseline_rss = h.rss_kib(agent.proc.pid)
            hang_start = time.monotonic()
            sent = pipelined_gets(port, self.REQUESTS)
            agent.wait_server_requests(port, sent, timeout=15)
            load_s = time.monotonic() - hang_start

            # The hang goes on; the agent keeps answering and counting.
            rss, scrape_s = [], []
            while time.monotonic() - hang_start < load_s + HANG_S:
                t0 = time.monotonic()
                agent.metrics()
                scrape_s.append(time.monotonic() - t0)
                rss.append(h.rss_kib(agent.proc.pid))
                time.sleep(0.5)
            during = agent.metrics()
            self.assertEqual(agent.server_requests(port), sent)

            # How each export attempt ended: the agent logs each failure with its cause.
            causes = {"silent": r"code 14 .*before receiving SETTINGS|code 14 .*handshaker",
                      "hang": r"code 4 Deadline Exceeded"}
            failures = {}
            for name, (protocol, kind) in kinds.items():
                url = re.escape(endpoint(name))
                cause = causes[kind] if protocol == "grpc" else "Timeout was reached"
                failures[name] = re.findall(rf"^\S+ debug otlp/\S+: {url}: (?:{cause})",
                                            agent.logs(), re.M)
            given_up = {name: c.closed_durations() for name, c in collectors.items()
                        if kinds[name][0] != "grpc"}
            unanswered = {name: len(c.exports()) for name, c in collectors.items()
                          if isinstance(c, HangingReceiver)}
            for c in collectors.values():
                c.stop_hanging()

            # A real receiver takes over the same ports.
            grpc_name = "traces" if traces[0] == "grpc" else "metrics"
            http_name = "metrics" if grpc_name == "traces" else "traces"
            receiver = Receiver(grpc_port=collectors[grpc_name].port,
                                http_port=collectors[http_name].port)
            self.addCleanup(receiver.stop)
            resumed_at = time.monotonic()

            def delivered():
                samples = agent.metrics()
                exported = h.metric_sum(samples, "sonde_spans_exported_total")
                dropped = h.metric_sum(samples, "sonde_span_export_dropped_total")
                return exported + dropped == sent and receiver.metric_exports() and samples
            # The batch in flight waits out its backoff (at most 16 s by its 5th retry).
            final = h.wait_until(delivered, 45, interval=0.25,
                                 what="every span exported or counted as dropped")
            resumed_s = time.monotonic() - resumed_at
            h.wait_until(lambda: sum(int(p["count"]) for _, m, p in
                                     data_points(receiver.metric_exports()[-1])
                                     if m["name"] == "http.server.request.duration"
                                     and attrs(p).get("server.port") == str(port)) == sent,
                         10, what="the exported histogram counting every request")

            def dropped(samples, name, reason):
                return h.metric_sum(samples, name, reason=reason)
            span_drops = {r: dropped(final, "sonde_span_export_dropped_total", r)
                          for r in ("queue_full", "failed", "timeout", "rejected")}
            exported = h.metric_sum(final, "sonde_spans_exported_total")
            print(f"\n  traces {'/'.join(traces)}, metrics {'/'.join(metrics)}: {sent} requests "
                  f"in {load_s:.1f}s, hang {HANG_S:.0f}s; failed attempts "
                  f"{ {k: len(v) for k, v in failures.items()} }, HTTP connections given up "
                  f"after { {k: [round(d, 2) for d in v] for k, v in given_up.items()} } s, "
                  f"gRPC exports left unanswered {unanswered}; slowest scrape "
                  f"{max(scrape_s) * 1000:.0f} ms; RSS {baseline_rss} -> max {max(rss)} KiB; "
                  f"spans exported {exported:.0f}, dropped {span_drops}; metric points "
                  f"dropped (failed) during the hang "
                  f"{dropped(during, 'sonde_metric_export_dropped_total', 'failed'):.0f}; all "
                  f"delivered {resumed_s:.1f}s after the receiver came")

            # Counting never stopped and scrapes stayed prompt.
            self.assertLess(max(scrape_s), 1.0)
            self.assertEqual(h.metric_sum(final, "sonde_spans_produced_total"), sent)
            # No attempt waited on the collector past the timeout: each ended (with the
            # cause its hang gives) and was retried, spans after a backoff, metrics at the
            # next interval.
            for name, lines in failures.items():
                self.assertGreaterEqual(len(lines), 2, f"{name}: {lines}")
            for name, durations in given_up.items():  # HTTP: curl gave up at the timeout
                self.assertGreaterEqual(len(durations), 2, name)
                for d in durations:
                    self.assertGreater(d, self.TIMEOUT_S - 0.2, f"{name}: {durations}")
                    self.assertLess(d, self.TIMEOUT_S + 1.0, f"{name}: {durations}")
            for name, n in unanswered.items():  # gRPC: each call left at its deadline
                self.assertGreaterEqual(n, 2, name)
                self.assertLessEqual(n, HANG_S / self.TIMEOUT_S + 2, name)
            # Drops are counted with their reason: the span queue (4096) overflowed while
            # its worker waited on the collector; metric points of failed exports.
            self.assertGreater(span_drops["queue_full"], 0)
            self.assertGreater(dropped(during, "sonde_metric_export_dropped_total", "failed"), 0)
            # Everything produced is accounted for: exported or dropped with a reason.
            self.assertEqual(exported + sum(span_drops.values()), sent)
            self.assertEqual(len([s for s in receiver.spans()
                                  if s[2]["kind"] == 2]), exported)  # SPAN_KIND_SERVER
            # Bounded memory: the queue is capped.
            self.assertLess(max(rss) - baseline_rss, 32 * 1024)

    def test_grpc_traces_and_http_metrics_to_silent_collectors(self):
        """Accepted TCP connections, not one byte back: gRPC gives up on the HTTP/2
        handshake, curl on the request."""
        self.run_hang(traces=("grpc", "silent"), metrics=("http/protobuf", "silent"))

    def test_http_traces_stalled_after_head_and_grpc_metrics_never_answered(self):
        """An HTTP answer whose body never comes; gRPC calls taken and never answered."""
        self.run_hang(traces=("http/protobuf", "head"), metrics=("grpc", "hang"))


# ---- c. a target killed mid-request and restarted on its port

class FaultTargetKilledTest(unittest.TestCase):
    """SIGKILL mid-request: no close() is ever seen for the process's sockets. The
    agent forgets the pid (gauge, kernel filter), its connections and its kernel
    per-connection entries; the server restarted on the same port is counted exactly."""

    def test_plain_http_server_killed_mid_request_and_restarted(self):
        port = h.free_port()
        old = private_go_server(self, port)
        with h.Agent(env={"SONDE_EXECUTABLE_NAME": old.selector}) as agent:
            kernel = KernelFilter(agent)
            baseline = kernel.per_connection()
            old.start()
            agent.wait_instrumented(old.pid)
            self.assertEqual(kernel.tracked(), {old.pid})
            h.send_gets(port, ["/status/200"] * 3)
            agent.wait_server_requests(port, 3)

            # A request the server is busy with when it dies.
            conn = h.RawConnection(port)
            conn.send(h.request_bytes("GET", "/sleep/30000"))
            h.wait_until(lambda: self_metric(agent, "sonde_connections_tracked") == 1, 5,
                         what="the in-flight connection tracked")
            time.sleep(0.3)  # the server has read the request and sleeps
            os.kill(old.pid, signal.SIGKILL)
            old.proc.wait()
            with self.assertRaises((ConnectionError, OSError)):
                conn.read_response()
            conn.close()
            agent.wait_log(rf"forgetting process pid={old.pid}\b", timeout=5)
            h.wait_until(lambda: self_metric(agent, "sonde_instrumented_processes") == 0
                         and self_metric(agent, "sonde_connections_tracked") == 0, 5,
                         what="the killed process and its connection forgotten")
            kernel.wait_clean(set(), baseline)

            new = h.Server(old.argv, port, name=old.name, exe_hint=old.exe_hint)
            self.addCleanup(new.stop)
            new.start()
            agent.wait_instrumented(new.pid)
            h.send_gets(port, ["/status/200", "/status/404", "/bytes/100"])
            agent.wait_server_requests(port, 6)
            h.wait_until(lambda: self_metric(agent, "sonde_connections_tracked") == 0, 5,
                         what="the restarted server's connection closed")
            samples = agent.metrics()
            print(f"\n  killed pid {old.pid} mid-request; restarted as pid {new.pid}: "
                  f"{agent.server_requests(port):.0f} requests counted, kernel filter "
                  f"{sorted(kernel.tracked())}, per-connection maps {kernel.per_connection()}")
            self.assertEqual(agent.server_requests(port), 6)  # the killed request: none
            self.assertEqual(h.metric_sum(samples, "sonde_instrumented_processes"), 1)
            self.assertEqual(kernel.tracked(), {new.pid})
            self.assertEqual(kernel.per_connection(), baseline)
            self.assertEqual(len(re.findall(r"instrumenting process pid=", agent.logs())), 2)
            new.stop()
            agent.wait_log(rf"forgetting process pid={new.pid}\b", timeout=5)
            kernel.wait_clean(set(), baseline)

    def test_tls_server_killed_mid_request_leaves_no_kernel_entry(self):
        """The TLS probes keep per-connection entries (SSL object -> socket, socket
        carries TLS) that SSL_free and close() remove; a killed process calls neither."""
        port = h.free_port()
        cert, key = h.self_signed_cert()
        self.addCleanup(shutil.rmtree, os.path.dirname(cert), True)
        # Port and executable: only this server (clients are curl, not python).
        env = {"SONDE_OPEN_PORT": str(port), "SONDE_EXECUTABLE_NAME": "python3"}
        url = f"https://127.0.0.1:{port}"
        with h.Agent(env=env) as agent:
            kernel = KernelFilter(agent)
            baseline = kernel.per_connection()
            for attempt in ("first", "restarted"):
                srv = h.https_python_server(port, cert, key).start()
                self.addCleanup(srv.stop)
                agent.wait_instrumented(srv.pid)
                for _ in range(3):
                    subprocess.run(["curl", "-sSk", "-o", "/dev/null", f"{url}/status/200"],
                                   check=True, timeout=30)
                # A request the server is busy with when it dies.
                client = subprocess.Popen(["curl", "-sk", "-o", "/dev/null",
                                           f"{url}/sleep/30000"])
                h.wait_until(lambda: kernel.per_connection() != baseline, 5,
                             what="the in-flight TLS connection in the kernel maps")
                during = kernel.per_connection()
                os.kill(srv.pid, signal.SIGKILL)
                srv.proc.wait()
                client.wait(30)
                agent.wait_log(rf"forgetting process pid={srv.pid}\b", timeout=5)
                print(f"\n  {attempt}: pid {srv.pid} killed mid-request; per-connection maps "
                      f"{during} before, {kernel.per_connection()} after")
                kernel.wait_clean(set(), baseline)
            self.assertEqual(agent.server_requests(port), 6)
            self.assertEqual(self_metric(agent, "sonde_instrumented_processes"), 0)
            self.assertEqual(self_metric(agent, "sonde_connections_tracked"), 0)


# ---- d. many short-lived processes that match a selector

# A tiny server: listens on the port given (SO_REUSEPORT: the next one may start before
# this one is gone) for a moment, then exits. perl (perl-base) starts in a few ms.
LISTENER = ["perl", "-MIO::Socket::INET", "-e",
            'IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0], Listen => 5, '
            'ReusePort => 1) or die "listen: $!"; select(undef, undef, undef, 0.2)']


class FaultShortLivedProcessesTest(unittest.TestCase):
    """1000 processes a minute matching SONDE_OPEN_PORT, each living well under a
    second: curl clients of a watched port and tiny listeners on another. They are
    instrumented while they live and forgotten, the kernel filter is back to the
    long-lived server, no entry is stale, memory does not grow, and every request is
    counted on the server's side and, for each instrumented curl, on the client's."""

    RATE_PER_S = 1000 / 60

    def test_thousand_short_lived_processes_a_minute(self):
        port, listen_port = h.free_port(), h.free_port()
        env = {"SONDE_OPEN_PORT": f"{port},{listen_port}"}
        with h.Agent(env=env) as agent, h.go_server(port) as srv:
            kernel = KernelFilter(agent)
            baseline = kernel.per_connection()
            agent.wait_instrumented(srv.pid)
            # Warm up (first curl, first listener) before the memory baseline.
            warm_up = subprocess.Popen(["curl", "-s", "-o", "/dev/null",
                                        f"http://127.0.0.1:{port}/"])
            warm_up.wait(30)
            subprocess.run(LISTENER + [str(listen_port)], timeout=30, check=True)
            agent.wait_server_requests(port, 1)
            h.wait_until(lambda: kernel.tracked() == {srv.pid}, 10, what="warm-up forgotten")
            rss_before = h.rss_kib(agent.proc.pid)
            cpu_before = cpu_seconds(agent.proc.pid)

            curls, listeners, running = [], [], []
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < CHURN_S:
                due = start + n / self.RATE_PER_S
                time.sleep(max(0.0, due - time.monotonic()))
                if n % 2 == 0:
                    p = subprocess.Popen(["curl", "-s", "-o", "/dev/null",
                                          f"http://127.0.0.1:{port}/status/200"])
                    curls.append(p)
                else:
                    p = subprocess.Popen(LISTENER + [str(listen_port)])
                    listeners.append(p)
                running.append(p)
                running = [r for r in running if r.poll() is None]
                n += 1
            for p in running:
                p.wait(30)
            elapsed = time.monotonic() - start
            cpu_s = cpu_seconds(agent.proc.pid) - cpu_before
            lifetimes_ok = all(p.returncode == 0 for p in curls + listeners)

            agent.wait_server_requests(port, 1 + len(curls), timeout=15)
            h.wait_until(lambda: self_metric(agent, "sonde_instrumented_processes") == 1, 15,
                         what="every short-lived process forgotten")
            kernel.wait_clean({srv.pid}, baseline, timeout=15)
            samples = agent.metrics()
            rss_after = h.rss_kib(agent.proc.pid)
            logs = agent.logs()
            instrumented = set(map(int, re.findall(r"instrumenting process pid=(\d+)", logs)))
            forgotten = set(map(int, re.findall(r"forgetting process pid=(\d+)", logs)))
            started = {p.pid for p in curls + listeners}
            curls_seen = {p.pid for p in curls} & instrumented
            listeners_seen = {p.pid for p in listeners} & instrumented
            client_count = h.metric_sum(samples, "http_client_request_duration_seconds_count",
                                        server_port=port)
            print(f"\n  {len(started)} processes in {elapsed:.1f}s "
                  f"({len(started) / elapsed * 60:.0f}/min): instrumented {len(curls_seen)} of "
                  f"{len(curls)} curl, {len(listeners_seen)} of {len(listeners)} listeners, "
                  f"forgotten {len(started & forgotten)}; requests counted server "
                  f"{agent.server_requests(port):.0f}, client {client_count:.0f}; agent CPU "
                  f"{cpu_s:.2f}s; RSS {rss_before} -> {rss_after} KiB; ring full "
                  f"{h.metric_sum(samples, 'sonde_kernel_ringbuf_full_total'):.0f}, discovery "
                  f"problems {h.metric_sum(samples, 'sonde_discovery_problems_total'):.0f}")
            self.assertTrue(lifetimes_ok)
            self.assertGreaterEqual(len(started), CHURN_S * self.RATE_PER_S * 0.9)
            # Each one instrumented while it lived (a curl is filtered in by the kernel at
            # connect(), a listener at listen()), and each one forgotten. A process whose
            # exec record is read after it is gone cannot be named: on a starved host
            # (load 10+ on 2 cores) a few curls go that way, hence the floor.
            self.assertEqual((started & instrumented) - forgotten, set())
            self.assertGreaterEqual(len(curls_seen), 0.95 * len(curls))
            self.assertGreaterEqual(len(listeners_seen), 0.95 * len(listeners))
            # Every request on the server's side; on the client side, every request of an
            # instrumented curl (not one byte lost to their short lives).
            self.assertEqual(agent.server_requests(port), 1 + len(curls))
            self.assertEqual(client_count, len(curls_seen) + (warm_up.pid in instrumented))
            # Self-metrics: one process left, no connection, nothing lost or malformed.
            self.assertEqual(h.metric_sum(samples, "sonde_instrumented_processes"), 1)
            self.assertEqual(h.metric_sum(samples, "sonde_connections_tracked"), 0)
            self.assertEqual(h.metric_sum(samples, "sonde_kernel_ringbuf_full_total"), 0)
            self.assertEqual(h.metric_sum(samples, "sonde_events_malformed_total"), 0)
            self.assertEqual(h.metric_sum(samples, "sonde_dropped_requests_total"), 0)
            # Memory: what it used for the churn is given back.
            self.assertLess(rss_after - rss_before, 4 * 1024)


# ---- e. the agent killed and restarted

class FaultAgentKilledTest(unittest.TestCase):
    """SIGKILL: the kernel frees the programs and maps with the agent's last file
    descriptor; a new agent attaches and counts a server that kept running within 5 s."""

    def test_sigkilled_agent_restarted_counts_within_5s(self):
        port = h.free_port()
        srv = private_go_server(self, port).start()
        env = {"SONDE_EXECUTABLE_NAME": srv.selector}
        first = h.Agent(env=env).start()
        self.addCleanup(first.stop)
        first.wait_instrumented(srv.pid)
        h.send_gets(port, ["/status/200"] * 3)
        first.wait_server_requests(port, 3)
        maps, progs = h.bpf_object_ids(first.proc.pid)
        self.assertTrue(maps and progs)
        first.stop(signal.SIGKILL)

        def left():
            loaded_progs = {p["id"] for p in h.bpftool_json("prog", "show")}
            loaded_maps = {m["id"] for m in h.bpftool_json("map", "show")}
            return (progs & loaded_progs) | (maps & loaded_maps)
        h.wait_until(lambda: not left(), 5, what="the killed agent's programs and maps freed")

        second = h.Agent(env=env)
        self.addCleanup(second.stop)
        started = time.monotonic()
        second.start(wait_ready=False)
        sent, first_counted = 0, None
        while time.monotonic() - started < 10 and first_counted is None:
            conn = h.RawConnection(port)
            conn.send(h.request_bytes("GET", "/status/200", close=True))
            conn.read_response()
            conn.close()
            sent += 1
            try:
                if second.server_requests(port) >= 1:
                    first_counted = time.monotonic() - started
            except OSError:
                pass  # the endpoint is not up yet
            time.sleep(0.1)
        when = f"{first_counted * 1000:.0f} ms" if first_counted is not None else "never"
        print(f"\n  old programs {len(progs)} and maps {len(maps)} freed; the new agent "
              f"counted its first request {when} after its start ({sent} sent, one per 100 ms)")
        self.assertIsNotNone(first_counted, "no request counted within 10 s")
        self.assertLess(first_counted, 5.0)

        # From now on, exactly.
        def settled():
            a = second.server_requests(port)
            time.sleep(0.3)
            return second.server_requests(port) == a
        h.wait_until(settled, 5, what="request count settled")
        before = second.server_requests(port)
        h.send_gets(port, ["/status/200", "/status/500", "/bytes/1000"] * 4)
        second.wait_server_requests(port, before + 12)
        time.sleep(0.3)
        self.assertEqual(second.server_requests(port), before + 12)
        self.assertEqual(self_metric(second, "sonde_instrumented_processes"), 1)


# ---- f. neither tracefs nor debugfs mounted

# Unmounts every tracefs and debugfs of a private mount namespace, deepest first,
# checks that none is left, then runs the agent (with the arguments after it).
UNMOUNT_TRACEFS = r"""
mounted() { awk '$3 == "tracefs" || $3 == "debugfs" { print $2 }' /proc/self/mounts; }
while m=$(mounted | sort -r | head -n 1) && [ -n "$m" ]; do umount -l "$m" || exit 97; done
for root in /sys/kernel/tracing /sys/kernel/debug/tracing; do
  [ -e "$root/events/syscalls" ] && exit 98
done
exec "$0" "$@"
"""


def mount_kinds(pid):
    with open(f"/proc/{pid}/mounts") as f:
        return [line.split()[2] for line in f]


class FaultTracefsUnmountedTest(unittest.TestCase):
    """No tracefs mounted: a root agent mounts one in a mount namespace of its own (the
    namespace it was started in keeps none) and attaches per-syscall tracepoints; without
    CAP_SYS_ADMIN it cannot, says why, and falls back to raw syscall tracepoints. Either
    way every request is counted."""

    def run_without_tracefs(self, then, expected_logs, env=None):
        port = h.free_port()
        srv = private_go_server(self, port).start()
        wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   UNMOUNT_TRACEFS] + then
        env = dict(env or {}, SONDE_EXECUTABLE_NAME=srv.selector)
        with h.Agent(env=env, wrapper=wrapper) as agent:
            for expected in expected_logs:
                self.assertIn(expected, agent.logs())
            agent.wait_instrumented(srv.pid)
            h.send_gets(port, ["/status/200", "/status/500", "/chunked/5000", "/bytes/10"])
            agent.wait_server_requests(port, 4)
            time.sleep(0.3)
            self.assertEqual(agent.server_requests(port), 4)
            self.assertEqual(agent.server_requests(port, http_response_status_code=500), 1)
            return mount_kinds(agent.proc.pid)

    def test_root_agent_mounts_tracefs_in_its_own_namespace(self):
        # A process left in the namespace the agent starts in stands for the host: its
        # mounts must not change.
        holder_file = os.path.join(tempfile.mkdtemp(prefix="sonde-e2e-tracefs-"), "holder")
        self.addCleanup(shutil.rmtree, os.path.dirname(holder_file), True)
        keep_namespace = ["sh", "-c", 'sleep 600 & echo $! > "$E2E_NS_HOLDER"; exec "$0"']
        agent_mounts = self.run_without_tracefs(
            keep_namespace,
            ["mounted it in the agent's own mount namespace",
             "syscall hooks via per-syscall tracepoints"],
            env={"E2E_NS_HOLDER": holder_file})
        with open(holder_file) as f:
            holder = int(f.read())
        self.addCleanup(os.kill, holder, signal.SIGKILL)
        self.assertIn("tracefs", agent_mounts)
        self.assertNotIn("tracefs", mount_kinds(holder))
        self.assertNotIn("debugfs", mount_kinds(holder))

    def test_raw_syscall_tracepoints_without_tracefs_or_cap_sys_admin(self):
        agent_mounts = self.run_without_tracefs(
            ["capsh", "--drop=cap_sys_admin", "--", "-c", 'exec "$0"'],
            ["the agent could not mount it (unshare(CLONE_NEWNS): Operation not permitted",
             "syscall hooks via raw syscall tracepoints (tracefs not mounted)"])
        self.assertNotIn("tracefs", agent_mounts)


# ---- g. the kernel ring buffer flooded

class FaultRingBufferFloodTest(unittest.TestCase):
    """The agent stopped (SIGSTOP) while wrk drives a server: the 4 MiB ring fills and
    the kernel programs drop records and count them. After SIGCONT the agent drains the
    backlog, answers scrapes at once, reports the drops (counter and one log line) and
    counts new requests exactly."""

    def test_ring_overflow_while_agent_stopped(self):
        with agent_that_counted_five(self) as (agent, port):
            self.assertEqual(self_metric(agent, "sonde_kernel_ringbuf_full_total"), 0)

            agent.proc.send_signal(signal.SIGSTOP)
            try:
                # Each response is one 4 KiB record: about 1000 of them fill the ring.
                out = subprocess.run(["wrk", "-t2", "-c8", "-d2s",
                                      f"http://127.0.0.1:{port}/bytes/4000"],
                                     capture_output=True, timeout=60, check=True).stdout.decode()
            finally:
                agent.proc.send_signal(signal.SIGCONT)
            resumed = time.monotonic()
            flood = int(re.search(r"(\d+) requests in", out).group(1))
            t0 = time.monotonic()
            agent.metrics_text()
            first_scrape_s = time.monotonic() - t0

            def full():
                return self_metric(agent, "sonde_kernel_ringbuf_full_total")
            h.wait_until(full, 5, what="ring-full drops in the agent's metrics")

            def settled():
                a = agent.server_requests(port)
                time.sleep(0.3)
                return agent.server_requests(port) == a
            h.wait_until(settled, 10, what="the backlog drained")
            drained_s = time.monotonic() - resumed
            counted_flood = agent.server_requests(port) - 5
            dropped = full()

            # New requests after the flood, on new connections and on a keep-alive one.
            for i in range(10):
                conn = h.RawConnection(port)
                conn.send(h.request_bytes("GET", "/status/201", close=True))
                self.assertEqual(conn.read_response().status, 201)
                conn.close()
            h.send_gets(port, ["/status/202"] * 40)
            agent.wait_server_requests(port, 5 + counted_flood + 50)
            time.sleep(0.3)
            samples = agent.metrics()
            warnings = re.findall(r"warn.*data lost: sonde_kernel_ringbuf_full_total.*", agent.logs())
            print(f"\n  wrk sent {flood} requests while the agent was stopped; "
                  f"{counted_flood:.0f} counted, {dropped:.0f} records dropped; first scrape "
                  f"after SIGCONT {first_scrape_s * 1000:.0f} ms, backlog drained in "
                  f"{drained_s:.1f}s; connections tracked "
                  f"{h.metric_sum(samples, 'sonde_connections_tracked'):.0f}; log: {warnings}")
            # No stall: a prompt scrape while the backlog drains, and the backlog (what the
            # ring held: some of the flood's requests) counted within seconds.
            self.assertLess(first_scrape_s, 1.0)
            self.assertLess(drained_s, 5.0)
            self.assertGreater(dropped, 0)
            self.assertGreater(counted_flood, 0)
            self.assertLess(counted_flood, flood)  # what was dropped is not invented
            self.assertEqual(h.metric_sum(samples, "sonde_kernel_ringbuf_full_total"), dropped)
            self.assertEqual(agent.server_requests(port, http_response_status_code=201), 10)
            self.assertEqual(agent.server_requests(port, http_response_status_code=202), 40)
            self.assertEqual(agent.server_requests(port), 5 + counted_flood + 50)
            self.assertEqual(h.metric_sum(samples, "sonde_events_malformed_total"), 0)
            # Logged once (rate-limited), with the count.
            self.assertEqual(len(warnings), 1, warnings)
            self.assertIn(f"{dropped:.0f}", warnings[0])


# ---- h. no idle CPU time left for the agent

SCHED_OTHER, SCHED_IDLE = 0, 5


def thread_policy(pid, tid):
    """Field 41 of /proc/PID/task/TID/stat: the thread's scheduling policy."""
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[38])


def idle_threads(pid):
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")
            if thread_policy(pid, tid) == SCHED_IDLE]


class FaultNoIdleCpuTest(unittest.TestCase):
    """The thread that drains the ring runs at idle CPU priority (yield_cpu), so it
    only gets CPU time nobody else wants. Here nobody leaves any: two spinning
    processes per CPU at normal priority, and wrk driving the server. An idle thread
    would get a fraction of a percent of a CPU and the 4 MiB ring would overflow
    within a second; the agent's watcher gives the drain thread normal priority back
    when a quarter of the ring waits, until it has caught up, so nothing is dropped
    and every request is counted; once the load is gone it is idle again. Without
    CAP_SYS_NICE (needed to leave idle priority) the thread keeps normal priority and
    the log says so."""

    def load_with_every_cpu_busy(self, agent, port):
        stop_hogs = h.spin_every_cpu(self)
        # 2000-byte responses: about 2 KiB of ring per request.
        out = subprocess.run(["wrk", "-t2", "-c8", "-d4s", "--timeout", "10s",
                              f"http://127.0.0.1:{port}/bytes/2000"],
                             capture_output=True, timeout=60, check=True).stdout.decode()
        stop_hogs()
        done = int(re.search(r"(\d+) requests in", out).group(1))
        agent.wait_server_requests(port, 5 + done, timeout=30)
        time.sleep(0.5)
        counted = agent.server_requests(port) - 5
        # wrk stops reading with requests in flight: answered and counted, not read.
        self.assertGreaterEqual(counted, done)
        self.assertLessEqual(counted, done + 8)
        return done, counted

    def test_drain_thread_gets_normal_priority_back_and_nothing_is_lost(self):
        with agent_that_counted_five(self) as (agent, port):
            pid = agent.proc.pid
            # At rest: the main thread (it drains the ring) and only it is idle.
            self.assertEqual(idle_threads(pid), [pid])
            self.assertEqual(self_metric(agent, "sonde_consumer_yielding"), 1)
            self.assertEqual(self_metric(agent, "sonde_consumer_priority_raised_total"), 0)

            done, counted = self.load_with_every_cpu_busy(agent, port)
            samples = agent.metrics()
            raised = h.metric_sum(samples, "sonde_consumer_priority_raised_total")
            print(f"\n  {done} requests with every CPU busy, {counted} counted; priority "
                  f"raised {raised:.0f} time(s)")
            self.assertGreaterEqual(raised, 1)
            self.assertEqual(h.metric_sum(samples, "sonde_kernel_ringbuf_full_total"), 0)
            # Caught up once the load is gone: idle again within a check or two (the
            # gauge follows at the agent's next once-a-second housekeeping).
            h.wait_until(lambda: idle_threads(pid) == [pid]
                         and self_metric(agent, "sonde_consumer_yielding") == 1, 5,
                         interval=0.1, what="the drain thread idle again")
            self.assertEqual(idle_threads(pid), [pid])
            self.assertEqual(self_metric(agent, "sonde_consumer_yielding"), 1)

    def test_without_cap_sys_nice_the_drain_thread_keeps_normal_priority(self):
        wrapper = ["capsh", "--drop=cap_sys_nice", "--", "-c", 'exec "$0" "$@"']
        with agent_that_counted_five(self, wrapper=wrapper) as (agent, _):
            self.assertIn("could not take normal priority back from idle (no CAP_SYS_NICE)",
                          agent.logs())
            self.assertEqual(idle_threads(agent.proc.pid), [])
            self.assertEqual(self_metric(agent, "sonde_consumer_yielding"), 0)


if __name__ == "__main__":
    unittest.main()
