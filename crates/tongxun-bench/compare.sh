#!/usr/bin/env bash
# Measures two builds of tongxun side by side in one run: the same load generator (NEW's) drives
# a fresh `serve --peer tongxun` of each build in turn, alternating which goes first, and prints
# every run and the median of each column with NEW / BASE.
#
#   crates/tongxun-bench/compare.sh BASE_BENCH NEW_BENCH REPEATS SCENARIO [run options...]
#
# BASE_BENCH and NEW_BENCH are `tongxun-bench` release binaries of the two commits (build the
# base one in a worktree: `git worktree add ../base <commit>`, then
# `cargo build -p tongxun-bench --release` there). SCENARIO is one of `tongxun-bench run --help`;
# the run options (such as `--ack-secs 3`) go to every run.
set -euo pipefail

base=${1:?usage: compare.sh BASE_BENCH NEW_BENCH REPEATS SCENARIO [run options...]}
new=${2:?new bench binary}
repeats=${3:?repeats}
scenario=${4:?scenario}
shift 4
out=$(mktemp -d)

# Runs one measurement against a fresh server of build $1; prints the peer's summary row.
measure() {
  local bin=$1 log="$out/serve.log"
  shift
  : >"$log"
  # The server exits when its standard input closes: when the FIFO's writer (this shell's
  # sleep) is killed below.
  local fifo="$out/stdin"
  mkfifo "$fifo"
  "$bin" serve --peer tongxun --port 0 --exit-with-stdin <"$fifo" >"$log" 2>&1 &
  local server=$!
  sleep infinity >"$fifo" &
  local holder=$!
  local addr=""
  for _ in $(seq 300); do
    addr=$(grep -o "127.0.0.1:[0-9]*" "$log" | head -1) && [ -n "$addr" ] && break
    sleep 0.1
  done
  local ok=true
  if [ -z "$addr" ]; then
    echo "server did not start: $(cat "$log")" >&2
    ok=false
  elif ! "$new" run --scenario "$scenario" --peer tongxun --addr "$addr" --pid "$server" \
    --repeats 1 "$@" >"$out/run.txt" 2>&1; then
    cat "$out/run.txt" >&2
    ok=false
  fi
  kill "$holder" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  # Removed only now: the background redirections above may open it late.
  rm -f "$fifo"
  $ok || return 1
  # The first table row naming the peer is the summary.
  grep -m1 '^| tongxun |' "$out/run.txt"
}

header=""
for r in $(seq "$repeats"); do
  if [ $((r % 2)) -eq 1 ]; then order="base new"; else order="new base"; fi
  for side in $order; do
    if [ "$side" = base ]; then bin=$base; else bin=$new; fi
    row=$(measure "$bin" "$@")
    echo "$side run $r: $row"
    echo "$row" >>"$out/$side.rows"
  done
  [ -n "$header" ] || header=$(grep -m1 '^| peer |' "$out/run.txt")
done

echo
echo "$scenario, $repeats runs each, medians:"
echo "$header"
# The median of each column of a file of summary rows, space-separated.
median_row() {
  local cols c
  cols=$(awk -F'|' 'NR == 1 { print NF - 3 }' "$1")
  for c in $(seq 3 $((cols + 2))); do
    awk -F'|' -v c="$c" '{ v = $c; gsub(/[ ,]/, "", v); print v }' "$1" | sort -g |
      awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
  done | tr '\n' ' '
}
b=$(median_row "$out/base.rows")
n=$(median_row "$out/new.rows")
echo "base: $b"
echo "new:  $n"
paste <(tr ' ' '\n' <<<"$b") <(tr ' ' '\n' <<<"$n") |
  awk 'NF == 2 && $1 != 0 { printf "%.3f ", $2 / $1 } END { print "(new / base, per column)" }'
# The median, per column, of each run's new / base ratio: runs r of both builds are measured
# back to back, so their ratio is steadier on a shared machine than the ratio of the medians.
paste -d'|' "$out/base.rows" "$out/new.rows" |
  awk -F'|' '{
    half = NF / 2
    for (c = 3; c < half; c++) {
      b = $c; v = $(c + half); gsub(/[ ,]/, "", b); gsub(/[ ,]/, "", v)
      if (b + 0 != 0 && v ~ /^[0-9.]+$/) print c, v / b
    }
  }' | sort -k1,1n -k2,2g |
  awk '
    function flush() { if (n) printf "%.3f ", (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2 }
    $1 != col { flush(); col = $1; n = 0 }
    { r[++n] = $2 }
    END { flush(); print "(median of the per-run new / base ratios, per column)" }'
rm -rf "$out"
