"""Shared machinery of Sonde's end-to-end tests: start the real agent, real
servers and clients, speak raw HTTP/1.1 to them, and read what the agent
reports (spans on stdout, metrics on its Prometheus endpoint, logs on stderr).

Everything runs on loopback, on free ports below the kernel's ephemeral range
(free_port), and every wait is a bounded poll for a condition rather than a
fixed sleep.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVERS = os.path.join(REPO, "tests", "e2e", "servers")
AGENT = os.environ.get("SONDE_AGENT", os.path.join(REPO, "build", "sonde"))
CACHE = os.environ.get("SONDE_E2E_CACHE", os.path.join(REPO, "build", "e2e-cache"))


def _ephemeral_port_floor():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports handed out so far by this process: never the same one twice.
_ports_given = set()
_port_lock = threading.Lock()


def free_port():
    """A TCP port free on every address, for a server this run starts.

    Taken below the kernel's ephemeral range: a port the kernel picked for a
    bind to port 0 could be picked again, for a client's connect() or another
    bind, between this check and the server's own bind ("Address already in
    use"), while ports below the range are only ever taken by an explicit bind.
    """
    low, high = 20000, _ephemeral_port_floor()
    if high - low < 1000:  # a machine whose ephemeral range starts low
        low = 1024
    if high - low < 100:  # nothing below the range: let the kernel pick
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    with _port_lock:
        start = random.randrange(low, high)
        for step in range(high - low):
            port = low + (start - low + step) % (high - low)
            if port in _ports_given:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("0.0.0.0", port))
                except OSError:
                    continue
            _ports_given.add(port)
            return port
    raise AssertionError(f"no free TCP port in {low}..{high - 1}")


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# Tests put this in bodies, header values and query strings (test_privacy.py), where an
# application keeps its secrets: no export may carry it, so every scrape and every printed
# span any test reads is checked for it.
SECRET_MARKER = "zqsecret"


def assert_no_secret(text, where):
    at = text.lower().find(SECRET_MARKER)
    if at >= 0:
        context = text[max(0, at - 200):at + 60]
        raise AssertionError(f"{where} leaks a secret marker: ...{context!r}")


def write_config(text):
    """A YAML configuration in a temporary file; the caller unlinks it."""
    fd, path = tempfile.mkstemp(prefix="sonde-e2e-", suffix=".yml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class Agent:
    """The sonde binary under test, with its outputs captured to files."""

    def __init__(self, env=None, wrapper=None):
        self.workdir = tempfile.mkdtemp(prefix="sonde-e2e-agent-")
        self.stdout_path = os.path.join(self.workdir, "stdout")
        self.stderr_path = os.path.join(self.workdir, "stderr")
        self.prometheus_port = free_port()
        self.env = dict(os.environ)
        for key in list(self.env):
            if key.startswith(("SONDE_", "BEYLA_", "OTEL_")):
                del self.env[key]
        self.env.update({
            "SONDE_TRACE_PRINTER": "json",
            "SONDE_PROMETHEUS_PORT": str(self.prometheus_port),
            "SONDE_PROMETHEUS_ADDRESS": "127.0.0.1",
            "SONDE_LOG_LEVEL": "info",
        })
        self.env.update(env or {})
        self.wrapper = wrapper or []
        self.proc = None

    def start(self, wait_ready=True):
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.wrapper + [AGENT], env=self.env, stdout=self._out,
                                     stderr=self._err, stdin=subprocess.DEVNULL)
        if wait_ready:
            try:
                self.wait_log(r"sonde \S+ running", timeout=30)
            except BaseException:
                self.stop()  # `with` never reaches __exit__: do not leave it running
                raise
        return self

    def logs(self):
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10):
        regex = re.compile(pattern)

        def found():
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited ({self.proc.returncode}):\n{self.logs()}")
            return regex.search(self.logs())
        return wait_until(found, timeout, what=f"agent log /{pattern}/")

    def wait_instrumented(self, pid, timeout=10):
        return self.wait_log(rf"instrumenting process pid={pid} ", timeout)

    def wait_server_instrumented(self, *servers, timeout=10):
        """Waits until every process of each of `servers` (nginx: master and worker) is
        instrumented, recognised by its executable in the log line; servers that share an
        executable count together."""
        wanted = {}
        for server in servers:
            wanted[server.exe_hint] = wanted.get(server.exe_hint, 0) + server.process_count

        def enough():
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited ({self.proc.returncode}):\n{self.logs()}")
            logs = self.logs()
            return all(len(re.findall(rf"instrumenting process pid=\d+ exe=\S*{hint}", logs))
                       >= n for hint, n in wanted.items())
        what = ", ".join(f"{n} {hint} process(es)" for hint, n in wanted.items())
        return wait_until(enough, timeout, what=f"{what} instrumented")

    def spans(self):
        out = []
        with open(self.stdout_path, "r", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    assert_no_secret(line, "a printed span")
                    out.append(json.loads(line))
        return out

    def metrics_text(self):
        url = f"http://127.0.0.1:{self.prometheus_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        assert_no_secret(text, "a Prometheus scrape")
        return text

    def metrics(self):
        return parse_prometheus(self.metrics_text())

    def server_requests(self, port, **labels):
        return metric_sum(self.metrics(), "http_server_request_duration_seconds_count",
                          server_port=port, **labels)

    def wait_server_requests(self, port, count, timeout=10):
        """Waits until `count` server requests on `port` are in the metrics."""
        wait_until(lambda: self.server_requests(port) >= count, timeout,
                   what=f"{count} server requests on port {port} in metrics")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()
        return self.proc.returncode if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if not exc[0]:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"agent outputs kept in {self.workdir}")


_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """[(name, {label: value}, float)] for every sample line."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise AssertionError(f"unparseable metrics line: {line!r}")
        labels = dict(_LABEL.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples


def metric_sum(samples, name, **labels):
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == str(val) for k, val in labels.items()))


class Server:
    """A real server program that prints 'READY <port>' when it accepts."""

    def __init__(self, argv, port, cwd=None, env=None, name="server", exe_hint=None,
                 process_count=1):
        self.argv, self.port, self.cwd, self.name = argv, port, cwd, name
        self.exe_hint = exe_hint or os.path.basename(argv[0])
        self.process_count = process_count
        self.env = env
        self.proc = None

    def start(self, timeout=60):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env,
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(b"READY"):
                self.ready_at = time.monotonic()
                return self
        self.stop()
        self.log.seek(0)
        raise AssertionError(f"{self.name} did not start: {self.log.read().decode(errors='replace')}")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def go_binary(source, name):
    """Builds a Go program from tests/e2e/servers once per checkout."""
    os.makedirs(CACHE, exist_ok=True)
    out = os.path.join(CACHE, name)
    src = os.path.join(SERVERS, source)
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        env = dict(os.environ, GO111MODULE="off", GOPATH=os.path.join(CACHE, "gopath"),
                   GOCACHE=os.path.join(CACHE, "gocache"), GOFLAGS="")
        subprocess.run(["go", "build", "-o", out, src], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return out


def python_server(port):
    return Server(["python3", os.path.join(SERVERS, "http_server.py"), str(port)], port,
                  name="python http.server", exe_hint="python3")


def node_server(port):
    return Server(["node", os.path.join(SERVERS, "http_server.js"), str(port)], port,
                  name="node http", exe_hint="node")


def go_server(port):
    return Server([go_binary("http_server.go", "go_http_server"), str(port)], port,
                  name="go net/http", exe_hint="go_http_server")


def java_server(port):
    return Server(["java", os.path.join(SERVERS, "HttpServerMain.java"), str(port)], port,
                  name="java httpserver", exe_hint="java")


def nginx_server(port):
    workdir = tempfile.mkdtemp(prefix="sonde-e2e-nginx-")
    return Server(["python3", os.path.join(SERVERS, "nginx_server.py"), str(port), workdir],
                  port, name="nginx", exe_hint="nginx", process_count=2)


# ---- a raw HTTP/1.1 client: exact control over keep-alive and pipelining

class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


class RawConnection:
    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head=False):
        while True:
            status_line = self._line()
            status = int(status_line.split()[1])
            headers = {}
            while True:
                line = self._line()
                if not line:
                    break
                k, v = line.decode().split(":", 1)
                headers[k.strip().lower()] = v.strip()
            if 100 <= status < 200:
                continue  # interim response
            break
        body = b""
        if head or status in (204, 304):
            pass
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                self._exact(2)
        elif "content-length" in headers:
            body = self._exact(int(headers["content-length"]))
        else:
            try:
                while True:
                    self._fill()
            except ConnectionError:
                body, self.buf = self.buf, b""
        return Response(status, headers, body)


def send_gets(port, paths):
    """GETs each path in turn on one keep-alive connection."""
    conn = RawConnection(port)
    for path in paths:
        conn.send(request_bytes("GET", path))
        conn.read_response()
    conn.close()


def request_bytes(method, path, body=None, close=False, headers=None):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class ClientRequest:
    """One request a client process made and what that client saw of it."""

    def __init__(self, pid, method, path, status, local_port, body_len=0):
        self.pid, self.method, self.path = pid, method, path
        self.status, self.local_port, self.body_len = status, local_port, body_len

    @property
    def key(self):
        return (self.method, self.path, self.status)

    def __repr__(self):
        return f"{self.method} {self.path} -> {self.status} (pid {self.pid}, port {self.local_port})"


def run_client(name, argv, timeout=60):
    """Runs a client to completion; returns (its pid, its stdout lines)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"{name}: rc {p.returncode}: {err.decode()}"
    return p.pid, out.decode().splitlines()


def bpftool_json(*args):
    out = subprocess.run(["bpftool", "-j", *args], check=True, capture_output=True).stdout
    return json.loads(out or b"[]")


# Program names of bpf/socket_trace.bpf.c as the kernel shows them (15 chars).
def sonde_program_names():
    names = set()
    with open(os.path.join(REPO, "bpf", "socket_trace.bpf.c")) as f:
        src = f.read()
    for m in re.finditer(r"^int ([a-z_0-9]+)\(", src, re.M):
        names.add(m.group(1)[:15])
    for m in re.finditer(r"SONDE_TRACEPOINTS\((\w+),", src):
        names.add(f"tp_enter_{m.group(1)}"[:15])
        names.add(f"tp_exit_{m.group(1)}"[:15])
    return names


def loaded_sonde_programs():
    wanted = sonde_program_names()
    return [p for p in bpftool_json("prog", "show") if p.get("name") in wanted]


def self_signed_cert(name="sonde-e2e", workdir=None):
    """A throwaway certificate and key for 127.0.0.1 and localhost: (cert_path, key_path),
    in a new directory that remove_cert() deletes, or in `workdir` (the caller's to delete)."""
    workdir = workdir or tempfile.mkdtemp(prefix=f"{name}-tls-")
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def remove_cert(cert, key):
    """Deletes what self_signed_cert() made (either may be None: never made)."""
    for path in (cert, key):
        if path and os.path.exists(path):
            os.unlink(path)
    if cert:
        os.rmdir(os.path.dirname(cert))


# ---- HTTPS (TLS through OpenSSL): the test servers behind a certificate from
# self_signed_cert(); clients trust that certificate as their CA.

def https_python_server(port, cert, key):
    return Server(["python3", os.path.join(SERVERS, "http_server.py"), str(port),
                   "--tls", cert, key], port, name="python https.server", exe_hint="python3")


def python_server_tls_later(port, cert, key, tls_port, env=None):
    """Plain HTTP on `port` without libssl mapped; GET /enable-tls loads the
    ssl module (dlopen of libssl.so.3) and starts HTTPS on `tls_port`. `env`:
    the server's whole environment (e.g. LD_LIBRARY_PATH to a private libssl)."""
    return Server(["python3", os.path.join(SERVERS, "http_server.py"), str(port),
                   "--tls-later", cert, key, str(tls_port)], port, env=env,
                  name="python http.server (TLS later)", exe_hint="python3")


def https_node_server(port, cert, key):
    return Server(["node", os.path.join(SERVERS, "http_server.js"), str(port),
                   "--tls", cert, key], port, name="node https", exe_hint="node")


def https_nginx_server(port, cert, key):
    workdir = tempfile.mkdtemp(prefix="sonde-e2e-nginx-")
    return Server(["python3", os.path.join(SERVERS, "nginx_server.py"), str(port), workdir,
                   "--tls", cert, key],
                  port, name="nginx https", exe_hint="nginx", process_count=2)


def spin_every_cpu(test):
    """Two spinning processes per CPU at normal priority, so that the host has no idle CPU
    time; returns a function that stops them (also registered as a cleanup of `test`)."""
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"])
            for _ in range(2 * (os.cpu_count() or 1))]

    def stop():
        while hogs:
            hog = hogs.pop()
            hog.kill()
            hog.wait()
    test.addCleanup(stop)
    return stop


def child_pids(pid):
    """Pids whose parent is `pid` (from /proc/<n>/stat)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised comm: state, ppid, ...
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def nginx_worker_pids(server):
    """Worker pids of an nginx started by nginx_server.py (wrapper -> master -> workers)."""
    return [w for master in child_pids(server.pid) for w in child_pids(master)]


def mapped_files(pid):
    """Paths of the files mapped into `pid` (from /proc/<pid>/maps)."""
    paths = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                paths.add(parts[5].strip())
    return paths


def maps_libssl(pid):
    """The libssl shared objects mapped into `pid` (empty when none)."""
    return sorted(p for p in mapped_files(pid) if "/libssl.so" in p)


# ---- what a process holds: memory, and its eBPF objects (found through its own
# file descriptors, so that other agents running at the same time never count)

def rss_kib(pid):
    """Resident memory of `pid` in KiB (VmRSS), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Samples the VmRSS of a running process (a Popen) every `interval` seconds until
    stopped or until the process exits: `samples` [(seconds since start, KiB)],
    `max_kib`, and `exited` (its exit status; None while it runs)."""

    def __init__(self, proc, interval):
        super().__init__(daemon=True)
        self.proc, self.interval = proc, interval
        self.samples, self.exited = [], None
        self.stop_event = threading.Event()
        self.start_time = time.monotonic()

    @property
    def max_kib(self):
        return max((kib for _, kib in self.samples), default=0)

    def run(self):
        while True:
            if self.proc.poll() is not None:
                self.exited = self.proc.returncode
                return
            self.samples.append((time.monotonic() - self.start_time, rss_kib(self.proc.pid)))
            if self.stop_event.wait(self.interval):
                return

    def stop(self):
        self.stop_event.set()
        self.join(5)


def bpf_object_ids(pid):
    """(map ids, program ids) of the eBPF maps and programs `pid` holds open."""
    maps, progs = set(), set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target not in ("anon_inode:bpf-map", "anon_inode:bpf-prog"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key == "map_id":
                        maps.add(int(value))
                    elif key == "prog_id":
                        progs.add(int(value))
        except OSError:
            continue  # closed meanwhile
    return maps, progs


def bpf_maps_of(pid):
    """{map name: map id} of the eBPF maps `pid` holds open (an agent: its tracked_pids, ...)."""
    return {bpftool_json("map", "show", "id", str(map_id))["name"]: map_id
            for map_id in bpf_object_ids(pid)[0]}


def map_keys(map_id):
    """The keys of a hash map as integers (little-endian, as the kernel stores them)."""
    keys = []
    for entry in bpftool_json("map", "dump", "id", str(map_id)):
        key = entry.get("key", entry.get("formatted", {}).get("key"))
        if isinstance(key, list):  # raw bytes as hex strings
            keys.append(int.from_bytes(bytes(int(b, 16) for b in key), "little"))
        else:
            keys.append(key)
    return keys
