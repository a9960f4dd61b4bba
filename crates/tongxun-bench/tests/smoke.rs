//! Keeps the benchmark harness working: runs `tongxun-bench smoke --no-node` (every scenario,
//! tiny sizes, against tongxun, bare socketioxide and the WebSocket floor, and, when built with
//! the feature `redis` where `redis-server` is installed, two tongxun nodes through Redis),
//! which fails on any lost message or error.

use std::process::Command;

#[test]
fn smoke_mode_runs_every_scenario_without_loss() {
    let output = Command::new(env!("CARGO_BIN_EXE_tongxun-bench"))
        .args(["smoke", "--no-node"])
        .output()
        .expect("the bench binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "smoke run failed:\n{stderr}");
    assert!(
        stderr.contains("every scenario ran without loss or error"),
        "{stderr}"
    );
}
