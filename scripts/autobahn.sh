#!/usr/bin/env bash
# RFC 6455 conformance of the WebSocket hub, with the Autobahn|Testsuite fuzzing client.
#
# Builds the fixture server, starts it with its echo hub (TONGXUN_FIXTURE_WS=echo), runs
# `wstest -m fuzzingclient` against ws://127.0.0.1:PORT/ws, writes the report to
# $CARGO_TARGET_DIR/autobahn/report (default target/autobahn/report, open index.html), prints
# the summary, and fails when any case is FAILED or UNCLEAN. The compression cases 12.* and 13.*
# may be UNIMPLEMENTED: the hub does not negotiate permessage-deflate.
#
# autobahntestsuite (from PyPI) runs on Python 2.7 only. The script looks for it as
# $AUTOBAHN_PYTHON, then pyenv's 2.7.18, then python2.7 on PATH, and installs the suite in a
# virtualenv under target/ on first use (virtualenv itself too, and no pip cache: nothing goes
# into $HOME). Without Python 2.7 it says so and exits 0, or 1 when AUTOBAHN_REQUIRED=1 (for CI
# machines that are meant to have it).
#
# Usage: scripts/autobahn.sh [case pattern ...]     e.g. scripts/autobahn.sh '1.*' '7.*'
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target/autobahn"
out="$(cd "$target/autobahn" && pwd)"
suite_version="25.10.1"

skip() {
  echo "autobahn: SKIPPED: $*"
  if [ "${AUTOBAHN_REQUIRED:-0}" = 1 ]; then exit 1; fi
  exit 0
}

# --- Python 2.7 and the suite ------------------------------------------------------------
python=()
if [ -n "${AUTOBAHN_PYTHON:-}" ]; then
  python=("$AUTOBAHN_PYTHON")
elif command -v pyenv >/dev/null 2>&1 && [[ "$(pyenv versions --bare 2>/dev/null)" == *2.7.18* ]]; then
  python=(env PYENV_VERSION=2.7.18 "$(pyenv root)/versions/2.7.18/bin/python2.7")
elif command -v python2.7 >/dev/null 2>&1 && python2.7 -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
  python=(python2.7)
fi
[ ${#python[@]} -gt 0 ] || skip "Python 2.7 not found (autobahntestsuite needs it); set AUTOBAHN_PYTHON to a python2.7"

venv="$out/venv"
if [ ! -x "$venv/bin/wstest" ]; then
  echo "autobahn: installing autobahntestsuite $suite_version into $venv"
  # virtualenv for Python 2.7 goes under target/ too, never into the user's home directory:
  # the last release that still creates Python 2.7 environments is 20.21.
  tools="$out/py2-tools"
  if ! PYTHONNOUSERSITE=1 PYTHONPATH="$tools" "${python[@]}" -m virtualenv --version >/dev/null 2>&1; then
    "${python[@]}" -m pip install --quiet --no-cache-dir --disable-pip-version-check --target "$tools" 'virtualenv<20.22' ||
      skip "virtualenv for Python 2.7 could not be installed"
  fi
  PYTHONNOUSERSITE=1 PYTHONPATH="$tools" "${python[@]}" -m virtualenv --quiet "$venv" ||
    skip "could not create a Python 2.7 virtualenv"
  "$venv/bin/pip" install --quiet --no-cache-dir "autobahntestsuite==$suite_version" ||
    skip "autobahntestsuite $suite_version could not be installed"
fi

# --- The echo server ---------------------------------------------------------------------
echo "autobahn: building the fixture server"
cargo build --quiet -p tongxun-fixture
fixture="$target/debug/tongxun-fixture"

exec 3< <(TONGXUN_FIXTURE_WS=echo RUST_LOG="${RUST_LOG:-tongxun=error}" exec "$fixture" 2>"$out/fixture.log")
fixture_pid=$!
trap 'kill -TERM "$fixture_pid" 2>/dev/null || true' EXIT
# The fixture prints its address once it accepts connections.
read -r line <&3 || { cat "$out/fixture.log"; echo "autobahn: the fixture did not start"; exit 1; }
address="${line#listening on http://}"
[ "$address" != "$line" ] || { echo "autobahn: unexpected fixture output: $line"; exit 1; }
# Keep draining its stdout so that it never blocks on a full pipe.
cat <&3 >/dev/null &

# --- The run -----------------------------------------------------------------------------
cases='"*"'
if [ $# -gt 0 ]; then
  cases="$(printf '"%s",' "$@")"
  cases="${cases%,}"
fi
cat >"$out/fuzzingclient.json" <<EOF
{
  "outdir": "$out/report",
  "servers": [{ "agent": "tongxun", "url": "ws://$address/ws" }],
  "cases": [$cases],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
rm -rf "$out/report"
echo "autobahn: running the fuzzing client against ws://$address/ws (log: $out/wstest.log)"
started=$SECONDS
(cd "$out" && "$venv/bin/wstest" -m fuzzingclient -s fuzzingclient.json >"$out/wstest.log" 2>&1) || {
  tail -20 "$out/wstest.log"
  echo "autobahn: wstest failed"
  exit 1
}
echo "autobahn: finished in $((SECONDS - started)) s; report: $out/report/index.html"

# --- The summary -------------------------------------------------------------------------
"$venv/bin/python" - "$out/report/index.json" <<'EOF'
import json, sys
from collections import Counter

results = json.load(open(sys.argv[1]))["tongxun"]
compression = lambda case: case.split(".")[0] in ("12", "13")
behavior, closing, bad = Counter(), Counter(), []
for case in sorted(results, key=lambda c: [int(p) for p in c.split(".")]):
    r = results[case]
    behavior[r["behavior"]] += 1
    closing[r["behaviorClose"]] += 1
    outcomes = (r["behavior"], r["behaviorClose"])
    if compression(case) and r["behavior"] == "UNIMPLEMENTED":
        continue
    if "FAILED" in outcomes or "UNCLEAN" in outcomes:
        bad.append("%s: %s / close %s (close code %s)" % (case, r["behavior"], r["behaviorClose"], r.get("remoteCloseCode")))

print("autobahn: %d cases" % len(results))
print("autobahn: behavior       " + ", ".join("%s %d" % kv for kv in sorted(behavior.items())))
print("autobahn: close behavior " + ", ".join("%s %d" % kv for kv in sorted(closing.items())))
unimplemented = sorted(c for c in results if results[c]["behavior"] == "UNIMPLEMENTED")
if unimplemented and all(compression(c) for c in unimplemented):
    print("autobahn: all %d UNIMPLEMENTED cases are compression (12.*, 13.*)" % len(unimplemented))
if bad:
    print("autobahn: %d FAILED or UNCLEAN:" % len(bad))
    for line in bad:
        print("  " + line)
    sys.exit(1)
print("autobahn: 0 FAILED, 0 UNCLEAN")
EOF
