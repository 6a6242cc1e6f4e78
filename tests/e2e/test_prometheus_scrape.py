"""Acceptance: Debian's real Prometheus scrapes the endpoint and the seed's
query works; promtool finds nothing to complain about."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse
import urllib.request

import harness as h

SEED_QUERY = 'sum by (http_route) (rate(http_server_request_duration_seconds_count[5m]))'


def prometheus_query(port, query):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


class PrometheusScrapeTest(unittest.TestCase):
    def test_real_prometheus_scrapes_and_seed_query_answers(self):
        port = h.free_port()
        with h.Agent(env={"SONDE_OPEN_PORT": str(port), "SONDE_SERVICE_NAME": "checkout"}) as agent, \
                h.python_server(port) as srv:
            agent.wait_instrumented(srv.pid)
            h.send_gets(port, ("/status/200", "/status/404", "/bytes/10", "/status/200"))
            agent.wait_server_requests(port, 4)

            text = agent.metrics_text()
            check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                                   capture_output=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            self.assertEqual((check.stdout + check.stderr).strip(), b"")

            workdir = tempfile.mkdtemp(prefix="sonde-e2e-prom-")
            prom_port = h.free_port()
            with open(os.path.join(workdir, "prometheus.yml"), "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        "scrape_configs:\n  - job_name: sonde\n    static_configs:\n"
                        f"      - targets: ['127.0.0.1:{agent.prometheus_port}']\n")
            prom = subprocess.Popen(
                ["prometheus", f"--config.file={workdir}/prometheus.yml",
                 f"--storage.tsdb.path={workdir}/data",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                def answered():
                    try:
                        result = prometheus_query(prom_port, SEED_QUERY)
                    except OSError:
                        return None
                    return result if result else None
                result = h.wait_until(answered, 60, interval=0.5, what="seed query result")
                routes = {r["metric"].get("http_route") for r in result}
                self.assertTrue({"/status/*", "/bytes/*"} <= routes, routes)
                series = prometheus_query(
                    prom_port, f'http_server_request_duration_seconds_count{{server_port="{port}"}}')
                self.assertTrue(series)
                for s in series:
                    self.assertEqual(s["metric"]["service_name"], "checkout")
                    self.assertIn("http_route", s["metric"])
            finally:
                prom.terminate()
                prom.wait(10)
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
