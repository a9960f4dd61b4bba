//! The hub: topics, their subscribers, publishing and shutdown.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::{BufMut, BytesMut};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SseConfig;
use super::config::sweep_period;
use super::event::{
    ForgetError, PublishError, READY_EVENT, RESYNC_EVENT, SseEvent, check_topic, put_data,
    put_field,
};
use super::history::{ForgottenMarks, HistoryBudget, MemoryHistory, Replay, Stored};
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
    /// Bytes the in-memory history of all topics holds now, at most
    /// [`max_history_bytes`](SseConfig::max_history_bytes).
    pub history_bytes: usize,
    /// Events dropped from history early, or never kept, to stay within
    /// [`max_history_bytes`](SseConfig::max_history_bytes).
    pub history_evicted: u64,
    /// Topics forgotten with their history: idle for
    /// [`topic_idle_timeout`](SseConfig::topic_idle_timeout), or by [`SseHub::forget`].
    pub topics_forgotten: u64,
    /// Publishes and streams refused because they asked for a new topic while the hub held
    /// [`max_live_topics`](SseConfig::max_live_topics).
    pub topics_refused: u64,
}

pub(crate) struct Inner {
    pub(crate) config: SseConfig,
    /// This hub, for the sweep task it starts.
    this: Weak<Inner>,
    /// Names this history's lifetime; part of every id.
    pub(crate) epoch: Arc<str>,
    topics: Mutex<HashMap<Arc<str>, Arc<Topic>>>,
    /// Where topics created from now on start their sequence numbers. Raised, and read, under
    /// the `topics` lock.
    forgotten: ForgottenMarks,
    /// The bytes all histories hold.
    pub(crate) history_budget: HistoryBudget,
    /// Whether the idle sweep runs (it starts with the first topic).
    sweeping: AtomicBool,
    /// Set when a limit was hit and logged; the sweep clears them, so a limit is logged once per
    /// sweep interval rather than once per event.
    topic_limit_logged: AtomicBool,
    history_limit_logged: AtomicBool,
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
    history_evicted: AtomicU64,
    topics_forgotten: AtomicU64,
    topics_refused: AtomicU64,
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
    /// The last publish, or the moment the last subscriber left: idle since then when nobody
    /// listens.
    last_active: Instant,
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

/// Where a stream starts in one topic: the topic's last sequence number, and what its in-memory
/// history holds after the stream's position, if it gave one.
type Start = (u64, Option<Replay>);

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
        let history_budget = HistoryBudget::new(config.max_history_bytes);
        Self {
            inner: Arc::new_cyclic(|this| Inner {
                config,
                this: this.clone(),
                epoch: new_epoch().into(),
                topics: Mutex::default(),
                forgotten: ForgottenMarks::new(),
                history_budget,
                sweeping: AtomicBool::new(false),
                topic_limit_logged: AtomicBool::new(false),
                history_limit_logged: AtomicBool::new(false),
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
                history_evicted: AtomicU64::new(0),
                topics_forgotten: AtomicU64::new(0),
                topics_refused: AtomicU64::new(0),
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
    /// - [`PublishError::TooManyTopics`] when `topic` is new and the hub already holds
    ///   [`SseConfig::max_live_topics`] topics.
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
        let inner = &*self.inner;
        loop {
            let topic = inner.topic(topic)?;
            let mut state = lock(&topic.state);
            if state.removed {
                continue;
            }
            let order = inner.next_order.fetch_add(1, Ordering::Relaxed);
            let (stored, dropped) = state.history.append(
                &inner.epoch,
                &topic.name,
                order,
                frame,
                &inner.history_budget,
            );
            state.last_active = Instant::now();
            inner.fan_out(&topic, &mut state, &stored);
            drop(state);
            if dropped > 0 {
                inner.history_dropped(&topic.name, dropped);
            }
            inner.published.fetch_add(1, Ordering::Relaxed);
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
            history_bytes: inner.history_budget.used(),
            history_evicted: inner.history_evicted.load(Ordering::Relaxed),
            topics_forgotten: inner.topics_forgotten.load(Ordering::Relaxed),
            topics_refused: inner.topics_refused.load(Ordering::Relaxed),
        }
    }

    /// Topics the hub holds now: those with history or subscribers, at most
    /// [`SseConfig::max_live_topics`].
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{SseConfig, SseEvent, SseHub};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = SseHub::new(SseConfig::default());
    /// hub.publish("a", SseEvent::new("x")).await.unwrap();
    /// hub.publish("b", SseEvent::new("y")).await.unwrap();
    /// assert_eq!(hub.topic_count(), 2);
    /// # });
    /// ```
    pub fn topic_count(&self) -> usize {
        lock(&self.inner.topics).len()
    }

    /// Bytes the in-memory history of all topics holds now, at most
    /// [`SseConfig::max_history_bytes`]: each kept event's encoded `event:`/`data:` lines plus
    /// about 100 bytes of bookkeeping. Always 0 when the history is in Redis.
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{SseConfig, SseEvent, SseHub};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = SseHub::new(SseConfig::default());
    /// assert_eq!(hub.history_bytes(), 0);
    /// hub.publish("a", SseEvent::new("x".repeat(1000))).await.unwrap();
    /// assert!(hub.history_bytes() > 1000);
    /// hub.forget("a").await.unwrap();
    /// assert_eq!(hub.history_bytes(), 0);
    /// # });
    /// ```
    pub fn history_bytes(&self) -> usize {
        self.inner.history_budget.used()
    }

    /// Forgets `topic` now: drops its history and ends the streams on it (they reconnect, and
    /// receive `resync` for this topic, never its old events). Returns whether the hub held
    /// anything of it.
    ///
    /// Use it when what the topic carried is gone for the app too, such as a chat room that
    /// emptied. A later publish starts the topic afresh; an id from before still resumes with
    /// `resync`, because the new life's sequence numbers start past every old one. With
    /// [`Config::redis_url`](crate::Config::redis_url) it also deletes the topic's Redis stream,
    /// for every node; streams on other nodes end at the topic's next event and then resync.
    ///
    /// # Errors
    /// - [`ForgetError::InvalidTopic`] when `topic` breaks the [topic rules](super::check_topic).
    /// - [`ForgetError::Unavailable`] when the history is in Redis and Redis cannot be reached;
    ///   this node forgot the topic nonetheless.
    ///
    /// # Cancel safety
    /// This node forgets the topic before the first suspension; dropping the future later may
    /// leave the Redis stream until it expires.
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{SseConfig, SseEvent, SseHub};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = SseHub::new(SseConfig::default());
    /// let old = hub.publish("chat:room", SseEvent::new("secret")).await.unwrap();
    /// assert!(hub.forget("chat:room").await.unwrap());
    /// assert_eq!(hub.topic_count(), 0);
    /// let new = hub.publish("chat:room", SseEvent::new("hello")).await.unwrap();
    /// assert!(new.seq() > old.seq() + 1, "a resume from the old id cannot reach the new life");
    /// assert!(!hub.forget("unknown").await.unwrap());
    /// # });
    /// ```
    pub async fn forget(&self, topic: &str) -> Result<bool, ForgetError> {
        check_topic(topic).map_err(|e| match e {
            PublishError::InvalidTopic(why) => ForgetError::InvalidTopic(why),
            _ => ForgetError::InvalidTopic("it is invalid"),
        })?;
        let held = self.inner.forget(topic);
        #[cfg(feature = "redis")]
        if let Some(shared) = self.inner.shared.get() {
            let deleted = shared.forget(topic).await.map_err(|e| {
                tracing::warn!(%topic, "sse topic not deleted from Redis, it is unreachable: {e}");
                ForgetError::Unavailable
            })?;
            return Ok(held || deleted);
        }
        Ok(held)
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
    /// [`PublishError::TooManyTopics`] when a topic is new and the hub holds its maximum, and
    /// [`PublishError::Unavailable`] when the history is in Redis and Redis cannot be reached.
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
                let mut registered = Vec::with_capacity(topics.len());
                let mut starts = Vec::with_capacity(topics.len());
                for name in topics {
                    match inner.register(name, id, &slot, &resume) {
                        Ok((topic, start)) => {
                            registered.push(topic);
                            starts.push(start);
                        }
                        Err(e) => {
                            for topic in &registered {
                                inner.unsubscribe(topic, id);
                            }
                            return Err(e);
                        }
                    }
                }
                (inner.epoch.clone(), registered, starts)
            }
            #[cfg(feature = "redis")]
            Some(shared) => {
                // Registered first, so that whatever is published while history is read
                // arrives in the queue; the stream skips what the replay already holds.
                let no_history = Resume::Fresh;
                let mut registration = Registration {
                    hub: inner,
                    subscriber: id,
                    topics: Vec::with_capacity(topics.len()),
                };
                for name in topics {
                    // Dropping the registration on error takes the stream out of the others.
                    let (topic, _) = inner.register(name, id, &slot, &no_history)?;
                    registration.topics.push(topic);
                }
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
    ) -> Result<(Arc<Topic>, Start), PublishError> {
        loop {
            let topic = self.topic(name)?;
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
            return Ok((topic, (last, replay)));
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

    /// The topic named `name`, created if needed and the hub holds fewer than
    /// [`max_live_topics`](SseConfig::max_live_topics).
    fn topic(&self, name: &str) -> Result<Arc<Topic>, PublishError> {
        let mut topics = lock(&self.topics);
        if let Some(topic) = topics.get(name) {
            return Ok(topic.clone());
        }
        let max = self.config.max_live_topics;
        if topics.len() >= max {
            drop(topics);
            self.topics_refused.fetch_add(1, Ordering::Relaxed);
            if !self.topic_limit_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max,
                    topic = %name,
                    "sse hub holds its maximum of live topics, refusing new ones \
                     (logged once per sweep interval; see SseConfig::max_live_topics)"
                );
            }
            return Err(PublishError::TooManyTopics { max });
        }
        let name: Arc<str> = name.into();
        let base = self.forgotten.base(&name);
        let topic = Arc::new(Topic {
            name: name.clone(),
            state: Mutex::new(TopicState {
                history: MemoryHistory::new(self.config.history_len, base),
                subscribers: HashMap::new(),
                last_active: Instant::now(),
                removed: false,
            }),
        });
        topics.insert(name, topic.clone());
        if !self.sweeping.swap(true, Ordering::Relaxed) {
            self.start_sweep();
        }
        Ok(topic)
    }

    /// Counts and logs (once per sweep interval) events dropped for the byte limit.
    fn history_dropped(&self, topic: &str, dropped: usize) {
        self.history_evicted
            .fetch_add(dropped as u64, Ordering::Relaxed);
        if !self.history_limit_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max = self.config.max_history_bytes,
                %topic,
                "sse history holds its maximum of bytes, dropping the oldest events of the \
                 topics that publish (logged once per sweep interval; see \
                 SseConfig::max_history_bytes)"
            );
        }
    }

    /// Takes `topic` out of the map: its streams end, its history is dropped, and topics created
    /// from now on number their events past everything it ever had. The caller holds the map's
    /// lock and the topic's.
    fn remove(&self, topic: &Topic, state: &mut TopicState) {
        state.removed = true;
        for slot in state.subscribers.values() {
            slot.cancel.cancel();
        }
        state.subscribers.clear();
        state.history.clear(&self.history_budget);
        if !state.history.is_untouched() {
            // Every order taken so far is below `mark`, and every sequence number of this topic
            // is at most its last event's order plus one: its base was an order not yet taken
            // when it was created, and each event took a new order.
            let mark = self.next_order.fetch_add(1, Ordering::Relaxed) + 1;
            self.forgotten.raise(&topic.name, mark);
        }
        self.topics_forgotten.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(topic = %topic.name, "sse topic forgotten");
    }

    /// Forgets topic `name` now; whether there was one.
    fn forget(&self, name: &str) -> bool {
        let mut topics = lock(&self.topics);
        let Some(topic) = topics.remove(name) else {
            return false;
        };
        let mut state = lock(&topic.state);
        self.remove(&topic, &mut state);
        true
    }

    /// Forgets the topics nobody listened or published to for
    /// [`topic_idle_timeout`](SseConfig::topic_idle_timeout).
    fn sweep(&self, now: Instant) {
        let idle = self.config.topic_idle_timeout;
        let mut topics = lock(&self.topics);
        topics.retain(|_, topic| {
            let mut state = lock(&topic.state);
            let idle = state.subscribers.is_empty()
                && now.saturating_duration_since(state.last_active) >= idle;
            if idle {
                self.remove(topic, &mut state);
            }
            !idle
        });
        drop(topics);
        self.topic_limit_logged.store(false, Ordering::Relaxed);
        self.history_limit_logged.store(false, Ordering::Relaxed);
    }

    /// Starts the task that sweeps idle topics every [`sweep_period`], until the hub shuts down
    /// or is dropped. Outside a Tokio runtime it starts with the next topic instead.
    fn start_sweep(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Relaxed);
            return;
        };
        let this = self.this.clone();
        let shutdown = self.shutdown.clone();
        let period = sweep_period(self.config.topic_idle_timeout);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let Some(inner) = this.upgrade() else { return };
                inner.sweep(Instant::now());
            }
        });
    }

    /// Removes stream `subscriber` from `topic`, and the topic itself when nothing was ever
    /// published to it and nobody else listens, so that subscribing to made-up names leaves
    /// nothing behind. A topic with history is idle from now on if nobody else listens.
    pub(crate) fn unsubscribe(&self, topic: &Topic, subscriber: u64) {
        let unused = {
            let mut state = lock(&topic.state);
            state.subscribers.remove(&subscriber);
            if state.subscribers.is_empty() {
                state.last_active = Instant::now();
            }
            state.subscribers.is_empty() && state.history.is_untouched()
        };
        if !unused {
            return;
        }
        // Lock order: the map, then a topic.
        let mut topics = lock(&self.topics);
        let mut state = lock(&topic.state);
        if !state.removed && state.subscribers.is_empty() && state.history.is_untouched() {
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
