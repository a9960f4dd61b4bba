//! Fan-out: the highest rate at which every receiver gets every message, for Socket.IO
//! broadcasts, the WebSocket peers and the SSE peers alike.
//!
//! The same connections serve every trial of a search: each message carries its trial number,
//! and a receiver counts only the current trial's messages (late ones from an earlier trial are
//! ignored, and between trials the bench waits until the server has gone quiet). A WebSocket or
//! Socket.IO driver sends on a connection of its own; the SSE driver `POST`s each event.

use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::task::JoinSet;

use crate::client::{self, Conn, Incoming, Protocol, json_u64, now_us};
use crate::peers::Running;
use crate::sse_client::{self, Publisher, Subscriber};
use crate::stats::Histogram;

use super::Measured;

/// How often the driver sends the messages that are due: at high rates several leave at once.
const SEND_TICK: Duration = Duration::from_millis(5);
/// How long the server (its receivers) must stay quiet between two trials; every fan-out
/// scenario waits so.
pub(crate) const QUIET: Duration = Duration::from_millis(200);
/// The longest wait for the server to go quiet.
pub(crate) const QUIET_MAX: Duration = Duration::from_secs(10);
/// How long the Socket.IO driver waits for an acknowledgement of its `echo` before sending
/// another (one sent before the peer listened is never answered).
const ECHO_RETRY: Duration = Duration::from_millis(100);
/// The longest wait for the Socket.IO driver's first acknowledgement.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The parameters of one search for the highest rate, taken from [`Sizes`](super::Sizes).
#[derive(Debug, Clone)]
pub(crate) struct Search {
    /// Receiving connections.
    pub(crate) receivers: usize,
    /// Seconds each trial sends for.
    pub(crate) secs: f64,
    /// Milliseconds after the sending ends by which every message must have arrived.
    pub(crate) grace_ms: u64,
    /// The p99 latency, in milliseconds, above which a rate counts as not sustained.
    pub(crate) p99_bound_ms: f64,
    /// First rate tried; doubled until a trial fails.
    pub(crate) start_rate: u32,
    /// Highest rate tried.
    pub(crate) max_rate: u32,
    /// Bisection steps between the last passing rate and the first failing one.
    pub(crate) bisect_steps: u32,
    /// One trial at this rate instead of a search.
    pub(crate) fixed_rate: Option<u32>,
    /// One more trial at this rate after the search, to compare latencies under one load.
    pub(crate) reference_rate: Option<u32>,
    /// Connections opened at once.
    pub(crate) concurrency: usize,
    /// Smoke mode: the first trial must pass.
    pub(crate) smoke: bool,
}

/// What one receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// The trial being counted.
    trial: u64,
    /// Messages of that trial.
    count: u64,
    /// Messages of any trial.
    all: u64,
    latency: Histogram,
    error: Option<String>,
    /// SSE: events skipped in the id sequence during this trial (a loss).
    gaps: u64,
    /// SSE: an id that did not increase, which no load excuses.
    disorder: Option<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn lock(seen: &Shared) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

/// The outcome of sending at one rate.
#[derive(Debug)]
struct Trial {
    rate: u32,
    passed: bool,
    delivered: u64,
    /// Seconds the sending should take at this rate.
    period: f64,
    latency: Histogram,
    /// Server CPU seconds from the start of the trial until every message arrived.
    server_cpu: f64,
}

/// What sends the messages.
enum Driver {
    /// A WebSocket connection: Socket.IO `bcast` events or raw text messages.
    Ws(Conn),
    /// `POST`s to an SSE peer.
    Sse(Publisher),
}

impl Driver {
    async fn connect(peer: &Running, protocol: Protocol) -> Result<Driver> {
        Ok(match protocol {
            Protocol::Sse => Driver::Sse(Publisher::connect(peer.addr).await?),
            Protocol::SocketIo => {
                let mut conn = Conn::connect(peer.addr, protocol).await?;
                wait_for_listeners(&mut conn).await?;
                Driver::Ws(conn)
            }
            Protocol::RawWs => Driver::Ws(Conn::connect(peer.addr, protocol).await?),
        })
    }

    async fn send(&mut self, protocol: Protocol, payload: &[u8]) -> Result<()> {
        match self {
            Driver::Ws(conn) if protocol == Protocol::SocketIo => {
                conn.send_text(&[b"42[\"bcast\",", payload, b"]"]).await
            }
            Driver::Ws(conn) => conn.send_text(&[payload]).await,
            Driver::Sse(publisher) => publisher.publish(payload).await,
        }
    }

    /// Handles what the server sent the driver, without waiting.
    async fn service(&mut self) -> Result<()> {
        match self {
            Driver::Ws(conn) => conn.service().await,
            Driver::Sse(publisher) => publisher.service().await,
        }
    }

    /// Sends not acknowledged yet: `POST`s without their answer.
    fn unanswered(&self) -> u64 {
        match self {
            Driver::Ws(_) => 0,
            Driver::Sse(publisher) => publisher.pending(),
        }
    }
}

/// Waits until the Socket.IO peer listens to the driver's events. socketioxide sends the connect
/// packet before it runs the connect handler, in a task of its own: an event sent at once can
/// arrive before its listener and be dropped unseen (a `bcast` then reaches no receiver, a loss
/// at connect rather than in the fan-out). So the driver sends `echo`, whose listener is
/// registered with `bcast`'s, until one is acknowledged; a dropped one never is.
async fn wait_for_listeners(conn: &mut Conn) -> Result<()> {
    let ready = async {
        for id in 1.. {
            conn.emit(b"[\"echo\",{}]", Some(id)).await?;
            let acked = async {
                while !matches!(conn.recv().await?, Incoming::Ack(..)) {}
                Ok::<_, anyhow::Error>(())
            };
            if let Ok(acked) = tokio::time::timeout(ECHO_RETRY, acked).await {
                return acked;
            }
        }
        Ok(())
    };
    tokio::time::timeout(READY_TIMEOUT, ready)
        .await
        .context("no echo of the driver was acknowledged")?
}

struct Fanout<'a> {
    peer: &'a Running,
    protocol: Protocol,
    driver: Driver,
    receivers: Vec<Shared>,
    tasks: JoinSet<()>,
    trial: u64,
    /// Why a receiver's connection ended, if one did: for Socket.IO the search stops there,
    /// with the best rate found so far (a server that drops a client under load lost its
    /// messages). Raw WebSocket and SSE connections are opened again instead, see
    /// [`Fanout::reopen`].
    broken: Option<String>,
    /// The rates at which the server ended connections that were then opened again, and how
    /// many it ended.
    reopened: Vec<(u32, usize)>,
    /// Whether the server ended the driver's connection in the last trial.
    driver_ended: bool,
}

/// Finds the highest rate with no loss; returns it, deliveries/s, p50 and p99 in ms, server CPU
/// µs per delivery, and the p99 at the reference rate (NaN when messages were lost there).
pub(crate) async fn run(peer: &Running, search: &Search) -> Result<Measured> {
    let protocol = peer.peer.protocol();
    let mut fanout = Fanout::start(peer, search).await?;
    let result = find_rate(&mut fanout, search).await;
    let reference = match (&result, search.reference_rate, &fanout.broken) {
        (Ok(_), Some(rate), None) => Some(fanout.trial(rate, search).await),
        _ => None,
    };
    fanout.tasks.shutdown().await;
    let best = result?;
    let reference_p99 = match reference.transpose()? {
        Some(trial) if trial.passed => trial.latency.quantile_ms(0.99),
        _ => f64::NAN,
    };
    let Some(best) = best else {
        bail!(
            "lost messages even at 1/s to {} receivers ({protocol:?})",
            search.receivers
        );
    };
    let mut notes: Vec<String> = fanout
        .reopened
        .iter()
        .map(|(rate, ended)| {
            format!(
                "at {rate}/s the server ended {} of {} connections (receivers too far behind); \
                 they were opened again and the search went on",
                super::thousands(*ended),
                super::thousands(search.receivers)
            )
        })
        .collect();
    if let Some(why) = &fanout.broken {
        notes.push(format!(
            "search stopped at the first trial past {}/s: a client's connection ended ({why})",
            best.rate
        ));
    }
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    let values = vec![
        f64::from(best.rate),
        best.delivered as f64 / best.period,
        best.latency.quantile_ms(0.50),
        best.latency.quantile_ms(0.99),
        best.server_cpu * 1e6 / best.delivered.max(1) as f64,
        reference_p99,
    ];
    Ok(Measured { values, note })
}

async fn find_rate(fanout: &mut Fanout<'_>, search: &Search) -> Result<Option<Trial>> {
    if let Some(rate) = search.fixed_rate {
        return fanout.trial(rate, search).await.map(Some);
    }
    let mut best: Option<Trial> = None;
    let mut failed: Option<u32> = None;
    let mut rate = search.start_rate.max(1);
    // Double until a trial fails.
    loop {
        let trial = fanout.trial(rate, search).await?;
        fanout.reopen(rate, search).await?;
        if let Some(why) = &fanout.broken {
            if search.smoke || best.is_none() {
                bail!("a client's connection ended at {rate}/s: {why}");
            }
            return Ok(best);
        }
        if !trial.passed {
            if search.smoke {
                bail!(
                    "{} of {} deliveries at {rate}/s",
                    trial.delivered,
                    (trial.period * f64::from(rate)).round() as u64 * search.receivers as u64
                );
            }
            failed = Some(rate);
            break;
        }
        best = Some(trial);
        if rate >= search.max_rate {
            break;
        }
        rate = rate.saturating_mul(2).min(search.max_rate);
    }
    // The first rate already lost messages: halve until one passes.
    while best.is_none() && rate > 1 {
        rate /= 2;
        let trial = fanout.trial(rate, search).await?;
        fanout.reopen(rate, search).await?;
        if let Some(why) = &fanout.broken {
            bail!("a client's connection ended at {rate}/s: {why}");
        }
        if trial.passed {
            best = Some(trial);
        } else {
            failed = Some(rate);
        }
    }
    // Bisect between the best passing rate and the lowest failing one.
    for _ in 0..search.bisect_steps {
        let (Some(low), Some(high)) = (best.as_ref().map(|t| t.rate), failed) else {
            break;
        };
        let mid = low + (high - low) / 2;
        if mid == low {
            break;
        }
        let trial = fanout.trial(mid, search).await?;
        fanout.reopen(mid, search).await?;
        if fanout.broken.is_some() {
            break;
        }
        if trial.passed {
            best = Some(trial);
        } else {
            failed = Some(mid);
        }
    }
    Ok(best)
}

impl<'a> Fanout<'a> {
    async fn start(peer: &'a Running, search: &Search) -> Result<Fanout<'a>> {
        let protocol = peer.peer.protocol();
        let (receivers, tasks) = open_receivers(peer, search).await?;
        let driver = Driver::connect(peer, protocol).await?;
        Ok(Fanout {
            peer,
            protocol,
            driver,
            receivers,
            tasks,
            trial: 0,
            broken: None,
            reopened: Vec::new(),
            driver_ended: false,
        })
    }

    /// After a trial at `rate` in which the server ended receivers' connections: closes them all
    /// and opens them again, as clients would reconnect, so that the search goes on. A hub that
    /// ends the connection of a receiver too far behind (the WS hub's 1013, the SSE hub's
    /// lagging subscriber) is doing its job: that rate simply failed, as it fails on a floor
    /// whose receivers miss messages. Socket.IO connections stay ended (an Engine.IO session
    /// closed under load is a loss the broadcast scenario reports), and in smoke mode nothing
    /// is reopened.
    async fn reopen(&mut self, rate: u32, search: &Search) -> Result<()> {
        if self.broken.is_none() || self.protocol == Protocol::SocketIo || search.smoke {
            return Ok(());
        }
        let ended = self
            .receivers
            .iter()
            .filter(|seen| lock(seen).error.is_some())
            .count();
        self.tasks.shutdown().await;
        (self.receivers, self.tasks) = open_receivers(self.peer, search).await?;
        if std::mem::take(&mut self.driver_ended) {
            self.driver = Driver::connect(self.peer, self.protocol).await?;
        }
        self.broken = None;
        self.reopened.push((rate, ended));
        Ok(())
    }

    /// Sends at `rate` for the configured time and counts what arrived in the window.
    async fn trial(&mut self, rate: u32, search: &Search) -> Result<Trial> {
        self.trial += 1;
        let trial = self.trial;
        if let Some(why) = &self.broken {
            bail!("a receiver's connection ended earlier: {why}");
        }
        for seen in &self.receivers {
            let mut seen = lock(seen);
            seen.trial = trial;
            seen.count = 0;
            seen.gaps = 0;
            seen.latency.clear();
        }
        let total = ((f64::from(rate) * search.secs).round() as u64).max(1);
        let cpu_before = self.peer.cpu_secs()?;
        let started = Instant::now();
        let mut ticker = tokio::time::interval(SEND_TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut body = Vec::with_capacity(96);
        let mut sent = 0;
        // A hub may end the driver's connection too when it falls behind the broadcasts it
        // skips (the WS hub's 1013): that trial failed, like one that ended receivers.
        let mut driver_ended: Option<String> = None;
        'sending: while sent < total {
            ticker.tick().await;
            if let Err(e) = self.driver.service().await {
                driver_ended = Some(e.to_string());
                break;
            }
            let due = ((started.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1).min(total);
            while sent < due {
                body.clear();
                write!(body, "{{\"t\":{},\"r\":{trial},\"s\":{sent}}}", now_us())?;
                if let Err(e) = self.driver.send(self.protocol, &body).await {
                    driver_ended = Some(e.to_string());
                    break 'sending;
                }
                sent += 1;
            }
        }
        let deadline = Instant::now() + Duration::from_millis(search.grace_ms);
        while driver_ended.is_none() {
            let done = self.receivers.iter().all(|s| lock(s).count >= total)
                && self.driver.unanswered() == 0;
            if done || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Err(e) = self.driver.service().await {
                driver_ended = Some(e.to_string());
            }
        }
        let server_cpu = self.peer.cpu_secs()? - cpu_before;
        let mut latency = Histogram::default();
        let mut delivered = 0;
        let mut passed = true;
        let mut ended = 0;
        for seen in &self.receivers {
            let seen = lock(seen);
            if let Some(why) = &seen.disorder {
                bail!("a receiver's event ids did not increase: {why}");
            }
            if let Some(e) = &seen.error {
                ended += 1;
                self.broken.get_or_insert_with(|| e.clone());
            }
            passed &= seen.count == total && seen.gaps == 0 && seen.error.is_none();
            delivered += seen.count;
            latency.merge(&seen.latency);
        }
        if let Some(why) = driver_ended {
            ended += 1;
            passed = false;
            self.broken
                .get_or_insert(format!("the driver's connection ended: {why}"));
            self.driver_ended = true;
        }
        // An unanswered publish is an event the server did not take in time.
        passed &= self.driver.unanswered() == 0;
        let lost = !passed;
        passed &= latency.quantile_ms(0.99) <= search.p99_bound_ms;
        let result = Trial {
            rate,
            passed,
            delivered,
            period: total as f64 / f64::from(rate),
            latency,
            server_cpu,
        };
        eprintln!(
            "    {rate:>6}/s: {} ({delivered}/{} delivered, p50 {:.1} ms, p99 {:.1} ms)",
            match (passed, lost, ended) {
                (_, _, 1..) => format!("FAIL ({ended} clients' connections ended)"),
                (true, _, _) => "pass".to_owned(),
                (false, true, _) => "FAIL (loss)".to_owned(),
                (false, false, _) => "FAIL (p99)".to_owned(),
            },
            total * self.receivers.len() as u64,
            result.latency.quantile_ms(0.5),
            result.latency.quantile_ms(0.99),
        );
        if !self.driver_ended {
            self.quiet().await?;
        }
        Ok(result)
    }

    /// Waits until no receiver has seen a message for a while.
    async fn quiet(&mut self) -> Result<()> {
        let until = Instant::now() + QUIET_MAX;
        let mut last = u64::MAX;
        while Instant::now() < until {
            let all: u64 = self.receivers.iter().map(|s| lock(s).all).sum();
            if all == last {
                return Ok(());
            }
            last = all;
            tokio::time::sleep(QUIET).await;
            self.driver.service().await?;
        }
        Ok(())
    }
}

/// Opens the receiving connections, each watched by a task of its own.
async fn open_receivers(peer: &Running, search: &Search) -> Result<(Vec<Shared>, JoinSet<()>)> {
    let mut tasks = JoinSet::new();
    let mut receivers = Vec::with_capacity(search.receivers);
    let mut watch = || {
        let seen = Shared::default();
        receivers.push(seen.clone());
        seen
    };
    let protocol = peer.peer.protocol();
    if protocol == Protocol::Sse {
        let subscribers =
            sse_client::connect_many(peer.addr, search.receivers, search.concurrency).await?;
        for subscriber in subscribers {
            tasks.spawn(receive_sse(subscriber, watch()));
        }
    } else {
        let conns =
            client::connect_many(peer.addr, protocol, search.receivers, search.concurrency).await?;
        for conn in conns {
            tasks.spawn(receive(conn, watch()));
        }
    }
    Ok((receivers, tasks))
}

/// Counts a receiver's messages and their latency until its connection fails.
async fn receive(mut conn: Conn, seen: Shared) {
    loop {
        let body = match conn.recv().await {
            Ok(Incoming::Event(body)) if body.starts_with(b"[\"tick\"") => body,
            Ok(Incoming::Text(body)) => body,
            Ok(_) => continue,
            Err(e) => {
                lock(&seen).error = Some(format!("{e:#}"));
                return;
            }
        };
        let (Some(sent), Some(trial)) = (json_u64(body, b"\"t\":"), json_u64(body, b"\"r\":"))
        else {
            continue;
        };
        record(&seen, sent, trial);
    }
}

/// Counts one message of trial `trial` sent at `sent` (µs).
fn record(seen: &Shared, sent: u64, trial: u64) {
    let latency = now_us().saturating_sub(sent);
    let mut seen = lock(seen);
    seen.all += 1;
    if seen.trial == trial {
        seen.count += 1;
        seen.latency.record(latency);
    }
}

/// Counts a subscriber's events and their latency until its stream ends, and checks that their
/// ids follow each other: each one more than the last (or than the `ready` event's position).
async fn receive_sse(mut subscriber: Subscriber, seen: Shared) {
    let mut last: Option<u64> = None;
    loop {
        let event = match subscriber.next_event().await {
            Ok(event) => event,
            Err(e) => {
                lock(&seen).error = Some(format!("{e:#}"));
                return;
            }
        };
        let Some(seq) = event.seq else {
            lock(&seen).disorder = Some("an event without a numbered id".to_owned());
            return;
        };
        if let Some(last) = last {
            if seq <= last {
                lock(&seen).disorder = Some(format!("id {seq} after id {last}"));
                return;
            }
            if seq > last + 1 {
                lock(&seen).gaps += seq - last - 1;
            }
        }
        last = Some(seq);
        if event.name.is_some() {
            continue; // tongxun's `ready`: the stream's position, not a message
        }
        let (Some(sent), Some(trial)) = (
            json_u64(event.data, b"\"t\":"),
            json_u64(event.data, b"\"r\":"),
        ) else {
            continue;
        };
        record(&seen, sent, trial);
    }
}
