#!/usr/bin/env bash
# Profiles one peer under a fixed load, as done for the notes in PROFILE.md.
#
#   crates/tongxun-bench/profile.sh heap      <peer> [idle connections]   # heaptrack: who holds the bytes
#   crates/tongxun-bench/profile.sh callgrind <peer> <bench run args...>  # exact user-space instructions
#
# heap: the peer runs under heaptrack while the idle-memory scenario holds N connections (2,000 by
# default); prints the heap peak's biggest allocation sites, per connection.
# callgrind: the peer runs under valgrind --tool=callgrind, instrumented only while the bench
# runs (for example `--scenario ack-echo --ack-clients 10 --ack-secs 4`); prints the total
# instruction count, to divide by the operations the bench reports.
# Needs heaptrack or valgrind. Builds with line tables into target-profile/ (next to the normal
# target directory) so that other builds are not disturbed.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=${1:?usage: profile.sh heap|callgrind <peer> ...}
peer=${2:?which peer: tongxun, bare, ws-hub, ws-floor, sse-hub or sse-floor}
shift 2

target=${PROFILE_TARGET_DIR:-${CARGO_TARGET_DIR:-target}-profile}
CARGO_TARGET_DIR=$target CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build -q -p tongxun-bench --release
bench=$target/release/tongxun-bench
out=$(mktemp -d)
echo "output in $out"

wait_listening() {
  for _ in $(seq 300); do
    grep -q "listening on" "$out/serve.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -o "127.0.0.1:[0-9]*" "$out/serve.log" | head -1
}

case $mode in
heap)
  conns=${1:-2000}
  heaptrack -o "$out/heap" "$bench" serve --peer "$peer" --port 0 >"$out/serve.log" 2>&1 &
  addr=$(wait_listening)
  # heaptrack runs the peer as its child: find that child's pid, ours to stop.
  pid=$(pgrep -n -f "$bench serve --peer $peer")
  "$bench" run --peer "$peer" --addr "$addr" --pid "$pid" --repeats 1 \
    --scenario idle-memory --idle-conns "$conns" 2>&1 | grep -E "KiB per|FAILED" | head -1
  kill -TERM "$pid"
  wait
  heaptrack_print -f "$out/heap.zst" --print-peaks 0 --print-allocators 0 --print-temporary 0 \
    --print-leaks 0 --flamegraph-cost-type peak -F "$out/stacks.txt" >/dev/null
  # Group the peak's stacks by the frames just above the allocator.
  python3 - "$out/stacks.txt" "$conns" <<'EOF'
import re, sys
skip = re.compile(r'^(_RNv|alloc|allocate|box_new|new<> \(boxed|aligned_malloc|realloc|malloc|grow|finish_grow|reserve|do_reserve|with_capacity|try_with|with_current|map<> \(option|\{closure#0\}<> \((spawn|current)|__rust|__rdl)')
n = int(sys.argv[2])
rows = []
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip('\n').rpartition(' ')
    if cost.isdigit():
        rows.append((int(cost), [f for f in stack.split(';') if not skip.match(f.strip())]))
rows.sort(key=lambda r: -r[0])
print(f"heap at peak: {sum(r[0] for r in rows) / n:.0f} bytes per connection")
for cost, frames in rows[:25]:
    print(f"{cost / n:7.0f} B  " + " <- ".join(f[:48] for f in frames[::-1][:6]))
EOF
  ;;
callgrind)
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.%p" \
    "$bench" serve --peer "$peer" --port 0 >"$out/serve.log" 2>&1 &
  vpid=$!
  addr=$(wait_listening)
  callgrind_control -i on "$vpid" >/dev/null
  "$bench" run --peer "$peer" --addr "$addr" --pid "$vpid" --repeats 1 "$@" 2>&1 |
    grep -E "^ +[0-9a-z]" | grep -v "^| "
  callgrind_control -i off "$vpid" >/dev/null
  callgrind_control -d "$vpid" >/dev/null
  kill -TERM "$vpid"
  wait "$vpid" || true
  dump=$(ls "$out"/callgrind.*.1)
  callgrind_annotate "$dump" | grep -m1 "PROGRAM TOTALS"
  echo "annotate: callgrind_annotate --inclusive=yes $dump"
  ;;
*)
  echo "unknown mode $mode" >&2
  exit 2
  ;;
esac
