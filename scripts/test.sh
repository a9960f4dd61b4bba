#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, Rust tests (with doctests),
# docs, the stock-client JavaScript and browser tests, and the Autobahn WebSocket conformance
# run (skipped, saying so, where Python 2.7 is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A CI build is thrown away afterwards: incremental caches would only fill its disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
step "disk space before the build"
df -h . | tail -n 1

step "dependencies"
./scripts/install-deps.sh

step "cargo fmt"
cargo fmt --all --check
step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
step "cargo test"
cargo test --workspace --all-features --locked
step "cargo doc (all features, then tongxun's default features)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked
RUSTDOCFLAGS="-D warnings" cargo doc -p tongxun --no-deps --locked
step "tongxun's unit tests with its default features"
cargo test -p tongxun --lib --locked
step "benchmark harness smoke run (tiny sizes; Node peer included when installed)"
cargo run -q -p tongxun-bench --locked -- smoke
step "JavaScript client tests"
cargo build --workspace --locked
(cd js-client-tests && npm test)
step "Autobahn WebSocket conformance"
./scripts/autobahn.sh
