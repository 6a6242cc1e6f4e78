#!/usr/bin/env python3
"""Instructions per item of one microbenchmark, counted by callgrind: a
figure that, unlike nanoseconds on this VM, does not move from one run to
the next, so a change to the parsers can be judged by a single run.

Usage: bench/callgrind.py [--filter REGEX] [--item-function NAME]
                          [--calls-per-item N] [--top N]

Builds `sonde_bench` in build-callgrind/ with DWARF 4 debug information
(valgrind 3.19 cannot read the DWARF 5 that clang 14 writes by default; the
code generated is the same), runs the benchmarks matching --filter under
callgrind, and prints the instructions per item of the benchmark loop and of
the agent's functions under it. An item is --calls-per-item calls of
--item-function: by default a request/response pair of
BM_ConnectionTracker_DecodeAndOnDataPair, two calls of
ConnectionTracker::on_data, the path every data record of a tracked process
takes in the agent.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, "build-callgrind")

# "  1,234 (12.34%)  file:function [object]"
LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")


def run(argv, **kw):
    return subprocess.run(argv, check=True, text=True, **kw)


def build():
    run(["cmake", "-S", REPO, "-B", BUILD, "-DCMAKE_CXX_FLAGS=-gdwarf-4"],
        stdout=subprocess.DEVNULL)
    run(["cmake", "--build", BUILD, "--target", "sonde_bench", "-j", str(os.cpu_count() or 2)],
        stdout=subprocess.DEVNULL)
    return os.path.join(BUILD, "sonde_bench")


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
    args = ap.parse_args()

    binary = build()
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
    shown = 0
    for n, f in rows:
        if not f.startswith(os.path.join(REPO, "src") + "/"):
            continue  # the agent's own functions, not the lines of headers inlined into them
        print(f"{n / items:10,.0f}  {short(f)}")
        shown += 1
        if shown >= args.top:
            break


if __name__ == "__main__":
    main()
