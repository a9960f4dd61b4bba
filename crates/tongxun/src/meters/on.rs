//! The hooks, feeding a Prometheus registry the server owns.
//!
//! Per-namespace handles are resolved once, when the namespace is registered, so that an event,
//! an emit or an acknowledgement costs an atomic add on a handle the socket already holds,
//! never a label lookup. Values the server already keeps (dropped deliveries, the hubs' and the
//! Redis bus's counters) are read at scrape time by a collector instead of being kept twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{AckOutcome, Disconnect, HubTransport, Limit, Refusal, Target, Transport};
use crate::io::ServerShared;
use crate::lock;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Ns {
    namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NsTransport {
    namespace: String,
    transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Closed {
    namespace: String,
    transport: Transport,
    reason: Disconnect,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Refused {
    namespace: String,
    reason: Refusal,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Emitted {
    namespace: String,
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AckEnded {
    namespace: String,
    outcome: AckOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AckAnswered {
    namespace: String,
    result: AckResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AckResult {
    Ok,
    Error,
}

impl prometheus_client::encoding::EncodeLabelValue for AckResult {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> std::fmt::Result {
        let text = match self {
            AckResult::Ok => "ok",
            AckResult::Error => "error",
        };
        std::fmt::Write::write_str(encoder, text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HubLabel {
    transport: HubTransport,
}

#[cfg(feature = "ws")]
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

type HistogramFamily = Family<Ns, Histogram, fn() -> Histogram>;

/// Handler durations from 100 µs to about 6.5 s.
fn handler_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 9))
}

/// The metrics of one server: its registry and the families the hooks feed.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) registry: Mutex<Registry>,
    opened: Family<NsTransport, Counter>,
    closed: Family<Closed, Counter>,
    open: Family<Ns, Gauge>,
    refused: Family<Refused, Counter>,
    received: Family<Ns, Counter>,
    emitted: Family<Emitted, Counter>,
    acks_pending: Family<Ns, Gauge>,
    acks: Family<AckEnded, Counter>,
    acks_answered: Family<AckAnswered, Counter>,
    queued: Family<Ns, Gauge>,
    duration: HistogramFamily,
    hub: Family<HubLabel, Counter>,
    /// Hits of each [`Limit`], written out by the collector with the hubs' own.
    limits: [AtomicU64; Limit::ALL.len()],
    /// The handles of every registered namespace, by path, for [`Meters::of_path`].
    namespaces: Mutex<HashMap<String, NsMeters>>,
}

/// The server's side of the hooks; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Meters {
    pub(crate) inner: Arc<Registered>,
}

impl Default for Meters {
    fn default() -> Self {
        Self::new()
    }
}

impl Meters {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let inner = Registered {
            opened: Family::default(),
            closed: Family::default(),
            open: Family::default(),
            refused: Family::default(),
            received: Family::default(),
            emitted: Family::default(),
            acks_pending: Family::default(),
            acks: Family::default(),
            acks_answered: Family::default(),
            queued: Family::default(),
            duration: Family::new_with_constructor(handler_histogram),
            hub: Family::default(),
            limits: Default::default(),
            namespaces: Mutex::default(),
            registry: Mutex::new(Registry::default()),
        };
        registry.register(
            "tongxun_socketio_connections_opened",
            "Sockets that joined a namespace, by the transport they connected with",
            inner.opened.clone(),
        );
        registry.register(
            "tongxun_socketio_connections_closed",
            "Sockets that left a namespace, by their transport then and the reason",
            inner.closed.clone(),
        );
        registry.register(
            "tongxun_socketio_connections_open",
            "Sockets in a namespace now",
            inner.open.clone(),
        );
        registry.register(
            "tongxun_socketio_handshakes_refused",
            "Connects refused, by namespace and reason (no namespace: refused by allow_request before any)",
            inner.refused.clone(),
        );
        registry.register(
            "tongxun_socketio_events_received",
            "Events received from clients",
            inner.received.clone(),
        );
        registry.register(
            "tongxun_socketio_events_emitted",
            "Events emitted to one socket, or broadcasts (counted once each)",
            inner.emitted.clone(),
        );
        registry.register(
            "tongxun_socketio_acks_pending",
            "Acknowledgements the server asked for and still waits for",
            inner.acks_pending.clone(),
        );
        registry.register(
            "tongxun_socketio_acks",
            "Acknowledgements the server asked a socket for, by how they ended",
            inner.acks.clone(),
        );
        registry.register(
            "tongxun_socketio_acks_answered",
            "Acknowledgements clients asked for that the server answered, with a value (ok) or {\"error\": ...} (error)",
            inner.acks_answered.clone(),
        );
        registry.register(
            "tongxun_socketio_dispatch_queue_depth",
            "Events received and waiting for their handlers",
            inner.queued.clone(),
        );
        registry.register(
            "tongxun_socketio_handler_duration_seconds",
            "Time from an event's first handler starting to its last one finishing",
            inner.duration.clone(),
        );
        registry.register(
            "tongxun_hub_publishes",
            "Hub publishes, by the transport they reached",
            inner.hub.clone(),
        );
        *lock(&inner.registry) = registry;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The handles of a namespace registered at `path` (a pattern for a dynamic one).
    pub(crate) fn namespace(&self, path: &str) -> NsMeters {
        let inner = &self.inner;
        let ns = Ns {
            namespace: path.to_owned(),
        };
        let emitted = |target| {
            inner.emitted.get_or_create_owned(&Emitted {
                namespace: path.to_owned(),
                target,
            })
        };
        let acks = |outcome| {
            inner.acks.get_or_create_owned(&AckEnded {
                namespace: path.to_owned(),
                outcome,
            })
        };
        let answered = |result| {
            inner.acks_answered.get_or_create_owned(&AckAnswered {
                namespace: path.to_owned(),
                result,
            })
        };
        let handles = NsHandles {
            path: path.to_owned(),
            server: inner.clone(),
            received: inner.received.get_or_create_owned(&ns),
            emitted: [emitted(Target::Socket), emitted(Target::Broadcast)],
            acks_pending: inner.acks_pending.get_or_create_owned(&ns),
            acks: AckOutcome::ALL.iter().map(|&o| acks(o)).collect(),
            answered_ok: answered(AckResult::Ok),
            answered_error: answered(AckResult::Error),
            queued: inner.queued.get_or_create_owned(&ns),
            duration: inner.duration.get_or_create_owned(&ns),
            open: inner.open.get_or_create_owned(&ns),
        };
        // Every series of the namespace exists from the start, at zero.
        for &transport in Transport::ALL {
            let _ = inner.opened.get_or_create(&NsTransport {
                namespace: path.to_owned(),
                transport,
            });
        }
        let meters = NsMeters(Arc::new(handles));
        lock(&inner.namespaces).insert(path.to_owned(), meters.clone());
        meters
    }

    /// The handles of the namespace at `path`: a registered one, or for a child of a dynamic
    /// pattern, a shared handle labelled `{dynamic}`.
    pub(crate) fn of_path(&self, path: &str) -> NsMeters {
        let namespaces = lock(&self.inner.namespaces);
        if let Some(meters) = namespaces.get(path).or_else(|| namespaces.get(DYNAMIC)) {
            return meters.clone();
        }
        drop(namespaces);
        self.namespace(DYNAMIC)
    }

    pub(crate) fn hub_published(&self, transport: HubTransport) {
        self.inner.hub.get_or_create(&HubLabel { transport }).inc();
    }

    /// A handshake refused before any namespace (by `allow_request`).
    pub(crate) fn handshake_refused(&self, reason: Refusal) {
        self.inner
            .refused
            .get_or_create(&Refused {
                namespace: String::new(),
                reason,
            })
            .inc();
    }

    /// Registers the collector of what the server, its hubs and its Redis bus already count.
    pub(crate) fn collect(&self, sources: Sources) {
        lock(&self.inner.registry).register_collector(Box::new(sources));
    }
}

/// The namespace label of broadcasts to a dynamic child namespace addressed by path.
const DYNAMIC: &str = "{dynamic}";

#[derive(Debug)]
struct NsHandles {
    path: String,
    server: Arc<Registered>,
    received: Counter,
    emitted: [Counter; 2],
    acks_pending: Gauge,
    /// By [`AckOutcome`], in the order of `AckOutcome::ALL`.
    acks: Vec<Counter>,
    answered_ok: Counter,
    answered_error: Counter,
    queued: Gauge,
    duration: Histogram,
    open: Gauge,
}

/// One namespace's handles; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct NsMeters(Arc<NsHandles>);

impl NsMeters {
    pub(crate) fn connected(&self, transport: Transport) {
        let h = &self.0;
        h.server
            .opened
            .get_or_create(&NsTransport {
                namespace: h.path.clone(),
                transport,
            })
            .inc();
        h.open.inc();
    }

    pub(crate) fn disconnected(&self, transport: Transport, reason: Disconnect) {
        let h = &self.0;
        h.server
            .closed
            .get_or_create(&Closed {
                namespace: h.path.clone(),
                transport,
                reason,
            })
            .inc();
        h.open.dec();
    }

    pub(crate) fn refused(&self, reason: Refusal) {
        let h = &self.0;
        h.server
            .refused
            .get_or_create(&Refused {
                namespace: h.path.clone(),
                reason,
            })
            .inc();
    }

    pub(crate) fn limit_hit(&self, limit: Limit) {
        self.0.server.limits[limit as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn received(&self) {
        self.0.received.inc();
    }

    #[inline]
    pub(crate) fn queued(&self) {
        self.0.queued.inc();
    }

    #[inline]
    pub(crate) fn dequeued(&self) {
        self.0.queued.dec();
    }

    #[inline]
    pub(crate) fn emitted(&self, target: Target) {
        self.0.emitted[target as usize].inc();
    }

    #[inline]
    pub(crate) fn ack_answered(&self, ok: bool) {
        match ok {
            true => self.0.answered_ok.inc(),
            false => self.0.answered_error.inc(),
        };
    }

    /// Counts an acknowledgement of a broadcast as ended.
    pub(crate) fn ack_ended(&self, outcome: AckOutcome) {
        self.0.acks[outcome as usize].inc();
    }

    /// Counts an acknowledgement as pending until the guard ends.
    #[inline]
    pub(crate) fn ack_wait(&self) -> AckWait {
        self.0.acks_pending.inc();
        AckWait(self.clone())
    }

    #[inline]
    pub(crate) fn handling(&self) -> HandlerTimer {
        HandlerTimer {
            meters: self.clone(),
            start: Instant::now(),
        }
    }
}

/// An acknowledgement the server waits for; pending until dropped.
#[derive(Debug)]
pub(crate) struct AckWait(NsMeters);

impl AckWait {
    pub(crate) fn ended(self, outcome: AckOutcome) {
        self.0.0.acks[outcome as usize].inc();
    }
}

impl Drop for AckWait {
    fn drop(&mut self) {
        self.0.0.acks_pending.dec();
    }
}

/// Measures an event's handlers; observed when dropped.
#[derive(Debug)]
pub(crate) struct HandlerTimer {
    meters: NsMeters,
    start: Instant,
}

impl Drop for HandlerTimer {
    fn drop(&mut self) {
        self.meters
            .0
            .duration
            .observe(self.start.elapsed().as_secs_f64());
    }
}

/// What the collector reads at scrape time.
#[derive(Debug)]
pub(crate) struct Sources {
    pub(crate) server: Weak<ServerShared>,
    #[cfg(feature = "ws")]
    pub(crate) ws: Option<crate::ws::WsHub>,
    #[cfg(feature = "sse")]
    pub(crate) sse: Option<crate::sse::SseHub>,
    #[cfg(feature = "redis")]
    pub(crate) bus: Option<crate::bus::RedisBus>,
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(server) = self.server.upgrade() else {
            return Ok(());
        };
        let dropped = server.dropped_deliveries.load(Ordering::Relaxed);
        counter(
            &mut encoder,
            "tongxun_socketio_deliveries_dropped",
            "Broadcast deliveries skipped because the recipient's outgoing queue was full",
            dropped,
        )?;
        gauge(
            &mut encoder,
            "tongxun_socketio_dynamic_namespaces",
            "Child namespaces of dynamic patterns alive now",
            to_i64(server.dynamic.len()),
        )?;

        let mut limits: Vec<(&'static str, u64)> = Limit::ALL
            .iter()
            .map(|&l| {
                let hits = server.meters.inner.limits[l as usize].load(Ordering::Relaxed);
                (l.as_str(), hits)
            })
            .collect();
        limits.push(("max_buffer_size", dropped));
        #[cfg(feature = "ws")]
        if let Some(hub) = &self.ws {
            let stats = hub.stats();
            limits.push(("ws_max_message_size", stats.oversized_messages));
            limits.push((
                "ws_queue",
                stats.slow_clients_closed + stats.messages_dropped,
            ));
            limits.push(("ws_pong_deadline", stats.dead_peers));
        }
        #[cfg(feature = "sse")]
        if let Some(hub) = &self.sse {
            let stats = hub.stats();
            limits.push(("sse_max_live_topics", stats.topics_refused));
            limits.push(("sse_max_history_bytes", stats.history_evicted));
            limits.push(("sse_subscriber_queue", stats.lagged));
        }
        {
            let mut family = encoder.encode_descriptor(
                "tongxun_limit_hits",
                "Times a bound of docs/security.md was hit",
                None,
                MetricType::Counter,
            )?;
            for (limit, hits) in limits {
                let labels = LimitLabel { limit };
                ConstCounter::new(hits).encode(family.encode_family(&labels)?)?;
            }
        }

        #[cfg(feature = "ws")]
        if let Some(hub) = &self.ws {
            encode_ws(&mut encoder, hub)?;
        }
        #[cfg(feature = "sse")]
        if let Some(hub) = &self.sse {
            let stats = hub.stats();
            gauge(
                &mut encoder,
                "tongxun_sse_subscribers",
                "SSE streams open now",
                to_i64(stats.subscribers),
            )?;
            gauge(
                &mut encoder,
                "tongxun_sse_topics",
                "SSE topics with history or subscribers",
                to_i64(stats.topics),
            )?;
            counter(
                &mut encoder,
                "tongxun_sse_events_published",
                "Events published to the SSE hub",
                stats.published,
            )?;
            counter(
                &mut encoder,
                "tongxun_sse_events_delivered",
                "Events queued to streams as they were published",
                stats.delivered,
            )?;
            counter(
                &mut encoder,
                "tongxun_sse_events_replayed",
                "Events replayed from history to resuming streams",
                stats.replayed,
            )?;
            counter(
                &mut encoder,
                "tongxun_sse_resyncs",
                "resync events sent to streams resuming from where history does not reach",
                stats.resyncs,
            )?;
            gauge(
                &mut encoder,
                "tongxun_sse_history_bytes",
                "Bytes the in-memory history holds now",
                to_i64(stats.history_bytes),
            )?;
        }
        #[cfg(feature = "redis")]
        if let Some(bus) = &self.bus {
            let state = bus.state();
            gauge(
                &mut encoder,
                "tongxun_redis_up",
                "1 while the last command reached Redis, else 0",
                i64::from(state.up),
            )?;
            counter(
                &mut encoder,
                "tongxun_redis_reconnects",
                "Times Redis was reached again after it was lost",
                state.reconnects,
            )?;
            counter(
                &mut encoder,
                "tongxun_redis_publish_failures",
                "Publishes that did not reach Redis",
                state.publish_failures,
            )?;
        }
        Ok(())
    }
}

#[cfg(feature = "ws")]
fn encode_ws(encoder: &mut DescriptorEncoder<'_>, hub: &crate::ws::WsHub) -> std::fmt::Result {
    let stats = hub.stats();
    let counters = hub.counters();
    gauge(
        encoder,
        "tongxun_ws_clients",
        "WebSocket hub clients connected now",
        to_i64(stats.clients),
    )?;
    counter(
        encoder,
        "tongxun_ws_connections",
        "WebSocket hub connections accepted",
        stats.connections,
    )?;
    counter(
        encoder,
        "tongxun_ws_upgrades_refused",
        "WebSocket hub upgrades refused (origin, auth, malformed, shutting down)",
        stats.upgrades_refused,
    )?;
    counter(
        encoder,
        "tongxun_ws_messages_received",
        "Messages received from WebSocket hub clients",
        counters.messages_received.load(Ordering::Relaxed),
    )?;
    counter(
        encoder,
        "tongxun_ws_messages_sent",
        "Messages written to WebSocket hub clients",
        counters.messages_sent.load(Ordering::Relaxed),
    )?;
    counter(
        encoder,
        "tongxun_ws_messages_dropped",
        "Messages dropped because a client's queue was full",
        stats.messages_dropped,
    )?;
    gauge(
        encoder,
        "tongxun_ws_queued_bytes",
        "Bytes the hub holds for its clients now",
        i64::try_from(stats.queued_bytes).unwrap_or(i64::MAX),
    )?;
    let mut family = encoder.encode_descriptor(
        "tongxun_ws_closes",
        "WebSocket hub connections ended, by close code (none: no close frame)",
        None,
        MetricType::Counter,
    )?;
    for (code, closes) in counters.closes_by_code() {
        ConstCounter::new(closes).encode(family.encode_family(&CodeLabel { code })?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Meters, Target};

    /// What the hooks of one acknowledged event cost, one thread and two at once (run with
    /// `cargo test --release -p tongxun --features metrics --lib hooks_cost -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn hooks_cost() {
        let meters = Meters::new();
        let ns = meters.namespace("/");
        let one_event = |ns: &super::NsMeters| {
            ns.received();
            ns.queued();
            ns.dequeued();
            let timer = ns.handling();
            ns.ack_answered(true);
            ns.emitted(Target::Socket);
            drop(timer);
        };
        const N: u32 = 2_000_000;
        let start = std::time::Instant::now();
        for _ in 0..N {
            one_event(&ns);
        }
        println!("one thread: {:?} per event", start.elapsed() / N);
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                let ns = ns.clone();
                s.spawn(move || {
                    for _ in 0..N {
                        one_event(&ns);
                    }
                });
            }
        });
        println!(
            "two threads, one namespace: {:?} per event",
            start.elapsed() / N
        );
    }
}
