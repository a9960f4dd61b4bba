//! Runs a plan of scenarios and peers, several times, interleaved: each repeat runs every
//! scenario against every peer in turn, so that a noisy moment on the machine is spread over
//! the peers rather than falling on one of them.
//!
//! With builds (`--peer-bin NAME=PATH`), every row of a Rust peer becomes one row per build,
//! its peer served by that build's bench binary; the rows of one peer then run in alternating
//! order from one repeat to the next (first build first, then last build first, ...).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use crate::peers::{Peer, Running};
use crate::report::CpuSample;
use crate::scenarios::{Measured, Scenario, Sizes};

/// The longest one scenario may run against one peer.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// One row of the report: a scenario against one peer.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) scenario: Scenario,
    pub(crate) label: String,
    pub(crate) peer: Peer,
    /// The build serving the peer; `None` for this bench's own.
    pub(crate) build: Option<Build>,
    pub(crate) state: RowState,
}

/// Another build of the bench, whose `serve` runs the peer: `NAME=PATH` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Build {
    /// Its place on the command line: ratios are to build 0.
    pub(crate) index: usize,
    /// The name shown in the report, such as `before`.
    pub(crate) name: String,
    /// Its `tongxun-bench` binary.
    pub(crate) bin: PathBuf,
}

impl Build {
    /// Parses `NAME=PATH` (the binary must exist).
    pub(crate) fn parse(text: &str) -> Result<Build, String> {
        let (name, path) = text
            .split_once('=')
            .filter(|(name, path)| !name.is_empty() && !path.is_empty())
            .ok_or_else(|| format!("expected NAME=PATH, got {text:?}"))?;
        let bin = PathBuf::from(path);
        if !bin.is_file() {
            return Err(format!("{path}: no such file"));
        }
        Ok(Build {
            index: 0,
            name: name.to_owned(),
            bin,
        })
    }
}

/// What a row holds.
#[derive(Debug)]
pub(crate) enum RowState {
    /// The peer cannot run on this machine.
    Skipped(String),
    /// One entry per run: the scenario's values, or why the run failed.
    Ran(Vec<Result<Measured, String>>),
}

/// What to run.
#[derive(Debug)]
pub(crate) struct Plan {
    sizes: Sizes,
    rows: Vec<Row>,
    external: Option<(SocketAddr, u32)>,
    /// A `tracing` filter for the Rust peers' logs on stderr.
    peer_log: Option<String>,
}

/// Everything measured, for the report.
#[derive(Debug)]
pub(crate) struct Results {
    pub(crate) sizes: Sizes,
    pub(crate) rows: Vec<Row>,
    pub(crate) started: SystemTime,
    pub(crate) elapsed: Duration,
    pub(crate) cpu_before: Option<CpuSample>,
    pub(crate) cpu_after: Option<CpuSample>,
}

impl Plan {
    /// The rows of `scenarios` (all when empty) for `peers` (all when empty); a peer that
    /// cannot run here is listed as skipped.
    pub(crate) fn new(scenarios: &[Scenario], peers: &[Peer], sizes: Sizes) -> Plan {
        let scenarios = if scenarios.is_empty() {
            &Scenario::ALL[..]
        } else {
            scenarios
        };
        let mut rows = Vec::new();
        for &scenario in scenarios {
            for &peer in scenario.peers() {
                if !peers.is_empty() && !peers.contains(&peer) {
                    continue;
                }
                rows.push(Row {
                    scenario,
                    label: peer.label().to_owned(),
                    peer,
                    build: None,
                    state: match peer.unavailable() {
                        Some(why) => RowState::Skipped(why),
                        None => RowState::Ran(Vec::new()),
                    },
                });
            }
        }
        Plan {
            sizes,
            rows,
            external: None,
            peer_log: None,
        }
    }

    /// Serves every Rust peer from each of `builds` in turn, one row per build (the Node peer
    /// keeps its one row).
    pub(crate) fn with_builds(&mut self, builds: &[Build]) -> Result<()> {
        if builds.is_empty() {
            return Ok(());
        }
        if self.external.is_some() {
            bail!("--peer-bin starts the peers; --addr measures one already running");
        }
        let mut rows = Vec::new();
        for row in std::mem::take(&mut self.rows) {
            if row.peer == Peer::Node {
                rows.push(row);
                continue;
            }
            for (index, build) in builds.iter().enumerate() {
                rows.push(Row {
                    scenario: row.scenario,
                    label: format!("{} ({})", row.peer.label(), build.name),
                    peer: row.peer,
                    build: Some(Build {
                        index,
                        ..build.clone()
                    }),
                    state: match &row.state {
                        RowState::Skipped(why) => RowState::Skipped(why.clone()),
                        RowState::Ran(_) => RowState::Ran(Vec::new()),
                    },
                });
            }
        }
        self.rows = rows;
        Ok(())
    }

    /// The order of the rows in repeat `repeat` (from 1): as planned, but the rows of one
    /// peer in several builds reversed in every other repeat, so that no build always runs
    /// first.
    fn order(&self, repeat: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        if repeat.is_multiple_of(2) {
            let same = |a: &Row, b: &Row| a.scenario == b.scenario && a.peer == b.peer;
            let mut start = 0;
            while start < order.len() {
                let mut end = start + 1;
                while end < order.len() && same(&self.rows[start], &self.rows[end]) {
                    end += 1;
                }
                if self.rows[start].build.is_some() {
                    order[start..end].reverse();
                }
                start = end;
            }
        }
        order
    }

    /// Has the Rust peers log on stderr with this `tracing` filter (to see why a run lost
    /// messages).
    pub(crate) fn log_peers(&mut self, filter: String) {
        self.peer_log = Some(filter);
    }

    /// Runs against a server someone else started instead of starting the peer.
    pub(crate) fn use_external(&mut self, addr: SocketAddr, pid: u32) -> Result<()> {
        let mut peers: Vec<Peer> = self.rows.iter().map(|r| r.peer).collect();
        peers.dedup();
        if peers.len() != 1 {
            bail!("--addr needs exactly one --peer saying what the server is");
        }
        if peers == [Peer::TongxunRedis] {
            bail!("--addr names one server, not the two nodes and Redis of tongxun-redis");
        }
        for row in &mut self.rows {
            if matches!(row.state, RowState::Skipped(_)) {
                row.state = RowState::Ran(Vec::new());
            }
        }
        self.external = Some((addr, pid));
        Ok(())
    }

    /// Runs every row `repeats` times.
    pub(crate) async fn run(mut self) -> Results {
        let started = SystemTime::now();
        let clock = Instant::now();
        let cpu_before = CpuSample::read();
        let repeats = self.sizes.repeats;
        for repeat in 1..=repeats {
            for index in self.order(repeat) {
                let row = &mut self.rows[index];
                let peer = row.peer;
                let bin = row.build.as_ref().map(|b| b.bin.clone());
                let RowState::Ran(runs) = &mut row.state else {
                    continue;
                };
                eprintln!(
                    "[{repeat}/{repeats}] {} · {} ({:.0} s elapsed)",
                    row.scenario.title(&self.sizes),
                    row.label,
                    clock.elapsed().as_secs_f64()
                );
                let outcome = run_one(
                    row.scenario,
                    peer,
                    &self.sizes,
                    self.external,
                    self.peer_log.as_deref(),
                    bin.as_deref(),
                )
                .await;
                match &outcome {
                    Ok(measured) => {
                        let shown: Vec<String> = row
                            .scenario
                            .metrics()
                            .iter()
                            .zip(&measured.values)
                            .map(|(m, v)| format!("{} = {v:.*}", m.name, m.decimals))
                            .collect();
                        eprintln!("    {}", shown.join(", "));
                        if let Some(note) = &measured.note {
                            eprintln!("    note: {note}");
                        }
                    }
                    Err(e) => eprintln!("    FAILED: {e:#}"),
                }
                runs.push(outcome.map_err(|e| format!("{e:#}")));
            }
        }
        Results {
            sizes: self.sizes,
            rows: self.rows,
            started,
            elapsed: clock.elapsed(),
            cpu_before,
            cpu_after: CpuSample::read(),
        }
    }
}

/// Starts `peer` (or uses the external server), runs `scenario` once, stops the peer.
pub(crate) async fn run_one(
    scenario: Scenario,
    peer: Peer,
    sizes: &Sizes,
    external: Option<(SocketAddr, u32)>,
    log: Option<&str>,
    bin: Option<&std::path::Path>,
) -> Result<Measured> {
    let running = match external {
        Some((addr, pid)) => Running::external(peer, addr, pid),
        None => Running::start(peer, log, bin)?,
    };
    let values = tokio::time::timeout(RUN_TIMEOUT, scenario.run(&running, sizes))
        .await
        .context("the run timed out")??;
    drop(running);
    Ok(values)
}

impl Results {
    /// Every failed run, as `scenario / peer: error`.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for row in &self.rows {
            if let RowState::Ran(runs) = &row.state {
                for run in runs {
                    if let Err(e) = run {
                        failures.push(format!("{:?} / {}: {e}", row.scenario, row.label));
                    }
                }
            }
        }
        failures
    }
}
