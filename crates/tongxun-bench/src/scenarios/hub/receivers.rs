//! The hub fan-out's receivers: Socket.IO sockets that `subscribe` with an acknowledgement, WS
//! clients that send `{"subscribe":"bench"}`, SSE streams on `GET /events?topic=bench`. Each
//! is one connection owned by one task, counting the current trial's messages by sequence
//! number: a missing number is a loss, a repeated one a duplicate, one below the highest seen
//! so far a message out of order.
//!
//! Messages are read by their payload's keys (`"t":`, `"r":`, `"s":`), wherever they are, so
//! that the same code reads both shapes of a hub publish: Socket.IO `["tick",{data}]` or
//! `["tick",{data},{"topic":..,"id":..}]`, WS `{"topic":..,"event":"tick","data":{data}}` with
//! or without an `"id"` field.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use tokio::task::JoinSet;

use crate::client::{Conn, Incoming, Protocol, json_u64, now_us};
use crate::sse_client::{Subscriber, TOPIC};
use crate::stats::Histogram;

use super::HubFanout;

/// The event name of every publish.
pub(super) const EVENT: &str = "tick";
/// How long a Socket.IO socket waits for the acknowledgement of its `subscribe` before sending
/// another: one sent before the peer ran the connect handler is never answered.
const SUBSCRIBE_RETRY: Duration = Duration::from_millis(100);
/// The longest wait for a subscription to be confirmed.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A receiver's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    SocketIo,
    Ws,
    Sse,
}

impl Transport {
    pub(super) const ALL: [Transport; 3] = [Transport::SocketIo, Transport::Ws, Transport::Sse];

    pub(super) fn name(self) -> &'static str {
        match self {
            Transport::SocketIo => "Socket.IO",
            Transport::Ws => "WS",
            Transport::Sse => "SSE",
        }
    }
}

/// What one receiver saw.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// The trial being counted.
    trial: u64,
    /// Which of that trial's messages arrived, by sequence number.
    got: Vec<bool>,
    /// The highest sequence number of that trial seen so far.
    last: Option<u64>,
    /// Distinct messages of that trial.
    pub(super) count: u64,
    /// Messages of that trial that arrived a second time.
    pub(super) duplicates: u64,
    /// Messages of that trial that arrived after one with a higher sequence number.
    pub(super) disorder: u64,
    /// Messages of any trial.
    pub(super) all: u64,
    pub(super) latency: Histogram,
    /// Why the connection ended, if it did.
    pub(super) error: Option<String>,
    /// Whether a message carried the hub's event id beside the payload (Socket.IO: a second
    /// argument; WS: an `"id"` field).
    pub(super) with_id: bool,
}

impl Seen {
    /// Starts counting trial `trial` of `total` messages.
    pub(super) fn reset(&mut self, trial: u64, total: u64) {
        self.trial = trial;
        self.got.clear();
        self.got
            .resize(usize::try_from(total).unwrap_or(usize::MAX), false);
        self.last = None;
        self.count = 0;
        self.duplicates = 0;
        self.disorder = 0;
        self.latency.clear();
    }
}

pub(super) type Shared = Arc<Mutex<Seen>>;

pub(super) fn lock(seen: &Shared) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the receivers of one transport saw in a trial.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) receivers: u64,
    pub(super) delivered: u64,
    pub(super) duplicates: u64,
    pub(super) disorder: u64,
    pub(super) ended: u64,
    pub(super) latency: Histogram,
}

impl Tally {
    /// A latency quantile in ms; NaN without receivers.
    pub(super) fn quantile_ms(&self, q: f64) -> f64 {
        if self.receivers == 0 {
            f64::NAN
        } else {
            self.latency.quantile_ms(q)
        }
    }
}

/// Every receiver, with its transport, and the tasks reading them.
#[derive(Debug)]
pub(super) struct Receivers {
    pub(super) list: Vec<(Transport, Shared)>,
    pub(super) tasks: JoinSet<()>,
}

impl Receivers {
    /// Opens and subscribes `hub.socketio`, `hub.ws` and `hub.sse` receivers, at most
    /// `hub.search.concurrency` at a time.
    pub(super) async fn open(addr: SocketAddr, hub: &HubFanout) -> Result<Receivers> {
        let concurrency = hub.search.concurrency.max(1);
        let mut receivers = Receivers {
            list: Vec::with_capacity(hub.socketio + hub.ws + hub.sse),
            tasks: JoinSet::new(),
        };
        let sockets: Vec<Conn> = futures_util::stream::iter(0..hub.socketio)
            .map(|_| subscribed(addr, Protocol::SocketIo))
            .buffer_unordered(concurrency)
            .try_collect()
            .await
            .context("opening the Socket.IO receivers")?;
        for conn in sockets {
            let seen = receivers.add(Transport::SocketIo);
            receivers.tasks.spawn(receive_ws(conn, seen));
        }
        let clients: Vec<Conn> = futures_util::stream::iter(0..hub.ws)
            .map(|_| subscribed(addr, Protocol::RawWs))
            .buffer_unordered(concurrency)
            .try_collect()
            .await
            .context("opening the WS receivers")?;
        for conn in clients {
            let seen = receivers.add(Transport::Ws);
            receivers.tasks.spawn(receive_ws(conn, seen));
        }
        let streams = crate::sse_client::connect_many(addr, hub.sse, concurrency)
            .await
            .context("opening the SSE receivers")?;
        for subscriber in streams {
            let seen = receivers.add(Transport::Sse);
            receivers.tasks.spawn(receive_sse(subscriber, seen));
        }
        Ok(receivers)
    }

    fn add(&mut self, transport: Transport) -> Shared {
        let seen = Shared::default();
        self.list.push((transport, seen.clone()));
        seen
    }

    /// Whether every receiver that is still connected counted `total` messages.
    pub(super) fn all_arrived(&self, total: u64) -> bool {
        self.list.iter().all(|(_, seen)| {
            let seen = lock(seen);
            seen.count >= total || seen.error.is_some()
        })
    }

    /// What each transport's receivers saw in the trial being counted, in [`Transport::ALL`]
    /// order.
    pub(super) fn tallies(&self) -> [Tally; 3] {
        let mut tallies: [Tally; 3] = Default::default();
        for (transport, seen) in &self.list {
            let tally = &mut tallies[*transport as usize];
            let seen = lock(seen);
            tally.receivers += 1;
            tally.delivered += seen.count;
            tally.duplicates += seen.duplicates;
            tally.disorder += seen.disorder;
            tally.ended += u64::from(seen.error.is_some());
            tally.latency.merge(&seen.latency);
        }
        tallies
    }

    /// Messages of any trial, over every receiver.
    pub(super) fn all_messages(&self) -> u64 {
        self.list.iter().map(|(_, s)| lock(s).all).sum()
    }

    /// How many receivers' connections ended.
    pub(super) fn ended(&self) -> usize {
        self.list
            .iter()
            .filter(|(_, s)| lock(s).error.is_some())
            .count()
    }
}

/// Opens a Socket.IO or WS connection and subscribes it to [`TOPIC`].
async fn subscribed(addr: SocketAddr, protocol: Protocol) -> Result<Conn> {
    let mut conn = Conn::connect(addr, protocol).await?;
    let subscribe = async {
        match protocol {
            Protocol::SocketIo => subscribe_socketio(&mut conn).await,
            _ => subscribe_ws(&mut conn).await,
        }
    };
    tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe)
        .await
        .context("the subscription was not confirmed in time")??;
    Ok(conn)
}

/// `socket.emitWithAck("subscribe", "bench")`, sent again until acknowledged (socketioxide
/// sends the connect packet before the connect handler has added the listeners).
async fn subscribe_socketio(conn: &mut Conn) -> Result<()> {
    let request = format!("[\"subscribe\",\"{TOPIC}\"]");
    for id in 1.. {
        conn.emit(request.as_bytes(), Some(id)).await?;
        let acked = async {
            loop {
                if let Incoming::Ack(_, body) = conn.recv().await? {
                    if !body.windows(5).any(|w| w == b"\"ok\":") {
                        bail!("subscribe refused: {}", String::from_utf8_lossy(body));
                    }
                    return Ok::<_, anyhow::Error>(());
                }
            }
        };
        if let Ok(acked) = tokio::time::timeout(SUBSCRIBE_RETRY, acked).await {
            return acked;
        }
    }
    Ok(())
}

/// The WS hub's topic command `{"subscribe":"bench"}`, answered `{"subscribed":"bench"}`.
async fn subscribe_ws(conn: &mut Conn) -> Result<()> {
    let command = format!("{{\"subscribe\":\"{TOPIC}\"}}");
    conn.send_text(&[command.as_bytes()]).await?;
    loop {
        if let Incoming::Text(body) = conn.recv().await? {
            if body.starts_with(b"{\"subscribed\"") {
                return Ok(());
            }
            if body.starts_with(b"{\"error\"") {
                bail!("subscribe refused: {}", String::from_utf8_lossy(body));
            }
        }
    }
}

/// Counts the `tick`s of a Socket.IO or WS receiver until its connection ends.
async fn receive_ws(mut conn: Conn, seen: Shared) {
    let tick = format!("[\"{EVENT}\",");
    let tick_field = format!("\"event\":\"{EVENT}\"");
    loop {
        let body = match conn.recv().await {
            Ok(Incoming::Event(body)) if body.starts_with(tick.as_bytes()) => body,
            Ok(Incoming::Text(body)) if contains(body, tick_field.as_bytes()) => body,
            Ok(_) => continue,
            Err(e) => {
                lock(&seen).error = Some(format!("{e:#}"));
                return;
            }
        };
        let with_id = contains(body, b"\"id\":\"");
        record(&seen, body, with_id);
    }
}

/// Counts the `tick` events of an SSE stream until it ends (the hub's `ready` is skipped).
async fn receive_sse(mut subscriber: Subscriber, seen: Shared) {
    loop {
        match subscriber.next_event().await {
            Ok(event) if event.name == Some(EVENT.as_bytes()) => {
                record(&seen, event.data, event.seq.is_some());
            }
            Ok(_) => {}
            Err(e) => {
                lock(&seen).error = Some(format!("{e:#}"));
                return;
            }
        }
    }
}

/// Counts one message whose payload is `{"t":<µs>,"r":<trial>,"s":<seq>}`, somewhere in `body`.
fn record(seen: &Shared, body: &[u8], with_id: bool) {
    let (Some(sent), Some(trial), Some(seq)) = (
        json_u64(body, b"\"t\":"),
        json_u64(body, b"\"r\":"),
        json_u64(body, b"\"s\":"),
    ) else {
        return;
    };
    let latency = now_us().saturating_sub(sent);
    let mut seen = lock(seen);
    seen.all += 1;
    seen.with_id |= with_id;
    if seen.trial != trial {
        return;
    }
    let Some(slot) = usize::try_from(seq).ok().and_then(|i| seen.got.get_mut(i)) else {
        return;
    };
    if std::mem::replace(slot, true) {
        seen.duplicates += 1;
        return;
    }
    seen.count += 1;
    seen.latency.record(latency);
    match seen.last {
        Some(last) if seq < last => seen.disorder += 1,
        _ => seen.last = Some(seq),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both shapes of a hub publish count the same way; duplicates and disorder are seen.
    #[test]
    fn records_old_and_new_shapes() {
        let seen = Shared::default();
        lock(&seen).reset(3, 4);
        let t = now_us();
        let old_sio = format!(r#"["tick",{{"t":{t},"r":3,"s":0}}]"#);
        let new_sio =
            format!(r#"["tick",{{"t":{t},"r":3,"s":1}},{{"topic":"bench","id":"k3x9;bench:18"}}]"#);
        let old_ws =
            format!(r#"{{"topic":"bench","event":"tick","data":{{"t":{t},"r":3,"s":3}}}}"#);
        let new_ws = format!(
            r#"{{"topic":"bench","event":"tick","data":{{"t":{t},"r":3,"s":2}},"id":"k3x9;bench:19"}}"#
        );
        let other_trial = format!(r#"["tick",{{"t":{t},"r":2,"s":1}}]"#);
        for body in [&old_sio, &new_sio, &old_ws, &new_ws, &new_ws, &other_trial] {
            record(
                &seen,
                body.as_bytes(),
                contains(body.as_bytes(), b"\"id\":\""),
            );
        }
        let seen = lock(&seen);
        assert_eq!(
            (seen.count, seen.duplicates, seen.disorder, seen.all),
            (4, 1, 1, 6)
        );
        assert!(seen.with_id);
        assert!(!contains(old_ws.as_bytes(), b"\"id\":\""));
    }
}
