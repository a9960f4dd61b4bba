//! `--pin`: every peer server on one CPU, the load generator on another, so that the two never
//! take each other's time slices and a server's figures do not depend on where the scheduler
//! happened to put the load.
//!
//! The bench pins itself (the thread that builds its runtime, so every thread it starts
//! inherits the CPU) before its tokio runtime exists: tokio sizes its worker pool from
//! `available_parallelism`, which follows the affinity, so a pinned bench runs one worker.
//! Each peer process starts under `taskset -c <cpu>` (util-linux): the Node peer cannot pin
//! itself, and one way for every peer is simpler than two. A peer's own tokio runtime then
//! also runs one worker.

use std::ffi::OsStr;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

/// Where the processes run once pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pinning {
    /// The CPU of every peer server process.
    pub(crate) server_cpu: usize,
    /// The CPU of the load generator (this process).
    pub(crate) bench_cpu: usize,
}

/// The pinning in force, set once by [`pin_bench`].
static PINNING: OnceLock<Pinning> = OnceLock::new();
/// The CPUs this process could use before it pinned itself.
static MACHINE_CPUS: OnceLock<usize> = OnceLock::new();

/// Pins this process's current thread (and so every thread started after) to the second CPU
/// it may use and records the first for the peers.
///
/// # Errors
/// With fewer than two CPUs, when `taskset` is missing, or when the kernel refuses.
pub(crate) fn pin_bench() -> Result<Pinning> {
    record_machine_cpus();
    let cores = core_affinity::get_core_ids().context("reading this process's CPU affinity")?;
    let [server, bench, ..] = cores[..] else {
        bail!(
            "--pin needs at least 2 CPUs (one for the servers, one for the load generator); \
             this process may use {}",
            cores.len()
        );
    };
    let taskset = Command::new("taskset").arg("--version").output();
    if !taskset.is_ok_and(|out| out.status.success()) {
        bail!("--pin starts the peers with `taskset` (util-linux), which is not on the PATH");
    }
    if !core_affinity::set_for_current(bench) {
        bail!("could not pin the load generator to CPU {}", bench.id);
    }
    let pinning = Pinning {
        server_cpu: server.id,
        bench_cpu: bench.id,
    };
    PINNING.set(pinning).ok();
    Ok(pinning)
}

/// The pinning in force, if `--pin` was given.
pub(crate) fn current() -> Option<Pinning> {
    PINNING.get().copied()
}

/// Remembers how many CPUs this process may use, before any pinning.
pub(crate) fn record_machine_cpus() {
    MACHINE_CPUS.get_or_init(|| std::thread::available_parallelism().map_or(0, |n| n.get()));
}

/// How many CPUs the machine offers this process (before any pinning).
pub(crate) fn machine_cpus() -> usize {
    *MACHINE_CPUS.get_or_init(|| std::thread::available_parallelism().map_or(0, |n| n.get()))
}

/// A command starting `program` as a peer server: under `taskset` on the servers' CPU when
/// pinned, directly otherwise. The child keeps the process id `taskset` had (it `exec`s).
pub(crate) fn server_command(program: impl AsRef<OsStr>) -> Command {
    match current() {
        Some(pinning) => {
            let mut command = Command::new("taskset");
            command
                .args(["-c", &pinning.server_cpu.to_string()])
                .arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The report's line on pinning.
pub(crate) fn describe() -> String {
    match current() {
        Some(p) => format!(
            "pinned (`--pin`): every server process on CPU {}, the load generator (all its \
             threads, one tokio worker) on CPU {}; each server's tokio runtime has one worker",
            p.server_cpu, p.bench_cpu
        ),
        None => format!(
            "not pinned: servers and load generator share the machine's {} CPUs as the \
             scheduler places them",
            machine_cpus()
        ),
    }
}
