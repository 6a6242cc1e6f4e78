"""Issue 3 acceptance: every seed config passes `sonde config check`, and
malformed ones get a one-line error naming the problem, never a crash."""

import glob
import os
import subprocess
import unittest

import harness as h

SEED = os.path.join(h.REPO, "tests", "config", "seed")
MALFORMED = os.path.join(h.REPO, "tests", "config", "malformed")


def check(path, *extra, env=None):
    return subprocess.run([h.AGENT, "config", "check", path, *extra], capture_output=True,
                          text=True, timeout=30, env=env)


def env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


class ConfigCheckTest(unittest.TestCase):
    def test_seed_yaml_configs_pass(self):
        files = sorted(glob.glob(os.path.join(SEED, "*.yml")))
        self.assertGreaterEqual(len(files), 6)
        for path in files:
            out = check(path)
            self.assertEqual(out.returncode, 0, f"{path}: {out.stdout}{out.stderr}")

    def test_seed_env_files_pass(self):
        for path in sorted(glob.glob(os.path.join(SEED, "*.env"))):
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SONDE_", "BEYLA_", "OTEL_"))}
            env.update(env_file(path))
            if "BEYLA_CONFIG_PATH" in env:  # the DaemonSet's ConfigMap mount, here a seed file
                env["BEYLA_CONFIG_PATH"] = os.path.join(SEED, "02-otlp-export.yml")
            out = subprocess.run([h.AGENT, "config", "check"], capture_output=True, text=True,
                                 timeout=30, env=env)
            self.assertEqual(out.returncode, 0, f"{path}: {out.stdout}{out.stderr}")

    def test_malformed_configs_get_one_line_errors(self):
        files = sorted(glob.glob(os.path.join(MALFORMED, "*")))
        self.assertGreaterEqual(len(files), 20)
        for path in files:
            out = check(path, "--strict")
            self.assertNotEqual(out.returncode, 0, path)
            self.assertLess(out.returncode, 128, f"{path} crashed: {out.returncode}")
            errors = [l for l in out.stderr.splitlines() if "error" in l.lower()]
            self.assertTrue(errors, f"{path}: no error line in {out.stderr!r}")
            self.assertIn(os.path.basename(path), errors[0], f"{path}: {errors[0]}")


if __name__ == "__main__":
    unittest.main()
