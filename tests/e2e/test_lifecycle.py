"""Acceptance: late servers are picked up quickly, exited ones are forgotten
(kernel map entries too), shutdown leaves no program behind, and a run
without privileges says which capabilities are missing."""

import os
import signal
import subprocess
import time
import unittest

import harness as h


def tracked_pids_in_kernel():
    maps = [m for m in h.bpftool_json("map", "show") if m.get("name") == "tracked_pids"]
    pids = set()
    for m in maps:
        for entry in h.bpftool_json("map", "dump", "id", str(m["id"])):
            key = entry.get("key")
            if isinstance(key, list):  # raw bytes as hex strings
                pids.add(int.from_bytes(bytes(int(b, 16) for b in key), "little"))
            elif isinstance(key, int):
                pids.add(key)
    return pids


class LifecycleTest(unittest.TestCase):
    def test_late_server_instrumented_within_2s_and_forgotten_on_exit(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            srv = h.python_server(port).start()
            try:
                agent.wait_instrumented(srv.pid, timeout=2.0 + (time.monotonic() - srv.ready_at))
                elapsed = time.monotonic() - srv.ready_at
                print(f"\n  late server instrumented {elapsed * 1000:.0f} ms after it listened")
                self.assertLess(elapsed, 2.0)
                self.assertIn(srv.pid, tracked_pids_in_kernel())
                conn = h.RawConnection(port)
                conn.send(h.request_bytes("GET", "/status/200", close=True))
                self.assertEqual(conn.read_response().status, 200)
                conn.close()
                h.wait_until(lambda: any(s["local_port"] == port for s in agent.spans()), 5,
                             what="a span from the late server")
            finally:
                srv.stop()
            agent.wait_log(rf"forgetting process pid={srv.pid}\b", timeout=5)
            h.wait_until(lambda: srv.pid not in tracked_pids_in_kernel(), 5,
                         what="kernel map entry removed")

    def test_listener_on_another_port_becomes_client_of_a_watched_port(self):
        """Regression (issue 8): a listen() on a port no selector names used to leave an
        'ignored' kernel filter entry, which hid the process's later connect() to a
        watched port: it never became a client."""
        port, other = h.free_port(), h.free_port()
        script = ("import socket, sys\n"
                  f"l = socket.socket(); l.bind(('127.0.0.1', {other})); l.listen()\n"
                  "print('LISTENING', flush=True); sys.stdin.readline()\n"
                  "for _ in range(3):\n"
                  f"    c = socket.create_connection(('127.0.0.1', {port}))\n"
                  "    c.sendall(b'GET /status/200 HTTP/1.1\\r\\nHost: x\\r\\n"
                  "Connection: close\\r\\n\\r\\n')\n"
                  "    while c.recv(4096): pass\n"
                  "    c.close()\n"
                  "print('DONE', flush=True); sys.stdin.readline()\n")
        # debug: the agent logs each process event (type 6: listen) it handles.
        env = {"SONDE_OPEN_PORT": str(port), "SONDE_LOG_LEVEL": "debug"}
        with h.Agent(env=env) as agent, h.go_server(port) as srv:
            agent.wait_instrumented(srv.pid)
            client = subprocess.Popen(["python3", "-c", script], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
            try:
                self.assertEqual(client.stdout.readline(), b"LISTENING\n")
                agent.wait_log(rf"process event type=6 pid={client.pid}\b", timeout=5)
                client.stdin.write(b"\n")
                client.stdin.flush()
                self.assertEqual(client.stdout.readline(), b"DONE\n")
                agent.wait_instrumented(client.pid, timeout=5)
                h.wait_until(lambda: h.metric_sum(
                    agent.metrics(), "http_client_request_duration_seconds_count",
                    server_port=port) == 3, 5, what="the client's 3 requests counted")
            finally:
                client.stdin.close()
                client.wait(10)

    def test_client_exec_by_a_tracked_server_before_its_fork_is_read(self):
        """Regression (issue 8): a tracked server forks and execs a client of a watched port
        (a shell running curl) while the agent is behind. The kernel tracks the child from
        fork; it used to keep that entry across the exec, so the client's connect() was
        never reported and the agent, judging the fork later, marked the client ignored:
        its requests were lost. The agent is stopped (SIGSTOP) for the whole life of the
        client's request to make the race certain."""
        spawner_port, target_port = h.free_port(), h.free_port()
        env = {"SONDE_OPEN_PORT": f"{spawner_port},{target_port}"}
        spawner = h.Server(["python3", os.path.join(h.SERVERS, "spawning_server.py"),
                            str(spawner_port)], spawner_port, name="spawning server")
        with h.Agent(env=env) as agent, h.go_server(target_port) as target, spawner:
            agent.wait_instrumented(target.pid)
            agent.wait_instrumented(spawner.pid)
            agent.proc.send_signal(signal.SIGSTOP)
            try:
                conn = h.RawConnection(spawner_port)
                conn.send(h.request_bytes("GET", f"/spawn/{target_port}", close=True))
                response = conn.read_response()
                conn.close()
                self.assertEqual(response.status, 200)
                child = int(response.body)
                # The child's request is over well before it exits (5 s after it).
                time.sleep(1.5)
            finally:
                agent.proc.send_signal(signal.SIGCONT)
            agent.wait_instrumented(child, timeout=5)
            h.wait_until(lambda: h.metric_sum(
                agent.metrics(), "http_client_request_duration_seconds_count",
                server_port=target_port) == 1, 5, what="the spawned client's request counted")
            # (The test itself is a client of the spawner, a watched port, too.)
            spans = [s for s in agent.spans() if s["kind"] == "client" and s["pid"] == child]
            self.assertEqual([(s["path"], s["peer_port"]) for s in spans],
                             [("/status/200", target_port)])

    def test_exe_path_selector_and_service_name_from_executable(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_EXECUTABLE_NAME": "go_http_server$"}) as agent:
            with h.go_server(port) as srv:
                agent.wait_instrumented(srv.pid, timeout=5)
                self.assertIn("service=go_http_server", agent.logs())


class ShutdownTest(unittest.TestCase):
    def assert_no_programs_left(self):
        h.wait_until(lambda: not h.loaded_sonde_programs(), 5, what="programs unloaded")

    def test_sigterm_detaches_within_2s(self):
        agent = h.Agent(env={"SONDE_OPEN_PORT": str(h.free_port())}).start()
        self.assertTrue(h.loaded_sonde_programs())
        t0 = time.monotonic()
        rc = agent.stop(signal.SIGTERM)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(rc, 0)
        self.assert_no_programs_left()

    def test_sigkill_leaves_nothing_loaded(self):
        agent = h.Agent(env={"SONDE_OPEN_PORT": str(h.free_port())}).start()
        self.assertTrue(h.loaded_sonde_programs())
        agent.stop(signal.SIGKILL)
        self.assert_no_programs_left()

    def test_unprivileged_run_names_missing_capabilities(self):
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              h.AGENT], capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        err = out.stderr.decode()
        for cap in ("CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"):
            self.assertIn(cap, err)


class TracefsModeTest(unittest.TestCase):
    """With tracefs mounted the agent uses per-syscall tracepoints; the same
    requests must give the same result as with raw syscall tracepoints."""

    def test_per_syscall_tracepoints_when_tracefs_mounted(self):
        port = h.free_port()
        wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   "T=/sys/kernel/tracing; mountpoint -q $T || mount -t tracefs nodev $T; "
                   "exec \"$0\"", ]
        with h.python_server(port) as srv, \
                h.Agent(env={"SONDE_OPEN_PORT": str(port)}, wrapper=wrapper) as agent:
            self.assertIn("per-syscall tracepoints", agent.logs())
            agent.wait_instrumented(srv.pid)
            h.send_gets(port, ("/status/200", "/status/500", "/chunked/5000"))
            agent.wait_server_requests(port, 3)
            self.assertEqual(agent.server_requests(port), 3)


class SocketFieldReadsTest(unittest.TestCase):
    """Socket fields are read by guarded loads (bpf_rdonly_cast) where the kernel has it,
    else by one helper call each (force_helper_reads takes that path here): both find
    the same socket, addresses and ports for every request."""

    def spans_in_mode(self, force_helper_reads):
        port = h.free_port()
        env = {"SONDE_OPEN_PORT": str(port)}
        if force_helper_reads:
            env["SONDE_FORCE_HELPER_READS"] = "true"
        with h.python_server(port) as srv, h.Agent(env=env) as agent:
            agent.wait_instrumented(srv.pid)
            conn = h.RawConnection(port)
            client_port = conn.sock.getsockname()[1]
            for path in ("/status/200", "/status/404", "/chunked/3000"):
                conn.send(h.request_bytes("GET", path))
                conn.read_response()
            conn.close()
            agent.wait_server_requests(port, 3)
            self.assertEqual(agent.server_requests(port), 3)
            time.sleep(0.3)  # the printer writes spans after the metric counts them
            logs = agent.logs()
            spans = [s for s in agent.spans() if s["kind"] == "server" and s["local_port"] == port]
        return logs, port, client_port, spans

    def check(self, force_helper_reads, expected_log):
        logs, port, client_port, spans = self.spans_in_mode(force_helper_reads)
        self.assertIn(expected_log, logs)
        self.assertEqual(sorted((s["path"], s["status"]) for s in spans),
                         [("/chunked/3000", 200), ("/status/200", 200), ("/status/404", 404)])
        for s in spans:
            self.assertEqual((s["local_address"], s["local_port"]), ("127.0.0.1", port))
            self.assertEqual((s["peer_address"], s["peer_port"]), ("127.0.0.1", client_port))

    def test_guarded_loads(self):
        self.check(False, "socket fields read by guarded loads (bpf_rdonly_cast)")

    def test_helper_reads(self):
        self.check(True, "socket fields read by helper calls")


class BenchmarkStageTest(unittest.TestCase):
    """benchmark_kernel_stage (bench/profile_bpf.py --stage) really stops the kernel
    programs before the ring: the process is instrumented, its requests are served,
    and not one record reaches the agent; `ring` lets every record reach the agent,
    which drops them unparsed; the default stage counts them all."""

    def run_stage(self, stage):
        """(logs, requests counted, ring records the agent read during the requests)"""
        port = h.free_port()
        env = {"SONDE_OPEN_PORT": str(port), "SONDE_BENCHMARK_KERNEL_STAGE": stage}
        with h.Agent(env=env) as agent, h.go_server(port) as srv:
            agent.wait_instrumented(srv.pid)
            time.sleep(0.5)
            read0 = h.metric_sum(agent.metrics(), "sonde_events_read_total")
            h.send_gets(port, ["/status/200"] * 20)
            time.sleep(1.0)  # more than the agent's 50 ms drain timer
            read = h.metric_sum(agent.metrics(), "sonde_events_read_total") - read0
            return agent.logs(), agent.server_requests(port), read

    def test_payload_stage_emits_nothing_full_counts_all(self):
        logs, counted, read = self.run_stage("payload")
        self.assertEqual(counted, 0)
        self.assertLess(read, 20)  # no data record: at most connection records
        self.assertIn("benchmark_kernel_stage=payload", logs)
        logs, counted, read = self.run_stage("full")
        self.assertEqual(counted, 20)
        self.assertGreaterEqual(read, 40)

    def test_ring_stage_reads_every_record_and_counts_none(self):
        logs, counted, read = self.run_stage("ring")
        self.assertEqual(counted, 0)
        self.assertGreaterEqual(read, 40)  # a request and a response record per request
        self.assertIn("benchmark_kernel_stage=ring", logs)


if __name__ == "__main__":
    unittest.main()
