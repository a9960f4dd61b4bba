#!/usr/bin/env bash
# Starts the live dashboard on http://localhost:3000, installing its pinned socket.io-client
# browser bundle first if needed. Extra arguments go to the example (e.g. --port 3001).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d examples/live-dashboard/node_modules ] || npm ci --prefix examples/live-dashboard --no-audit --no-fund --cache "$PWD/target/npm-cache"
exec cargo run -p example-live-dashboard -- "$@"
