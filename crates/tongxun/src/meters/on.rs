//! The hooks, feeding a Prometheus registry the server owns.
//!
//! Per-namespace handles are resolved once, when the namespace is registered, so that an event,
//! an emit or an acknowledgement costs an atomic add on a handle the socket already holds,
//! never a label lookup. Values the server already keeps are read at scrape time
//! (`collect.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::{AckOutcome, Disconnect, HubTransport, Limit, Refusal, Target, Transport};
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
struct HubLabel {
    transport: HubTransport,
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
    pub(super) limits: [AtomicU64; Limit::ALL.len()],
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
    pub(crate) fn collect(&self, sources: super::collect::Sources) {
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
