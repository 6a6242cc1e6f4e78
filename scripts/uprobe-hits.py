#!/usr/bin/env python3
"""Measures how often Sonde's TLS uprobe programs run per HTTPS request.

Usage (root): scripts/uprobe-hits.py [AGENT] [--requests N]
  AGENT       the sonde binary (default: build/sonde of this checkout)
  --requests  requests per measurement, over one keep-alive connection (200)

Prints a markdown table (side, requests, uprobe program hits, hits per
request) and a per-program breakdown. Exit status: 0 measured; 1 no TLS
uprobe program is loaded by the agent (or it did not start); 2 usage; 3 a
side saw no hits at all (the probes were loaded but never attached there).

How it counts
-------------
With kernel.bpf_stats_enabled=1 (set for the run, the previous value is
restored at exit) the kernel counts every run of every BPF program
(`run_cnt` in `bpftool -j prog show`). The TLS programs are recognised by
name: every program the agent's process holds (prog_id in its
/proc/PID/fdinfo) whose name contains "ssl" (case insensitive), e.g.
uprobe_ssl_read, uprobe_ssl_write_ex, uretprobe_ssl_read.
The names are not final; the match is deliberately loose. Return probes and
any SSL_free probe count as hits too: they all cost a uprobe trip.

Sonde attaches its TLS uprobes per library FILE for every process that maps
it (pid -1) and filters by PID inside the programs, so a probe runs for any
process calling SSL_* in a probed file, tracked or not. Each measurement
therefore pairs the side it measures with a peer whose TLS never goes
through a probed file: a small Go program (crypto/tls, no OpenSSL) built
here, as the client of the servers and as the server of the clients.
Anything else on the machine calling SSL_* in a probed file (system
libssl.so.3, /usr/bin/node) during a measurement is counted as well; the
"idle" row shows that background over one second.

Sides measured:
  nginx server    nginx 1.22 over HTTPS (system libssl, SSL_read/SSL_write)
  python server   tests/e2e/servers/http_server.py --tls (SSL_read_ex/_write_ex)
  python client   http.client.HTTPSConnection keep-alive (system libssl)
  curl client     one curl, N URLs on one connection (system libssl)
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness as h  # noqa: E402  (shared with the end-to-end tests)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVERS = os.path.join(REPO, "tests", "e2e", "servers")
STATS = "/proc/sys/kernel/bpf_stats_enabled"
NAME_MATCH = re.compile("ssl", re.I)

# The peer without OpenSSL: `peer server PORT CERT KEY` (HTTP/1.1 over
# crypto/tls; /status/200 and /bytes/<n>) or `peer client URL CAFILE N` (N GETs
# over one keep-alive connection after one warm-up GET; waits for a line on
# stdin between the two, printing "WARM" and then "DONE").
# The peer's source: tests/e2e/servers/tls_peer.go (built once per checkout).


# Python keep-alive client: one warm-up request, "WARM", waits for a stdin
# line, N requests on the same connection, "DONE".
PY_CLIENT = r'''
import http.client, ssl, sys
port, cafile, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPSConnection("127.0.0.1", port,
                                   context=ssl.create_default_context(cafile=cafile))
def get():
    conn.request("GET", "/status/200")
    conn.getresponse().read()
get()
print("WARM", flush=True)
sys.stdin.readline()
for _ in range(n):
    get()
print("DONE", flush=True)
'''


class Failure(Exception):
    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def build_peer():
    return h.go_binary("tls_peer.go", "tls_peer")


def make_cert(workdir):
    return h.self_signed_cert("uprobe-hits", workdir)


class Processes:
    """Every process this script starts, stopped in reverse order at exit."""

    def __init__(self):
        self.procs = []

    def start(self, argv, ready=b"READY", timeout=60, **kw):
        log = tempfile.TemporaryFile()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log,
                             stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
        p.log = log
        self.procs.append(p)
        if ready is not None:
            expect_line(p, ready, timeout, argv[0])
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def expect_line(p, prefix, timeout, name):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return
    p.log.seek(0)
    raise Failure(f"{name} did not print {prefix.decode()}: {p.log.read().decode(errors='replace')}")


class Agent:
    """The sonde under test; its log goes to <workdir>/agent.log."""

    def __init__(self, binary, ports, procs, workdir):
        self.log_path = os.path.join(workdir, "agent.log")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SONDE_", "BEYLA_", "OTEL_"))}
        env.update({"SONDE_OPEN_PORT": ",".join(str(p) for p in ports),
                    "SONDE_TRACE_PRINTER": "disabled",
                    "SONDE_PROMETHEUS_PORT": str(free_port()),
                    "SONDE_PROMETHEUS_ADDRESS": "127.0.0.1", "SONDE_LOG_LEVEL": "info"})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                         stderr=log, stdin=subprocess.DEVNULL)
        procs.procs.insert(0, self.proc)  # stopped last
        self.wait_log(r"sonde \S+ running", 30)

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout, count=1):
        regex = re.compile(pattern)

        def found():
            if self.proc.poll() is not None:
                raise Failure(f"agent exited ({self.proc.returncode}):\n{self.logs()}")
            return len(regex.findall(self.logs())) >= count
        wait_until(found, timeout, f"agent log /{pattern}/")

    def wait_instrumented(self, pid):
        self.wait_log(rf"instrumenting process pid={pid} ", 15)

    def wait_exe_instrumented(self, exe_hint, count):
        self.wait_log(rf"instrumenting process pid=\d+ exe=\S*{exe_hint}", 15, count)


def agent_prog_ids(agent_pid):
    """Ids of the BPF programs the agent holds open (prog_id in /proc/PID/fdinfo):
    other agents' programs of the same name, e.g. of a test run next door, are
    not ours to count. (This bpftool lists no owning pids.)"""
    ids = set()
    fdinfo = f"/proc/{agent_pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            continue  # closed meanwhile
    return ids


def ssl_programs(agent_pid):
    """{prog id: (name, run_cnt)} of the agent's programs named like ssl."""
    ours = agent_prog_ids(agent_pid)
    out = subprocess.run(["bpftool", "-j", "prog", "show"], check=True,
                         capture_output=True).stdout
    progs = {}
    for p in json.loads(out or b"[]"):
        if p.get("id") in ours and NAME_MATCH.search(p.get("name", "")):
            progs[p["id"]] = (p["name"], p.get("run_cnt", 0))
    return progs


def delta(before, after):
    per = {}
    for prog_id, (name, cnt) in after.items():
        per[name] = per.get(name, 0) + cnt - before.get(prog_id, (name, 0))[1]
    return per


def measure(agent_pid, run):
    before = ssl_programs(agent_pid)
    run()
    time.sleep(0.2)  # return probes of the last calls
    return delta(before, ssl_programs(agent_pid))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent", nargs="?", default=os.path.join(REPO, "build", "sonde"))
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if args.requests <= 0:
        parser.error("--requests must be positive")
    if os.geteuid() != 0:
        raise Failure("needs root (eBPF, kernel.bpf_stats_enabled)", 2)
    for tool in ("bpftool", "nginx", "curl", "openssl", "go"):
        if shutil.which(tool) is None:
            raise Failure(f"{tool} not found on PATH")
    agent_bin = os.path.abspath(args.agent)
    if not os.access(agent_bin, os.X_OK):
        raise Failure(f"no agent binary at {agent_bin}")
    n = args.requests

    with open(STATS) as f:
        previous = f.read().strip()
    procs = Processes()
    workdir = tempfile.mkdtemp(prefix="sonde-uprobe-hits-")
    agent = None
    try:
        with open(STATS, "w") as f:  # = sysctl -w kernel.bpf_stats_enabled=1
            f.write("1")
        peer = build_peer()
        cert, key = make_cert(workdir)
        ports = {name: free_port() for name in ("nginx", "python", "goserver")}
        agent = Agent(agent_bin, ports.values(), procs, workdir)
        if not ssl_programs(agent.proc.pid):
            raise Failure("no TLS uprobe programs loaded: the agent has no BPF program whose "
                          "name contains 'ssl' (bpftool -j prog show)")
        rows = []

        # Background: one idle second.
        idle = measure(agent.proc.pid, lambda: time.sleep(1.0))
        rows.append(("idle (1 s, no requests)", 0, idle))

        def go_client(port):
            p = procs.start([peer, "client", f"https://127.0.0.1:{port}/status/200", cert,
                             str(n)], ready=b"WARM", stdin=subprocess.PIPE)
            time.sleep(1.0)  # the agent probes what the peers map
            return lambda: (p.stdin.write(b"go\n"), p.stdin.flush(),
                            expect_line(p, b"DONE", 120, "go client"))

        # nginx server, Go client.
        procs.start(["python3", os.path.join(SERVERS, "nginx_server.py"), str(ports["nginx"]),
                     os.path.join(workdir, "nginx"), "--tls", cert, key])
        agent.wait_exe_instrumented("nginx", 2)
        rows.append(("nginx server", n, measure(agent.proc.pid, go_client(ports["nginx"]))))

        # Python server, Go client.
        pysrv = procs.start(["python3", os.path.join(SERVERS, "http_server.py"),
                             str(ports["python"]), "--tls", cert, key])
        agent.wait_instrumented(pysrv.pid)
        rows.append(("python server", n, measure(agent.proc.pid, go_client(ports["python"]))))

        # Go server for the clients.
        procs.start([peer, "server", str(ports["goserver"]), cert, key])
        py = procs.start(["python3", "-c", PY_CLIENT, str(ports["goserver"]), cert, str(n)],
                         ready=b"WARM", stdin=subprocess.PIPE)
        time.sleep(1.0)

        def python_client():
            py.stdin.write(b"go\n")
            py.stdin.flush()
            expect_line(py, b"DONE", 120, "python client")
        rows.append(("python client", n, measure(agent.proc.pid, python_client)))

        curl_cfg = os.path.join(workdir, "curl.cfg")
        with open(curl_cfg, "w") as f:
            for _ in range(n):
                f.write(f'url = "https://127.0.0.1:{ports["goserver"]}/status/200"\n'
                        'output = "/dev/null"\n')

        def curl_client():
            subprocess.run(["curl", "-sS", "--http1.1", "--cacert", cert, "-K", curl_cfg],
                           check=True, timeout=120)
        rows.append(("curl client (incl. handshake)", n,
                     measure(agent.proc.pid, curl_client)))

        print(f"\nTLS uprobe program runs (programs named like /ssl/i), agent {agent_bin}\n")
        print("| side | requests | uprobe program hits | hits per request |")
        print("|---|---:|---:|---:|")
        for side, reqs, per in rows:
            total = sum(per.values())
            ratio = f"{total / reqs:.2f}" if reqs else "-"
            print(f"| {side} | {reqs} | {total} | {ratio} |")
        names = sorted({name for _, _, per in rows for name in per})
        print("\n| side | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for side, _, per in rows:
            print(f"| {side} | " + " | ".join(str(per.get(name, 0)) for name in names) + " |")
        zero = [side for side, reqs, per in rows if reqs and sum(per.values()) == 0]
        if zero:
            raise Failure("no uprobe hits for: " + ", ".join(zero) +
                          " (TLS programs loaded but not attached to that library?)", 3)
        return 0
    except Failure:
        if agent is not None:
            tail = agent.logs().splitlines()[-15:]
            sys.stderr.write("agent log (last lines):\n  " + "\n  ".join(tail) + "\n")
        raise
    finally:
        procs.stop_all()
        with open(STATS, "w") as f:
            f.write(previous)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the finally blocks restore the sysctl.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except Failure as err:
        sys.stderr.write(f"uprobe-hits: {err}\n")
        sys.exit(err.code)
