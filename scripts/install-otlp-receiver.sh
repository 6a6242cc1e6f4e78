#!/usr/bin/env bash
# Installs the Node dependencies of the end-to-end tests' OTLP receiver
# (tests/e2e/otlp_receiver) from its package-lock.json. Idempotent and quiet:
# does nothing while node_modules is newer than the lock file.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/e2e/otlp_receiver"
if [ -d "$dir/node_modules" ] && [ ! "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
  exit 0
fi
# --ignore-scripts: no dependency needs an install script (protobufjs's only
# prints a version notice), and skipping them keeps the install reproducible.
# stdout only carries the "added N packages" summary; errors go to stderr.
(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
# npm ci may leave node_modules' own mtime older than the lock: mark it fresh.
touch "$dir/node_modules"
