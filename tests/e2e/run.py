#!/usr/bin/env python3
"""Runs Sonde's privileged end-to-end tests (root; real eBPF, real servers).

Closes with the line 'N passed, N failed' and exits non-zero on any failure.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", help="path to the sonde binary")
    parser.add_argument("-k", dest="pattern", action="append", help="only tests matching")
    args = parser.parse_args()
    if args.agent:
        os.environ["SONDE_AGENT"] = os.path.abspath(args.agent)
    if os.geteuid() != 0:
        print("end-to-end tests need root (eBPF); 0 passed, 1 failed")
        return 1
    # Every temporary file and directory the tests make (agent outputs, server work
    # directories, configurations, certificates) goes under one directory for the run:
    # removed when every test passed, kept for a look otherwise. Readable by all, as
    # /tmp is: some tests run the agent or a server as another user.
    run_dir = tempfile.mkdtemp(prefix="sonde-e2e-run-")
    os.chmod(run_dir, 0o755)
    tempfile.tempdir = run_dir
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = [f"*{p}*" for p in args.pattern]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    ok = failed == 0 and result.testsRun > 0
    if ok:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        print(f"the run's temporary files are kept in {run_dir}")
    print(f"e2e finished in {time.monotonic() - started:.0f}s")
    print(f"{passed} passed, {failed} failed, {len(result.skipped)} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
