#!/usr/bin/env python3
"""Instructions per item of one microbenchmark, counted by callgrind: a
figure that, unlike nanoseconds on this VM, does not move from one run to
the next, so a change to the parsers can be judged by a single run.

Usage: bench/callgrind.py [--filter REGEX] [--item-function NAME]
                          [--calls-per-item N] [--top N]
       bench/callgrind.py --agent [--rate R] [--seconds S] [--top N]   (root)

Builds `sonde_bench` in build-callgrind/ with DWARF 4 debug information
(valgrind 3.19 cannot read the DWARF 5 that clang 14 writes by default; the
code generated is the same), runs the benchmarks matching --filter under
callgrind, and prints the instructions per item of the benchmark loop and of
the agent's functions under it. An item is --calls-per-item calls of
--item-function: by default a request/response pair of
BM_ConnectionTracker_DecodeAndOnDataPair, two calls of
ConnectionTracker::on_data, the path every data record of a tracked process
takes in the agent.

--agent profiles the agent itself instead: nginx (tests/e2e/servers) with the
agent selecting its port under callgrind, and build/sonde-paced-load sending
--rate requests a second for --seconds (the load generator is excluded, as in
bench/run.py). Items are the requests the agent counted
(http_server_request_duration_seconds_count); the figures are the agent's
instructions per request on the path from the ring to the metrics. Callgrind
runs the agent about fifty times slower, which is why the rate is low.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, "build-callgrind")

# "  1,234 (12.34%)  file:function [object]"
LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")


def run(argv, **kw):
    return subprocess.run(argv, check=True, text=True, **kw)


def build(*targets):
    run(["cmake", "-S", REPO, "-B", BUILD, "-DCMAKE_CXX_FLAGS=-gdwarf-4"],
        stdout=subprocess.DEVNULL)
    for target in targets:
        run(["cmake", "--build", BUILD, "--target", target, "-j", str(os.cpu_count() or 2)],
            stdout=subprocess.DEVNULL)
    return [os.path.join(BUILD, t) for t in targets]


def annotate(out_file, *options):
    # Run elsewhere than the repository: from inside it, callgrind_annotate
    # lists each function a second time under a path relative to it.
    return run(["callgrind_annotate", "--auto=no", *options, out_file], capture_output=True,
               cwd=os.path.dirname(out_file)).stdout


def calls_of(out_file, function):
    """Calls of every function whose name contains `function`, summed over
    their callers, from callgrind's own output file. Names are written once,
    as "(id) name", and later as "(id)" alone; each "calls=N" line follows
    the "cfn=" line of the function called."""
    names, total, callee = {}, 0, None
    with open(out_file) as f:
        for line in f:
            if line.startswith(("fn=", "cfn=")):
                m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("cfn=") and m:
                    callee = names.get(m.group(1), "")
            elif line.startswith("calls=") and callee is not None:
                if function in callee:
                    total += int(line.split("=", 1)[1].split()[0])
                callee = None
    return total


def inclusive(listing):
    """[(instructions, function)] of a callgrind_annotate --inclusive=yes listing."""
    out = []
    for line in listing.splitlines():
        m = LINE.match(line)
        if m:
            out.append((int(m.group(1).replace(",", "")), m.group(2)))
    return out


def short(function):
    """file:function [object] -> the function's qualified name without arguments."""
    name = function.split(":", 1)[1] if re.match(r"^[^:]*\.(?:cpp|h|cc|S|c):", function) else function
    name = re.sub(r"\s*\[[^\]]*\]\s*$", "", name).replace("(anonymous namespace)::", "")
    depth, out = 0, []
    for ch in name:  # drop every parenthesised argument list
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--filter", default="DecodeAndOnDataPair$")
    ap.add_argument("--item-function", default="ConnectionTracker::on_data(")
    ap.add_argument("--calls-per-item", type=int, default=2)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--agent", action="store_true",
                    help="profile the agent on a real nginx instead of a microbenchmark")
    ap.add_argument("--rate", type=int, default=1500, help="--agent: requests a second")
    ap.add_argument("--seconds", type=int, default=20, help="--agent: seconds of load")
    args = ap.parse_args()

    if args.agent:
        return profile_agent(args)
    (binary,) = build("sonde_bench")
    with tempfile.TemporaryDirectory(prefix="sonde-callgrind-") as tmp:
        out_file = os.path.join(tmp, "callgrind.out")
        run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", binary,
             f"--benchmark_filter={args.filter}", "--benchmark_min_time=0.2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        listing = annotate(out_file, "--inclusive=yes", "--threshold=100")
        items = calls_of(out_file, args.item_function) / args.calls_per_item
    if items < 1:
        sys.exit(f"callgrind: no call of {args.item_function!r} under --filter {args.filter}")
    rows = inclusive(listing)
    loop = [(n, f) for n, f in rows if re.search(r"BM_\w+\(benchmark::State", f)]
    print(f"{args.filter}: {items:,.0f} items, each {args.calls_per_item} call(s) of "
          f"{args.item_function.rstrip('(')}")
    if loop:
        print(f"{loop[0][0] / items:10,.0f}  instructions per item, benchmark loop")
    print_functions(rows, items, args.top)


def print_functions(rows, items, top, keep=None):
    shown = 0
    for n, f in rows:
        if not f.startswith(os.path.join(REPO, "src") + "/"):
            continue  # the agent's own functions, not the lines of headers inlined into them
        name = short(f)
        if keep and not keep.search(name):
            continue
        print(f"{n / items:10,.0f}  {name}")
        shown += 1
        if shown >= top:
            break


# The functions a data record passes through, from the ring to the metrics:
# start-up and the other threads are left out of the listing.
PER_REQUEST = re.compile(r"ring_callback|decode_record|sonde::conntrack::|sonde::protocols::|"
                         r"sonde::pipeline::|on_span")


def profile_agent(args):
    """nginx, the agent and the paced load as bench/run.py starts them, the
    agent under callgrind."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import run as b  # noqa: E402 (bench/run.py: servers, agent, load, cleanup)
    agent_binary, load = build("sonde", "sonde-paced-load")
    workdir = tempfile.mkdtemp(prefix="sonde-callgrind-")
    out_file = os.path.join(workdir, "callgrind.out")
    try:
        srv = b.nginx(b.h.free_port(), workdir).start()
        # Callgrind runs the agent's start-up (BTF, loading) about fifty times slower.
        agent = b.SondeAgent(agent_binary, srv.port, srv.all_pids(), workdir,
                             launcher=("valgrind", "--tool=callgrind",
                                       f"--callgrind-out-file={out_file}"),
                             start_timeout=300)
        res = b.paced_load(load, srv.port, args.rate, args.seconds, connections=8)
        items = agent.count(agent.drain(at_least=res["requests"], timeout=120))
        # A clean exit writes the profile: give callgrind time to finish it.
        b.terminate(agent.p.proc, timeout=120)
        agent.p.forget()
        listing = annotate(out_file, "--inclusive=yes", "--threshold=100")
    finally:
        b.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    if items < 1:
        sys.exit("callgrind: the agent counted no request")
    print(f"agent under callgrind: {items:,.0f} requests counted "
          f"(nginx, {args.rate} req/s for {args.seconds} s, keep-alive)")
    print_functions(inclusive(listing), items, args.top, keep=PER_REQUEST)


if __name__ == "__main__":
    main()
