//! Room broadcast, on one node and across two nodes through Redis: what crossing Redis costs a
//! broadcast's latency, its deliveries and the servers' CPU.
//!
//! Receivers connect with `?role=receiver` (the tongxun peer joins them to its room at
//! connect); a sender connects to node A with `?role=sender` and emits `room` at a fixed rate,
//! which the peer sends to the room as `tick`. On the two-node peer half the receivers are on
//! node A, the sender's node, and half on node B, which gets each broadcast through Redis. On
//! one node every receiver is on the sender's node.
//!
//! One warm-up trial runs first (not counted), then the measured one. Every message carries
//! its trial and sequence number: a receiver counts each one of the current trial once, so a
//! loss is a missing number and a duplicate is seen as such.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::task::JoinSet;

use crate::client::{self, Conn, Incoming, Protocol, json_u64, now_us};
use crate::peers::Running;
use crate::stats::Histogram;

use super::fanout::{QUIET, QUIET_MAX};
use super::{Measured, thousands};

/// How often the sender sends the messages that are due.
const SEND_TICK: Duration = Duration::from_millis(5);

/// The parameters of a room broadcast, taken from [`Sizes`](super::Sizes).
#[derive(Debug, Clone)]
pub(crate) struct Room {
    /// Receivers in the room, split evenly over the nodes.
    pub(crate) receivers: usize,
    /// Broadcasts per second.
    pub(crate) rate: u32,
    /// Seconds the measured trial sends for.
    pub(crate) secs: f64,
    /// Seconds the warm-up trial sends for.
    pub(crate) warmup_secs: f64,
    /// Milliseconds after the sending ends by which every message must have arrived.
    pub(crate) grace_ms: u64,
    /// Connections opened at once.
    pub(crate) concurrency: usize,
    /// Smoke mode: any loss, duplicate or ended connection fails the run.
    pub(crate) smoke: bool,
}

/// Which node a receiver is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Node A, where the sender is.
    Sender,
    /// Node B, reached through Redis.
    Other,
}

/// What one receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// The trial being counted.
    trial: u64,
    /// Which of that trial's messages arrived, by sequence number.
    got: Vec<bool>,
    /// Distinct messages of that trial.
    count: u64,
    /// Messages of that trial that arrived a second time.
    duplicates: u64,
    /// Messages of any trial.
    all: u64,
    latency: Histogram,
    error: Option<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(seen: &Shared) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the receivers of one side saw in a trial.
#[derive(Debug, Default)]
struct Tally {
    receivers: u64,
    delivered: u64,
    duplicates: u64,
    ended: u64,
    latency: Histogram,
}

impl Tally {
    /// The share of the trial's deliveries that arrived, in percent; NaN without receivers.
    fn delivered_pct(&self, total: u64) -> f64 {
        match self.receivers * total {
            0 => f64::NAN,
            expected => self.delivered as f64 * 100.0 / expected as f64,
        }
    }

    /// A latency quantile in ms; NaN without receivers.
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.receivers == 0 {
            f64::NAN
        } else {
            self.latency.quantile_ms(q)
        }
    }
}

/// The outcome of one trial.
#[derive(Debug)]
struct Trial {
    /// Messages sent.
    total: u64,
    sender: Tally,
    other: Tally,
    /// Both nodes' CPU seconds from the start of the trial until every message arrived.
    nodes_cpu: f64,
    /// Redis's CPU seconds over the same time, when there is a Redis.
    redis_cpu: Option<f64>,
    /// The times a node took Redis for away over the same time, when there is a Redis.
    redis_lost: Option<u64>,
}

struct Bench<'a> {
    peer: &'a Running,
    sender: Conn,
    receivers: Vec<(Side, Shared)>,
    tasks: JoinSet<()>,
}

/// Runs a warm-up and a measured trial; returns p50 and p99 in ms on the sender's node and on
/// the other node, the share delivered on each side (%), both nodes' CPU µs per delivery, and
/// Redis's CPU µs per broadcast, and the times a node took Redis for away (NaN for what the
/// peer has not: a second node, a Redis).
pub(crate) async fn run(peer: &Running, room: &Room) -> Result<Measured> {
    let mut bench = Bench::start(peer, room).await?;
    let outcome = async {
        let warmup = bench.trial(1, room.warmup_secs, room).await?;
        check_smoke(&warmup, room, "warm-up")?;
        bench.quiet().await?;
        let trial = bench.trial(2, room.secs, room).await?;
        check_smoke(&trial, room, "trial")?;
        Ok::<_, anyhow::Error>(trial)
    }
    .await;
    bench.tasks.shutdown().await;
    let trial = outcome?;
    let delivered = trial.sender.delivered + trial.other.delivered;
    let values = vec![
        trial.sender.quantile_ms(0.50),
        trial.sender.quantile_ms(0.99),
        trial.other.quantile_ms(0.50),
        trial.other.quantile_ms(0.99),
        trial.sender.delivered_pct(trial.total),
        trial.other.delivered_pct(trial.total),
        trial.nodes_cpu * 1e6 / delivered.max(1) as f64,
        trial
            .redis_cpu
            .map_or(f64::NAN, |cpu| cpu * 1e6 / trial.total as f64),
        trial.redis_lost.map_or(f64::NAN, |n| n as f64),
    ];
    Ok(Measured {
        values,
        note: note(&trial),
    })
}

/// In smoke mode, fails on any loss, duplicate or ended connection, except losses on the other
/// node while a node had taken Redis for away: a stall of the node past tongxun's publish
/// deadline (a timing effect on a loaded machine, which a smoke run does not judge).
fn check_smoke(trial: &Trial, room: &Room, which: &str) -> Result<()> {
    if !room.smoke {
        return Ok(());
    }
    let Some(note) = note(trial) else {
        return Ok(());
    };
    let (a, b) = (&trial.sender, &trial.other);
    let only_other_node_lost = a.delivered == a.receivers * trial.total
        && a.duplicates + b.duplicates + a.ended + b.ended == 0;
    if only_other_node_lost && trial.redis_lost.unwrap_or(0) > 0 {
        eprintln!("    smoke: {note}; not a failure: a node took Redis for away meanwhile");
        return Ok(());
    }
    bail!("{which} at {}/s: {note}", room.rate)
}

/// What went wrong in a trial, if anything: losses, duplicates, ended connections.
fn note(trial: &Trial) -> Option<String> {
    let mut notes = Vec::new();
    for (name, tally) in [
        ("the sender's node", &trial.sender),
        ("the other node", &trial.other),
    ] {
        let expected = tally.receivers * trial.total;
        if tally.delivered < expected {
            notes.push(format!(
                "{} of {} deliveries lost on {name}",
                thousands((expected - tally.delivered) as usize),
                thousands(expected as usize)
            ));
        }
        if tally.duplicates > 0 {
            notes.push(format!(
                "{} duplicate deliveries on {name}",
                thousands(tally.duplicates as usize)
            ));
        }
        if tally.ended > 0 {
            notes.push(format!(
                "the server ended {} receivers' connections on {name}",
                thousands(tally.ended as usize)
            ));
        }
    }
    if let Some(lost @ 1..) = trial.redis_lost {
        let times = if lost == 1 {
            "once".to_owned()
        } else {
            format!("{lost} times")
        };
        notes.push(format!(
            "the nodes took Redis for away {times} (`lost Redis` in their logs)"
        ));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

impl<'a> Bench<'a> {
    async fn start(peer: &'a Running, room: &Room) -> Result<Bench<'a>> {
        let (on_sender, on_other) = match peer.other_node() {
            Some(other) => (room.receivers - room.receivers / 2, Some(other)),
            None => (room.receivers, None),
        };
        let mut receivers = Vec::with_capacity(room.receivers);
        let mut tasks = JoinSet::new();
        let mut open = async |addr: SocketAddr, n: usize, side: Side| -> Result<()> {
            let conns = client::connect_many_with(
                addr,
                Protocol::SocketIo,
                "role=receiver",
                n,
                room.concurrency,
            )
            .await?;
            for conn in conns {
                let seen = Shared::default();
                receivers.push((side, seen.clone()));
                tasks.spawn(receive(conn, seen));
            }
            Ok(())
        };
        open(peer.addr, on_sender, Side::Sender).await?;
        if let Some(other) = on_other {
            open(other, room.receivers / 2, Side::Other).await?;
        }
        let sender = Conn::connect_with(peer.addr, Protocol::SocketIo, "role=sender").await?;
        Ok(Bench {
            peer,
            sender,
            receivers,
            tasks,
        })
    }

    /// Sends at the room's rate for `secs` and counts what arrived in time.
    async fn trial(&mut self, trial: u64, secs: f64, room: &Room) -> Result<Trial> {
        let total = ((f64::from(room.rate) * secs).round() as u64).max(1);
        for (_, seen) in &self.receivers {
            let mut seen = lock(seen);
            seen.trial = trial;
            seen.got = vec![false; total as usize];
            seen.count = 0;
            seen.duplicates = 0;
            seen.latency.clear();
        }
        let nodes_before = self.peer.cpu_secs()?;
        let redis_before = self.peer.redis_cpu_secs().transpose()?;
        let lost_before = self.peer.redis_lost();
        let started = Instant::now();
        let mut ticker = tokio::time::interval(SEND_TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut body = Vec::with_capacity(96);
        let mut sent = 0;
        while sent < total {
            ticker.tick().await;
            self.sender.service().await?;
            let due =
                ((started.elapsed().as_secs_f64() * f64::from(room.rate)) as u64 + 1).min(total);
            while sent < due {
                body.clear();
                write!(body, "{{\"t\":{},\"r\":{trial},\"s\":{sent}}}", now_us())?;
                self.sender
                    .send_text(&[b"42[\"room\",", &body, b"]"])
                    .await?;
                sent += 1;
            }
        }
        let deadline = Instant::now() + Duration::from_millis(room.grace_ms);
        loop {
            let done = self.receivers.iter().all(|(_, s)| {
                let seen = lock(s);
                seen.count >= total || seen.error.is_some()
            });
            if done || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.sender.service().await?;
        }
        let nodes_cpu = self.peer.cpu_secs()? - nodes_before;
        let redis_cpu = match (self.peer.redis_cpu_secs().transpose()?, redis_before) {
            (Some(after), Some(before)) => Some(after - before),
            _ => None,
        };
        let redis_lost = match (self.peer.redis_lost(), lost_before) {
            (Some(after), Some(before)) => Some(after - before),
            _ => None,
        };
        let (mut on_sender, mut on_other) = (Tally::default(), Tally::default());
        for (side, seen) in &self.receivers {
            let tally = match side {
                Side::Sender => &mut on_sender,
                Side::Other => &mut on_other,
            };
            let seen = lock(seen);
            tally.receivers += 1;
            tally.delivered += seen.count;
            tally.duplicates += seen.duplicates;
            tally.ended += u64::from(seen.error.is_some());
            tally.latency.merge(&seen.latency);
        }
        let result = Trial {
            total,
            sender: on_sender,
            other: on_other,
            nodes_cpu,
            redis_cpu,
            redis_lost,
        };
        eprintln!(
            "    {} {}/s for {secs} s: {}",
            if trial == 1 { "warm-up" } else { "trial" },
            room.rate,
            [
                ("sender's node", &result.sender),
                ("other node", &result.other)
            ]
            .iter()
            .filter(|(_, t)| t.receivers > 0)
            .map(|(name, t)| format!(
                "{name} {:.3}% delivered, p50 {:.1} ms, p99 {:.1} ms",
                t.delivered_pct(total),
                t.quantile_ms(0.5),
                t.quantile_ms(0.99)
            ))
            .collect::<Vec<_>>()
            .join("; ")
        );
        Ok(result)
    }

    /// Waits until no receiver has seen a message for a while.
    async fn quiet(&mut self) -> Result<()> {
        let until = Instant::now() + QUIET_MAX;
        let mut last = u64::MAX;
        while Instant::now() < until {
            let all: u64 = self.receivers.iter().map(|(_, s)| lock(s).all).sum();
            if all == last {
                return Ok(());
            }
            last = all;
            tokio::time::sleep(QUIET).await;
            self.sender.service().await?;
        }
        Ok(())
    }
}

/// Counts a receiver's `tick`s until its connection fails.
async fn receive(mut conn: Conn, seen: Shared) {
    loop {
        let body = match conn.recv().await {
            Ok(Incoming::Event(body)) if body.starts_with(b"[\"tick\"") => body,
            Ok(_) => continue,
            Err(e) => {
                lock(&seen).error = Some(format!("{e:#}"));
                return;
            }
        };
        let (Some(sent), Some(trial), Some(seq)) = (
            json_u64(body, b"\"t\":"),
            json_u64(body, b"\"r\":"),
            json_u64(body, b"\"s\":"),
        ) else {
            continue;
        };
        let latency = now_us().saturating_sub(sent);
        let mut seen = lock(&seen);
        seen.all += 1;
        if seen.trial != trial {
            continue;
        }
        match usize::try_from(seq).ok().and_then(|i| seen.got.get_mut(i)) {
            Some(got) if !*got => {
                *got = true;
                seen.count += 1;
                seen.latency.record(latency);
            }
            Some(_) => seen.duplicates += 1,
            None => {}
        }
    }
}
