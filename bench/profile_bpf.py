#!/usr/bin/env python3
"""Where the kernel-side time of Sonde goes: per BPF program runs and
run_time_ns per request, and the agent's CPU per request, for one nginx load.

Usage (root): bench/profile_bpf.py [--close] [--tls] [--duration S] [--agent PATH]
                                   [--floor | --stage full|socket|header|payload]

Starts nginx (plain or HTTPS), the agent (or with --floor the probe floor)
selecting it, turns BPF run-time statistics on for the run, runs wrk and
prints one line per program: runs per request, ns per run, ns per request.
Complements bench/run.py, which reports only the totals.

--stage runs the agent with benchmark_kernel_stage: its kernel programs stop
after finding the socket, after building a record's header, or after copying
the payload, so successive runs show what each step of a data record costs
(the agent then reports nothing, and its CPU is only its idle loop); `ring`
writes every record and the agent drops each one unparsed as it reads it.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import run as b  # noqa: E402
h = b.h


def program_names(pid):
    """prog_id -> name, from bpftool when present (fdinfo carries no name)."""
    import json
    import subprocess
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                             text=True, timeout=20).stdout
        return {p["id"]: p.get("name", "?") for p in json.loads(out)}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def context_switches(pid):
    """(voluntary, involuntary) context switches of all threads of `pid`."""
    vol = invol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except OSError:
            pass
    return vol, invol


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--close", action="store_true", help="Connection: close (P2 shape)")
    ap.add_argument("--tls", action="store_true", help="nginx over HTTPS (P4 shape)")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--agent", default=os.path.join(b.REPO, "build", "sonde"))
    ap.add_argument("--floor", action="store_true", help="profile build/sonde-probe-floor")
    ap.add_argument("--stage", default="full",
                    choices=["full", "socket", "header", "payload", "ring"],
                    help="benchmark_kernel_stage of the agent (default full)")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="sonde-prof-")
    restore = b.enable_bpf_stats()
    try:
        tls = None
        if args.tls:
            tls = h.self_signed_cert(workdir)
        srv = b.nginx(h.free_port(), workdir, tls=tls).start()
        pids = srv.all_pids()
        if args.floor:
            libs = ["/usr/lib/x86_64-linux-gnu/libssl.so.3"] if args.tls else []
            agent = b.ProbeFloor(os.path.join(b.REPO, "build", "sonde-probe-floor"), pids,
                                 libs, workdir)
        else:
            agent = b.SondeAgent(args.agent, srv.port, pids, workdir,
                                 extra_env={"SONDE_BENCHMARK_KERNEL_STAGE": args.stage})
        b.warm_up(srv.port, args.tls)
        time.sleep(0.5)
        watched = {"agent": agent.pid, **{f"nginx {p}": p for p in pids}}
        switches0 = {k: context_switches(p) for k, p in watched.items()}
        before = b.bpf_programs(agent.pid)
        cpu0 = b.cpu_seconds(agent.pid)
        scheme = "https" if args.tls else "http"
        headers = ("Connection: close",) if args.close else ()
        res = b.wrk(f"{scheme}://127.0.0.1:{srv.port}/status/200", 2, 32, args.duration,
                    headers=headers)
        if not args.floor and args.stage == "full":
            agent.drain(at_least=res["requests"])
        after = b.bpf_programs(agent.pid)
        switches = {k: tuple(x - y for x, y in zip(context_switches(p), switches0[k]))
                    for k, p in watched.items()}
        cpu = b.cpu_seconds(agent.pid) - cpu0
        names = program_names(agent.pid)
        n = res["requests"]
        print(f"{n} requests, {res['rps']:.0f} req/s, agent CPU {cpu / n * 1e6:.2f} us/req, "
              f"peak RSS {b.vm_hwm_mb(agent.pid):.1f} MB")
        for k, (vol, invol) in switches.items():
            print(f"  context switches per request, {k}: voluntary {vol / n:.3f}, "
                  f"involuntary {invol / n:.3f}")
        rows = []
        for pid_, (ptype, cnt, t) in after.items():
            _, cnt0, t0 = before.get(pid_, (ptype, 0, 0))
            if cnt - cnt0:
                rows.append((t - t0, names.get(pid_, str(pid_)), cnt - cnt0))
        total = 0
        for t, name, cnt in sorted(rows, reverse=True):
            total += t
            print(f"  {name:28s} runs/req {cnt / n:6.2f}  ns/run {t / cnt:8.0f}  "
                  f"ns/req {t / n:8.0f}")
        print(f"  {'total':28s} {'':27s} ns/req {total / n:8.0f}")
        agent.stop()
        srv.stop()
    finally:
        restore()
        b.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)  # nginx's tree, logs, certificate


if __name__ == "__main__":
    sys.exit(main())
