//! The hub: topics, their subscribers, publishing and shutdown.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{BufMut, BytesMut};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

use super::SseConfig;
use super::event::{
    PublishError, READY_EVENT, RESYNC_EVENT, SseEvent, check_topic, put_data, put_field,
};
use super::history::{MemoryHistory, Replay, Stored};
use super::id::{EventId, ParsedId, put_id_line};
use super::stream::SubscriberStream;

/// A Server-Sent Events hub: topics with history, streams that resume, publishing from Rust and
/// over HTTP.
///
/// Cloning is cheap: clones share the same topics and streams. See the [module
/// docs](crate::sse) for the protocol.
///
/// # Examples
/// ```no_run
/// use tongxun::sse::{SseConfig, SseEvent, SseHub};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = SseHub::new(SseConfig::default());
/// let ticker = hub.clone();
/// tokio::spawn(async move {
///     let mut n = 0u64;
///     loop {
///         tokio::time::sleep(std::time::Duration::from_secs(1)).await;
///         n += 1;
///         ticker.publish("ticker", SseEvent::new(n.to_string()).event("tick")).await.ok();
///     }
/// });
/// let server = tongxun::Server::builder().sse(hub).build();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SseHub {
    pub(crate) inner: Arc<Inner>,
}

impl Default for SseHub {
    /// A hub with [`SseConfig::default`].
    fn default() -> Self {
        Self::new(SseConfig::default())
    }
}

impl fmt::Debug for SseHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseHub")
            .field("path", &self.inner.config.path)
            .field("epoch", &self.inner.epoch)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Counters of a hub, from [`SseHub::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseStats {
    /// Streams open now.
    pub subscribers: usize,
    /// Topics that hold history or have subscribers.
    pub topics: usize,
    /// Events published since the hub was created.
    pub published: u64,
    /// Live deliveries: events queued to a stream as they were published.
    pub delivered: u64,
    /// Events replayed from history to resuming streams.
    pub replayed: u64,
    /// Streams disconnected because their subscriber fell
    /// [`subscriber_queue`](SseConfig::subscriber_queue) events behind.
    pub lagged: u64,
    /// `resync` events sent: streams that asked to resume from where history cannot reach.
    pub resyncs: u64,
}

pub(crate) struct Inner {
    pub(crate) config: SseConfig,
    /// Names this history's lifetime; part of every id.
    pub(crate) epoch: Arc<str>,
    topics: Mutex<HashMap<Arc<str>, Arc<Topic>>>,
    /// Cancelled by [`SseHub::shutdown`].
    pub(crate) shutdown: CancellationToken,
    /// Parent of the streams opened since the last [`SseHub::disconnect_all`].
    generation: Mutex<CancellationToken>,
    next_subscriber: AtomicU64,
    /// Ranks events across topics, see [`Stored::order`].
    next_order: AtomicU64,
    pub(crate) subscribers: AtomicUsize,
    published: AtomicU64,
    delivered: AtomicU64,
    replayed: AtomicU64,
    lagged: AtomicU64,
    resyncs: AtomicU64,
    /// The history in Redis, when shared with other nodes.
    #[cfg(feature = "redis")]
    pub(crate) shared: std::sync::OnceLock<super::shared::SharedHistory>,
}

/// One topic: its history and the streams subscribed to it, under one lock so that a stream
/// that replays history and then registers misses nothing and sees nothing twice.
pub(crate) struct Topic {
    pub(crate) name: Arc<str>,
    state: Mutex<TopicState>,
}

struct TopicState {
    /// Empty when the history is shared through Redis.
    history: MemoryHistory,
    subscribers: HashMap<u64, Slot>,
    /// Set when the topic left the hub's map; whoever holds it must look it up again.
    removed: bool,
}

/// A stream's registration in a topic.
struct Slot {
    queue: mpsc::Sender<Arc<Stored>>,
    cancel: CancellationToken,
}

/// Why a stream's position in some topics could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResyncReason {
    HistoryExceeded,
    UnknownId,
}

impl ResyncReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::HistoryExceeded => "history_exceeded",
            Self::UnknownId => "unknown_id",
        }
    }
}

/// A stream's place in its topics until its [`SubscriberStream`] owns it: dropped before that,
/// it takes the stream out of the topics again.
#[cfg(feature = "redis")]
struct Registration<'a> {
    hub: &'a Inner,
    subscriber: u64,
    topics: Vec<Arc<Topic>>,
}

#[cfg(feature = "redis")]
impl Registration<'_> {
    fn keep(mut self) -> Vec<Arc<Topic>> {
        std::mem::take(&mut self.topics)
    }
}

#[cfg(feature = "redis")]
impl Drop for Registration<'_> {
    fn drop(&mut self) {
        for topic in &self.topics {
            self.hub.unsubscribe(topic, self.subscriber);
        }
    }
}

/// What a subscriber asked to resume from.
#[derive(Clone)]
enum Resume<'a> {
    /// No id: start at the end of every topic.
    Fresh,
    /// A well-formed id (of the current epoch, once checked with [`within`](Self::within)).
    From(ParsedId<'a>),
    /// An id that is malformed or from another epoch.
    Unknown,
}

impl<'a> Resume<'a> {
    fn parse(last_event_id: Option<&'a str>, subscriber: u64) -> Self {
        match last_event_id.map(|text| (text, ParsedId::parse(text))) {
            None => Resume::Fresh,
            Some((_, Some(parsed))) => Resume::From(parsed),
            Some((text, None)) => {
                tracing::warn!(
                    subscriber,
                    last_event_id = ?text,
                    "malformed last event id, asking the client to resync"
                );
                Resume::Unknown
            }
        }
    }

    /// The same, but [`Unknown`](Self::Unknown) when the id is of another epoch (the stream
    /// then opens with a `resync`, which its log line shows).
    fn within(self, epoch: &str) -> Self {
        match self {
            Resume::From(parsed) if parsed.epoch != epoch => Resume::Unknown,
            other => other,
        }
    }

    #[cfg(feature = "redis")]
    fn epoch(&self) -> Option<&'a str> {
        match self {
            Resume::From(parsed) => Some(parsed.epoch),
            _ => None,
        }
    }

    fn position(&self, topic: &str) -> Option<u64> {
        match self {
            Resume::From(parsed) => parsed.position(topic),
            _ => None,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SseHub {
    /// A hub with this configuration. Mount it with
    /// [`ServerBuilder::sse`](crate::ServerBuilder::sse) or serve [`router`](Self::router)
    /// yourself.
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{SseConfig, SseHub};
    ///
    /// let hub = SseHub::new(SseConfig::default());
    /// assert_eq!(hub.stats().subscribers, 0);
    /// ```
    pub fn new(config: SseConfig) -> Self {
        let shutdown = CancellationToken::new();
        let generation = shutdown.child_token();
        Self {
            inner: Arc::new(Inner {
                config,
                epoch: new_epoch().into(),
                topics: Mutex::default(),
                shutdown,
                generation: Mutex::new(generation),
                next_subscriber: AtomicU64::new(1),
                next_order: AtomicU64::new(0),
                subscribers: AtomicUsize::new(0),
                published: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                replayed: AtomicU64::new(0),
                lagged: AtomicU64::new(0),
                resyncs: AtomicU64::new(0),
                #[cfg(feature = "redis")]
                shared: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Publishes `event` to `topic` and returns the id it was given.
    ///
    /// The event is encoded once; every subscribed stream shares those bytes and writes only its
    /// own `id:` line. A subscriber whose queue is full is disconnected rather than waited for
    /// (see the [module docs](crate::sse#slow-subscribers)), so publishing never waits for
    /// clients. In memory it completes without suspending; with
    /// [`Config::redis_url`](crate::Config::redis_url) it waits for Redis to record the event,
    /// and every node's subscribers get it from there.
    ///
    /// # Errors
    /// - [`PublishError::InvalidTopic`] when `topic` breaks the [topic
    ///   rules](super::check_topic).
    /// - [`PublishError::InvalidEventName`] or [`PublishError::ReservedEventName`] for a bad
    ///   event name.
    /// - [`PublishError::DataTooLarge`] when the data exceeds
    ///   [`SseConfig::max_data_len`].
    /// - [`PublishError::ShutDown`] after [`shutdown`](Self::shutdown).
    /// - [`PublishError::Unavailable`] when the history is in Redis and Redis cannot be reached.
    ///
    /// # Cancel safety
    /// Cancel-safe: the event is published entirely, or not at all if the future is dropped
    /// before it is first polled.
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{PublishError, SseConfig, SseEvent, SseHub};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = SseHub::new(SseConfig::default());
    /// let id = hub.publish("news", SseEvent::new("line one\nline two").event("headline")).await?;
    /// assert_eq!(id.seq(), 1);
    /// assert!(matches!(
    ///     hub.publish("bad topic", SseEvent::new("x")).await,
    ///     Err(PublishError::InvalidTopic(_))
    /// ));
    /// # Ok::<_, PublishError>(())
    /// # }).unwrap();
    /// ```
    pub async fn publish(&self, topic: &str, event: SseEvent) -> Result<EventId, PublishError> {
        self.publish_encoded(topic, &event).await
    }

    async fn publish_encoded(
        &self,
        topic: &str,
        event: &SseEvent,
    ) -> Result<EventId, PublishError> {
        check_topic(topic)?;
        let frame = event.encode(self.inner.config.max_data_len)?;
        if self.inner.shutdown.is_cancelled() {
            return Err(PublishError::ShutDown);
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = self.inner.shared.get() {
            // Delivered here, as on every node, when it comes back on the hub's channel.
            let (epoch, seq) = shared
                .append(topic, &frame, &self.inner.epoch)
                .await
                .map_err(|e| {
                    tracing::warn!(%topic, "sse event not published, Redis is unreachable: {e}");
                    PublishError::Unavailable
                })?;
            self.inner.published.fetch_add(1, Ordering::Relaxed);
            return Ok(EventId {
                epoch: epoch.into(),
                topic: topic.into(),
                seq,
            });
        }
        loop {
            let topic = self.inner.topic(topic);
            let mut state = lock(&topic.state);
            if state.removed {
                continue;
            }
            let order = self.inner.next_order.fetch_add(1, Ordering::Relaxed);
            let stored = state
                .history
                .append(&self.inner.epoch, &topic.name, order, frame);
            self.inner.fan_out(&topic, &mut state, &stored);
            drop(state);
            self.inner.published.fetch_add(1, Ordering::Relaxed);
            return Ok(EventId {
                epoch: self.inner.epoch.clone(),
                topic: topic.name.clone(),
                seq: stored.seq,
            });
        }
    }

    /// The hub's counters.
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{SseConfig, SseEvent, SseHub};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = SseHub::new(SseConfig::default());
    /// hub.publish("a", SseEvent::new("x")).await.unwrap();
    /// let stats = hub.stats();
    /// assert_eq!((stats.published, stats.topics, stats.subscribers), (1, 1, 0));
    /// # });
    /// ```
    pub fn stats(&self) -> SseStats {
        let inner = &self.inner;
        SseStats {
            subscribers: inner.subscribers.load(Ordering::Relaxed),
            topics: lock(&inner.topics).len(),
            published: inner.published.load(Ordering::Relaxed),
            delivered: inner.delivered.load(Ordering::Relaxed),
            replayed: inner.replayed.load(Ordering::Relaxed),
            lagged: inner.lagged.load(Ordering::Relaxed),
            resyncs: inner.resyncs.load(Ordering::Relaxed),
        }
    }

    /// Ends every open stream cleanly, as if the connections had dropped: clients reconnect
    /// after the `retry` delay and resume from history. Use it to move clients to other nodes
    /// or make them authenticate again. Returns how many streams were open.
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{SseConfig, SseHub};
    ///
    /// let hub = SseHub::new(SseConfig::default());
    /// assert_eq!(hub.disconnect_all(), 0);
    /// ```
    pub fn disconnect_all(&self) -> usize {
        let fresh = self.inner.shutdown.child_token();
        let old = std::mem::replace(&mut *lock(&self.inner.generation), fresh);
        old.cancel();
        let open = self.inner.subscribers.load(Ordering::Relaxed);
        tracing::info!(streams = open, "disconnecting every sse stream");
        open
    }

    /// Shuts the hub down: every stream ends cleanly after a `: server shutting down` comment,
    /// so that clients reconnect (to this server's successor) and resume; later streams end as
    /// soon as they open, and publishing fails with [`PublishError::ShutDown`].
    ///
    /// It returns at once; [`Server::serve`](crate::Server::serve) calls it on graceful
    /// shutdown and then waits for the connections to finish.
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{PublishError, SseConfig, SseEvent, SseHub};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = SseHub::new(SseConfig::default());
    /// hub.shutdown().await;
    /// assert_eq!(hub.publish("a", SseEvent::new("x")).await, Err(PublishError::ShutDown));
    /// # });
    /// ```
    pub async fn shutdown(&self) {
        if !self.inner.shutdown.is_cancelled() {
            tracing::info!(
                streams = self.inner.subscribers.load(Ordering::Relaxed),
                "sse hub shutting down"
            );
        }
        self.inner.shutdown.cancel();
    }

    /// Opens a stream on `topics` (validated, without duplicates), resuming from `last_event_id`
    /// when given.
    ///
    /// # Errors
    /// When the history is in Redis and Redis cannot be reached.
    pub(crate) async fn subscribe(
        &self,
        topics: &[String],
        last_event_id: Option<&str>,
    ) -> Result<SubscriberStream, PublishError> {
        let inner = &self.inner;
        let id = inner.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let cancel = lock(&inner.generation).child_token();
        let (queue, receiver) = mpsc::channel(inner.config.subscriber_queue.max(1));
        let slot = Slot {
            queue,
            cancel: cancel.clone(),
        };
        let resume = Resume::parse(last_event_id, id);

        #[cfg(feature = "redis")]
        let shared = inner.shared.get();
        #[cfg(not(feature = "redis"))]
        let shared: Option<std::convert::Infallible> = None;
        let (epoch, registered, starts) = match shared {
            None => {
                let resume = resume.clone().within(&inner.epoch);
                let (registered, starts): (Vec<_>, Vec<_>) = topics
                    .iter()
                    .map(|name| inner.register(name, id, &slot, &resume))
                    .unzip();
                (inner.epoch.clone(), registered, starts)
            }
            #[cfg(feature = "redis")]
            Some(shared) => {
                // Registered first, so that whatever is published while history is read
                // arrives in the queue; the stream skips what the replay already holds.
                let no_history = Resume::Fresh;
                let registration = Registration {
                    hub: inner,
                    subscriber: id,
                    topics: topics
                        .iter()
                        .map(|name| inner.register(name, id, &slot, &no_history).0)
                        .collect(),
                };
                let wanted: Vec<(&str, Option<u64>)> = topics
                    .iter()
                    .map(|name| (name.as_str(), resume.position(name)))
                    .collect();
                // Dropping the future (the client left) or failing drops the registration.
                match shared.read(&wanted, resume.epoch(), &inner.epoch).await {
                    Ok((epoch, reads)) => {
                        let starts = reads
                            .into_iter()
                            .map(|read| (read.last, read.replay))
                            .collect();
                        (epoch, registration.keep(), starts)
                    }
                    Err(e) => {
                        tracing::warn!(subscriber = id, "sse history unreachable: {e}");
                        return Err(PublishError::Unavailable);
                    }
                }
            }
        };
        drop(slot);
        let resume = resume.within(&epoch);

        let mut positions = Vec::with_capacity(topics.len());
        let mut replay = Vec::new();
        let mut resync: Vec<(ResyncReason, Vec<Arc<str>>)> = Vec::new();
        for (topic, (last, history)) in registered.iter().zip(starts) {
            let (position, reason) = match (&resume, history) {
                (Resume::Fresh, _) => (last, None),
                (Resume::Unknown, _) => (last, Some(ResyncReason::UnknownId)),
                (Resume::From(parsed), history) => match (parsed.position(&topic.name), history) {
                    // A topic added since the id was issued starts now.
                    (None, _) => (last, None),
                    (Some(from), Some(Replay::Events(events))) => {
                        replay.extend(events);
                        (from, None)
                    }
                    (Some(_), Some(Replay::Behind)) => (last, Some(ResyncReason::HistoryExceeded)),
                    (Some(_), Some(Replay::Ahead) | None) => (last, Some(ResyncReason::UnknownId)),
                },
            };
            if let Some(reason) = reason {
                match resync.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, names)) => names.push(topic.name.clone()),
                    None => resync.push((reason, vec![topic.name.clone()])),
                }
            }
            positions.push((topic.name.clone(), position));
        }
        // Each topic's events are in order already; this interleaves the topics as the events
        // were published, as they would have arrived live.
        replay.sort_by_key(|stored| stored.order);
        inner.subscribers.fetch_add(1, Ordering::Relaxed);
        inner
            .replayed
            .fetch_add(replay.len() as u64, Ordering::Relaxed);
        inner
            .resyncs
            .fetch_add(resync.len() as u64, Ordering::Relaxed);

        let opening = self.opening(&epoch, &positions, &resync);
        tracing::debug!(
            subscriber = id,
            topics = ?topics,
            resumed = matches!(resume, Resume::From(_)),
            replayed = replay.len(),
            resync = ?resync,
            "sse stream opened"
        );
        Ok(SubscriberStream::new(
            self.inner.clone(),
            id,
            epoch,
            registered,
            positions,
            opening,
            replay,
            receiver,
            cancel,
        ))
    }

    /// The first bytes of a stream: `retry`, any `resync` events, then `ready`, each carrying
    /// the stream's starting id. `resync` comes first so that a client that got `ready` also got
    /// the signal.
    fn opening(
        &self,
        epoch: &str,
        positions: &[(Arc<str>, u64)],
        resync: &[(ResyncReason, Vec<Arc<str>>)],
    ) -> BytesMut {
        let inner = &self.inner;
        let mut out = BytesMut::new();
        put_field(
            &mut out,
            "retry",
            &inner.config.retry.as_millis().to_string(),
        );
        for (reason, topics) in resync {
            put_id_line(&mut out, epoch, positions);
            put_field(&mut out, "event", RESYNC_EVENT);
            let names: Vec<&str> = topics.iter().map(|name| &**name).collect();
            let data = serde_json::json!({ "topics": names, "reason": reason.as_str() });
            put_data(&mut out, &data.to_string());
            out.put_u8(b'\n');
        }
        put_id_line(&mut out, epoch, positions);
        put_field(&mut out, "event", READY_EVENT);
        let names: Vec<&str> = positions.iter().map(|(name, _)| &**name).collect();
        put_data(
            &mut out,
            &serde_json::json!({ "topics": names }).to_string(),
        );
        out.put_u8(b'\n');
        out
    }
}

impl Inner {
    /// Adds a stream to topic `name`; returns the topic, its last sequence number, and what
    /// its in-memory history holds after the position `resume` gives for it, if any.
    fn register(
        &self,
        name: &str,
        subscriber: u64,
        slot: &Slot,
        resume: &Resume<'_>,
    ) -> (Arc<Topic>, (u64, Option<Replay>)) {
        loop {
            let topic = self.topic(name);
            let mut state = lock(&topic.state);
            if state.removed {
                continue;
            }
            let last = state.history.last_seq();
            let replay = resume
                .position(name)
                .map(|from| state.history.replay_after(from));
            state.subscribers.insert(
                subscriber,
                Slot {
                    queue: slot.queue.clone(),
                    cancel: slot.cancel.clone(),
                },
            );
            drop(state);
            return (topic, (last, replay));
        }
    }

    /// Queues `stored` for every stream on `topic`, disconnecting those that fell behind.
    fn fan_out(&self, topic: &Topic, state: &mut TopicState, stored: &Arc<Stored>) {
        let mut delivered = 0u64;
        let mut lagged = 0u64;
        state.subscribers.retain(|&subscriber, slot| {
            if slot.cancel.is_cancelled() {
                return false;
            }
            match slot.queue.try_send(stored.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(
                        subscriber,
                        topic = %topic.name,
                        queue = slot.queue.max_capacity(),
                        "subscriber fell behind, disconnecting it so that it resumes from history"
                    );
                    slot.cancel.cancel();
                    lagged += 1;
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        tracing::trace!(topic = %topic.name, seq = stored.seq, delivered, "event delivered");
        self.delivered.fetch_add(delivered, Ordering::Relaxed);
        self.lagged.fetch_add(lagged, Ordering::Relaxed);
    }

    /// Delivers an event that arrived from the shared history to this node's streams.
    #[cfg(feature = "redis")]
    pub(crate) fn deliver_shared(
        &self,
        epoch: Arc<str>,
        topic: &str,
        seq: u64,
        frame: bytes::Bytes,
    ) {
        let Some(topic) = lock(&self.topics).get(topic).cloned() else {
            return;
        };
        let mut state = lock(&topic.state);
        if state.removed {
            return;
        }
        let stored = Arc::new(Stored {
            epoch,
            topic: topic.name.clone(),
            seq,
            order: self.next_order.fetch_add(1, Ordering::Relaxed),
            frame,
        });
        self.fan_out(&topic, &mut state, &stored);
    }

    /// The topic named `name`, created if needed.
    fn topic(&self, name: &str) -> Arc<Topic> {
        let mut topics = lock(&self.topics);
        if let Some(topic) = topics.get(name) {
            return topic.clone();
        }
        let name: Arc<str> = name.into();
        let topic = Arc::new(Topic {
            name: name.clone(),
            state: Mutex::new(TopicState {
                history: MemoryHistory::new(self.config.history_len),
                subscribers: HashMap::new(),
                removed: false,
            }),
        });
        topics.insert(name, topic.clone());
        topic
    }

    /// Removes stream `subscriber` from `topic`, and the topic itself when nothing was ever
    /// published to it and nobody else listens, so that subscribing to made-up names leaves
    /// nothing behind.
    pub(crate) fn unsubscribe(&self, topic: &Topic, subscriber: u64) {
        let unused = {
            let mut state = lock(&topic.state);
            state.subscribers.remove(&subscriber);
            state.subscribers.is_empty() && state.history.last_seq() == 0
        };
        if !unused {
            return;
        }
        // Lock order: the map, then a topic.
        let mut topics = lock(&self.topics);
        let mut state = lock(&topic.state);
        if !state.removed && state.subscribers.is_empty() && state.history.last_seq() == 0 {
            state.removed = true;
            topics.remove(&topic.name);
        }
    }
}

/// A short name for this run of the hub, different each time a hub is created.
fn new_epoch() -> String {
    format!("{:08x}", crate::random_u64() & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_differ_between_hubs() {
        let a = new_epoch();
        let b = new_epoch();
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
