#!/usr/bin/env bash
# Installs the Node dependencies of the P5 benchmark's OpenTelemetry SDK server
# (bench/otel_sdk_server.js) from bench/node/package-lock.json. Idempotent and
# quiet: does nothing while node_modules is newer than the lock file.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/node"
if [ -d "$dir/node_modules" ] && [ ! "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
  exit 0
fi
# --ignore-scripts: none of these packages needs an install script (protobufjs's
# only prints a notice), and skipping them keeps the install reproducible.
(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
# npm ci may leave node_modules' own mtime older than the lock: mark it fresh.
touch "$dir/node_modules"
