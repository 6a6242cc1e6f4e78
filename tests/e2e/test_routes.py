"""Issue 3 acceptance: route patterns and the heuristic give low-cardinality
http_route values in metrics and spans; random paths stay under the cap and
the agent's memory stays bounded."""

import os
import subprocess
import tempfile
import unittest

import harness as h

ROUTES_YAML = """routes:
  patterns:
    - /orders/{id}
    - /users/{id}/cart
  ignored_patterns:
    - /ping
  unmatched: heuristic
"""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class RoutePatternsTest(unittest.TestCase):
    def test_patterns_and_heuristic_routes(self):
        config = h.write_config(ROUTES_YAML)
        port = h.free_port()
        try:
            with h.Agent(env={"SONDE_CONFIG_PATH": config, "SONDE_OPEN_PORT": str(port)}) as agent, \
                    h.go_server(port) as srv:
                agent.wait_instrumented(srv.pid)
                paths = ["/ping", "/orders/123", "/orders/987", "/users/42/cart",
                         "/items/550e8400-e29b-41d4-a716-446655440000/reviews", "/health?x=1",
                         "/ping"]
                h.send_gets(port, paths)
                agent.wait_server_requests(port, 5)
                routes = {l["http_route"] for n, l, v in agent.metrics()
                          if n == "http_server_request_duration_seconds_count"
                          and l.get("server_port") == str(port)}
                expected = {"/orders/{id}", "/users/{id}/cart", "/items/*/reviews", "/health"}
                self.assertEqual(routes, expected)
                span_routes = {s["route"] for s in agent.spans()
                               if s["kind"] == "server" and s["local_port"] == port}
                self.assertEqual(span_routes, expected)
                self.assertNotIn("x=1", agent.metrics_text())
                # The ledger: the ignored route's requests are filtered, not lost (this test
                # is a client of the watched port too, so both sides may count).
                h.wait_until(lambda: h.metric_sum(agent.metrics(),
                                                  "sonde_requests_filtered_total") >= 2, 5,
                             what="the two /ping requests filtered")
                samples = agent.metrics()
                seen, exported, filtered = (h.metric_sum(samples, f"sonde_requests_{n}_total")
                                            for n in ("seen", "exported", "filtered"))
                self.assertGreaterEqual(seen, 7)
                self.assertEqual(seen, exported + filtered)
        finally:
            os.unlink(config)


WRK_RANDOM_PATHS = """
local letters = "abcdefghijklmnopqrstuvwxyz"
math.randomseed(7)
request = function()
  local n = math.random(6, 12)
  local t = {}
  for i = 1, n do
    local k = math.random(1, 26)
    t[i] = letters:sub(k, k)
  end
  return wrk.format("GET", "/r/" .. table.concat(t) .. "/v")
end
"""


class RouteCardinalityTest(unittest.TestCase):
    def test_100k_random_paths_stay_under_cap_and_memory_bounded(self):
        port = h.free_port()
        workdir = tempfile.mkdtemp(prefix="sonde-e2e-wrk-")
        script = os.path.join(workdir, "random.lua")
        with open(script, "w") as f:
            f.write(WRK_RANDOM_PATHS)
        cap = 300
        env = {"SONDE_OPEN_PORT": str(port), "SONDE_TRACE_PRINTER": "disabled",
               "SONDE_ROUTES_MAX_ROUTES": str(cap)}
        with h.Agent(env=env) as agent, \
                h.go_server(port) as srv:
            agent.wait_instrumented(srv.pid)
            idle = rss_kib(agent.proc.pid)
            total = 0
            for _ in range(20):  # bounded: each round is a few seconds of wrk
                out = subprocess.run(["wrk", "-t1", "-c8", "-d3s", "-s", script,
                                      f"http://127.0.0.1:{port}/"],
                                     capture_output=True, text=True, check=True).stdout
                total += int(out.split(" requests in ")[0].split()[-1])
                if total >= 100_000:
                    break
            self.assertGreaterEqual(total, 100_000)

            agent.wait_server_requests(port, total, timeout=30)
            samples = agent.metrics()
            routes = {l["http_route"] for n, l, v in samples
                      if n == "http_server_request_duration_seconds_count"
                      and l.get("server_port") == str(port)}
            self.assertLessEqual(len(routes), cap)  # the overflow route included
            self.assertIn("/**overflow**", routes)
            self.assertGreater(h.metric_sum(samples, "sonde_routes_overflowed_total"), 0)
            busy = rss_kib(agent.proc.pid)
            print(f"\n  {total} requests, {len(routes)} routes, agent RSS idle {idle} KiB, "
                  f"after {busy} KiB ({busy / idle:.2f}x)")
            self.assertLess(busy, 2 * idle)


if __name__ == "__main__":
    unittest.main()
