//! Each scenario's tables: the medians of every peer, the ratios of tongxun to the others, and
//! every run.

use std::fmt::Write as _;

use super::format::{fmt_num, plural};
use super::{paired_ratio, paired_ratio_of, row_median};
use crate::peers::Peer;
use crate::scenarios::{Scenario, Sizes};
use crate::suite::{Row, RowState};

pub(super) fn write_scenario(out: &mut String, scenario: Scenario, rows: &[&Row], sizes: &Sizes) {
    let metrics = scenario.metrics();
    let _ = writeln!(out, "### {}\n", scenario.title(sizes));
    let _ = writeln!(out, "{}\n", scenario.method(sizes));
    let _ = write!(out, "| peer |");
    for m in metrics {
        let _ = write!(out, " {} |", m.name);
    }
    let _ = write!(out, "\n| --- |");
    for _ in metrics {
        let _ = write!(out, " ---: |");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(out, "| {} |", row.label);
        match &row.state {
            RowState::Skipped(why) => {
                let _ = write!(out, " {why} |");
                for _ in 1..metrics.len() {
                    out.push_str(" |");
                }
            }
            RowState::Ran(_) => {
                for (i, m) in metrics.iter().enumerate() {
                    match row_median(row, i) {
                        Some(v) => {
                            let _ = write!(out, " {} |", fmt_num(v, m.decimals));
                        }
                        None => out.push_str(" — |"),
                    }
                }
            }
        }
        out.push('\n');
    }
    out.push('\n');
    if rows.iter().any(|r| r.build.is_some()) {
        write_build_ratios(out, scenario, rows);
    } else if scenario == Scenario::RedisBroadcast {
        write_redis_ratios(out, rows);
    } else {
        write_ratios(out, scenario, rows);
    }
    write_runs(out, scenario, rows);
}

/// The room broadcast's ratios: two nodes via Redis to one node, each side's latency to the
/// one node's, and the CPU per delivery.
fn write_redis_ratios(out: &mut String, rows: &[&Row]) {
    let find = |peer: Peer| rows.iter().find(|r| r.peer == peer);
    let (Some(one), Some(two)) = (find(Peer::Tongxun), find(Peer::TongxunRedis)) else {
        return;
    };
    // (what, the two nodes' metric, the one node's metric); see `ROOM_METRICS`.
    let pairs = [
        ("p50 latency on the sender's node", 0, 0),
        ("p99 latency on the sender's node", 1, 1),
        ("p50 latency on the other node", 2, 0),
        ("p99 latency on the other node", 3, 1),
        ("nodes' CPU per delivery", 6, 6),
    ];
    let mut runs = 0;
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|&(what, a, b)| {
            let (ratio, pairs) = paired_ratio_of((two, a), (one, b))?;
            runs = runs.max(pairs);
            Some(format!("{what} {ratio:.2}×"))
        })
        .collect();
    if !parts.is_empty() {
        let _ = writeln!(
            out,
            "- two nodes via Redis / one node (median of the per-run ratios over {}; lower is \
             better): {}\n",
            plural(runs, "paired run"),
            parts.join("; ")
        );
    }
}

/// With several builds (`--peer-bin`): each build's ratio to the first build's, peer by peer,
/// the median of the per-run ratios (the builds' runs of one repeat are measured back to back).
fn write_build_ratios(out: &mut String, scenario: Scenario, rows: &[&Row]) {
    for row in rows {
        let Some(build) = row.build.as_ref().filter(|b| b.index > 0) else {
            continue;
        };
        let Some((first, first_name)) = rows.iter().find_map(|r| {
            let b = r
                .build
                .as_ref()
                .filter(|b| b.index == 0 && r.peer == row.peer)?;
            Some((*r, b.name.as_str()))
        }) else {
            continue;
        };
        let mut runs = 0;
        let parts: Vec<String> = scenario
            .metrics()
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let (ratio, pairs) = paired_ratio(row, first, i)?;
                runs = runs.max(pairs);
                let better = if m.higher_is_better {
                    "higher"
                } else {
                    "lower"
                };
                let name = m.name.split(" (").next()?;
                Some(format!("{name} {ratio:.2}× ({better} is better)"))
            })
            .collect();
        if !parts.is_empty() {
            let _ = writeln!(
                out,
                "- {}, {} / {first_name} (median of the per-run ratios over {}): {}",
                row.peer.label(),
                build.name,
                plural(runs, "paired run"),
                parts.join("; ")
            );
        }
    }
    out.push('\n');
}

fn write_ratios(out: &mut String, scenario: Scenario, rows: &[&Row]) {
    let Some(subject) = rows.iter().find(|r| r.label.starts_with("tongxun")) else {
        return;
    };
    if !matches!(subject.state, RowState::Ran(_)) {
        return;
    }
    for other in rows.iter().filter(|r| r.peer != subject.peer) {
        let parts: Vec<String> = scenario
            .metrics()
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let (ratio, _) = paired_ratio(subject, other, i)?;
                let name = m.name.split(" (").next()?;
                let better = if m.higher_is_better {
                    "higher"
                } else {
                    "lower"
                };
                Some(format!("{name} {ratio:.2}× ({better} is better)"))
            })
            .collect();
        if !parts.is_empty() {
            let _ = writeln!(out, "- tongxun / {}: {}", other.label, parts.join("; "));
        }
    }
    out.push('\n');
}

fn write_runs(out: &mut String, scenario: Scenario, rows: &[&Row]) {
    let metrics = scenario.metrics();
    let mut lines = String::new();
    let mut notes = Vec::new();
    for row in rows {
        let RowState::Ran(runs) = &row.state else {
            continue;
        };
        for (n, run) in runs.iter().enumerate() {
            let _ = write!(lines, "| {} | {} |", row.label, n + 1);
            match run {
                Ok(measured) => {
                    for (v, m) in measured.values.iter().zip(metrics) {
                        let _ = write!(lines, " {} |", fmt_num(*v, m.decimals));
                    }
                    if let Some(note) = &measured.note {
                        notes.push(format!("{}, run {}: {note}", row.label, n + 1));
                    }
                }
                Err(e) => {
                    lines.push_str(" failed |");
                    for _ in 1..metrics.len() {
                        lines.push_str(" |");
                    }
                    notes.push(format!("{}, run {} failed: {e}", row.label, n + 1));
                }
            }
            lines.push('\n');
        }
    }
    if lines.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<details><summary>Every run</summary>\n\n| peer | run |"
    );
    for m in metrics {
        let _ = write!(out, " {} |", m.name);
    }
    let _ = write!(out, "\n| --- | ---: |");
    for _ in metrics {
        let _ = write!(out, " ---: |");
    }
    let _ = write!(out, "\n{lines}");
    if !notes.is_empty() {
        out.push('\n');
    }
    for note in notes {
        let _ = writeln!(out, "- {}", note.replace('|', "/"));
    }
    let _ = writeln!(out, "\n</details>\n");
}
