//! The targets of `DESIGN.md` §7: what each asks of tongxun's median, and the verdicts.

use std::fmt::Write as _;

use super::format::{fmt_num, plural};
use super::{paired_ratio, row_median, subject};
use crate::peers::Peer;
use crate::scenarios::{Scenario, Sizes, thousands};
use crate::suite::{Results, RowState};

/// What a target asks of tongxun's median.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// At least this many times the peer's median.
    AtLeast(Peer, f64),
    /// At most this many times the peer's median.
    AtMost(Peer, f64),
    /// At most this value.
    Below(f64),
    /// Every run of the SSE fan-out at its full size found a rate with no loss; the ratio to
    /// the peer (a floor) is shown, not judged.
    Sustains(Peer),
}

struct Target {
    text: &'static str,
    scenario: Scenario,
    metric: usize,
    check: Check,
}

const TARGETS: &[Target] = &[
    Target {
        text: "Broadcast: highest rate ≥ 0.95× bare socketioxide",
        scenario: Scenario::Broadcast,
        metric: 0,
        check: Check::AtLeast(Peer::Bare, 0.95),
    },
    Target {
        text: "Broadcast: highest rate ≥ 10× Node",
        scenario: Scenario::Broadcast,
        metric: 0,
        check: Check::AtLeast(Peer::Node, 10.0),
    },
    Target {
        text: "Broadcast: p99 no worse than bare socketioxide, at the reference rate",
        scenario: Scenario::Broadcast,
        metric: 5,
        check: Check::AtMost(Peer::Bare, 1.0),
    },
    Target {
        text: "Ack echo: ≥ 0.95× bare socketioxide",
        scenario: Scenario::AckEcho,
        metric: 0,
        check: Check::AtLeast(Peer::Bare, 0.95),
    },
    Target {
        text: "Ack echo: ≥ 2.5× Node",
        scenario: Scenario::AckEcho,
        metric: 0,
        check: Check::AtLeast(Peer::Node, 2.5),
    },
    Target {
        text: "Idle: ≤ 12 KiB per connection",
        scenario: Scenario::IdleMemory,
        metric: 0,
        check: Check::Below(12.0),
    },
    Target {
        text: "Idle: below Node",
        scenario: Scenario::IdleMemory,
        metric: 0,
        check: Check::AtMost(Peer::Node, 1.0),
    },
    Target {
        text: "Idle: less than half of bare socketioxide",
        scenario: Scenario::IdleMemory,
        metric: 0,
        check: Check::AtMost(Peer::Bare, 0.5),
    },
    Target {
        text: "Connection setup: ≥ bare socketioxide's rate",
        scenario: Scenario::ConnectRate,
        metric: 0,
        check: Check::AtLeast(Peer::Bare, 1.0),
    },
    Target {
        text: "Connection setup: ≥ 4× Node",
        scenario: Scenario::ConnectRate,
        metric: 0,
        check: Check::AtLeast(Peer::Node, 4.0),
    },
    Target {
        text: "WS hub fan-out within 15% of bare tokio-tungstenite",
        scenario: Scenario::WsFanout,
        metric: 0,
        check: Check::AtLeast(Peer::WsFloor, 0.85),
    },
    Target {
        text: "SSE hub: 10,000 subscribers, no loss",
        scenario: Scenario::SseFanout,
        metric: 0,
        check: Check::Sustains(Peer::SseFloor),
    },
];
pub(super) fn write_targets(out: &mut String, results: &Results) {
    let _ = writeln!(out, "## Targets (DESIGN.md §7)\n");
    let _ = writeln!(
        out,
        "| target | measured (medians) | status |\n| --- | --- | --- |"
    );
    for target in TARGETS {
        let metric = target.scenario.metrics()[target.metric];
        let Some(subject) = subject(results, target.scenario) else {
            continue;
        };
        let (measured, status) = match (&subject.state, row_median(subject, target.metric)) {
            (RowState::Skipped(why), _) => ("—".to_owned(), why.clone()),
            (_, None) => ("—".to_owned(), "not measured (every run failed)".to_owned()),
            (_, Some(value)) => evaluate(results, target, value, metric.decimals),
        };
        let _ = writeln!(out, "| {} | {measured} | {status} |", target.text);
    }
    out.push('\n');
}

fn evaluate(results: &Results, target: &Target, value: f64, decimals: usize) -> (String, String) {
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" }.to_owned();
    match target.check {
        Check::Below(limit) => (fmt_num(value, decimals), verdict(value <= limit)),
        Check::Sustains(peer) => sustains(results, target, peer, value, decimals),
        Check::AtLeast(peer, factor) | Check::AtMost(peer, factor) => {
            let other_row = results
                .rows
                .iter()
                .find(|r| r.scenario == target.scenario && r.peer == peer);
            let other = other_row.and_then(|r| row_median(r, target.metric));
            let paired = subject(results, target.scenario)
                .zip(other_row)
                .and_then(|(s, o)| paired_ratio(s, o, target.metric));
            let (Some(other), Some((ratio, pairs))) = (other, paired) else {
                return (
                    fmt_num(value, decimals),
                    format!("not compared: {} not measured", peer.label()),
                );
            };
            let ok = match target.check {
                Check::AtLeast(..) => ratio >= factor,
                _ => ratio <= factor,
            };
            (
                format!(
                    "{ratio:.2}× over {} (medians {} vs {})",
                    plural(pairs, "paired run"),
                    fmt_num(value, decimals),
                    fmt_num(other, decimals)
                ),
                verdict(ok),
            )
        }
    }
}

/// The verdict of [`Check::Sustains`]: met when every run ran at full size and found a rate
/// without loss (a run that found none failed).
fn sustains(
    results: &Results,
    target: &Target,
    floor: Peer,
    value: f64,
    decimals: usize,
) -> (String, String) {
    let scenario = target.scenario;
    let size = scenario.size(&results.sizes);
    let full = scenario.size(&Sizes::full());
    let metric = scenario.metrics()[target.metric];
    let unit = metric
        .name
        .rsplit_once('(')
        .map_or("", |(_, unit)| unit.trim_end_matches(')'));
    let mut measured = format!(
        "{} {unit} to {} subscribers",
        fmt_num(value, decimals),
        thousands(size)
    );
    let subject = subject(results, scenario);
    let floor_row = results
        .rows
        .iter()
        .find(|r| r.scenario == scenario && r.peer == floor);
    if let Some((ratio, pairs)) = subject
        .zip(floor_row)
        .and_then(|(s, f)| paired_ratio(s, f, target.metric))
    {
        let _ = write!(
            measured,
            "; {ratio:.2}× the {} over {}",
            floor.label(),
            plural(pairs, "paired run")
        );
    }
    let (runs, failed) = match subject.map(|r| &r.state) {
        Some(RowState::Ran(runs)) => (runs.len(), runs.iter().filter(|r| r.is_err()).count()),
        _ => (0, 0),
    };
    let status = if failed > 0 {
        format!("**missed**: {failed} of {} failed", plural(runs, "run"))
    } else if size < full {
        format!("not judged: {} subscribers (scaled down)", thousands(size))
    } else {
        "met".to_owned()
    };
    (measured, status)
}
