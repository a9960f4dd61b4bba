#!/usr/bin/env bash
# Starts the namespace chat (examples/chat) on http://localhost:3000; extra arguments go to it
# (e.g. --port 8080). On first run, installs the pinned socket.io-client browser bundle its page
# loads.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f examples/chat/node_modules/socket.io-client/dist/socket.io.min.js ]; then
  echo "installing the socket.io-client browser bundle pinned in examples/chat/package-lock.json"
  npm ci --prefix examples/chat --no-audit --no-fund --cache "$PWD/target/npm-cache"
fi
exec cargo run -p example-chat -- "$@"
