//! Hub fan-out: one `tongxun::hub::Hub` publish reaching Socket.IO, WebSocket and SSE
//! subscribers of one topic at once, the highest publish rate at which every subscriber of
//! every transport gets every event, in order, and the publish-to-delivery latency of each
//! transport at a reference rate.
//!
//! The driver publishes with the hub's HTTP endpoint, `POST /publish` (bearer token), requests
//! pipelined on one keep-alive connection, so that the server takes them in the order sent:
//! every receiver must see every trial's sequence numbers in increasing order. The same
//! receivers serve every trial; a trial in which the server ended receivers' connections
//! (a hub ends those too far behind) fails, and every receiver connects again before the next.

mod receivers;

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::client::now_us;
use crate::peers::Running;
use crate::sse_client::{Publisher, TOPIC};
use crate::stats::Histogram;

use super::fanout::{QUIET, QUIET_MAX, Search};
use super::{Measured, REOPEN, search_method, thousands};
use receivers::{EVENT, Receivers, Tally, Transport, lock};

/// How often the driver sends the publishes that are due.
const SEND_TICK: Duration = Duration::from_millis(5);
/// Publishes of the warm-up, one every [`PROBE_EVERY`] until every receiver got one.
const PROBES: u64 = 200;
const PROBE_EVERY: Duration = Duration::from_millis(25);
/// How long one publish connection is used. Builds of tongxun before 8af8cb2 close a busy
/// keep-alive connection as idle 10 s (`Config::header_read_timeout`) after it opened, when
/// each request is answered within one poll of the connection's task, so that the same
/// scenario measures them too the driver opens a new one before that: at the start of every
/// trial, and within a long one after its answers are all in, to keep the order.
const PUBLISHER_AGE: Duration = Duration::from_secs(5);
/// The longest wait for the answers of the publish connection being replaced.
const DRAIN_MAX: Duration = Duration::from_secs(2);

/// The parameters of the hub fan-out, taken from [`Sizes`](super::Sizes).
#[derive(Debug, Clone)]
pub(crate) struct HubFanout {
    /// The search; its `receivers` is the sum of the three below.
    pub(crate) search: Search,
    /// Socket.IO receivers (namespace `/`, bound to the hub).
    pub(crate) socketio: usize,
    /// WebSocket hub receivers.
    pub(crate) ws: usize,
    /// SSE hub receivers.
    pub(crate) sse: usize,
}

/// The outcome of publishing at one rate.
#[derive(Debug)]
struct Trial {
    rate: u32,
    passed: bool,
    /// Publishes sent.
    total: u64,
    /// Seconds the sending should take at this rate.
    period: f64,
    /// One per transport, in [`Transport::ALL`] order.
    tallies: [Tally; 3],
    /// Server CPU seconds from the start of the trial until every message arrived.
    server_cpu: f64,
    /// What went wrong, if anything.
    problems: Vec<String>,
}

impl Trial {
    fn delivered(&self) -> u64 {
        self.tallies.iter().map(|t| t.delivered).sum()
    }

    fn cpu_per_delivery_us(&self) -> f64 {
        self.server_cpu * 1e6 / self.delivered().max(1) as f64
    }
}

struct Bench<'a> {
    peer: &'a Running,
    hub: &'a HubFanout,
    publisher: Publisher,
    /// When `publisher` connected.
    publisher_since: Instant,
    receivers: Receivers,
    trial: u64,
    /// The rates at which the server ended connections, and how many.
    reopened: Vec<(u32, usize)>,
    /// Problems of trials that failed other than by loss (duplicates, disorder, errors).
    odd: Vec<String>,
}

/// Finds the highest publish rate with no loss, then measures latencies at the reference rate
/// (at the highest rate without one). Returns the rate, deliveries/s and server CPU µs per
/// delivery at that rate, then p50 and p99 in ms of Socket.IO, WS and SSE, and the server CPU
/// µs per delivery, at the reference rate (NaN where messages were lost).
pub(crate) async fn run(peer: &Running, hub: &HubFanout) -> Result<Measured> {
    let search = &hub.search;
    let mut bench = Bench::start(peer, hub).await?;
    let outcome = async {
        bench.warm_up().await?;
        let best = find_rate(&mut bench, search).await?;
        let reference = match (search.reference_rate, search.fixed_rate, &best) {
            (Some(rate), None, Some(_)) => Some(bench.trial(rate).await?),
            _ => None,
        };
        Ok::<_, anyhow::Error>((best, reference))
    }
    .await;
    bench.receivers.tasks.shutdown().await;
    let (best, reference) = outcome?;
    let Some(best) = best else {
        bail!(
            "lost messages even at 1/s to {} receivers",
            thousands(search.receivers)
        );
    };
    let mut notes: Vec<String> = bench
        .reopened
        .iter()
        .map(|(rate, ended)| {
            format!(
                "at {rate}/s the server ended {} of {} connections; they were opened again",
                thousands(*ended),
                thousands(search.receivers)
            )
        })
        .collect();
    notes.append(&mut bench.odd);
    let latencies = reference.as_ref().unwrap_or(&best);
    if !latencies.passed {
        notes.push(format!(
            "at the reference rate {}/s: {}",
            latencies.rate,
            latencies.problems.join(", ")
        ));
    }
    let ids: Vec<&str> = [(Transport::SocketIo, "Socket.IO"), (Transport::Ws, "WS")]
        .iter()
        .filter(|(transport, _)| {
            bench
                .receivers
                .list
                .iter()
                .any(|(t, seen)| t == transport && lock(seen).with_id)
        })
        .map(|(_, name)| *name)
        .collect();
    if !ids.is_empty() {
        notes.push(format!("{} messages carried event ids", ids.join(" and ")));
    }
    let shown = |q: f64, transport: usize| {
        if latencies.passed {
            latencies.tallies[transport].quantile_ms(q)
        } else {
            f64::NAN
        }
    };
    let values = vec![
        f64::from(best.rate),
        best.delivered() as f64 / best.period,
        best.cpu_per_delivery_us(),
        shown(0.50, 0),
        shown(0.99, 0),
        shown(0.50, 1),
        shown(0.99, 1),
        shown(0.50, 2),
        shown(0.99, 2),
        if latencies.passed {
            latencies.cpu_per_delivery_us()
        } else {
            f64::NAN
        },
    ];
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(Measured { values, note })
}

/// Doubles the rate until a trial fails, halves it if the first one failed, then bisects.
async fn find_rate(bench: &mut Bench<'_>, search: &Search) -> Result<Option<Trial>> {
    if let Some(rate) = search.fixed_rate {
        return bench.trial(rate).await.map(Some);
    }
    let mut best: Option<Trial> = None;
    let mut failed: Option<u32> = None;
    let mut rate = search.start_rate.max(1);
    loop {
        let trial = bench.trial(rate).await?;
        bench.reopen(rate).await?;
        if !trial.passed {
            if search.smoke {
                bail!("at {rate}/s: {}", trial.problems.join(", "));
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
    while best.is_none() && rate > 1 {
        rate /= 2;
        let trial = bench.trial(rate).await?;
        bench.reopen(rate).await?;
        if trial.passed {
            best = Some(trial);
        } else {
            failed = Some(rate);
        }
    }
    for _ in 0..search.bisect_steps {
        let (Some(low), Some(high)) = (best.as_ref().map(|t| t.rate), failed) else {
            break;
        };
        let mid = low + (high - low) / 2;
        if mid == low {
            break;
        }
        let trial = bench.trial(mid).await?;
        bench.reopen(mid).await?;
        if trial.passed {
            best = Some(trial);
        } else {
            failed = Some(mid);
        }
    }
    Ok(best)
}

impl<'a> Bench<'a> {
    async fn start(peer: &'a Running, hub: &'a HubFanout) -> Result<Bench<'a>> {
        let receivers = Receivers::open(peer.addr, hub).await?;
        let publisher = Publisher::hub(peer.addr).await?;
        Ok(Bench {
            peer,
            hub,
            publisher,
            publisher_since: Instant::now(),
            receivers,
            trial: 0,
            reopened: Vec::new(),
            odd: Vec::new(),
        })
    }

    /// Publishes probes (trial 0) until every receiver got one: the SSE streams have no
    /// subscription to acknowledge, and the first publishes warm the server up.
    async fn warm_up(&mut self) -> Result<()> {
        for (_, seen) in &self.receivers.list {
            lock(seen).reset(0, PROBES);
        }
        self.new_publisher().await?;
        let mut body = Vec::with_capacity(128);
        for seq in 0..PROBES {
            write_publish(&mut body, 0, seq)?;
            self.publisher.post(&body).await?;
            tokio::time::sleep(PROBE_EVERY).await;
            self.publisher.service().await?;
            if self.receivers.all_arrived(1) && self.receivers.ended() == 0 {
                self.quiet().await?;
                return Ok(());
            }
        }
        let missing: Vec<String> = Transport::ALL
            .iter()
            .map(|&transport| {
                let n = self
                    .receivers
                    .list
                    .iter()
                    .filter(|(t, s)| *t == transport && lock(s).count == 0)
                    .count();
                format!("{n} {}", transport.name())
            })
            .collect();
        bail!(
            "receivers that got none of {PROBES} warm-up publishes: {}",
            missing.join(", ")
        )
    }

    /// After a trial in which the server ended receivers' connections (or the driver's):
    /// opens them all again, as clients would reconnect, so that the search goes on. In smoke
    /// mode that fails the run.
    async fn reopen(&mut self, rate: u32) -> Result<()> {
        let ended = self.receivers.ended();
        if ended == 0 {
            return Ok(());
        }
        if self.hub.search.smoke {
            bail!("at {rate}/s the server ended {ended} receivers' connections");
        }
        self.receivers.tasks.shutdown().await;
        self.receivers = Receivers::open(self.peer.addr, self.hub).await?;
        self.reopened.push((rate, ended));
        self.warm_up().await
    }

    /// Publishes at `rate` for the configured time and counts what arrived in time.
    async fn trial(&mut self, rate: u32) -> Result<Trial> {
        let search = &self.hub.search;
        self.trial += 1;
        let trial = self.trial;
        let total = ((f64::from(rate) * search.secs).round() as u64).max(1);
        for (_, seen) in &self.receivers.list {
            lock(seen).reset(trial, total);
        }
        self.new_publisher().await?;
        let cpu_before = self.peer.cpu_secs()?;
        let started = Instant::now();
        let mut ticker = tokio::time::interval(SEND_TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut body = Vec::with_capacity(128);
        let mut sent = 0;
        let mut publish_error: Option<String> = None;
        'sending: while sent < total {
            ticker.tick().await;
            let serviced = if self.publisher_since.elapsed() > PUBLISHER_AGE {
                self.drain_publisher().await
            } else {
                self.publisher.service().await
            };
            if let Err(e) = serviced {
                publish_error = Some(format!("{e:#}"));
                break;
            }
            let due = ((started.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1).min(total);
            while sent < due {
                write_publish(&mut body, trial, sent)?;
                if let Err(e) = self.publisher.post(&body).await {
                    publish_error = Some(format!("{e:#}"));
                    break 'sending;
                }
                sent += 1;
            }
        }
        let deadline = Instant::now() + Duration::from_millis(search.grace_ms);
        while publish_error.is_none() {
            let done = self.receivers.all_arrived(total) && self.publisher.pending() == 0;
            if done || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Err(e) = self.publisher.service().await {
                publish_error = Some(format!("{e:#}"));
            }
        }
        let server_cpu = self.peer.cpu_secs()? - cpu_before;
        let tallies = self.receivers.tallies();
        let mut problems = Vec::new();
        let mut odd = Vec::new();
        for (transport, tally) in Transport::ALL.iter().zip(&tallies) {
            let name = transport.name();
            let expected = tally.receivers * total;
            if tally.delivered < expected {
                problems.push(format!(
                    "{name} {} of {} delivered",
                    thousands(tally.delivered as usize),
                    thousands(expected as usize)
                ));
            }
            if tally.ended > 0 {
                problems.push(format!("{name} {} connections ended", tally.ended));
            }
            if tally.duplicates > 0 {
                odd.push(format!("{name} {} duplicates", tally.duplicates));
            }
            if tally.disorder > 0 {
                odd.push(format!("{name} {} out of order", tally.disorder));
            }
        }
        let unanswered = self.publisher.pending();
        if let Some(e) = publish_error {
            odd.push(format!("publishing failed: {e}"));
        } else if unanswered > 0 {
            problems.push(format!("{unanswered} publishes unanswered"));
        }
        if !odd.is_empty() {
            self.odd.push(format!("at {rate}/s: {}", odd.join(", ")));
        }
        problems.append(&mut odd);
        let mut all = Histogram::default();
        for tally in &tallies {
            all.merge(&tally.latency);
        }
        let p99 = all.quantile_ms(0.99);
        let lost = !problems.is_empty();
        if !lost && p99 > search.p99_bound_ms {
            problems.push(format!("p99 {p99:.0} ms above {} ms", search.p99_bound_ms));
        }
        let result = Trial {
            rate,
            passed: problems.is_empty(),
            total,
            period: total as f64 / f64::from(rate),
            tallies,
            server_cpu,
            problems,
        };
        let latencies: Vec<String> = Transport::ALL
            .iter()
            .zip(&result.tallies)
            .filter(|(_, t)| t.receivers > 0)
            .map(|(transport, t)| {
                format!(
                    "{} p50 {:.1} / p99 {:.1} ms",
                    transport.name(),
                    t.quantile_ms(0.5),
                    t.quantile_ms(0.99)
                )
            })
            .collect();
        eprintln!(
            "    {rate:>6}/s: {} ({}/{} delivered; {})",
            if result.passed {
                "pass".to_owned()
            } else {
                format!("FAIL ({})", result.problems.join(", "))
            },
            result.delivered(),
            result.total * search.receivers as u64,
            latencies.join(", ")
        );
        self.quiet().await?;
        self.check_lost(&result);
        Ok(result)
    }

    /// Once the receivers went quiet after a trial that lost messages: notes the transports
    /// whose receivers, still connected, never got some of them (lost, not late).
    fn check_lost(&mut self, trial: &Trial) {
        if trial
            .tallies
            .iter()
            .all(|t| t.delivered == t.receivers * trial.total)
        {
            return;
        }
        let mut lost = Vec::new();
        for transport in Transport::ALL {
            let missing: u64 = self
                .receivers
                .list
                .iter()
                .filter(|(t, _)| *t == transport)
                .map(|(_, seen)| lock(seen))
                .filter(|seen| seen.error.is_none())
                .map(|seen| trial.total.saturating_sub(seen.count))
                .sum();
            if missing > 0 {
                lost.push(format!(
                    "{} {}",
                    transport.name(),
                    thousands(missing as usize)
                ));
            }
        }
        if !lost.is_empty() {
            let lost = lost.join(", ");
            eprintln!(
                "    {}/s: never arrived (lost, not late): {lost}",
                trial.rate
            );
            self.odd.push(format!(
                "at {}/s deliveries that never arrived (lost, not late): {lost}",
                trial.rate
            ));
        }
    }

    /// Replaces the publish connection by a new one.
    async fn new_publisher(&mut self) -> Result<()> {
        self.publisher = Publisher::hub(self.peer.addr).await?;
        self.publisher_since = Instant::now();
        Ok(())
    }

    /// Waits for every answer of the publish connection, then replaces it (see
    /// [`PUBLISHER_AGE`]).
    async fn drain_publisher(&mut self) -> Result<()> {
        let until = Instant::now() + DRAIN_MAX;
        self.publisher.service().await?;
        while self.publisher.pending() > 0 {
            if Instant::now() >= until {
                bail!("{} publishes unanswered", self.publisher.pending());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.publisher.service().await?;
        }
        self.new_publisher().await
    }

    /// Waits until no receiver has seen a message for a while.
    async fn quiet(&mut self) -> Result<()> {
        let until = Instant::now() + QUIET_MAX;
        let mut last = u64::MAX;
        while Instant::now() < until {
            let all = self.receivers.all_messages();
            if all == last {
                break;
            }
            last = all;
            tokio::time::sleep(QUIET).await;
            self.publisher.service().await.ok();
        }
        Ok(())
    }
}

/// How the hub fan-out is measured, for the report.
pub(super) fn method(hub: &HubFanout) -> String {
    let search = &hub.search;
    let latencies = match (search.reference_rate, search.fixed_rate) {
        (Some(rate), None) => format!(
            "The latency columns and the last one come from one more trial at {rate}/s, the \
             reference rate, so that builds are compared under the same load (`—`: messages \
             were lost at that rate); the first three from the highest passing rate."
        ),
        _ => "Every column comes from the highest passing rate.".to_owned(),
    };
    format!(
        "One tongxun process serves a `tongxun::hub::Hub` bound to Socket.IO namespace `/` \
         (`Hub::namespace()`), a `WsHub` and an `SseHub`, all in memory with their default \
         configs (`serve --peer tongxun-hub`). Receivers: {sio} Socket.IO sockets that \
         `emitWithAck(\"subscribe\", \"bench\")`, {ws} WebSocket clients that send \
         `{{\"subscribe\":\"bench\"}}` and wait for `{{\"subscribed\":\"bench\"}}`, {sse} SSE \
         streams on `GET /events?topic=bench`. The driver publishes event `tick` with the data \
         `{{\"t\":<µs>,\"r\":<trial>,\"s\":<seq>}}` on topic `bench` with the hub's `POST /publish` \
         (bearer token, requests pipelined on one keep-alive connection) at a steady rate for \
         {secs} s; latency runs from that send to each receipt, per transport. Receivers read the \
         payload by its keys, so a Socket.IO event with or without a trailing `{{topic, id}}` \
         argument and a WS envelope with or without an `id` field count alike. Every receiver \
         must get every publish once and in the order sent; every `POST` must be answered \
         `200`. {search_text} {REOPEN} {latencies} To compare builds, `--peer-bin NAME=PATH` \
         (repeatable) serves the peer from other builds of the bench, run after run in \
         alternating order, and the ratios are each build's to the first one's.",
        sio = thousands(hub.socketio),
        ws = thousands(hub.ws),
        sse = thousands(hub.sse),
        secs = search.secs,
        search_text = search_method(&Search {
            reference_rate: None,
            ..search.clone()
        }),
    )
}

/// The body of one publish: event [`EVENT`] on [`TOPIC`] with the data
/// `{"t":<µs>,"r":<trial>,"s":<seq>}`.
fn write_publish(body: &mut Vec<u8>, trial: u64, seq: u64) -> Result<()> {
    body.clear();
    write!(
        body,
        "{{\"topic\":\"{TOPIC}\",\"event\":\"{EVENT}\",\"data\":{{\"t\":{},\"r\":{trial},\"s\":{seq}}}}}",
        now_us()
    )?;
    Ok(())
}
