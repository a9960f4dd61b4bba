#!/usr/bin/env bash
# Profiles one peer under a fixed load, as done for the notes in PROFILE.md.
#
#   crates/tongxun-bench/profile.sh heap      <peer> [idle connections]   # heaptrack: who holds the bytes
#   crates/tongxun-bench/profile.sh callgrind <peer> <bench run args...>  # exact user-space instructions
#
# heap: the peer runs under heaptrack while the idle-memory scenario holds N connections (2,000 by
# default); prints the heap peak's biggest allocation sites, per connection, then what tongxun's
# own code allocated, by its line.
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
  # Then what tongxun's own code allocated, by its line: each backtrace of the peak (with paths,
  # unmerged) goes to the first frame above the allocator, the collections and the crates
  # tongxun calls into.
  heaptrack_print -f "$out/heap.zst" --merge-backtraces 0 --print-peaks 1 --peak-limit 5000 \
    --print-allocators 0 --print-temporary 0 --print-leaks 0 >"$out/peaks.txt" 2>/dev/null
  python3 - "$out/peaks.txt" "$conns" <<'EOF'
import re, sys
from collections import defaultdict
units = {'': 1, 'K': 1e3, 'M': 1e6, 'G': 1e9}
n = int(sys.argv[2])
blocks, cur = [], None
for line in open(sys.argv[1]):
    line = line.rstrip('\n')
    m = re.match(r'^([\d.]+)([KMG]?) peak memory consumed over (\d+) calls from', line)
    if m:
        cur = [float(m.group(1)) * units[m.group(2)], int(m.group(3)), []]
        blocks.append(cur)
    elif cur is not None and re.match(r'^  \S', line):
        cur[2].append([line.strip(), ''])
    elif cur is not None and cur[2] and line.startswith('    at '):
        cur[2][-1][1] = line[7:]
# Frames of the allocator, collections and the crates tongxun calls into; the first frame
# past them names who asked for the bytes.
passive = re.compile(r'/rustc/|^library/|hashbrown|smallvec|/socketioxide-|/http-|/bytes-|^src/(bytes|sid)\.rs')
sites = defaultdict(lambda: [0.0, 0])
for peak, calls, frames in blocks:
    for name, path in frames:
        if passive.search(path):
            continue
        m = re.search(r'crates/(tongxun/src/.*)', path)
        if m:
            sites[m.group(1)][0] += peak
            sites[m.group(1)][1] += calls
        break
# Allocations per connection made, warm-up ones included: every Engine.IO connection makes two
# in `ClientShare::attach` (io/limits.rs), the share and its place in the request's extensions.
made = next((c / 2 for s, (_, c) in sites.items() if 'io/limits.rs' in s), n)
print("tongxun's own at the peak, by the line of tongxun that allocates")
print("(bytes per connection, allocations per connection made):")
for site, (peak, calls) in sorted(sites.items(), key=lambda s: -s[1][0]):
    print(f"{peak / n:7.1f} B {calls / made:5.2f}  {site}")
print(f"{sum(s[0] for s in sites.values()) / n:7.1f} B in all")
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
