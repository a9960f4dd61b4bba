//! Scale curves (`tongxun-bench curve`): a scenario of the suite run at several sizes against
//! tongxun, bare socketioxide and Node side by side, to show how each cost grows.
//!
//! Each repeat runs every curve size by size, every peer in turn at each size (as the suite
//! interleaves its peers). A point that fails is recorded with its reason and the run goes on;
//! within a repeat, a peer that failed at one size is not tried at the larger sizes of that
//! curve (they would fail the same way, slowly).

use std::time::{Duration, Instant, SystemTime};

use crate::peers::Peer;
use crate::report::CpuSample;
use crate::scenarios::{Measured, Metric, Scenario, Sizes, bytes, thousands};
use crate::suite;

/// The broadcast curve's rate, low enough for Node at 20,000 receivers: in a pinned run on a
/// shared 2-CPU machine, Node lost 29% of the deliveries at 2/s to 19,000 receivers (38,000
/// deliveries/s) and tongxun's and bare socketioxide's p99 passed 700 ms there. A loss is
/// reported (`delivered`), not hidden.
pub(crate) const BROADCAST_RATE: u32 = 1;
/// Seconds each broadcast point sends for: ten broadcasts at [`BROADCAST_RATE`].
const BROADCAST_SECS: f64 = 10.0;
/// Ack echo clients of the payload curve.
pub(crate) const PAYLOAD_CLIENTS: usize = 100;
/// Seconds of ack echo measured per point.
const ACK_SECS: f64 = 3.0;

/// One scale curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Curve {
    /// Server memory per idle connection, 1,000 to 100,000 connections.
    IdleMemory,
    /// Connections opened per second, 1,000 to 100,000 connections.
    ConnectRate,
    /// Broadcast latency at a fixed rate, 1,000 to 20,000 receivers.
    Broadcast,
    /// Ack echo, 10 to 1,000 clients.
    AckClients,
    /// Ack echo of 64 B to 64 KiB of padding, 100 clients.
    AckPayload,
}

/// A column of a curve's table: which value of its scenario's runs, under what name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    /// Index into [`Measured::values`].
    pub(crate) index: usize,
    pub(crate) metric: Metric,
}

const fn column(
    index: usize,
    name: &'static str,
    higher_is_better: bool,
    decimals: usize,
) -> Column {
    Column {
        index,
        metric: Metric {
            name,
            higher_is_better,
            decimals,
        },
    }
}

/// The index of the broadcast's delivered share, which [`CurvePlan::run`] appends to the
/// fan-out's values.
const DELIVERED: usize = 6;

const IDLE_COLUMNS: &[Column] = &[
    column(0, "KiB per connection", false, 1),
    column(1, "server RSS (MiB)", false, 1),
];
const CONNECT_COLUMNS: &[Column] = &[
    column(0, "connections/s", true, 0),
    column(1, "server CPU per connection (µs)", false, 0),
];
const BROADCAST_COLUMNS: &[Column] = &[
    column(2, "p50 latency (ms)", false, 1),
    column(3, "p99 latency (ms)", false, 1),
    column(DELIVERED, "delivered (%)", true, 2),
    column(4, "server CPU per delivery (µs)", false, 3),
];
const ACK_COLUMNS: &[Column] = &[
    column(0, "acks/s", true, 0),
    column(1, "mean latency (ms)", false, 2),
    column(2, "p50 latency (ms)", false, 2),
    column(3, "p99 latency (ms)", false, 2),
    column(4, "p99 / mean", false, 2),
];

impl Curve {
    /// Every curve, in report order.
    pub(crate) const ALL: [Curve; 5] = [
        Curve::IdleMemory,
        Curve::ConnectRate,
        Curve::Broadcast,
        Curve::AckClients,
        Curve::AckPayload,
    ];

    /// The peers compared, tongxun's first.
    pub(crate) const PEERS: [Peer; 3] = [Peer::Tongxun, Peer::Bare, Peer::Node];

    /// The scenario it runs.
    pub(crate) fn scenario(self) -> Scenario {
        match self {
            Curve::IdleMemory => Scenario::IdleMemory,
            Curve::ConnectRate => Scenario::ConnectRate,
            Curve::Broadcast => Scenario::Broadcast,
            Curve::AckClients | Curve::AckPayload => Scenario::AckEcho,
        }
    }

    /// Its sizes: connections, receivers, clients or padding bytes.
    pub(crate) fn sizes(self) -> &'static [usize] {
        match self {
            // 19,000: the most a process holds where the open-file limit is 20,000 and cannot be
            // raised (no `CAP_SYS_RESOURCE`); the larger points then fail with that reason.
            Curve::IdleMemory | Curve::ConnectRate => &[1_000, 10_000, 19_000, 50_000, 100_000],
            Curve::Broadcast => &[1_000, 5_000, 19_000],
            Curve::AckClients => &[10, 100, 1_000],
            Curve::AckPayload => &[64, 4 * 1024, 64 * 1024],
        }
    }

    /// The tiny sizes of the smoke run.
    pub(crate) fn smoke_sizes(self) -> &'static [usize] {
        match self {
            Curve::AckPayload => &[64, 64 * 1024],
            _ => &[10, 20],
        }
    }

    /// The command-line name.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Curve::IdleMemory => "idle-memory",
            Curve::ConnectRate => "connect-rate",
            Curve::Broadcast => "broadcast",
            Curve::AckClients => "ack-clients",
            Curve::AckPayload => "ack-payload",
        }
    }

    /// The report's heading.
    pub(crate) fn title(self) -> String {
        match self {
            Curve::IdleMemory => "Idle memory by number of connections".to_owned(),
            Curve::ConnectRate => "Connection setup rate by number of connections".to_owned(),
            Curve::Broadcast => {
                format!("Broadcast latency by number of receivers, at {BROADCAST_RATE}/s")
            }
            Curve::AckClients => "Ack echo by number of clients".to_owned(),
            Curve::AckPayload => format!(
                "Ack echo by payload size, {} clients",
                thousands(PAYLOAD_CLIENTS)
            ),
        }
    }

    /// What the sizes count, for the table and the x axis.
    pub(crate) fn size_name(self) -> &'static str {
        match self {
            Curve::IdleMemory => "idle connections",
            Curve::ConnectRate => "connections opened",
            Curve::Broadcast => "receivers",
            Curve::AckClients => "clients",
            Curve::AckPayload => "padding per echo",
        }
    }

    /// A size as the table writes it.
    pub(crate) fn size_label(self, size: usize) -> String {
        match self {
            Curve::AckPayload => bytes(size),
            _ => thousands(size),
        }
    }

    /// The columns of its table.
    pub(crate) fn columns(self) -> &'static [Column] {
        match self {
            Curve::IdleMemory => IDLE_COLUMNS,
            Curve::ConnectRate => CONNECT_COLUMNS,
            Curve::Broadcast => BROADCAST_COLUMNS,
            Curve::AckClients | Curve::AckPayload => ACK_COLUMNS,
        }
    }

    /// Its plot: the file under `docs/images/` and the column drawn.
    pub(crate) fn plot(self) -> (&'static str, Column) {
        let columns = self.columns();
        match self {
            Curve::IdleMemory => ("curve-idle-memory.svg", columns[0]),
            Curve::ConnectRate => ("curve-connect-rate.svg", columns[0]),
            Curve::Broadcast => ("curve-broadcast-p99.svg", columns[1]),
            Curve::AckClients => ("curve-ack-clients.svg", columns[0]),
            Curve::AckPayload => ("curve-ack-payload.svg", columns[3]),
        }
    }

    /// The connections one point at `size` holds at once.
    pub(crate) fn connections(self, base: &Sizes, size: usize) -> usize {
        match self {
            Curve::AckPayload => base.ack_clients,
            Curve::Broadcast => size + 1,
            _ => size,
        }
    }

    /// The sizes of one point: `base` with this curve's size set to `size`.
    pub(crate) fn point_sizes(self, base: &Sizes, size: usize) -> Sizes {
        let mut sizes = base.clone();
        sizes.repeats = 1;
        match self {
            Curve::IdleMemory => sizes.idle_conns = size,
            Curve::ConnectRate => sizes.connect_conns = size,
            Curve::Broadcast => sizes.fanout_clients = size,
            Curve::AckClients => sizes.ack_clients = size,
            Curve::AckPayload => sizes.ack_payload = size,
        }
        sizes
    }

    /// How a point is measured, for the report.
    pub(crate) fn method(self, base: &Sizes) -> String {
        let sizes = self
            .sizes()
            .iter()
            .map(|&s| self.size_label(s))
            .collect::<Vec<_>>()
            .join(", ");
        let scenario = match self {
            Curve::IdleMemory | Curve::ConnectRate => {
                format!("the suite's scenario `{}`", self.scenario_key())
            }
            Curve::Broadcast => format!(
                "the suite's broadcast, one trial at {BROADCAST_RATE}/s for {} s instead of a \
                 search (`--fanout-fixed-rate`); delivered is the share of the expected \
                 deliveries that arrived within {} ms of the end of the sending",
                base.fanout_secs, base.fanout_grace_ms
            ),
            Curve::AckClients => format!(
                "the suite's ack echo, {} s measured after {} s of warm-up",
                base.ack_secs,
                base.ack_secs / 5.0
            ),
            Curve::AckPayload => format!(
                "the suite's ack echo with {} clients, {} s measured, each echo's argument \
                 carrying a field `\"p\"` of that many `x`, which the ack carries back",
                thousands(base.ack_clients),
                base.ack_secs
            ),
        };
        format!(
            "Sizes ({}): {sizes}. Each point is {scenario}.",
            self.size_name()
        )
    }

    fn scenario_key(self) -> &'static str {
        match self.scenario() {
            Scenario::IdleMemory => "idle-memory",
            Scenario::ConnectRate => "connect-rate",
            Scenario::AckEcho => "ack-echo",
            _ => "broadcast",
        }
    }
}

/// The sizes every point starts from: the suite's, with the curves' own durations and rate.
pub(crate) fn base_sizes() -> Sizes {
    let mut sizes = Sizes::full();
    sizes.fanout_secs = BROADCAST_SECS;
    sizes.fanout_fixed_rate = Some(BROADCAST_RATE);
    sizes.fanout_reference_rate = None;
    sizes.ack_secs = ACK_SECS;
    sizes.ack_clients = PAYLOAD_CLIENTS;
    sizes
}

/// The tiny sizes of the smoke run's curves.
pub(crate) fn smoke_base_sizes() -> Sizes {
    let mut sizes = Sizes::smoke();
    sizes.fanout_fixed_rate = Some(sizes.fanout_start_rate);
    sizes.ack_secs = 0.3;
    sizes.ack_clients = 5;
    sizes
}

/// What became of one run of one point.
#[derive(Debug, Clone)]
pub(crate) enum PointRun {
    Ran(Measured),
    Failed(String),
    /// Not tried: the peer failed at a smaller size in the same repeat.
    NotTried(usize),
}

/// One peer's line of a curve.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) peer: Peer,
    /// Why the peer cannot run here, if it cannot.
    pub(crate) skipped: Option<String>,
    /// Per size, one entry per repeat.
    pub(crate) points: Vec<Vec<PointRun>>,
}

/// One curve's lines.
#[derive(Debug)]
pub(crate) struct CurveRun {
    pub(crate) curve: Curve,
    pub(crate) sizes: Vec<usize>,
    pub(crate) lines: Vec<Line>,
}

/// Everything the curves measured, for the report.
#[derive(Debug)]
pub(crate) struct CurveResults {
    pub(crate) base: Sizes,
    pub(crate) repeats: usize,
    pub(crate) curves: Vec<CurveRun>,
    pub(crate) started: SystemTime,
    pub(crate) elapsed: Duration,
    pub(crate) cpu_before: Option<CpuSample>,
    pub(crate) cpu_after: Option<CpuSample>,
}

/// What to run.
#[derive(Debug)]
pub(crate) struct CurvePlan {
    pub(crate) curves: Vec<Curve>,
    pub(crate) peers: Vec<Peer>,
    /// Replaces every curve's sizes, when given.
    pub(crate) sizes: Option<Vec<usize>>,
    pub(crate) repeats: usize,
    pub(crate) base: Sizes,
    pub(crate) smoke: bool,
}

impl CurvePlan {
    /// The sizes of `curve` in this plan.
    pub(crate) fn sizes_of(&self, curve: Curve) -> Vec<usize> {
        match &self.sizes {
            Some(sizes) => sizes.clone(),
            None if self.smoke => curve.smoke_sizes().to_vec(),
            None => curve.sizes().to_vec(),
        }
    }

    /// The most connections any point of the plan holds at once (for the open-file limit).
    pub(crate) fn most_connections(&self) -> usize {
        self.curves
            .iter()
            .flat_map(|&c| self.sizes_of(c).into_iter().map(move |s| (c, s)))
            .map(|(c, s)| c.connections(&self.base, s))
            .max()
            .unwrap_or(0)
    }

    /// Runs every curve `repeats` times.
    pub(crate) async fn run(self) -> CurveResults {
        let started = SystemTime::now();
        let clock = Instant::now();
        let cpu_before = CpuSample::read();
        let curves = if self.curves.is_empty() {
            Curve::ALL.to_vec()
        } else {
            self.curves.clone()
        };
        let peers: Vec<Peer> = Curve::PEERS
            .into_iter()
            .filter(|p| self.peers.is_empty() || self.peers.contains(p))
            .collect();
        let mut runs: Vec<CurveRun> = curves
            .iter()
            .map(|&curve| {
                let sizes = self.sizes_of(curve);
                CurveRun {
                    curve,
                    lines: peers
                        .iter()
                        .map(|&peer| Line {
                            peer,
                            skipped: peer.unavailable(),
                            points: vec![Vec::new(); sizes.len()],
                        })
                        .collect(),
                    sizes,
                }
            })
            .collect();
        for repeat in 1..=self.repeats {
            for run in &mut runs {
                let mut failed_at: Vec<Option<usize>> = vec![None; run.lines.len()];
                for (at, &size) in run.sizes.iter().enumerate() {
                    let sizes = run.curve.point_sizes(&self.base, size);
                    for (line, failed) in run.lines.iter_mut().zip(&mut failed_at) {
                        if line.skipped.is_some() {
                            continue;
                        }
                        if let Some(smaller) = *failed {
                            line.points[at].push(PointRun::NotTried(smaller));
                            continue;
                        }
                        if let Some(why) = too_few_files(run.curve.connections(&self.base, size)) {
                            eprintln!(
                                "curve {} at {} · {}: {why}",
                                run.curve.key(),
                                run.curve.size_label(size),
                                line.peer.label()
                            );
                            *failed = Some(size);
                            line.points[at].push(PointRun::Failed(why));
                            continue;
                        }
                        eprintln!(
                            "[{repeat}/{}] curve {} at {} · {} ({:.0} s elapsed)",
                            self.repeats,
                            run.curve.key(),
                            run.curve.size_label(size),
                            line.peer.label(),
                            clock.elapsed().as_secs_f64()
                        );
                        let outcome = suite::run_one(
                            run.curve.scenario(),
                            line.peer,
                            &sizes,
                            None,
                            None,
                            None,
                        )
                        .await;
                        let point = match outcome {
                            Ok(mut measured) => {
                                if run.curve == Curve::Broadcast {
                                    measured.values.push(delivered_percent(&measured, &sizes));
                                }
                                let shown: Vec<String> = run
                                    .curve
                                    .columns()
                                    .iter()
                                    .filter_map(|c| {
                                        let v = measured.values.get(c.index)?;
                                        Some(format!(
                                            "{} = {v:.*}",
                                            c.metric.name, c.metric.decimals
                                        ))
                                    })
                                    .collect();
                                eprintln!("    {}", shown.join(", "));
                                PointRun::Ran(measured)
                            }
                            Err(e) => {
                                eprintln!("    FAILED: {e:#}");
                                *failed = Some(size);
                                PointRun::Failed(format!("{e:#}"))
                            }
                        };
                        line.points[at].push(point);
                    }
                }
            }
        }
        CurveResults {
            base: self.base,
            repeats: self.repeats,
            curves: runs,
            started,
            elapsed: clock.elapsed(),
            cpu_before,
            cpu_after: CpuSample::read(),
        }
    }
}

/// Why `connections` connections cannot be open at once here, if they cannot: each is a file
/// in the bench and in the server, and neither may open more than the open-file limit the bench
/// set (and the server inherited).
fn too_few_files(connections: usize) -> Option<String> {
    /// Files besides the connections: the runtime's, the peer's pipes, the listener.
    const SPARE: u64 = 256;
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    let needed = connections as u64 + SPARE;
    (soft < needed).then(|| {
        format!(
            "needs {} open files, above the open-file limit of {} (hard limit {}; raising it \
             takes CAP_SYS_RESOURCE)",
            thousands(usize::try_from(needed).unwrap_or(usize::MAX)),
            soft,
            hard
        )
    })
}

/// The share of a fixed-rate broadcast's expected deliveries that arrived, in percent.
fn delivered_percent(measured: &Measured, sizes: &Sizes) -> f64 {
    let (Some(&rate), Some(&per_sec)) = (measured.values.first(), measured.values.get(1)) else {
        return f64::NAN;
    };
    per_sec / (rate * sizes.fanout_clients as f64) * 100.0
}

impl CurveResults {
    /// Every failed point, as `curve at size / peer: error`.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for run in &self.curves {
            for line in &run.lines {
                for (size, points) in run.sizes.iter().zip(&line.points) {
                    for point in points {
                        if let PointRun::Failed(e) = point {
                            failures.push(format!(
                                "curve {} at {} / {}: {e}",
                                run.curve.key(),
                                run.curve.size_label(*size),
                                line.peer.label()
                            ));
                        }
                    }
                }
            }
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_grow_and_reach_the_issue_sizes() {
        for curve in Curve::ALL {
            for sizes in [curve.sizes(), curve.smoke_sizes()] {
                assert!(
                    sizes.windows(2).all(|w| w[0] < w[1]),
                    "{curve:?}: {sizes:?}"
                );
            }
        }
        assert_eq!(
            Curve::IdleMemory.sizes(),
            [1_000, 10_000, 19_000, 50_000, 100_000]
        );
        assert_eq!(Curve::ConnectRate.sizes(), Curve::IdleMemory.sizes());
        assert_eq!(Curve::Broadcast.sizes(), [1_000, 5_000, 19_000]);
        assert_eq!(Curve::AckClients.sizes(), [10, 100, 1_000]);
        assert_eq!(Curve::AckPayload.sizes(), [64, 4_096, 65_536]);
    }

    #[test]
    fn each_point_changes_only_its_curves_size() {
        let base = base_sizes();
        let idle = Curve::IdleMemory.point_sizes(&base, 50_000);
        assert_eq!(
            (idle.idle_conns, idle.connect_conns),
            (50_000, base.connect_conns)
        );
        let payload = Curve::AckPayload.point_sizes(&base, 4_096);
        assert_eq!(
            (payload.ack_payload, payload.ack_clients),
            (4_096, PAYLOAD_CLIENTS)
        );
        let broadcast = Curve::Broadcast.point_sizes(&base, 20_000);
        assert_eq!(broadcast.fanout_clients, 20_000);
        assert_eq!(broadcast.fanout_fixed_rate, Some(BROADCAST_RATE));
        assert_eq!(broadcast.repeats, 1);
    }

    #[test]
    fn the_plan_needs_files_for_its_largest_point() {
        let plan = CurvePlan {
            curves: vec![Curve::AckPayload, Curve::Broadcast],
            peers: Vec::new(),
            sizes: None,
            repeats: 1,
            base: base_sizes(),
            smoke: false,
        };
        // The payload curve's sizes are bytes, not connections; the broadcast adds its driver.
        assert_eq!(plan.most_connections(), 19_001);
    }

    #[test]
    fn every_plotted_column_is_in_the_table() {
        for curve in Curve::ALL {
            let (file, column) = curve.plot();
            assert!(file.starts_with("curve-") && file.ends_with(".svg"));
            assert!(curve.columns().iter().any(|c| c.index == column.index));
        }
    }
}
