"""Acceptance: every request a real server answers becomes exactly one span
and one count in http_server_request_duration_seconds, split correctly by
method and status, whatever syscalls the server uses."""

import collections
import time
import unittest

import harness as h

MIB = 1 << 20


def run_request_mix(port, chunked_headers=None):
    """Sends a fixed mix of requests; returns Counter of (method, path, status)."""
    sent = collections.Counter()

    def record(method, path, response):
        sent[(method, path, response.status)] += 1

    # Keep-alive connection with several methods, statuses and bodies.
    conn = h.RawConnection(port)
    plan = [
        ("GET", "/status/200", None),
        ("GET", "/status/200", None),
        ("POST", "/status/201", b"name=sonde"),
        ("PUT", "/status/200", b"x" * 300),
        ("DELETE", "/status/404", None),
        ("GET", "/status/500", None),
        ("HEAD", "/status/200", None),
        ("POST", "/upload", b"u" * MIB),
        ("GET", "/bytes/1048576", None),
    ]
    for method, path, body in plan:
        conn.send(h.request_bytes(method, path, body))
        resp = conn.read_response(head=(method == "HEAD"))
        if path == "/bytes/1048576":
            assert len(resp.body) == MIB, len(resp.body)
        record(method, path, resp)
    conn.send(h.request_bytes("GET", "/chunked/30000", headers=chunked_headers))
    resp = conn.read_response()
    assert resp.headers.get("transfer-encoding", "").lower() == "chunked", resp.headers
    record("GET", "/chunked/30000", resp)

    # Pipelined: three requests in one write, answered in order.
    conn.send(h.request_bytes("GET", "/status/200") + h.request_bytes("GET", "/status/404") +
              h.request_bytes("PUT", "/status/201", b"p"))
    for method, path in (("GET", "/status/200"), ("GET", "/status/404"),
                         ("PUT", "/status/201")):
        record(method, path, conn.read_response())
    conn.close()

    # One connection per request.
    for _ in range(2):
        c = h.RawConnection(port)
        c.send(h.request_bytes("GET", "/status/200", close=True))
        record("GET", "/status/200", c.read_response())
        c.close()
    return sent


class Http1ServerTest:
    """Mixed into one TestCase per server below."""

    server_factory = None
    chunked_headers = None

    def test_every_request_counted_once(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent:
            with self.server_factory(port) as server:
                agent.wait_server_instrumented(server)
                sent = run_request_mix(port, self.chunked_headers)
                total = sum(sent.values())

                agent.wait_server_requests(port, total)
                time.sleep(0.3)  # anything extra would show up now
                samples = agent.metrics()
                self.assertEqual(
                    h.metric_sum(samples, "http_server_request_duration_seconds_count",
                                 server_port=port), total)
                by_method_status = collections.Counter()
                for (method, _path, status), n in sent.items():
                    by_method_status[(method, status)] += n
                for (method, status), n in by_method_status.items():
                    self.assertEqual(
                        h.metric_sum(samples, "http_server_request_duration_seconds_count",
                                     server_port=port, http_request_method=method,
                                     http_response_status_code=status), n,
                        f"{method} {status}")

                spans = [s for s in agent.spans()
                         if s["kind"] == "server" and s["local_port"] == port]
                got = collections.Counter((s["method"], s["path"], s["status"]) for s in spans)
                self.assertEqual(got, sent)
                # Body sizes of the 1 MiB transfers both ways.
                upload = [s for s in spans if s["path"] == "/upload"]
                self.assertEqual(upload[0]["request_body_bytes"], MIB)
                download = [s for s in spans if s["path"] == "/bytes/1048576"]
                self.assertEqual(download[0]["response_body_bytes"], MIB)
                for s in spans:
                    self.assertEqual(s["peer_address"], "127.0.0.1")
                    self.assertGreater(s["peer_port"], 0)
                    self.assertEqual(s["local_address"], "127.0.0.1")


class PythonServerTest(Http1ServerTest, unittest.TestCase):
    server_factory = staticmethod(h.python_server)


class NodeServerTest(Http1ServerTest, unittest.TestCase):
    server_factory = staticmethod(h.node_server)


class GoServerTest(Http1ServerTest, unittest.TestCase):
    server_factory = staticmethod(h.go_server)


class JavaServerTest(Http1ServerTest, unittest.TestCase):
    server_factory = staticmethod(h.java_server)


class NginxServerTest(Http1ServerTest, unittest.TestCase):
    server_factory = staticmethod(h.nginx_server)
    # nginx answers with a chunked body only when it compresses on the fly.
    chunked_headers = {"Accept-Encoding": "gzip"}


if __name__ == "__main__":
    unittest.main()
