"""Issue 4 (incoming trace context): a server span continues the trace named
by the request's traceparent, honours its sampled flag, and starts a new
trace otherwise. Header values never appear in the output."""

import time
import unittest

import harness as h

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


class IncomingTraceContextTest(unittest.TestCase):
    def test_server_span_continues_sampled_parent_and_drops_unsampled(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port)}) as agent, h.python_server(port) as srv:
            agent.wait_instrumented(srv.pid)
            conn = h.RawConnection(port)
            for path, flags in (("/status/200", "01"), ("/status/201", "00")):
                conn.send(h.request_bytes("GET", path, headers={
                    "traceparent": f"00-{TRACE}-{PARENT}-{flags}", "tracestate": "v=secret"}))
                conn.read_response()
            conn.send(h.request_bytes("GET", "/status/404"))
            conn.read_response()
            conn.close()
            agent.wait_server_requests(port, 3)
            time.sleep(0.2)
            spans = {s["path"]: s for s in agent.spans()
                     if s["kind"] == "server" and s["local_port"] == port}
            # The unsampled request is counted in metrics but not traced.
            self.assertEqual(set(spans), {"/status/200", "/status/404"})
            self.assertEqual(agent.server_requests(port, http_response_status_code=201), 1)
            continued = spans["/status/200"]
            self.assertEqual(continued["trace_id"], TRACE)
            self.assertEqual(continued["parent_span_id"], PARENT)
            self.assertRegex(continued["span_id"], r"^[0-9a-f]{16}$")
            self.assertNotEqual(continued["span_id"], PARENT)
            fresh = spans["/status/404"]
            self.assertRegex(fresh["trace_id"], r"^[0-9a-f]{32}$")
            self.assertNotEqual(fresh["trace_id"], TRACE)
            self.assertEqual(fresh["parent_span_id"], "")
            with open(agent.stdout_path) as f:
                self.assertNotIn("secret", f.read())


if __name__ == "__main__":
    unittest.main()
