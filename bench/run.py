#!/usr/bin/env python3
"""Sonde's overhead benchmark (issue 6): every scenario, baseline against
instrumented in the same invocation, written to docs/performance.md.

Usage (root): bench/run.py [--quick] [--scenarios P1,P2,...] [--reps N]
                           [--duration S] [--agent PATH] [--floor PATH]
                           [--p3-rate R] [--p3-client paced|wrk|hey]
                           [--compare-agent NAME=PATH ...]
                           [--variant-env NAME:KEY=VALUE ...] [--p3-burst S]
                           [--instrument-client] [--output FILE | --no-write]

Scenarios (loopback only, servers and load generator on this machine):
  P1  nginx, HTTP/1.1 keep-alive, wrk at saturation
  P2  nginx, `Connection: close` (one TCP connection per request), saturation
  P3  nginx at a fixed rate well below saturation: latency p50/p99
  P4  nginx over HTTPS (system libssl), keep-alive, saturation
  P5  Node `http` server: baseline, Sonde, and the OpenTelemetry Node SDK
      (HTTP auto-instrumentation, BatchSpanProcessor, OTLP/HTTP protobuf to the
      test OTLP receiver) on the same server code

Variants, run in turn within every repetition; each repetition starts one
variant later than the one before (baseline, sonde, floor; sonde, floor,
baseline; floor, baseline, sonde; ...), so that no variant owes its ratio to
its place in the sequence:
  baseline  no agent
  sonde     build/sonde, SONDE_OPEN_PORT=<server port>, trace printer off,
            Prometheus on a free loopback port (read for its request counts);
            the load generator is excluded (discovery.exclude_instrument), so
            only the server side is instrumented, as with the floor
  floor     build/sonde-probe-floor --pid <server pids> [--tls-library PATH]:
            the same kernel hooks, programs that only do the PID-filter lookup
            (skipped, with a note, while that binary does not exist)
  otel      P5 only: the OpenTelemetry SDK inside the server process
  NAME      --compare-agent NAME=PATH: another agent binary (an older build,
            say), run after `sonde` in the sequence, with the same settings, for an A/B
            comparison within one run; reported, not held to the targets

Figures per variant: median over the repetitions of throughput, p50 and p99
latency, each with the median of the per-repetition ratios to the baseline
run of the same repetition (and their range); agent CPU per request
(utime+stime from /proc/PID/stat over the load window and the drain after it,
divided by the requests the load generator completed); agent RSS under load (largest
VmRSS sampled every 0.2 s during the load) and peak RSS
(VmHWM); requests Sonde counted (its http_server_request_duration_seconds_count
for the port, read once its count stops growing after the load) against those
the load generator completed; ring-buffer and other drop self-metrics; runs of
the agent's own BPF programs per request, split into tracepoint and uprobe
programs, from one extra run of each instrumented variant after the
repetitions (kernel.bpf_stats_enabled is on for that run only, with
BPF_ENABLE_STATS, which the kernel undoes when its descriptor is closed, even
if this script is killed; run_cnt/run_time_ns from the fdinfo of the program
fds the agent holds).

Every process started here is stopped at exit (also on Ctrl-C and SIGTERM).
Exit status: 0 measured (whatever the targets say), 1 a failure, 2 usage.
"""

import argparse
import ctypes
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness as h  # noqa: E402  (servers, certificate, metric parsing)

SERVERS = os.path.join(REPO, "tests", "e2e", "servers")
RECEIVER = os.path.join(REPO, "tests", "e2e", "otlp_receiver", "receiver.js")
STATS = "/proc/sys/kernel/bpf_stats_enabled"
CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNT_METRIC = "http_server_request_duration_seconds_count"
# Self-metrics that count something lost, dropped or refused (docs/metrics.md).
DROP_METRIC = re.compile(r"^sonde_\w*(full|lost|dropped|evicted|missing|failed|malformed|"
                         r"unknown|errors|unpaired|overflowed)\w*$")
RINGBUF_FULL = "sonde_kernel_ringbuf_full_total"
PRIORITY_RAISED = "sonde_consumer_priority_raised_total"
# BPF program types (uapi bpf.h) of the fdinfo "prog_type" field.
PROG_KPROBE = 2  # uprobes and uretprobes are kprobe-type programs

WARMUP_REQUESTS = 300


class Failure(Exception):
    pass


# ---------------------------------------------------------------- processes

STARTED = []  # every process object started here; stopped in reverse order


def stop_all():
    while STARTED:
        obj = STARTED.pop()
        try:
            obj.stop()
        except Exception as err:  # keep stopping the others
            sys.stderr.write(f"bench: stopping {obj!r}: {err}\n")


def terminate(proc, timeout=10):
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Proc:
    """A plain child process (load generator, receiver) tracked for cleanup."""

    def __init__(self, argv, **kw):
        self.argv = argv
        self.proc = subprocess.Popen(argv, **kw)
        STARTED.append(self)

    def stop(self):
        terminate(self.proc)

    def forget(self):
        if self in STARTED:
            STARTED.remove(self)

    def __repr__(self):
        return f"<{os.path.basename(self.argv[0])} pid {self.proc.pid}>"


class Server(h.Server):
    """harness.Server, tracked for cleanup; nginx's own pids looked up."""

    def start(self, timeout=60):
        STARTED.append(self)
        return super().start(timeout)

    def stop(self):
        pids = self.all_pids() if self.proc and self.proc.poll() is None else []
        super().stop()
        # nginx dies with its wrapper (PR_SET_PDEATHSIG); make sure of it.
        for pid in pids:
            if pid == self.proc.pid:
                continue
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "nginx":
                        continue
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass

    def all_pids(self):
        """The server's own processes: the node pid, or nginx master + workers
        (nginx_server.py is a wrapper around nginx)."""
        if self.exe_hint != "nginx":
            return [self.proc.pid]
        masters = h.child_pids(self.proc.pid)
        return masters + [w for m in masters for w in h.child_pids(m)]

    def __repr__(self):
        return f"<{self.name} pid {self.proc.pid if self.proc else '-'}>"


def nginx(port, workdir, tls=None):
    argv = ["python3", os.path.join(SERVERS, "nginx_server.py"), str(port),
            os.path.join(workdir, f"nginx-{port}")]
    if tls:
        argv += ["--tls", *tls]
    return Server(argv, port, name="nginx" + (" https" if tls else ""), exe_hint="nginx",
                  process_count=2)


def wait_until(predicate, timeout, what, interval=0.05):
    """The harness's wait, reported as a benchmark failure."""
    try:
        return h.wait_until(predicate, timeout, interval=interval, what=what)
    except AssertionError as err:
        raise Failure(str(err)) from None


# ---------------------------------------------------------------- /proc and BPF

def cpu_seconds(pid):
    """utime + stime of the whole process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def status_mb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def vm_hwm_mb(pid):
    """Peak RSS over the process's life, start-up included."""
    return status_mb(pid, "VmHWM")


# /proc/interrupts rows counted over every load, and /proc/stat's context
# switches: what a variant costs the machine beyond its own CPU time (a task
# woken on the other CPU costs a rescheduling IPI, a forced ring-buffer
# wake-up an IRQ-work interrupt, a timer tick LOC).
INTERRUPT_ROWS = ("RES", "IWI", "CAL", "TLB", "LOC")


def machine_event_counts():
    """Counts since boot, summed over the CPUs: the INTERRUPT_ROWS, `ctxt`
    (context switches), and the CPU time in ticks, all of it and idle."""
    counts = {}
    with open("/proc/interrupts") as f:
        ncpu = len(f.readline().split())
        for line in f:
            name, _, rest = line.partition(":")
            name = name.strip()
            if name in INTERRUPT_ROWS:
                counts[name] = sum(int(x) for x in rest.split()[:ncpu] if x.isdigit())
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("ctxt "):
                counts["ctxt"] = int(line.split()[1])
            elif line.startswith("cpu "):
                ticks = [int(x) for x in line.split()[1:]]
                counts["cpu_ticks"] = sum(ticks[:8])  # guest time is inside user time
                counts["idle_ticks"] = ticks[3] + ticks[4]  # idle + iowait
    return counts


def per_request_delta(before, after, requests):
    """Counts per request, and `idle`: the share of the CPUs' time idle."""
    n = max(1, requests)
    out = {k: (after[k] - before[k]) / n for k in after
           if k in before and not k.endswith("_ticks")}
    ticks = after["cpu_ticks"] - before["cpu_ticks"]
    if ticks > 0:
        out["idle"] = (after["idle_ticks"] - before["idle_ticks"]) / ticks
    return out


class RssSampler:
    """The largest VmRSS seen while a load runs (sampled every 0.2 s): the
    agent's steady footprint under load, apart from its start-up peak."""

    def __init__(self, pid):
        self.pid, self.max_mb = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                self.max_mb = max(self.max_mb, status_mb(self.pid, "VmRSS"))
            except OSError:
                return
            if self._stop.wait(0.2):
                return

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.max_mb


def bpf_programs(pid):
    """{prog_id: (prog_type, run_cnt, run_time_ns)} of the BPF programs whose
    fds `pid` holds (/proc/PID/fdinfo; link fds name a prog_id but carry no
    run counts, so only program fds are taken)."""
    progs = {}
    fdinfo = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue  # closed meanwhile
        if "prog_type" in info and "run_cnt" in info and "prog_id" in info:
            progs[int(info["prog_id"])] = (int(info["prog_type"]), int(info["run_cnt"]),
                                           int(info.get("run_time_ns", 0)))
    return progs


def bpf_delta(before, after):
    """(tracepoint runs, uprobe runs, total run time in ns) between two snapshots."""
    tp = up = ns = 0
    for pid_, (ptype, cnt, t) in after.items():
        _, cnt0, t0 = before.get(pid_, (ptype, 0, 0))
        if ptype == PROG_KPROBE:
            up += cnt - cnt0
        else:
            tp += cnt - cnt0
        ns += t - t0
    return tp, up, ns


def enable_bpf_stats():
    """Turns kernel.bpf_stats_enabled on for as long as this process lives:
    BPF_ENABLE_STATS returns a file descriptor and the kernel counts program
    runs while any such descriptor is open, whatever others write to the
    sysctl meanwhile; exiting (even killed) closes it, so nothing is left on.
    Returns a cleanup function; falls back to writing the sysctl (restored by
    the cleanup) where that bpf command is missing (kernels before 5.8)."""
    nr = {"x86_64": 321, "aarch64": 280}.get(platform.machine())  # __NR_bpf
    if nr is not None:
        libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.c_uint32(0)  # bpf_attr.enable_stats.type = BPF_STATS_RUN_TIME
        fd = libc.syscall(nr, 32, ctypes.byref(attr), ctypes.sizeof(attr))  # BPF_ENABLE_STATS
        if fd >= 0:
            return lambda: os.close(fd)
    with open(STATS) as f:
        previous = f.read().strip()
    with open(STATS, "w") as f:
        f.write("1")

    def restore():
        with open(STATS, "w") as f:
            f.write(previous)
    return restore


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


# ---------------------------------------------------------------- instrumentation

# What the agents of this run logged about their kernel hooks ("syscall hooks via ...").
AGENT_HOOKS = set()


class SondeAgent:
    """build/sonde selecting the server by its port, the load generator excluded."""

    def __init__(self, binary, port, server_pids, workdir, exclude_clients=True, extra_env=None,
                 launcher=(), start_timeout=30):
        """`launcher` prefixes the command (bench/callgrind.py: valgrind), and
        `start_timeout` bounds each wait for the agent to start."""
        self.prom_port = h.free_port()
        self.log_path = os.path.join(workdir, f"agent-{port}.log")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SONDE_", "BEYLA_", "OTEL_"))}
        env.update({"SONDE_OPEN_PORT": str(port), "SONDE_TRACE_PRINTER": "disabled",
                    "SONDE_PROMETHEUS_PORT": str(self.prom_port),
                    "SONDE_PROMETHEUS_ADDRESS": "127.0.0.1", "SONDE_LOG_LEVEL": "info"})
        env.update(extra_env or {})
        argv = [*launcher, binary]
        if exclude_clients:
            config = os.path.join(workdir, "sonde-bench.yml")
            with open(config, "w") as f:
                f.write("# bench/run.py: only the server side is instrumented.\n"
                        "discovery:\n  exclude_instrument:\n"
                        "    - exe_path: \"/(wrk|hey|sonde-paced-load|python3[.0-9]*)$\"\n")
            argv += ["--config", config]
        self.port = port
        with open(self.log_path, "wb") as log:
            self.p = Proc(argv, env=env, stdout=subprocess.DEVNULL, stderr=log,
                          stdin=subprocess.DEVNULL)
        self.pid = self.p.proc.pid
        try:
            want = set(server_pids)
            wait_until(lambda: want <= self.instrumented_pids(), start_timeout,
                       f"sonde to instrument pids {sorted(want)}")
            wait_until(lambda: re.search(r"sonde \S+ running", self.logs()), start_timeout,
                       "sonde to report running")
            AGENT_HOOKS.update(re.findall(r"eBPF programs attached: (syscall hooks via .*?); TLS",
                                          self.logs()))
        except Failure as err:
            raise Failure(f"{err}\nagent log:\n{self.logs()[-3000:]}") from None

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        if self.p.proc.poll() is not None:
            raise Failure(f"sonde exited ({self.p.proc.returncode}):\n{text[-3000:]}")
        return text

    def instrumented_pids(self):
        return {int(m) for m in re.findall(r"instrumenting process pid=(\d+) ", self.logs())}

    def tls_libraries(self):
        return sorted(set(re.findall(r"TLS probes on (\S+): [1-9]\d* attached", self.logs())))

    def metrics(self):
        return h.parse_prometheus(http_get(f"http://127.0.0.1:{self.prom_port}/metrics"))

    def count(self, samples=None):
        return h.metric_sum(samples if samples is not None else self.metrics(), COUNT_METRIC,
                            server_port=self.port)

    def drain(self, at_least=0, timeout=15):
        """Waits until the request count stops growing (reads 0.2 s apart: two
        equal ones once it reached `at_least`, else four); returns the samples."""
        deadline = time.monotonic() + timeout
        last, same = None, 0
        while True:
            samples = self.metrics()
            n = self.count(samples)
            same = same + 1 if n == last else 0
            last = n
            # Stable: one equal re-read once every request is in, three short of it.
            if same >= (1 if n >= at_least else 3) or time.monotonic() > deadline:
                return samples
            time.sleep(0.2)

    def stop(self):
        self.p.stop()
        self.p.forget()


class ProbeFloor:
    """build/sonde-probe-floor: the same hooks, programs that only filter by PID."""

    def __init__(self, binary, pids, tls_libraries, workdir):
        argv = [binary]
        for pid in pids:
            argv += ["--pid", str(pid)]
        for lib in tls_libraries:
            argv += ["--tls-library", lib]
        self.log = tempfile.TemporaryFile(dir=workdir)
        self.p = Proc(argv, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL)
        self.pid = self.p.proc.pid
        self.argv = argv
        deadline = time.monotonic() + 30
        out = self.p.proc.stdout
        buf = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([out], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(out.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            if re.search(rb"(^|\n)READY", buf):
                return
        self.stop()
        self.log.seek(0)
        raise Failure(f"{shlex.join(argv)} did not print READY: "
                      f"{self.log.read().decode(errors='replace')[-2000:]}")

    def stop(self):
        self.p.stop()
        self.p.forget()


# ---------------------------------------------------------------- load generators

UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def run_load(argv, timeout):
    p = Proc(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = p.proc.communicate(timeout=timeout)
    finally:
        p.stop()
        p.forget()
    if p.proc.returncode != 0:
        raise Failure(f"{shlex.join(argv)} failed ({p.proc.returncode}): "
                      f"{(out + err).decode(errors='replace')[-2000:]}")
    return out.decode(errors="replace")


def wrk(url, threads, conns, secs, headers=(), script=None):
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--latency", "--timeout", "5s"]
    for hd in headers:
        argv += ["-H", hd]
    if script:
        argv += ["-s", script]
    argv.append(url)
    out = run_load(argv, secs + 60)
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = {int(p): float(v) * UNITS_S[u] for p, v, u in
           re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)}
    if not m or not rps or 50 not in lat or 99 not in lat:
        raise Failure(f"cannot parse wrk output:\n{out}")
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(m.group(1)), "rps": float(rps.group(1)),
            "p50": lat[50], "p99": lat[99],
            "socket_errors": sum(int(x) for x in errs.groups()) if errs else 0,
            "non2xx": int(non2xx.group(1)) if non2xx else 0}


PACED_CONNECTIONS = 32


def paced_load(binary, port, rate, secs, connections=PACED_CONNECTIONS):
    out = run_load([binary, "--port", str(port), "--path", "/status/200", "--rate", str(rate),
                    "--seconds", str(secs), "--connections", str(connections)], secs + 60)
    kv = dict(re.findall(r"(\w+)=([\d.,]+)", out))
    if not {"requests", "rps", "p50_us", "p99_us", "errors", "second_p99_us"} <= kv.keys():
        raise Failure(f"cannot parse sonde-paced-load output:\n{out}")
    seconds = [float(x) / 1e6 for x in kv["second_p99_us"].split(",") if x]
    return {"requests": int(kv["requests"]), "rps": float(kv["rps"]),
            "p50": float(kv["p50_us"]) / 1e6, "p99": float(kv["p99_us"]) / 1e6,
            "p99_sec": median(seconds), "socket_errors": int(kv["errors"]), "non2xx": 0}


def hey(url, rate, conns, secs):
    per_worker = max(1, round(rate / conns))
    out = run_load(["hey", "-z", f"{secs}s", "-c", str(conns), "-q", str(per_worker),
                    "-disable-compression", url], secs + 60)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = {int(p): float(v) for p, v in re.findall(r"(\d+)%+ in ([\d.]+) secs", out)}
    codes = [(int(c), int(n)) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)]
    if not rps or 50 not in lat or 99 not in lat:
        raise Failure(f"cannot parse hey output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s+Get", out, re.M))
    return {"requests": sum(n for _, n in codes), "rps": float(rps.group(1)),
            "p50": lat[50], "p99": lat[99], "socket_errors": errors,
            "non2xx": sum(n for c, n in codes if not 200 <= c < 400)}


def warm_up(port, tls, n=WARMUP_REQUESTS):
    """n keep-alive GETs from Python: warms the server and proves the agent counts."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(n):
            conn.request("GET", "/status/200")
            conn.getresponse().read()
    finally:
        conn.close()


# ---------------------------------------------------------------- scenarios

# --compare-agent NAME=PATH: more agent binaries, each a variant of its own
# placed after `sonde` in the sequence (the same settings), for A/B comparisons in one run.
COMPARE_AGENTS = {}
# --variant-env NAME:KEY=VALUE: environment of one agent variant (sonde or a
# compared one), on top of the settings every agent run gets.
VARIANT_ENV = {}


def runs_agent(variant):
    """Whether the variant runs a Sonde agent (`sonde` or a --compare-agent)."""
    return variant == "sonde" or variant in COMPARE_AGENTS


class Scenario:
    def __init__(self, key, title, load, tls=False, variants=("baseline", "sonde", "floor")):
        self.key, self.title, self.load, self.tls = key, title, load, tls
        self.variants = []
        for v in variants:
            self.variants.append(v)
            if v == "sonde":
                self.variants += list(COMPARE_AGENTS)
        self.runs = {v: [] for v in self.variants}   # variant -> [run dict per repetition]
        self.notes = []
        self.load_text = ""
        self.warm_requests = {}  # port -> requests of the unrecorded first load
        self.reps = None  # repetitions, when not --reps
        self.burst = None  # (seconds, load) run unmeasured before each measured load
        self.stats_runs = {}  # variant -> the run with BPF statistics on


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Bench:
    def __init__(self, args, workdir):
        self.args, self.workdir = args, workdir
        self.floor_ok = os.access(args.floor, os.X_OK)
        self.floor_note = None if self.floor_ok else (
            f"`{os.path.relpath(args.floor, REPO)}` does not exist yet: the probe-floor "
            "variant is skipped")
        self.tls_libs = {}  # port -> libraries sonde probed (for the floor)

    # one measured run of one variant; with `stats`, BPF statistics are on for it
    def run_variant(self, sc, variant, target, stats=False):
        a = self.args
        port, pids = target["port"], target["pids"]
        agent = floor = None
        try:
            if runs_agent(variant):
                agent = SondeAgent(COMPARE_AGENTS.get(variant, a.agent), port, pids,
                                   self.workdir, exclude_clients=not a.instrument_client,
                                   extra_env=VARIANT_ENV.get(variant))
                libs = agent.tls_libraries()
                if libs:
                    self.tls_libs[port] = libs
            elif variant == "floor":
                libs = self.tls_libs.get(port) or sorted(
                    {lib for pid in pids for lib in h.maps_libssl(pid)})
                floor = ProbeFloor(a.floor, pids, libs, self.workdir)
            warm_up(port, sc.tls)
            if agent:
                raised0 = h.metric_sum(agent.metrics(), PRIORITY_RAISED)
            burst_requests = sc.burst[1](port)["requests"] if sc.burst else 0
            instr = agent or floor
            if agent:
                samples0 = agent.drain(at_least=WARMUP_REQUESTS + burst_requests)
                count0 = agent.count(samples0)
            stop_stats = enable_bpf_stats() if stats and instr else None
            try:
                if instr:
                    progs0 = bpf_programs(instr.pid)
                    cpu0 = cpu_seconds(instr.pid)
                    rss = RssSampler(instr.pid)
                events0 = machine_event_counts()
                res = sc.load(port)
                run = dict(res)
                run["machine_per_req"] = per_request_delta(events0, machine_event_counts(),
                                                           res["requests"])
                if instr:
                    run["steady_rss_mb"] = rss.stop()
                if stop_stats:
                    tp, up, ns = bpf_delta(progs0, bpf_programs(instr.pid))
                    n = max(1, res["requests"])
                    run.update(tp_per_req=tp / n, up_per_req=up / n,
                               bpf_us_per_req=ns / 1e3 / n)
            finally:
                if stop_stats:
                    stop_stats()
            if agent:
                samples1 = agent.drain(at_least=count0 + res["requests"])
                counted = agent.count(samples1) - count0
                drops = {}
                for name, labels, value in samples1:
                    if DROP_METRIC.match(name):
                        before = sum(v for n_, l_, v in samples0 if n_ == name and l_ == labels)
                        drops[name] = drops.get(name, 0) + value - before
                # Since the warm-up: a burst before the load counts (it is why it is there).
                raised = h.metric_sum(samples1, PRIORITY_RAISED) - raised0
                run.update(counted=counted, lost=max(0, res["requests"] - counted), raised=raised,
                           ringbuf_full=drops.pop(RINGBUF_FULL, 0),
                           other_drops={k: v for k, v in drops.items() if v})
            if instr:
                run["cpu_us_per_req"] = (cpu_seconds(instr.pid) - cpu0) * 1e6 / max(
                    1, res["requests"])
                run["rss_mb"] = vm_hwm_mb(instr.pid)
            return run
        finally:
            for x in (agent, floor):
                if x:
                    x.stop()

    def run_scenario(self, sc, targets):
        a = self.args
        reps = sc.reps or a.reps
        # The repetitions, then one run of each instrumented variant with BPF
        # statistics on (the only one: they add two clock reads to every program
        # run), unless --bpf-stats-during-load keeps them on throughout.
        stats_run = not a.bpf_stats_during_load
        for rep in range(reps + (1 if stats_run else 0)):
            profiling = stats_run and rep == reps
            for v in rotated(sc.variants, rep):
                if v == "floor" and not self.floor_ok:
                    continue
                if profiling and v in ("baseline", "otel"):
                    continue
                t0 = time.monotonic()
                try:
                    run = self.run_variant(sc, v, targets[v],
                                           stats=profiling or a.bpf_stats_during_load)
                except Failure as err:
                    if v != "floor":
                        raise
                    # The floor is someone else's work in progress: note it, go on
                    # without it (this scenario's floor runs so far are dropped).
                    self.floor_ok = False
                    self.floor_note = (f"the probe-floor variant failed in {sc.key} and was "
                                       f"skipped from there on: {str(err).splitlines()[0]}")
                    sys.stderr.write(f"bench: {err}\n")
                    sc.runs["floor"] = []
                    continue
                if profiling:
                    sc.stats_runs[v] = run
                    print(f"  {sc.key} BPF statistics run {v:8s} "
                          f"{run['tp_per_req']:.2f} tracepoint + {run['up_per_req']:.2f} uprobe "
                          f"runs/req, {run['bpf_us_per_req']:.3f} BPF µs/req  "
                          f"[{time.monotonic() - t0:.1f}s]", flush=True)
                    continue
                sc.runs[v].append(run)
                extra = ""
                if "counted" in run:
                    extra = f" counted {run['counted']:.0f}"
                if "cpu_us_per_req" in run:
                    extra += f" cpu {run['cpu_us_per_req']:.2f}us/req"
                m = run.get("machine_per_req", {})
                extra += "".join(f" {k} {m[k]:.3f}"
                                 for k in ("idle", "ctxt", "RES", "IWI") if k in m)
                print(f"  {sc.key} rep {rep + 1}/{reps} {v:8s} {run['rps']:9.0f} req/s "
                      f"p50 {run['p50'] * 1e3:.3f} ms p99 {run['p99'] * 1e3:.3f} ms "
                      f"({run['requests']} req){extra}  [{time.monotonic() - t0:.1f}s]",
                      flush=True)


# ---------------------------------------------------------------- report

def rotated(variants, rep):
    """The order of repetition `rep`: each starts one variant later than the
    one before. With a fixed order, a variant's place biased its ratio (a
    variant run second gained about 2 points in P5 on 2026-11-27, whichever
    build it was); rotating spreads every variant over every place."""
    k = rep % len(variants)
    return list(variants[k:]) + list(variants[:k])


def fmt_ratio(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "—"
    m = statistics.median(vals)
    return f"{m:.3f} ({min(vals):.2f}–{max(vals):.2f})"


def fmt_rps(x):
    return f"{x:,.0f}" if x is not None else "—"


def fmt_ms(x):
    return f"{x * 1e3:.3f}" if x is not None else "—"


def fmt_num(x, spec=".2f"):
    return format(x, spec) if x is not None else "—"


def ratios(sc, variant, key, ref="baseline"):
    out = []
    for run, base in zip(sc.runs.get(variant, []), sc.runs.get(ref, [])):
        if run.get(key) and base.get(key):
            out.append(run[key] / base[key])
    return out


def bpf_figures(sc, v):
    """Program runs and time per request of variant v: from its run with BPF
    statistics on, or the medians over its runs when they were on throughout;
    None when it has none (no instrumentation)."""
    if v in sc.stats_runs:
        return sc.stats_runs[v]
    runs = sc.runs.get(v) or []
    if not runs or "tp_per_req" not in runs[0]:
        return None
    return {k: median([r[k] for r in runs])
            for k in ("tp_per_req", "up_per_req", "bpf_us_per_req")}


def scenario_table(sc):
    has_floor = bool(sc.runs.get("floor"))
    head = ["variant", "req/s", "× baseline", "p50 ms", "× baseline", "p99 ms", "× baseline"]
    if has_floor:
        head.append("req/s × floor")
    head += ["agent CPU µs/req", "agent RSS under load MB", "agent peak RSS MB",
             "Sonde counted / completed (lost)",
             "ring-buffer full", "other drops", "tracepoint runs/req", "uprobe runs/req",
             "BPF µs/req"]
    lines = ["| " + " | ".join(head) + " |",
             "|---|" + "---:|" * (len(head) - 1)]
    for v in sc.variants:
        runs = sc.runs.get(v) or []
        if not runs:
            continue
        col = lambda k: median([r.get(k) for r in runs])  # noqa: E731
        cells = [v, fmt_rps(col("rps")),
                 "1" if v == "baseline" else fmt_ratio(ratios(sc, v, "rps")),
                 fmt_ms(col("p50")), "1" if v == "baseline" else fmt_ratio(ratios(sc, v, "p50")),
                 fmt_ms(col("p99")), "1" if v == "baseline" else fmt_ratio(ratios(sc, v, "p99"))]
        if has_floor:
            cells.append(fmt_ratio(ratios(sc, v, "rps", "floor")) if runs_agent(v) else "")
        if "cpu_us_per_req" in runs[0]:
            cells += [fmt_num(col("cpu_us_per_req")),
                      f"{max(r['steady_rss_mb'] for r in runs):.1f}",
                      f"{max(r['rss_mb'] for r in runs):.1f}"]
        else:
            cells += ["—", "—", "—"]
        if "counted" in runs[0]:
            counted = sum(r["counted"] for r in runs)
            done = sum(r["requests"] for r in runs)
            lost = sum(r["lost"] for r in runs)
            cells.append(f"{counted:,.0f} / {done:,} ({lost:,.0f})")
            cells.append(f"{sum(r['ringbuf_full'] for r in runs):,.0f}")
            other = {}
            for r in runs:
                for k, x in r["other_drops"].items():
                    other[k] = other.get(k, 0) + x
            cells.append(", ".join(f"{k.replace('sonde_', '')} {x:,.0f}"
                                   for k, x in sorted(other.items())) or "0")
        else:
            cells += ["—", "—", "—"]
        bpf = bpf_figures(sc, v)
        if bpf:
            cells += [fmt_num(bpf["tp_per_req"]), fmt_num(bpf["up_per_req"]),
                      fmt_num(bpf["bpf_us_per_req"], ".3f")]
        else:
            cells += ["—", "—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    per_rep = []
    for v in sc.variants:
        runs = sc.runs.get(v) or []
        if runs:
            per_rep.append(f"{v} " + " ".join(f"{r['rps']:,.0f}" for r in runs))
    out = "\n".join(lines)
    if per_rep:
        out += "\n\nreq/s per repetition: " + "; ".join(per_rep) + "."
    if any("p99_sec" in r for runs in sc.runs.values() for r in runs):
        parts = []
        for v in sc.variants:
            runs = sc.runs.get(v) or []
            if not runs:
                continue
            part = f"{v} {fmt_ms(median([r['p99_sec'] for r in runs]))} ms"
            if v != "baseline":
                part += f" (× baseline {fmt_ratio(ratios(sc, v, 'p99_sec'))})"
            parts.append(part)
        out += ("\n\nEach second's own p99, the median over the seconds of a run, then over "
                "the repetitions: " + "; ".join(parts) + ".")
    per_machine = []
    for v in sc.variants:
        runs = [r for r in sc.runs.get(v) or [] if "machine_per_req" in r]
        if not runs:
            continue
        keys = [k for k in ("idle", "ctxt") + INTERRUPT_ROWS if k in runs[0]["machine_per_req"]]
        per_machine.append(f"{v} " + ", ".join(
            f"{k} {median([r['machine_per_req'].get(k, 0) for r in runs]):.3f}" for k in keys))
    if per_machine:
        out += ("\n\nPer request over the load, the whole machine (medians over the "
                "repetitions; idle: the CPUs' idle share, not per request; ctxt: context "
                "switches, RES: rescheduling IPIs, IWI: IRQ-work interrupts, CAL: function-call "
                "IPIs, TLB: TLB shootdowns, LOC: timer interrupts): "
                + "; ".join(per_machine) + ".")
    for v in sc.variants:
        if not runs_agent(v) or not sc.runs.get(v):
            continue
        raised = [r.get("raised", 0) for r in sc.runs[v]]
        whose = "The agent's" if v == "sonde" else f"{v}'s"
        out += (f" {whose} drain thread got normal CPU priority back (yield_cpu: a quarter "
                f"of the ring waiting) in {sum(1 for x in raised if x)} of {len(raised)} "
                f"repetitions ({sum(raised):.0f} times in all"
                f"{', the bursts before the loads included' if sc.burst else ''}).")
    errors = [(v, sum(r["socket_errors"] for r in sc.runs[v]), sum(r["non2xx"] for r in sc.runs[v]))
              for v in sc.variants if sc.runs.get(v)]
    bad = [f"{v}: {e} socket errors, {n} non-2xx" for v, e, n in errors if e or n]
    if bad:
        out += "\nLoad generator errors: " + "; ".join(bad) + "."
    for note in sc.notes:
        out += "\n" + note
    return out


def verdict(ok):
    if ok is None:
        return "SKIPPED"
    return "PASS" if ok else "FAIL"


def uprobe_hits_per_request(tables, side):
    """Hits per request of one side in scripts/uprobe-hits.py's first table."""
    for line in (tables or "").split("\n"):
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] == side:
            try:
                return float(cells[3])
            except ValueError:
                return None
    return None


def evaluate(scs, sides_p4, floor_note, uprobe_tables=None):
    """[(target, measured, PASS/FAIL/SKIPPED)]"""
    rows = []

    def med(sc, v, key, ref="baseline"):
        if sc is None:
            return None
        return median(ratios(sc, v, key, ref))

    def row(target, value, ok, fmt="{:.3f}", why=""):
        shown = why or ("—" if value is None else fmt.format(value))
        rows.append((target, shown, verdict(None if value is None else ok(value))))

    P = {k: scs.get(k) for k in ("P1", "P2", "P3", "P4", "P5")}
    for key, floor_ratio in (("P1", 0.90), ("P2", 0.85)):
        row(f"{key} throughput ratio sonde/baseline ≥ {floor_ratio:.2f}", med(P[key], "sonde", "rps"),
            lambda x, t=floor_ratio: x >= t)
    row("P3 p99 latency ratio sonde/baseline ≤ 1.10", med(P["P3"], "sonde", "p99"),
        lambda x: x <= 1.10)
    if P["P3"] and any("p99_sec" in r for r in P["P3"].runs.get("sonde", [])):
        row("P3, the same with each second's own p99 (median over the seconds of a run: a "
            "stall of the host lands in one second)", med(P["P3"], "sonde", "p99_sec"),
            lambda x: x <= 1.10)
    for key in ("P1", "P2"):
        v = med(P[key], "sonde", "rps", "floor") if P[key] and P[key].runs.get("floor") else None
        row(f"{key} sonde throughput ≥ 0.97 × probe floor", v, lambda x: x >= 0.97,
            why="" if v is not None else ("no floor runs" + (f" ({floor_note})" if floor_note else "")))
    for key in ("P1", "P2"):
        v = median([r.get("cpu_us_per_req") for r in P[key].runs["sonde"]]) if P[key] else None
        row(f"{key} agent CPU ≤ 2 µs/request", v, lambda x: x <= 2.0, fmt="{:.2f} µs")
    rss = [r["steady_rss_mb"] for sc in scs.values() for r in sc.runs.get("sonde", [])]
    peak = [r["rss_mb"] for sc in scs.values() for r in sc.runs.get("sonde", [])]
    row("agent RSS ≤ 40 MB steady, under load (all scenarios)", max(rss) if rss else None,
        lambda x: x <= 40, fmt="{:.1f} MB",
        why=(f"{max(rss):.1f} MB (peak over the run, start-up included: {max(peak):.1f} MB)"
             if rss else ""))
    lost = [(k, r) for k in ("P1", "P2", "P3", "P4") if P[k] for r in P[k].runs.get("sonde", [])]
    total_lost = sum(r["lost"] for _, r in lost) if lost else None
    row("zero requests lost in P1–P4", total_lost, lambda x: x == 0, fmt="{:.0f} lost")
    if P["P4"] and P["P4"].runs.get("sonde"):
        up = bpf_figures(P["P4"], "sonde")["up_per_req"]
        per_side = up / sides_p4
        shown = (f"{per_side:.2f} ({up:.2f} per request over {sides_p4} side"
                 f"{'s' if sides_p4 > 1 else ''})")
        alone = uprobe_hits_per_request(uprobe_tables, "nginx server")
        if alone is not None:
            shown += f"; nginx alone, Go client (scripts/uprobe-hits.py): {alone:.2f}"
        rows.append(("P4 ≤ 3 uprobe hits per request per side", shown,
                     verdict(per_side <= 3 and (alone is None or alone <= 3))))
    else:
        row("P4 ≤ 3 uprobe hits per request per side", None, lambda x: True)
    if P["P5"]:
        s, o = med(P["P5"], "sonde", "rps"), med(P["P5"], "otel", "rps")
        ok = None if s is None or o is None else s > o
        rows.append(("P5 sonde throughput ratio > OTel SDK ratio",
                     "—" if ok is None else f"{s:.3f} vs {o:.3f}", verdict(ok)))
    else:
        row("P5 sonde throughput ratio > OTel SDK ratio", None, lambda x: True)
    return rows


def targets_table(rows):
    lines = ["| target | measured | result |", "|---|---|---|"]
    for t, m, v in rows:
        lines.append(f"| {t} | {m} | **{v}** |")
    return "\n".join(lines)


def cpu_busy(seconds):
    """Share of the machine's CPU time spent busy over `seconds` (/proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        return sum(vals), vals[3] + vals[4]  # total, idle + iowait
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 100.0 * (1 - (i1 - i0) / max(1, t1 - t0))


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"kernel": platform.release(), "nproc": os.cpu_count(), "cpu": model,
            "loadavg": open("/proc/loadavg").read().split()[:3]}


TLS_HEADING = "## TLS: uprobe hits per HTTPS request"


def existing_tls_section(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    i = text.find(TLS_HEADING)
    if i < 0:
        return None
    rest = text[i:]
    j = rest.find("\n## ", len(TLS_HEADING))
    return (rest if j < 0 else rest[:j]).rstrip() + "\n"


def hand_written_sections(path):
    """The sections after the TLS one (analysis written by hand): kept as they are."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return ""
    i = text.find(TLS_HEADING)
    j = text.find("\n## ", i + len(TLS_HEADING)) if i >= 0 else -1
    return text[j + 1:].rstrip() + "\n" if j >= 0 else ""


def splice_uprobe_hits(section, tables, today):
    """Replaces the result tables after "Result on this machine" with fresh ones."""
    lines = section.split("\n")
    for i, line in enumerate(lines):
        if "Result on this machine" in line:
            k = i
            while k < len(lines) and not lines[k].rstrip().endswith(":"):
                k += 1
            if k + 1 >= len(lines):
                break
            for j in range(i, k + 1):
                lines[j] = re.sub(r"\(\d{4}-\d{2}-\d{2},", f"({today},", lines[j])
            start = k + 1
            end = start
            while end < len(lines) and (not lines[end].strip() or lines[end].startswith("|")):
                end += 1
            new = ["", *tables.strip().split("\n"), ""]
            return "\n".join(lines[:start] + new + lines[end:])
    return (section.rstrip() + f"\n\nRe-measured by `make bench` ({today}):\n\n" +
            tables.strip() + "\n")


def run_uprobe_hits(agent):
    """scripts/uprobe-hits.py's two tables, or None (with the reason)."""
    p = Proc([sys.executable, os.path.join(REPO, "scripts", "uprobe-hits.py"), agent],
             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = p.proc.communicate(timeout=300)
    finally:
        p.stop()
        p.forget()
    if p.proc.returncode != 0:
        return None, f"scripts/uprobe-hits.py exited {p.proc.returncode}: " \
                     f"{err.decode(errors='replace').strip()[-500:]}"
    tables = [line for line in out.decode().split("\n") if line.startswith("|") or not line.strip()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(tables)).strip()
    return text, None


# What one item of each microbenchmark is; the figure is CPU time per item.
MICROBENCH_ITEMS = {
    "BM_Http1_ParseRequestHead": "request head parsed (7 fields, traceparent)",
    "BM_Http1_ParseResponseHead": "response head parsed",
    "BM_Http1_HandlerExchange": "HTTP/1.1 request + response through the connection handler",
    "BM_Http2_": "HTTP/2 request + response (one stream) through the connection handler",
    "BM_Hpack_": "header block decoded",
    "BM_ConnectionTracker_": "request + response records to one span",
    "BM_RouteMatcher_": "route decision for one request",
    "BM_RedMetrics_Record": "span recorded in the RED histograms",
    "BM_Otlp_": "span encoded for OTLP (batch size after the /)",
}
MICROBENCH_HEADING = "## Parser and pipeline microbenchmarks (`build/sonde_bench`)"


def run_microbenchmarks(path, quick):
    """Google Benchmark's figures from build/sonde_bench: (markdown table, None) or (None, why)."""
    if not os.access(path, os.X_OK):
        return None, f"no {os.path.relpath(path, REPO)} (make build)"
    min_time = "0.05" if quick else "0.5"
    try:
        out = subprocess.run([path, "--benchmark_format=json", f"--benchmark_min_time={min_time}"],
                             capture_output=True, text=True, timeout=600, check=True).stdout
        results = json.loads(out)["benchmarks"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
        return None, f"{os.path.relpath(path, REPO)} failed: {err}"
    rows = ["| benchmark | one item is | ns per item (CPU) |", "|---|---|---:|"]
    for b in results:
        if b.get("error_occurred"):
            rows.append(f"| {b['name']} | | error: {b.get('error_message', '?')} |")
            continue
        per_item = b.get("per_item")
        if per_item is None:
            continue
        what = next((v for k, v in MICROBENCH_ITEMS.items() if b["name"].startswith(k)), "")
        rows.append(f"| {b['name']} | {what} | {per_item * 1e9:,.0f} |")
    return "\n".join(rows), None


# ---------------------------------------------------------------- main

def describe_binary(path):
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    return (f"`{os.path.relpath(path, REPO)}` (sha256 {digest}…, built "
            f"{built.strftime('%Y-%m-%d %H:%M UTC')})")


def check_tools(names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise Failure("missing on PATH: " + ", ".join(missing) +
                      " (scripts/install-deps.sh installs the benchmark's tools)")


def libs_of_binary(path):
    """Realpaths of the libssl objects `path` is linked against (ldd)."""
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {os.path.realpath(m) for m in re.findall(r"=> (\S*libssl\.so\S*)", out)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke: 3 repetitions of 1 s loads, BPF statistics on during "
                         "them (--bpf-stats-during-load) (< 3 min); the TLS section of the "
                         "report is kept as it is")
    ap.add_argument("--scenarios", default="P1,P2,P3,P4,P5",
                    help="comma-separated subset of P1..P5 (default: all)")
    ap.add_argument("--reps", type=int, help="alternated repetitions (default 5, quick 3)")
    ap.add_argument("--duration", type=int, help="seconds per load run (default 5, quick 1)")
    ap.add_argument("--agent", default=os.path.join(REPO, "build", "sonde"))
    ap.add_argument("--floor", default=os.path.join(REPO, "build", "sonde-probe-floor"))
    ap.add_argument("--compare-agent", action="append", default=[], metavar="NAME=PATH",
                    help="another agent binary (e.g. an older build), run as variant NAME "
                         "after `sonde` in the rotating sequence of every repetition, with the same "
                         "settings; "
                         "repeatable. Its rows are reported, the targets use `sonde` only "
                         "(`--compare-agent payload=build/sonde` with --variant-env: the same "
                         "binary, other settings)")
    ap.add_argument("--variant-env", action="append", default=[], metavar="NAME:KEY=VALUE",
                    help="an environment variable for the agent of variant NAME (sonde or a "
                         "--compare-agent), e.g. payload:SONDE_BENCHMARK_KERNEL_STAGE=payload; "
                         "repeatable")
    ap.add_argument("--p3-rate", type=int,
                    help="P3 offered rate, req/s (default: 20%% of P1's baseline, else 4000)")
    ap.add_argument("--p3-client", choices=("paced", "wrk", "hey"), default="paced",
                    help="P3 load generator: build/sonde-paced-load (default: open loop, "
                         "evenly spaced requests), wrk paced by a Lua delay() of 4 ms (its "
                         "millisecond timers send in bursts) or hey -q (latencies to 0.1 ms)")
    ap.add_argument("--p3-reps", type=int,
                    help="P3's repetitions (default 9, quick: --reps): a p99 ratio of one "
                         "repetition swings by tens of percent on this VM")
    ap.add_argument("--paced-load", default=os.path.join(REPO, "build", "sonde-paced-load"))
    ap.add_argument("--p3-burst", type=int, default=0, metavar="S",
                    help="before each measured P3 load, S seconds of saturating load "
                         "(unmeasured): P3 then shows the latency right after a load spike, "
                         "which is when the agent's drain thread last needed normal priority")
    ap.add_argument("--bpf-stats-during-load", action="store_true",
                    help="keep kernel.bpf_stats_enabled on during every measured run (as "
                         "before 2026-11-27) instead of one extra run per instrumented variant "
                         "(statistics add two clock reads to every program run)")
    ap.add_argument("--instrument-client", action="store_true",
                    help="let Sonde instrument the load generator too (client side)")
    ap.add_argument("--microbench", default=os.path.join(REPO, "build", "sonde_bench"),
                    help="Google Benchmark binary whose figures join the report")
    ap.add_argument("--output", default=os.path.join(REPO, "docs", "performance.md"))
    ap.add_argument("--no-write", action="store_true", help="print the report only")
    args = ap.parse_args()
    args.reps = args.reps or (3 if args.quick else 5)
    args.duration = args.duration or (1 if args.quick else 5)
    # The smoke test cannot afford an extra run per instrumented variant (each
    # agent start costs seconds, half a minute over the five scenarios): its
    # BPF columns come from the measured runs, with the statistics' own cost.
    if args.quick:
        args.bpf_stats_during_load = True
    wanted = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    if not wanted or any(s not in ("P1", "P2", "P3", "P4", "P5") for s in wanted):
        ap.error("--scenarios takes a subset of P1,P2,P3,P4,P5")
    if args.reps < 3:
        ap.error("--reps must be at least 3")
    if args.duration < 1:
        ap.error("--duration must be at least 1 (wrk takes whole seconds)")
    if os.geteuid() != 0:
        raise Failure("needs root (eBPF, kernel.bpf_stats_enabled)")
    tools = ["wrk", "nginx", "openssl"]
    if "P5" in wanted:
        tools += ["node", "npm"]
    if "P3" in wanted and args.p3_client == "hey":
        tools.append("hey")
    check_tools(tools)
    if "P3" in wanted and args.p3_client == "paced" and not os.access(args.paced_load, os.X_OK):
        raise Failure(f"{args.paced_load} is missing: `make build` builds it")
    for spec in args.compare_agent:
        name, sep, path = spec.partition("=")
        if (not sep or not re.fullmatch(r"[a-z][a-z0-9_-]*", name)
                or name in ("baseline", "sonde", "floor", "otel") or name in COMPARE_AGENTS):
            ap.error(f"--compare-agent {spec}: want NAME=PATH, NAME a new lowercase variant name")
        if not os.access(path, os.X_OK):
            raise Failure(f"--compare-agent {spec}: no executable at {path}")
        COMPARE_AGENTS[name] = os.path.abspath(path)
    for spec in args.variant_env:
        m = re.fullmatch(r"([a-z][a-z0-9_-]*):([A-Z_][A-Z0-9_]*)=(.*)", spec)
        if not m or (m.group(1) != "sonde" and m.group(1) not in COMPARE_AGENTS):
            ap.error(f"--variant-env {spec}: want NAME:KEY=VALUE, NAME sonde or a "
                     "--compare-agent name")
        VARIANT_ENV.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
    args.agent = os.path.abspath(args.agent)
    args.floor = os.path.abspath(args.floor)
    if not os.access(args.agent, os.X_OK):
        raise Failure(f"no agent binary at {args.agent} (make build)")

    started_at = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    command = shlex.join(["python3", "bench/run.py", *sys.argv[1:]])
    if os.environ.get("MAKELEVEL"):
        command = f"make bench  # {command}"
    mach = machine()
    mach["busy_before"] = cpu_busy(1.0)
    print(f"Sonde benchmark: {len(wanted)} scenario(s), {args.reps} repetitions of "
          f"{args.duration} s; kernel {mach['kernel']}, {mach['nproc']} CPUs ({mach['cpu']}), "
          f"load average {' '.join(mach['loadavg'])}, CPU {mach['busy_before']:.0f}% busy "
          "before the start", flush=True)

    workdir = tempfile.mkdtemp(prefix="sonde-bench-")
    cert_dir = None
    uprobe_tables = uprobe_error = None
    micro_table, micro_error = None, "not run"
    scs = {}
    try:
        # Run copies: a rebuild of build/ during the run must not change (or
        # briefly remove) the binaries under test.
        binaries = {}

        def run_copy(name, path):
            binaries[name] = describe_binary(path)
            copy = os.path.join(workdir, "bin", name, os.path.basename(path))
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            shutil.copy2(path, copy)
            return copy
        for name in ("agent", "floor"):
            if os.access(getattr(args, name), os.X_OK):
                setattr(args, name, run_copy(name, getattr(args, name)))
        for name, path in COMPARE_AGENTS.items():
            COMPARE_AGENTS[name] = run_copy(name, path)
        mach["binaries"] = binaries
        bench = Bench(args, workdir)
        if bench.floor_note:
            print(f"note: {bench.floor_note}", flush=True)
        d = args.duration
        sat_threads, sat_conns = 2, 32

        def sat(port, https=False, headers=()):
            return wrk(f"{'https' if https else 'http'}://127.0.0.1:{port}/status/200",
                       sat_threads, sat_conns, d, headers)

        plain = tls_srv = None
        tls_port = None
        if {"P1", "P2", "P3"} & set(wanted):
            plain = nginx(h.free_port(), workdir).start()
        if "P4" in wanted:
            cert, key = h.self_signed_cert("sonde-bench")
            cert_dir = os.path.dirname(cert)
            tls_srv = nginx(h.free_port(), workdir, tls=(cert, key)).start()
            tls_port = tls_srv.port

        def target(srv):
            return {"port": srv.port, "pids": srv.all_pids()}

        order = []
        if "P1" in wanted:
            sc = Scenario("P1", "nginx, HTTP/1.1 keep-alive, at saturation",
                          lambda port: sat(port))
            sc.load_text = (f"`wrk -t{sat_threads} -c{sat_conns} -d{d}s --latency` on "
                            "`/status/200` (a 200 with an 11-byte body)")
            order.append((sc, {v: target(plain) for v in sc.variants}))
        if "P2" in wanted:
            sc = Scenario("P2", "nginx, `Connection: close` (one TCP connection per request), "
                          "at saturation", lambda port: sat(port, headers=("Connection: close",)))
            sc.load_text = (f"`wrk -t{sat_threads} -c{sat_conns} -d{d}s --latency "
                            "-H 'Connection: close'` on `/status/200`")
            order.append((sc, {v: target(plain) for v in sc.variants}))
        if "P3" in wanted:
            sc = Scenario("P3", "nginx at a fixed rate well below saturation", None)
            sc.reps = args.p3_reps or (args.reps if args.quick else max(args.reps, 9))
            if args.p3_burst:
                sc.burst = (args.p3_burst, lambda port: wrk(
                    f"http://127.0.0.1:{port}/status/200", sat_threads, sat_conns,
                    args.p3_burst))
            order.append((sc, {v: target(plain) for v in sc.variants}))
        if "P4" in wanted:
            sc = Scenario("P4", "nginx over HTTPS (system libssl), keep-alive, "
                          "at saturation", lambda port: sat(port, https=True), tls=True)
            sc.load_text = (f"`wrk -t{sat_threads} -c{sat_conns} -d{d}s --latency` on "
                            "`https://…/status/200` (handshakes only when the connections open)")
            order.append((sc, {v: target(tls_srv) for v in sc.variants}))
        if "P5" in wanted:
            sc = Scenario("P5", "Node `http` server (tests/e2e/servers/http_server.js): "
                          "Sonde vs the OpenTelemetry Node SDK", lambda port: sat(port),
                          variants=("baseline", "sonde", "floor", "otel"))
            sc.load_text = (f"`wrk -t{sat_threads} -c{sat_conns} -d{d}s --latency` on "
                            "`/status/200`")
            order.append((sc, None))

        for sc, targets in order:
            t0 = time.monotonic()
            print(f"\n== {sc.key}: {sc.title}", flush=True)
            if sc.key == "P3":
                rate = args.p3_rate
                if rate is None:
                    p1 = scs.get("P1")
                    base = median([r["rps"] for r in p1.runs["baseline"]]) if p1 else None
                    rate = max(500, int(round(base * 0.2 / 500.0)) * 500) if base else 4000
                if args.p3_client == "hey":
                    conns = 8
                    sc.load = lambda port, r=rate, c=conns: hey(
                        f"http://127.0.0.1:{port}/status/200", r, c, d)
                    sc.load_text = (f"`hey -z {d}s -c {conns} -q {max(1, round(rate / conns))}` "
                                    f"(≈ {rate} req/s offered) on `/status/200`")
                elif args.p3_client == "wrk":
                    delay_ms = 4
                    # A cycle is the delay plus the response time, ~1 ms at this rate here.
                    conns = max(2, int(round(rate * (delay_ms + 1) / 1000.0)))
                    script = os.path.join(workdir, "pace.lua")
                    with open(script, "w") as f:
                        f.write(f"-- each connection waits {delay_ms} ms before each request\n"
                                f"function delay()\n  return {delay_ms}\nend\n")
                    sc.load = lambda port, c=conns, s=script: wrk(
                        f"http://127.0.0.1:{port}/status/200", 2, c, d, script=s)
                    sc.load_text = (f"`wrk -t2 -c{conns} -d{d}s --latency -s pace.lua` where "
                                    f"`delay()` returns {delay_ms} ms: each connection sends "
                                    f"one request, waits for its response, then {delay_ms} ms, "
                                    f"aiming at {rate:,} req/s on `/status/200`. wrk's timers "
                                    "tick in milliseconds, so the connections send in bursts "
                                    "and the latency is mostly the time to serve the burst "
                                    "ahead")
                else:
                    sc.load = lambda port, r=rate: paced_load(args.paced_load, port, r, d)
                    why = "--p3-rate" if args.p3_rate else (
                        "20% of P1's baseline" if "P1" in scs else "default, P1 not run")
                    sc.load_text = (
                        f"`sonde-paced-load --rate {rate} --seconds {d} --connections "
                        f"{PACED_CONNECTIONS} --path /status/200` (src/app/paced_load_main.cpp): "
                        f"open loop, one request due every {1e6 / rate:.0f} µs ({rate:,} req/s, "
                        f"{why}), sent on the first idle keep-alive connection of "
                        f"{PACED_CONNECTIONS} opened beforehand; latency counts from the instant "
                        "the request was due, so the sender's own lateness is in it. wrk's "
                        "millisecond timers would send in bursts (then the latency is mostly "
                        "the time to serve the burst ahead: `--p3-client wrk`), wrk2 is not "
                        "available, hey prints latencies to 0.1 ms only")
            if sc.burst:
                sc.load_text += (
                    f". Before each measured load (after the warm-up, not measured): "
                    f"`wrk -t{sat_threads} -c{sat_conns} -d{sc.burst[0]}s` at saturation, "
                    "then the agent's count is awaited (well under a second), so the paced "
                    "load starts right after a load spike")
            if sc.key == "P5":
                targets = start_p5(sc, workdir)
            # One unrecorded saturating load against each bare server first: warms
            # up nginx's caches and Node's JIT before the first measured run.
            for port in sorted({t["port"] for t in targets.values()}):
                res = wrk(f"{'https' if sc.tls else 'http'}://127.0.0.1:{port}/status/200",
                          sat_threads, sat_conns, 1 if args.quick else 2)
                sc.warm_requests[port] = res["requests"]
            bench.run_scenario(sc, targets)
            if sc.key == "P5":
                finish_p5(sc, targets)
            scs[sc.key] = sc
            print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)

        print("\n== Microbenchmarks (build/sonde_bench)", flush=True)
        micro_table, micro_error = run_microbenchmarks(args.microbench, args.quick)
        print(micro_table or f"failed: {micro_error}", flush=True)
        if not args.quick:
            print("\n== TLS uprobe hits per request (scripts/uprobe-hits.py)", flush=True)
            uprobe_tables, uprobe_error = run_uprobe_hits(args.agent)
            print(uprobe_tables or f"failed: {uprobe_error}", flush=True)
    finally:
        # No second Ctrl-C or SIGTERM in the middle of the cleanup.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
        if cert_dir:
            shutil.rmtree(cert_dir, ignore_errors=True)

    # wrk links the same libssl as nginx: its calls hit the probes too.
    sides_p4 = 1
    if "P4" in scs:
        libs = {os.path.realpath(x) for x in bench.tls_libs.get(tls_port, [])}
        if libs & libs_of_binary(shutil.which("wrk")):
            sides_p4 = 2
    elapsed = time.monotonic() - t_start
    report = render(args, scs, mach, started_at, command, elapsed, sides_p4, bench.floor_note,
                    uprobe_tables, uprobe_error, micro_table, micro_error)
    print("\n" + report)
    if not args.no_write:
        with open(args.output, "w") as f:
            f.write(report)
        print(f"wrote {os.path.relpath(args.output, os.getcwd())} ({elapsed:.0f} s in all)")
    raw = os.path.join(REPO, "build", "bench-results.json")
    try:
        with open(raw, "w") as f:
            json.dump({k: {"runs": sc.runs, "stats_runs": sc.stats_runs, "notes": sc.notes}
                       for k, sc in scs.items()}, f,
                      indent=1)
    except OSError:
        pass
    return 0


def start_p5(sc, workdir):
    """The plain Node server, the OTLP receiver and the Node server under the OTel SDK."""
    for script in ("install-node-deps.sh",):
        subprocess.run([os.path.join(BENCH, script)], check=True)
    subprocess.run([os.path.join(REPO, "scripts", "install-otlp-receiver.sh")], check=True)
    port = h.free_port()
    node = Server(["node", os.path.join(SERVERS, "http_server.js"), str(port)], port,
                  name="node http", exe_hint="node")
    node.start()
    out = os.path.join(workdir, "receiver.jsonl")
    http_port = h.free_port()
    receiver = Server(["node", RECEIVER, "--out", out, "--grpc-port", str(h.free_port()),
                       "--http-port", str(http_port)], http_port, name="OTLP receiver",
                      exe_hint="node")
    receiver.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://127.0.0.1:{http_port}/v1/traces"
    otel_port = h.free_port()
    otel = Server(["node", os.path.join(BENCH, "otel_sdk_server.js"), str(otel_port)],
                  otel_port, env=env, name="node http + OTel SDK", exe_hint="node")
    otel.start()
    sc.p5 = {"out": out, "otel": otel, "receiver": receiver}
    t = {"port": node.port, "pids": [node.proc.pid]}
    return {"baseline": t, "sonde": t, "floor": t, **{v: t for v in COMPARE_AGENTS},
            "otel": {"port": otel_port, "pids": [otel.proc.pid]}}


def server_spans(path):
    n = 0
    try:
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("signal") != "traces" or rec.get("answer") != "ok":
                    continue
                for rs in rec["body"].get("resourceSpans", []):
                    for ss in rs.get("scopeSpans", []):
                        n += sum(1 for s in ss.get("spans", []) if s.get("kind") == 2)
    except OSError:
        pass
    return n


def finish_p5(sc, targets):
    """Stops the SDK server (it flushes its last batch) and counts the spans it exported."""
    otel = sc.p5["otel"]
    otel.stop()
    if otel in STARTED:
        STARTED.remove(otel)
    path = sc.p5["out"]
    last, same = -1, 0
    deadline = time.monotonic() + 10
    while same < 3 and time.monotonic() < deadline:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        same = same + 1 if size == last else 0
        last = size
        time.sleep(0.2)
    spans = server_spans(path)
    done = (sum(r["requests"] for r in sc.runs["otel"]) + WARMUP_REQUESTS * len(sc.runs["otel"])
            + sc.warm_requests.get(targets["otel"]["port"], 0))
    if spans >= done:
        got = (f"every one has its span (the {spans - done:,} more: requests in flight when wrk "
               "stopped, answered but not read)")
    else:
        got = (f"{done - spans:,} have none (the BatchSpanProcessor drops spans when its queue "
               "of 2048 is full)")
    sc.notes.append(
        f"\nOTel SDK: the OTLP receiver got {spans:,} SERVER spans for the {done:,} requests the "
        f"SDK server completed (measured loads, warm-ups, all repetitions): {got}. The SDK's "
        "figures include the receiver (tests/e2e/otlp_receiver, Node) decoding and storing "
        "every span on the same 2 CPUs; Sonde here exports no spans (metrics only, read from "
        "its Prometheus endpoint).")


METHOD = (
    "Each scenario keeps one server running and, in every repetition, runs each variant in "
    "turn, each repetition starting one variant later than the one before (so that no "
    "variant owes its ratio to its place in the sequence): `baseline` (no agent), `sonde` (`build/sonde` started for the run with "
    "`SONDE_OPEN_PORT=<server port>`, `SONDE_TRACE_PRINTER=disabled` and a Prometheus port; "
    "the load generator is excluded with `discovery.exclude_instrument`, so only the server "
    "side is instrumented) and `floor` (`build/sonde-probe-floor --pid <server pids>`: the "
    "same kernel hooks, programs that only do the PID-filter lookup). Before each measured "
    "load, 300 keep-alive requests warm the server up and, under Sonde, prove that it counts. "
    "Absolute figures are medians over the repetitions; every ratio is the median of the "
    "per-repetition ratios to the baseline run of the same repetition, with their range in "
    "brackets. Agent CPU is utime+stime of the agent over the load and the drain after it, "
    "divided by the requests the load generator completed. *RSS under load* is the largest "
    "VmRSS sampled every 0.2 s during the load; *peak RSS* is VmHWM, which includes the "
    "start-up (libbpf parses the kernel's BTF once, about 12 MB, freed after loading). "
    "*Sonde counted* is the rise of its "
    "`http_server_request_duration_seconds_count` for the port once it stopped growing after "
    "the load; *lost* sums, per run, the requests the load generator completed that Sonde did "
    "not count (Sonde may count a few more than wrk: the requests in flight when wrk stops are "
    "answered and counted, not read by wrk). *Drops* are the rise of the agent's self-metrics "
    "that count something lost (`sonde_kernel_ringbuf_full_total` on its own). BPF runs per "
    "request are the rise of `run_cnt` of the agent's own programs (the floor's for the "
    "floor) over the load, divided by the requests completed, {bpf_stats_runs}. Syscall "
    "tracepoint programs run for every process on the machine (the load "
    "generator's syscalls too) and the libssl uprobes for every process using that library; "
    "*BPF µs/req* is their `run_time_ns` (the programs' own time, without the uprobe traps).")


# Where METHOD's BPF figures come from, by --bpf-stats-during-load.
BPF_STATS_RUNS = {
    False: "in one more run of each instrumented variant after the repetitions: the only run "
           "with kernel.bpf_stats_enabled on, and left out of every other figure: with "
           "statistics on every program run reads the clock twice, a cost of the measurement "
           "that the baseline does not pay (`--bpf-stats-during-load` keeps them on throughout, "
           "as runs before 2026-11-27 15:00 did)",
    True: "medians over the repetitions, with kernel.bpf_stats_enabled on during every "
          "measured run of an instrumented variant (`--bpf-stats-during-load`, implied by "
          "`--quick`): every program run then also reads the clock twice, a cost of the "
          "measurement that the baseline does not pay",
}


def wrap(text, width=100):
    """Fills a paragraph without breaking inside `code spans` (a line break
    there would render as a space) or after hyphens."""
    units, cur = [], []
    for word in text.split(" "):
        cur.append(word)
        if " ".join(cur).count("`") % 2 == 0:
            units.append(" ".join(cur))
            cur = []
    if cur:
        units.append(" ".join(cur))
    lines, line = [], ""
    for u in units:
        if line and len(line) + 1 + len(u) > width:
            lines.append(line)
            line = u
        else:
            line = f"{line} {u}" if line else u
    return "\n".join(lines + [line])


def render(args, scs, mach, started_at, command, elapsed, sides_p4, floor_note,
           uprobe_tables, uprobe_error, micro_table, micro_error):
    today = started_at.strftime("%Y-%m-%d")
    out = ["# Performance", "",
           "Figures here are produced by scripts in the repository; rerun them to check. "
           "This machine is\na 2-core PVM guest where syscalls and uprobes are slow: compare "
           "figures as ratios from the\nsame run, never across machines.", "",
           "## Overhead benchmark (`make bench`)", "",
           "| | |", "|---|---|",
           f"| date | {started_at.strftime('%Y-%m-%d %H:%M UTC')} |",
           f"| command | `{command}` |",
           f"| machine | Linux {mach['kernel']}, {mach['nproc']} CPUs, {mach['cpu']} |",
           *[f"| {({'agent': 'agent', 'floor': 'probe floor'}).get(k, 'variant ' + k)} | {v} |"
             for k, v in mach.get("binaries", {}).items()],
           *[f"| environment of variant {v} | "
             f"{', '.join(f'`{k}={x}`' for k, x in sorted(env.items()))} |"
             for v, env in VARIANT_ENV.items()],
           *[f"| agent's kernel hooks (its log) | {hooks} |" for hooks in sorted(AGENT_HOOKS)],
           f"| machine activity before the start | load average {' '.join(mach['loadavg'])}; "
           f"CPU {mach['busy_before']:.0f}% busy over 1 s |",
           f"| load average at the end | {' '.join(open('/proc/loadavg').read().split()[:3])} |",
           f"| repetitions × load | {args.reps} × {args.duration} s per variant, alternated "
           f"(baseline, sonde, floor, …), each repetition starting one variant later |",
           f"| mode | {'quick: the CI smoke test, figures only indicative' if args.quick else 'full'} |",
           f"| BPF statistics | "
           f"{'on during every measured run (`--bpf-stats-during-load`)' if args.bpf_stats_during_load else 'one extra run per instrumented variant'} |",
           f"| total run time | {elapsed / 60:.1f} min |", "",
           wrap(METHOD.format(bpf_stats_runs=BPF_STATS_RUNS[args.bpf_stats_during_load]))]
    if floor_note:
        out += ["", f"Note: {floor_note}."]
    out += ["", "### Targets (issue 6)", "", targets_table(evaluate(scs, sides_p4, floor_note, uprobe_tables))]
    for key in ("P1", "P2", "P3", "P4", "P5"):
        sc = scs.get(key)
        if not sc:
            continue
        reps = (f" {sc.reps} repetitions (not {args.reps}): one repetition's p99 ratio swings "
                "by tens of percent on this VM." if sc.reps and sc.reps != args.reps else "")
        out += ["", f"### {key}: {sc.title}", "", f"Load: {sc.load_text}.{reps}", "",
                scenario_table(sc)]
        if key == "P4":
            out += ["", f"uprobe runs per request count both sides: wrk links the same "
                    f"libssl as nginx, so its SSL calls hit the probes as well "
                    f"({sides_p4} side{'s' if sides_p4 > 1 else ''} counted in the target). "
                    "The per-side figures with a non-OpenSSL peer are in the TLS section below."]
    out += ["", MICROBENCH_HEADING, ""]
    if micro_table:
        out += [f"`{os.path.basename(args.microbench)} --benchmark_min_time="
                f"{'0.05' if args.quick else '0.5'}`, run after the scenarios above on the same "
                "machine; the parsers run on bytes in memory, so these are the agent's own costs "
                "without the kernel's.", "", micro_table]
    else:
        out.append(f"Not measured in this run: {micro_error}.")
    section = existing_tls_section(args.output)
    out.append("")
    if section is None and uprobe_tables is None:
        out.append(f"{TLS_HEADING}\n\nNot measured in this run (`scripts/uprobe-hits.py`).")
    elif uprobe_tables is None:
        if uprobe_error:
            out.append(f"<!-- scripts/uprobe-hits.py failed in this run: "
                       f"{uprobe_error.replace('--', '-')} -->")
        out.append(section.rstrip())
    elif section is None:
        out.append(f"{TLS_HEADING}\n\nMeasured by `scripts/uprobe-hits.py build/sonde` "
                   f"({today}):\n\n{uprobe_tables}")
    else:
        out.append(splice_uprobe_hits(section, uprobe_tables, today).rstrip())
    tail = hand_written_sections(args.output)
    if tail:
        out += ["", tail.rstrip()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C: the finally blocks stop every process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except Failure as err:
        sys.stderr.write(f"bench: {err}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted\n")
        sys.exit(130)
