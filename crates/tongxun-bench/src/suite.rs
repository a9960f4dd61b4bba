//! Runs a plan of scenarios and peers, several times, interleaved: each repeat runs every
//! scenario against every peer in turn, so that a noisy moment on the machine is spread over
//! the peers rather than falling on one of them.

use std::net::SocketAddr;
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
    pub(crate) state: RowState,
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
            for row in &mut self.rows {
                let peer = row.peer;
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

async fn run_one(
    scenario: Scenario,
    peer: Peer,
    sizes: &Sizes,
    external: Option<(SocketAddr, u32)>,
    log: Option<&str>,
) -> Result<Measured> {
    let running = match external {
        Some((addr, pid)) => Running::external(peer, addr, pid),
        None => Running::start(peer, log, None)?,
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
