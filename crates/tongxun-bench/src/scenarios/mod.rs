//! The scenarios: what is measured, against which peers, and how big.

pub(crate) mod ack;
pub(crate) mod connect;
pub(crate) mod fanout;
pub(crate) mod hub;
pub(crate) mod idle;
pub(crate) mod room;

use anyhow::Result;

use crate::peers::{Peer, Running};

use fanout::Search;
use hub::HubFanout;
use room::Room;

/// One thing the suite measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// Broadcast fan-out to many Socket.IO clients at the highest rate with no loss.
    Broadcast,
    /// Acknowledged echo, each client in a closed loop.
    AckEcho,
    /// Server memory per idle connection.
    IdleMemory,
    /// Connections opened per second.
    ConnectRate,
    /// Broadcast fan-out to many plain WebSocket clients.
    WsFanout,
    /// Fan-out to many Server-Sent Events subscribers.
    SseFanout,
    /// Room broadcast at a fixed rate, on one node and across two nodes through Redis.
    RedisBroadcast,
    /// `Hub::publish` to Socket.IO, WebSocket and SSE subscribers of one topic at once.
    HubFanout,
}

/// A measured quantity of a scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metric {
    /// Column heading.
    pub(crate) name: &'static str,
    /// Whether more is better (a rate) or worse (memory, latency).
    pub(crate) higher_is_better: bool,
    /// Decimals shown.
    pub(crate) decimals: usize,
}

const fn metric(name: &'static str, higher_is_better: bool, decimals: usize) -> Metric {
    Metric {
        name,
        higher_is_better,
        decimals,
    }
}

const FANOUT_METRICS: &[Metric] = &[
    metric("highest rate with no loss (broadcasts/s)", true, 0),
    metric("deliveries/s", true, 0),
    metric("p50 latency (ms)", false, 1),
    metric("p99 latency (ms)", false, 1),
    metric("server CPU per delivery (µs)", false, 3),
    metric("p99 latency at the reference rate (ms)", false, 1),
];

const SSE_METRICS: &[Metric] = &[
    metric("highest rate with no loss (events/s)", true, 0),
    metric("deliveries/s", true, 0),
    metric("p50 latency (ms)", false, 1),
    metric("p99 latency (ms)", false, 1),
    metric("server CPU per delivery (µs)", false, 3),
    metric("p99 latency at the reference rate (ms)", false, 1),
];

const ROOM_METRICS: &[Metric] = &[
    metric("p50 latency, sender's node (ms)", false, 1),
    metric("p99 latency, sender's node (ms)", false, 1),
    metric("p50 latency, other node (ms)", false, 1),
    metric("p99 latency, other node (ms)", false, 1),
    metric("delivered, sender's node (%)", true, 3),
    metric("delivered, other node (%)", true, 3),
    metric("nodes' CPU per delivery (µs)", false, 3),
    metric("Redis CPU per broadcast (µs)", false, 1),
    metric("times a node took Redis for away", false, 0),
];

const HUB_METRICS: &[Metric] = &[
    metric("highest rate with no loss (publishes/s)", true, 0),
    metric("deliveries/s", true, 0),
    metric("server CPU per delivery (µs)", false, 3),
    metric("Socket.IO p50 (ms)", false, 1),
    metric("Socket.IO p99 (ms)", false, 1),
    metric("WS p50 (ms)", false, 1),
    metric("WS p99 (ms)", false, 1),
    metric("SSE p50 (ms)", false, 1),
    metric("SSE p99 (ms)", false, 1),
    metric(
        "server CPU per delivery at the reference rate (µs)",
        false,
        3,
    ),
];

const ACK_METRICS: &[Metric] = &[
    metric("acks/s", true, 0),
    metric("mean latency (ms)", false, 2),
    metric("p50 latency (ms)", false, 2),
    metric("p99 latency (ms)", false, 2),
    metric("p99 / mean", false, 2),
    metric("server CPU per ack (µs)", false, 2),
];

const IDLE_METRICS: &[Metric] = &[
    metric("KiB per connection", false, 1),
    metric("server RSS (MiB)", false, 1),
];

const CONNECT_METRICS: &[Metric] = &[
    metric("connections/s", true, 0),
    metric("server CPU per connection (µs)", false, 0),
];

/// What one run measured: a value per metric, and a remark on how it went, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    /// One value per metric; NaN when not measurable in this run.
    pub(crate) values: Vec<f64>,
    /// Something the figures alone do not tell (a client the server disconnected).
    pub(crate) note: Option<String>,
}

impl From<Vec<f64>> for Measured {
    fn from(values: Vec<f64>) -> Self {
        Measured { values, note: None }
    }
}

/// How big each scenario is.
#[derive(Debug, Clone)]
pub(crate) struct Sizes {
    /// Runs of every scenario and peer; the report shows medians.
    pub(crate) repeats: usize,
    /// Receivers of a broadcast.
    pub(crate) fanout_clients: usize,
    /// Seconds each broadcast trial sends for.
    pub(crate) fanout_secs: f64,
    /// Milliseconds after the sending ends by which every message must have arrived.
    pub(crate) fanout_grace_ms: u64,
    /// The p99 latency, in milliseconds, above which a rate counts as not sustained: past it
    /// the server is building a backlog, not keeping up.
    pub(crate) fanout_p99_bound_ms: f64,
    /// First broadcast rate tried (broadcasts/s); doubled until messages are lost.
    pub(crate) fanout_start_rate: u32,
    /// Highest broadcast rate tried.
    pub(crate) fanout_max_rate: u32,
    /// Bisection steps between the last rate without loss and the first with loss.
    pub(crate) fanout_bisect_steps: u32,
    /// One trial at this rate instead of a search (for profiling a fixed load).
    pub(crate) fanout_fixed_rate: Option<u32>,
    /// A rate every Rust peer sustains, tried once more after the search so that latencies are
    /// also compared under the same load.
    pub(crate) fanout_reference_rate: Option<u32>,
    /// Clients of the ack echo.
    pub(crate) ack_clients: usize,
    /// Seconds of ack echo measured, after a warm-up of a fifth of that.
    pub(crate) ack_secs: f64,
    /// Bytes of padding each echo carries (and its ack carries back); 0 for none.
    pub(crate) ack_payload: usize,
    /// Idle connections whose memory is measured.
    pub(crate) idle_conns: usize,
    /// Connections opened in the connection-rate scenario.
    pub(crate) connect_conns: usize,
    /// Handshakes in flight at once when opening many connections.
    pub(crate) connect_concurrency: usize,
    /// SSE subscribers of the one topic.
    pub(crate) sse_subscribers: usize,
    /// First SSE publish rate tried (events/s); the rest of the search is the broadcast's.
    pub(crate) sse_start_rate: u32,
    /// Highest SSE publish rate tried.
    pub(crate) sse_max_rate: u32,
    /// The SSE peers' reference rate (see `fanout_reference_rate`).
    pub(crate) sse_reference_rate: Option<u32>,
    /// Room broadcasts per second in the Redis scenario (its receivers: `fanout_clients`).
    pub(crate) room_rate: u32,
    /// Seconds its measured trial sends for, after a warm-up of a tenth of that.
    pub(crate) room_secs: f64,
    /// The hub fan-out's receivers: Socket.IO sockets, WS clients and SSE streams.
    pub(crate) hub_socketio: usize,
    pub(crate) hub_ws: usize,
    pub(crate) hub_sse: usize,
    /// First hub publish rate tried (publishes/s); the rest of the search is the broadcast's.
    pub(crate) hub_start_rate: u32,
    /// Highest hub publish rate tried.
    pub(crate) hub_max_rate: u32,
    /// The rate at which the hub fan-out's latencies are measured (see
    /// `fanout_reference_rate`); without one, they are the highest passing rate's.
    pub(crate) hub_reference_rate: Option<u32>,
    /// Smoke mode: one broadcast trial at the start rate, which must lose nothing.
    pub(crate) smoke: bool,
}

impl Sizes {
    /// The sizes of the issue: 1,000 broadcast and WS receivers, 100 ack clients, 10,000 idle
    /// connections, connects and SSE subscribers; five runs (about 20 minutes in all on 2
    /// cores, of which the WS and SSE fan-outs take about 9, and the room broadcast through
    /// Redis, 200/s for 10 s, about 3 more). The hub fan-out, 300 receivers on each
    /// transport, adds about 3 minutes (about 30 s a run).
    pub(crate) fn full() -> Self {
        Self {
            repeats: 5,
            fanout_clients: 1000,
            fanout_secs: 2.0,
            fanout_grace_ms: 1000,
            fanout_p99_bound_ms: 500.0,
            fanout_start_rate: 50,
            fanout_max_rate: 16_000,
            fanout_bisect_steps: 3,
            fanout_fixed_rate: None,
            fanout_reference_rate: Some(400),
            ack_clients: 100,
            ack_secs: 5.0,
            ack_payload: 0,
            idle_conns: 10_000,
            connect_conns: 10_000,
            connect_concurrency: 100,
            sse_subscribers: 10_000,
            sse_start_rate: 5,
            sse_max_rate: 2_000,
            sse_reference_rate: Some(10),
            room_rate: 200,
            room_secs: 10.0,
            hub_socketio: 300,
            hub_ws: 300,
            hub_sse: 300,
            hub_start_rate: 50,
            hub_max_rate: 16_000,
            hub_reference_rate: Some(200),
            smoke: false,
        }
    }

    /// Tiny sizes that only check the harness works.
    pub(crate) fn smoke() -> Self {
        Self {
            repeats: 1,
            fanout_clients: 20,
            fanout_secs: 0.5,
            fanout_grace_ms: 2000,
            fanout_p99_bound_ms: 5000.0,
            fanout_start_rate: 100,
            fanout_max_rate: 100,
            fanout_bisect_steps: 0,
            fanout_fixed_rate: None,
            fanout_reference_rate: None,
            ack_clients: 20,
            ack_secs: 0.5,
            ack_payload: 0,
            idle_conns: 20,
            connect_conns: 20,
            connect_concurrency: 10,
            sse_subscribers: 20,
            sse_start_rate: 100,
            sse_max_rate: 100,
            sse_reference_rate: None,
            room_rate: 100,
            room_secs: 1.0,
            hub_socketio: 5,
            hub_ws: 5,
            hub_sse: 5,
            hub_start_rate: 100,
            hub_max_rate: 100,
            hub_reference_rate: None,
            smoke: true,
        }
    }

    /// The search of the Socket.IO broadcast and the WS fan-out.
    pub(crate) fn fanout_search(&self) -> Search {
        Search {
            receivers: self.fanout_clients,
            secs: self.fanout_secs,
            grace_ms: self.fanout_grace_ms,
            p99_bound_ms: self.fanout_p99_bound_ms,
            start_rate: self.fanout_start_rate,
            max_rate: self.fanout_max_rate,
            bisect_steps: self.fanout_bisect_steps,
            fixed_rate: self.fanout_fixed_rate,
            reference_rate: self.fanout_reference_rate,
            concurrency: self.connect_concurrency,
            smoke: self.smoke,
        }
    }

    /// The room broadcast, through Redis and on one node.
    pub(crate) fn room(&self) -> Room {
        Room {
            receivers: self.fanout_clients,
            rate: self.room_rate,
            secs: self.room_secs,
            warmup_secs: self.room_secs / 10.0,
            grace_ms: self.fanout_grace_ms,
            concurrency: self.connect_concurrency,
            smoke: self.smoke,
        }
    }

    /// The hub fan-out: the broadcast's search, with its own receivers and rates.
    pub(crate) fn hub(&self) -> HubFanout {
        HubFanout {
            search: Search {
                receivers: self.hub_socketio + self.hub_ws + self.hub_sse,
                start_rate: self.hub_start_rate,
                max_rate: self.hub_max_rate,
                reference_rate: self.hub_reference_rate,
                ..self.fanout_search()
            },
            socketio: self.hub_socketio,
            ws: self.hub_ws,
            sse: self.hub_sse,
        }
    }

    /// The search of the SSE fan-out: the broadcast's, with its own receivers and rates.
    pub(crate) fn sse_search(&self) -> Search {
        Search {
            receivers: self.sse_subscribers,
            start_rate: self.sse_start_rate,
            max_rate: self.sse_max_rate,
            reference_rate: self.sse_reference_rate,
            ..self.fanout_search()
        }
    }
}

impl Scenario {
    /// Every scenario, in report order.
    pub(crate) const ALL: [Scenario; 8] = [
        Scenario::Broadcast,
        Scenario::AckEcho,
        Scenario::IdleMemory,
        Scenario::ConnectRate,
        Scenario::WsFanout,
        Scenario::SseFanout,
        Scenario::RedisBroadcast,
        Scenario::HubFanout,
    ];

    /// The report's heading.
    pub(crate) fn title(self, sizes: &Sizes) -> String {
        match self {
            Scenario::Broadcast => format!(
                "Broadcast fan-out to {} Socket.IO clients",
                thousands(sizes.fanout_clients)
            ),
            Scenario::AckEcho if sizes.ack_payload > 0 => format!(
                "Ack echo, {} clients in a loop, {} of padding",
                thousands(sizes.ack_clients),
                bytes(sizes.ack_payload)
            ),
            Scenario::AckEcho => format!(
                "Ack echo, {} clients in a loop",
                thousands(sizes.ack_clients)
            ),
            Scenario::IdleMemory => format!(
                "{} idle connections: server memory",
                thousands(sizes.idle_conns)
            ),
            Scenario::ConnectRate => format!(
                "Connection setup: {} connections",
                thousands(sizes.connect_conns)
            ),
            Scenario::WsFanout => format!(
                "WS hub fan-out to {} WebSocket clients",
                thousands(sizes.fanout_clients)
            ),
            Scenario::SseFanout => format!(
                "SSE hub fan-out to {} subscribers",
                thousands(sizes.sse_subscribers)
            ),
            Scenario::RedisBroadcast => format!(
                "Room broadcast to {} Socket.IO clients: one node, and two nodes via Redis",
                thousands(sizes.fanout_clients)
            ),
            Scenario::HubFanout => format!(
                "Hub fan-out to {} Socket.IO, {} WebSocket and {} SSE subscribers",
                thousands(sizes.hub_socketio),
                thousands(sizes.hub_ws),
                thousands(sizes.hub_sse)
            ),
        }
    }

    /// Its number of connections: receivers, clients or subscribers.
    pub(crate) fn size(self, sizes: &Sizes) -> usize {
        match self {
            Scenario::Broadcast | Scenario::WsFanout | Scenario::RedisBroadcast => {
                sizes.fanout_clients
            }
            Scenario::AckEcho => sizes.ack_clients,
            Scenario::IdleMemory => sizes.idle_conns,
            Scenario::ConnectRate => sizes.connect_conns,
            Scenario::SseFanout => sizes.sse_subscribers,
            Scenario::HubFanout => sizes.hub_socketio + sizes.hub_ws + sizes.hub_sse,
        }
    }

    /// How it is measured, for the report.
    pub(crate) fn method(self, sizes: &Sizes) -> String {
        let fanout = format!(
            "A driver connection sends `{{\"t\":<µs>,\"r\":<trial>,\"s\":<seq>}}` at a steady rate \
             for {secs} s; the server sends it to every other client. {search}",
            secs = sizes.fanout_secs,
            search = search_method(&sizes.fanout_search()),
        );
        match self {
            Scenario::Broadcast => {
                format!("{fanout} Handlers: `bcast` → `socket.broadcast().emit(\"tick\", data)`.")
            }
            Scenario::AckEcho => format!(
                "Each client emits `echo` with an ack and waits for it before the next, for {} s \
                 after a {} s warm-up. The argument is `{{\"t\":<µs>,\"s\":<seq>}}`{}; the \
                 server's handler acknowledges with its argument. Latency is per round trip \
                 (mean, and p99 / mean, per run); server CPU is per acknowledgement over the \
                 whole run.",
                sizes.ack_secs,
                sizes.ack_secs / 5.0,
                match sizes.ack_payload {
                    0 => String::new(),
                    n => format!(
                        " with a field `\"p\"` of {} of `x`, which the ack carries back",
                        bytes(n)
                    ),
                }
            ),
            Scenario::IdleMemory => format!(
                "The server's `VmRSS` (from `/proc/<pid>/status`) after {} connections joined \
                 namespace `/` and stayed idle (answering pings), minus its `VmRSS` before them \
                 (after a warm-up of 100 connections that came and went), divided by the number \
                 of connections.",
                thousands(sizes.idle_conns)
            ),
            Scenario::ConnectRate => format!(
                "Time to open {} connections, {} handshakes in flight, each one TCP connect, the \
                 WebSocket upgrade, the Engine.IO open packet and the namespace connect; server CPU \
                 is per connection over that time.",
                thousands(sizes.connect_conns),
                sizes.connect_concurrency
            ),
            Scenario::WsFanout => format!(
                "{fanout} {REOPEN} tongxun's `WsHub` (default `WsConfig`) relays every text message with \
                 `client.hub().broadcast_except(client.id(), message)`; the floor is a bare \
                 tokio-tungstenite server relaying every text message to every other client \
                 through a `tokio::sync::broadcast` channel."
            ),
            Scenario::SseFanout => format!(
                "{subscribers} subscribers hold `GET /events?topic=bench` streams (the bench's \
                 HTTP/1.1 client: one task and one read buffer per stream, chunked encoding \
                 removed and `id:`/`data:` lines parsed in place). The driver publishes \
                 `{{\"topic\":\"bench\",\"data\":\"...\"}}`, the data being the text \
                 `{{\"t\":<µs>,\"r\":<trial>,\"s\":<seq>}}`, with `POST /events` (bearer \
                 token, requests pipelined on one keep-alive connection) at a steady rate for {secs} s; latency runs from that send to each subscriber's \
                 receipt. Every subscriber must also see every event's id exactly one above the \
                 previous one (tongxun's `ready` event gives the starting position): a gap counts \
                 as a loss, a repeated or decreasing id fails the run; every `POST` must be \
                 answered `200`. {search} {REOPEN} tongxun's `SseHub` has its default `SseConfig` but for \
                 `publish_token`. The floor is a minimal axum server: `axum::response::sse` over \
                 one `tokio::sync::broadcast` channel of 256 events (the hub's default \
                 subscriber queue), a `POST` route taking the same JSON body and token, ids \
                 1, 2, 3 ...",
                subscribers = thousands(sizes.sse_subscribers),
                secs = sizes.fanout_secs,
                search = search_method(&sizes.sse_search()),
            ),
            Scenario::RedisBroadcast => room_method(&sizes.room()),
            Scenario::HubFanout => hub::method(&sizes.hub()),
        }
    }

    /// Its peers, tongxun's first.
    pub(crate) fn peers(self) -> &'static [Peer] {
        match self {
            Scenario::Broadcast
            | Scenario::AckEcho
            | Scenario::IdleMemory
            | Scenario::ConnectRate => &[Peer::Tongxun, Peer::Bare, Peer::Node],
            Scenario::WsFanout => &[Peer::WsHub, Peer::WsFloor],
            Scenario::SseFanout => &[Peer::SseHub, Peer::SseFloor],
            Scenario::RedisBroadcast => &[Peer::Tongxun, Peer::TongxunRedis],
            Scenario::HubFanout => &[Peer::TongxunHub],
        }
    }

    /// What it measures, one value per metric.
    pub(crate) fn metrics(self) -> &'static [Metric] {
        match self {
            Scenario::Broadcast | Scenario::WsFanout => FANOUT_METRICS,
            Scenario::SseFanout => SSE_METRICS,
            Scenario::RedisBroadcast => ROOM_METRICS,
            Scenario::HubFanout => HUB_METRICS,
            Scenario::AckEcho => ACK_METRICS,
            Scenario::IdleMemory => IDLE_METRICS,
            Scenario::ConnectRate => CONNECT_METRICS,
        }
    }

    /// Runs once against a started peer.
    pub(crate) async fn run(self, peer: &Running, sizes: &Sizes) -> Result<Measured> {
        match self {
            Scenario::Broadcast | Scenario::WsFanout => {
                fanout::run(peer, &sizes.fanout_search()).await
            }
            Scenario::SseFanout => fanout::run(peer, &sizes.sse_search()).await,
            Scenario::RedisBroadcast => room::run(peer, &sizes.room()).await,
            Scenario::HubFanout => hub::run(peer, &sizes.hub()).await,
            Scenario::AckEcho => ack::run(peer, sizes).await.map(Measured::from),
            Scenario::IdleMemory => idle::run(peer, sizes).await.map(Measured::from),
            Scenario::ConnectRate => connect::run(peer, sizes).await.map(Measured::from),
        }
    }
}

/// What the WS and SSE fan-outs do when the server ends connections, for the report.
const REOPEN: &str = "A trial in which the server ended receivers' connections (the hubs end \
     those too far behind) fails, and every receiver connects again before the next trial.";

/// How a fan-out search decides, for the report.
fn search_method(search: &Search) -> String {
    format!(
        "A rate passes when every receiver got every message no later than {grace} ms after \
         the sending ended and the p99 latency stayed under {bound} ms (above it the server is \
         building a backlog, not keeping up). The rate starts at {start}/s, doubles until a \
         trial fails (at most {max}/s), then {steps} bisection steps. Latency is from the \
         driver's send to each receipt, at the highest passing rate, as is the server's CPU time \
         (user and system, from `/proc/<pid>/stat`) per delivery: a cost that other load on the \
         machine disturbs less than rates and latencies.{reference}",
        grace = search.grace_ms,
        bound = search.p99_bound_ms,
        start = search.start_rate,
        max = search.max_rate,
        steps = search.bisect_steps,
        reference = match search.reference_rate {
            Some(rate) => format!(
                " Each run ends with one more trial at {rate}/s, the reference rate, so that \
                 latencies are also compared under the same load; `—` there means the peer lost \
                 messages at that rate."
            ),
            None => String::new(),
        },
    )
}

/// How the room broadcast is measured, for the report.
fn room_method(room: &Room) -> String {
    format!(
        "Receivers connect with `?role=receiver` in the handshake query, which the tongxun peer \
         answers by joining them to room `bench` at connect; a sender connects to node A with \
         `?role=sender` and emits `room` with `{{\"t\":<µs>,\"r\":<trial>,\"s\":<seq>}}` at \
         {rate}/s for {secs} s, after a warm-up of {warmup} s that is not counted. Handler: \
         `room` → `socket.to(\"bench\").emit(\"tick\", data)`. **One node**: tongxun with its \
         default `Config`, all {n} receivers on it. **Two nodes via Redis**: two tongxun \
         processes with `Config::redis_url` set to one `redis-server` the bench starts \
         (`--save '' --appendonly no`, on loopback), {half} receivers on node A (the sender's \
         node) and {half} on node B, which gets each broadcast through Redis pub/sub. Both rows \
         are the same binary (built with the bench's feature `redis`, so the one node runs \
         tongxun's adapter in memory) and run one after the other in each repeat. Latency is \
         from the sender's send to each receipt. Every message must arrive within {grace} ms \
         of the end of the sending: delivered is the share that did, per side (a duplicate \
         counts once and is reported). The nodes' CPU (user and system, from \
         `/proc/<pid>/stat`, both nodes summed) is per delivery, Redis's per broadcast, from \
         the start of the trial until every message arrived. The last column counts the times \
         a node logged `lost Redis` during the trial: a publish that failed or took longer than \
         tongxun's 40 ms publish deadline, after which that node publishes nothing until its \
         next heartbeat (every second) reaches Redis.",
        rate = room.rate,
        secs = room.secs,
        warmup = room.warmup_secs,
        n = thousands(room.receivers),
        half = thousands(room.receivers / 2),
        grace = room.grace_ms,
    )
}

/// `65536` as `64 KiB`, `64` as `64 B`.
pub(crate) fn bytes(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", thousands(n / 1024))
    } else {
        format!("{} B", thousands(n))
    }
}

/// `10000` as `10,000`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
