//! The machine and the software a run had: how much of the CPU other processes took (the
//! caveat at the top), the machine, and the versions measured.

use std::fmt::Write as _;
use std::process::Command;

use crate::peers::node;
use crate::suite::Results;

/// CPU time counters, to tell how much of the machine other processes used during the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    /// Jiffies of every CPU, busy or idle.
    total: u64,
    /// Busy jiffies of every CPU.
    busy: u64,
    /// Jiffies of this process and of its finished children (the peers).
    ours: u64,
}

impl CpuSample {
    /// Reads `/proc/stat` and `/proc/self/stat`.
    pub(crate) fn read() -> Option<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let busy = cpu.iter().take(8).sum::<u64>() - cpu.get(3)? - cpu.get(4)?;
        let total = cpu.iter().take(8).sum();
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<u64> = own
            .rsplit_once(") ")?
            .1
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // After the command name: state is not numeric, so utime..cstime are fields 10..14 here.
        let ours = fields.get(10..14)?.iter().sum();
        Some(CpuSample { total, busy, ours })
    }
}

/// The share of all CPU time that other processes used between two samples.
fn others_share(before: CpuSample, after: CpuSample) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let busy = after.busy.checked_sub(before.busy)?;
    let ours = after.ours.checked_sub(before.ours)?;
    (total > 0).then(|| busy.saturating_sub(ours) as f64 / total as f64)
}
pub(super) fn write_caveat(out: &mut String, results: &Results, note: Option<&str>) {
    write_cpu_caveat(out, (results.cpu_before, results.cpu_after), note);
}

/// The note, and how much of the CPU other processes took between the two samples.
pub(super) fn write_cpu_caveat(
    out: &mut String,
    samples: (Option<CpuSample>, Option<CpuSample>),
    note: Option<&str>,
) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let share = match samples {
        (Some(before), Some(after)) => others_share(before, after),
        _ => None,
    };
    let busy = share.is_some_and(|s| s > 0.05);
    if let Some(note) = note {
        let _ = writeln!(out, "> **Note.** {note}\n");
    }
    if busy {
        let _ = writeln!(
            out,
            "> **Shared machine.** Other processes used {:.0}% of the machine's CPU time during \
             this run, so absolute figures are noisy and low. The ratios compare peers measured \
             side by side in the same run (runs interleaved peer by peer), which is what the \
             targets are about; rerun on a quiet machine for absolute figures.\n",
            share.unwrap_or_default() * 100.0
        );
    }
    if let Some(share) = share {
        let _ = writeln!(
            out,
            "Other processes' share of the CPU during the run: {:.0}%. Load average at the end: \
             {}.\n",
            share * 100.0,
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

pub(super) fn write_machine(out: &mut String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let cpus = crate::pin::machine_cpus();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let fd = rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft);
    let _ = writeln!(out, "## Machine\n");
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| CPU | {model}, {cpus} logical CPUs (`nproc`) |");
    let _ = writeln!(
        out,
        "| Memory | {:.1} GiB (`MemTotal`) |",
        mem_kib as f64 / 1024.0 / 1024.0
    );
    let _ = writeln!(out, "| OS | {os}, Linux {} |", kernel.trim());
    let _ = writeln!(
        out,
        "| Open-file limit | {fd} (raised by the bench itself) |"
    );
    let _ = writeln!(
        out,
        "| Network | loopback (127.0.0.1), load generator and server in separate processes |\n"
    );
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The versions of `names` in the workspace's `Cargo.lock`.
fn locked_versions(names: &[&str]) -> Vec<String> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
        .unwrap_or_default();
    names
        .iter()
        .map(|name| {
            let needle = format!("name = \"{name}\"\nversion = \"");
            let versions: Vec<&str> = lock
                .match_indices(&needle)
                .filter_map(|(at, _)| lock[at + needle.len()..].split('"').next())
                .collect();
            match versions.is_empty() {
                true => format!("{name} ?"),
                false => format!("{name} {}", versions.join(" / ")),
            }
        })
        .collect()
}

pub(super) fn write_versions(out: &mut String) {
    let commit = command_output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let rustc = command_output("rustc", &["--version"]).unwrap_or_else(|| "rustc ?".to_owned());
    let (node, socketio) = node::versions();
    let _ = writeln!(out, "## Versions\n");
    let _ = writeln!(
        out,
        "- tongxun {} (commit {commit}{}), built with `--release`; {rustc}",
        env!("CARGO_PKG_VERSION"),
        if dirty {
            ", with uncommitted changes"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "- {}",
        locked_versions(&[
            "socketioxide",
            "engineioxide",
            "tokio",
            "axum",
            "hyper",
            "tokio-tungstenite",
            "tungstenite"
        ])
        .join(", ")
    );
    let _ = writeln!(
        out,
        "- Node {}, socket.io {} (`crates/tongxun-bench/node/package-lock.json`)\n",
        node.as_deref().unwrap_or("not installed"),
        socketio.as_deref().unwrap_or("not installed")
    );
}
