"""Acceptance: span durations are measured where the process touches the
bytes, and client programs produce client spans and metrics."""

import os
import subprocess
import unittest

import harness as h


class SleepHandlerTimingTest(unittest.TestCase):
    def test_100ms_handler_measured_between_100_and_120ms(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent, h.python_server(port) as srv:
            agent.wait_instrumented(srv.pid)
            conn = h.RawConnection(port)
            for _ in range(5):
                conn.send(h.request_bytes("GET", "/sleep/100"))
                self.assertEqual(conn.read_response().status, 200)
            conn.close()

            def sleeps():
                found = [s for s in agent.spans()
                         if s["kind"] == "server" and s["path"] == "/sleep/100"]
                return found if len(found) == 5 else None
            spans = h.wait_until(sleeps, 10, what="5 sleep spans")
            print("\n  /sleep/100 spans (ms): " +
                  ", ".join(f"{s['duration_ns'] / 1e6:.2f}" for s in spans))
            for s in spans:
                ms = s["duration_ns"] / 1e6
                self.assertGreaterEqual(ms, 100.0, s)
                self.assertLessEqual(ms, 120.0, s)
            samples = agent.metrics()
            total = h.metric_sum(samples, "http_server_request_duration_seconds_sum",
                                 server_port=port, http_route="/sleep/*")
            self.assertGreaterEqual(total, 0.5)
            self.assertLessEqual(total, 0.6)


class ClientSpansTest(unittest.TestCase):
    def test_curl_urllib_and_go_clients(self):
        port = h.free_port()
        go_client = h.go_binary("client_go.go", "go_http_client")
        with h.python_server(port) as srv, h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            agent.wait_instrumented(srv.pid)
            base = f"http://127.0.0.1:{port}"
            clients = {
                "curl": ["curl", "-sS", "-o", "/dev/null", f"{base}/status/200",
                         "-o", "/dev/null", f"{base}/status/404"],
                "urllib": ["python3", os.path.join(h.SERVERS, "client_urllib.py"),
                           f"{base}/status/200", f"{base}/status/201"],
                "go": [go_client, f"{base}/status/200", f"{base}/status/500"],
            }
            pids = {}
            for name, argv in clients.items():
                p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
                pids[name] = p.pid
                self.assertIn(p.wait(30), (0, 22), name)  # curl -f not used: 0 expected

            def client_spans():
                spans = [s for s in agent.spans() if s["kind"] == "client"
                         and s["peer_port"] == port and s["pid"] in pids.values()]
                return spans if len(spans) >= 6 else None
            spans = h.wait_until(client_spans, 10, what="6 client spans")
            by_pid = {}
            for s in spans:
                by_pid.setdefault(s["pid"], []).append((s["method"], s["path"], s["status"]))
                self.assertEqual(s["server_address"], "127.0.0.1")
                self.assertEqual(s["server_port"], port)
            self.assertEqual(sorted(by_pid[pids["curl"]]),
                             [("GET", "/status/200", 200), ("GET", "/status/404", 404)])
            self.assertEqual(sorted(by_pid[pids["urllib"]]),
                             [("GET", "/status/200", 200), ("GET", "/status/201", 201)])
            self.assertEqual(sorted(by_pid[pids["go"]]),
                             [("GET", "/status/200", 200), ("GET", "/status/500", 500)])
            samples = agent.metrics()
            self.assertEqual(h.metric_sum(samples, "http_client_request_duration_seconds_count",
                                          server_address="127.0.0.1", server_port=port), 6)
            self.assertEqual(h.metric_sum(samples, "http_client_request_duration_seconds_count",
                                          server_port=port, service_name="curl"), 2)


if __name__ == "__main__":
    unittest.main()
