#!/usr/bin/env bash
# Installs what the tests need and a fresh machine lacks, and nothing that is already there:
# Debian's chromium (browser tests), redis-server (multi-node tests) and haproxy (the nodes behind
# a load balancer), Debian's python3-prometheus-client (the metrics test parses scrapes with
# it) and python3-socketio (a Python client of the chat across nodes), and the pinned npm packages of the test suites and of the examples' browser
# bundles (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# Debian puts haproxy in /usr/sbin, which a user's PATH may lack.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1 || missing+=(python3-prometheus-client)
# python-socketio, a second stock client of the chat across nodes (its WebSocket transport is
# python3-websocket).
/usr/bin/python3 -c 'import socketio, websocket, requests' >/dev/null 2>&1 ||
  missing+=(python3-socketio python3-websocket python3-requests)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: ${missing[*]} (install them with your package manager)" >&2
    exit 1
  fi
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm's download cache stays under target/ too, not in the home directory.
cache="$PWD/target/npm-cache"
for dir in js-client-tests examples/chat examples/live-dashboard crates/tongxun-bench/node; do
  [ -d "$dir/node_modules" ] || npm ci --prefix "$dir" --no-audit --no-fund --cache "$cache"
done
