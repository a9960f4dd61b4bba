//! The hub's public face: publishing, opening streams, stats, forgetting and shutdown. The
//! topics are in `topics.rs`, where a stream starts in `resume.rs`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SseConfig;
use super::event::{ForgetError, PublishError, SseEvent, check_topic};
use super::id::EventId;
use super::resume::{Resume, Start};
use super::stats::SseStats;
use super::stream::{Opened, SubscriberStream};
use super::topics::{Slot, Topic, Topics};
use crate::sync::lock;

/// The longest [`SseHub::shutdown`] waits for the streams to end: one whose client stopped
/// reading cannot end before the kernel gives up on it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// A Server-Sent Events hub: topics with history, and streams that resume.
///
/// Events are published from Rust ([`publish`](Self::publish)) or over HTTP. Cloning is cheap: clones share the same topics and streams. See the [module
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

pub(crate) struct Inner {
    pub(crate) config: SseConfig,
    /// Names this history's lifetime; part of every id.
    pub(crate) epoch: Arc<str>,
    pub(crate) topics: Arc<Topics>,
    /// Cancelled by [`SseHub::shutdown`].
    pub(crate) shutdown: CancellationToken,
    /// Parent of the streams opened since the last [`SseHub::disconnect_all`].
    generation: Mutex<CancellationToken>,
    /// A token per open stream: [`SseHub::shutdown`] waits for them.
    streams: TaskTracker,
    next_subscriber: AtomicU64,
    published: AtomicU64,
    replayed: AtomicU64,
    resyncs: AtomicU64,
    /// The history in Redis, when shared with other nodes.
    #[cfg(feature = "redis")]
    pub(crate) shared: std::sync::OnceLock<super::shared::SharedHistory>,
}

/// Where a stream registered: the epoch of the history it reads, its topics, and where each
/// stands.
type Registered = (Arc<str>, Vec<Arc<Topic>>, Vec<Start>);

impl SseHub {
    /// Creates a hub with this configuration.
    ///
    /// Mount it with [`ServerBuilder::sse`](crate::ServerBuilder::sse) or serve
    /// [`router`](Self::router) yourself.
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
                topics: Topics::new(&config, shutdown.clone()),
                config,
                epoch: new_epoch().into(),
                shutdown,
                generation: Mutex::new(generation),
                streams: TaskTracker::new(),
                next_subscriber: AtomicU64::new(1),
                published: AtomicU64::new(0),
                replayed: AtomicU64::new(0),
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
                .append(topic, &frame, &new_epoch())
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
        let (topic, seq) = self.inner.topics.append(topic, &self.inner.epoch, frame)?;
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        Ok(EventId {
            epoch: self.inner.epoch.clone(),
            topic,
            seq,
        })
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
        let topics = &inner.topics;
        SseStats {
            subscribers: inner.streams.len(),
            topics: topics.len(),
            published: inner.published.load(Ordering::Relaxed),
            delivered: topics.delivered.load(Ordering::Relaxed),
            replayed: inner.replayed.load(Ordering::Relaxed),
            lagged: topics.lagged.load(Ordering::Relaxed),
            resyncs: inner.resyncs.load(Ordering::Relaxed),
            history_bytes: topics.history_budget.used(),
            history_evicted: topics.history_evicted.load(Ordering::Relaxed),
            topics_forgotten: topics.topics_forgotten.load(Ordering::Relaxed),
            topics_refused: topics.topics_refused.load(Ordering::Relaxed),
        }
    }

    /// How many topics the hub holds now.
    ///
    /// Those are the topics with history or subscribers, at most
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
        self.inner.topics.len()
    }

    /// Bytes the in-memory history of all topics holds now.
    ///
    /// At most [`SseConfig::max_history_bytes`]: each kept event's encoded `event:`/`data:`
    /// lines plus about 100 bytes of bookkeeping. Always 0 when the history is in Redis.
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
        self.inner.topics.history_budget.used()
    }

    /// Forgets `topic` now; returns whether the hub held anything of it.
    ///
    /// Its history is dropped and the streams on it end: they reconnect, and receive `resync`
    /// for this topic, never its old events. Use it when what the topic carried is gone for the app too, such as a chat room that
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
        if let Some(why) = crate::hub::topic_problem(topic) {
            return Err(ForgetError::InvalidTopic(why));
        }
        let held = self.inner.topics.forget(topic);
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

    /// Ends every open stream cleanly; returns how many were open.
    ///
    /// It is as if the connections had dropped: clients reconnect after the `retry` delay and
    /// resume from history. Use it to move clients to other nodes or make them authenticate
    /// again.
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
        let open = self.inner.streams.len();
        tracing::info!(streams = open, "disconnecting every sse stream");
        open
    }

    /// Shuts the hub down and waits until its streams have ended.
    ///
    /// Every stream ends cleanly after a `: server shutting down` comment, so that clients
    /// reconnect (to this server's successor) and resume; later streams end as soon as they
    /// open, and publishing fails with [`PublishError::ShutDown`]. It returns once every stream the hub served has ended, or after 5 seconds: a stream ends
    /// when its connection has taken the comment, which a client that stopped reading never
    /// does. [`Server::serve`](crate::Server::serve) calls it on graceful shutdown. Calling it
    /// again waits again.
    ///
    /// # Examples
    /// ```
    /// use tongxun::sse::{PublishError, SseConfig, SseEvent, SseHub};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = SseHub::new(SseConfig::default());
    /// hub.shutdown().await; // no stream open: returns at once
    /// assert_eq!(hub.stats().subscribers, 0);
    /// assert_eq!(hub.publish("a", SseEvent::new("x")).await, Err(PublishError::ShutDown));
    /// # });
    /// ```
    ///
    /// # Cancel safety
    /// Cancelling the wait does not stop the shutdown: the streams still end.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if !inner.shutdown.is_cancelled() {
            tracing::info!(streams = inner.streams.len(), "sse hub shutting down");
        }
        inner.shutdown.cancel();
        inner.streams.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, inner.streams.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                streams = inner.streams.len(),
                "sse streams still open after the shutdown bound"
            );
        }
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
        let (epoch, registered, starts) = self.register(topics, id, &slot, &resume).await?;
        drop(slot);
        let resume = resume.within(&epoch);
        let placement = resume.place(registered.iter().map(|topic| &topic.name), starts);

        let replayed = placement.replay.len();
        inner.replayed.fetch_add(replayed as u64, Ordering::Relaxed);
        inner
            .resyncs
            .fetch_add(placement.resync.len() as u64, Ordering::Relaxed);
        let opening = placement.opening(inner.config.retry.as_millis(), &epoch);
        tracing::debug!(
            subscriber = id,
            topics = ?topics,
            resumed = matches!(resume, Resume::From(_)),
            replayed,
            resync = ?placement.resync,
            "sse stream opened"
        );
        Ok(SubscriberStream::new(Opened {
            topics: inner.topics.clone(),
            open: inner.streams.token(),
            id,
            epoch,
            registered,
            positions: placement.positions,
            opening,
            replay: placement.replay,
            queue: receiver,
            cancel,
            shutdown: inner.shutdown.clone(),
            keep_alive: inner.config.keep_alive,
        }))
    }

    /// Registers stream `id` in each of `topics`, in the shared history when there is one.
    async fn register(
        &self,
        topics: &[String],
        id: u64,
        slot: &Slot,
        resume: &Resume<'_>,
    ) -> Result<Registered, PublishError> {
        #[cfg(feature = "redis")]
        if let Some(shared) = self.inner.shared.get() {
            return self.register_shared(shared, topics, id, slot, resume).await;
        }
        self.register_local(topics, id, slot, resume)
    }

    /// Registers in memory: each topic's replay is read under its lock as the stream joins it.
    fn register_local(
        &self,
        topics: &[String],
        id: u64,
        slot: &Slot,
        resume: &Resume<'_>,
    ) -> Result<Registered, PublishError> {
        let inner = &self.inner;
        let resume = resume.clone().within(&inner.epoch);
        let mut registered = Vec::with_capacity(topics.len());
        let mut starts = Vec::with_capacity(topics.len());
        for name in topics {
            match inner.topics.register(name, id, slot, resume.position(name)) {
                Ok((topic, start)) => {
                    registered.push(topic);
                    starts.push(start);
                }
                Err(e) => {
                    for topic in &registered {
                        inner.topics.unsubscribe(topic, id);
                    }
                    return Err(e);
                }
            }
        }
        Ok((inner.epoch.clone(), registered, starts))
    }

    /// Registers, then reads the replay from Redis: whatever is published while history is
    /// read arrives in the queue, and the stream skips what the replay already holds.
    #[cfg(feature = "redis")]
    async fn register_shared(
        &self,
        shared: &super::shared::SharedHistory,
        topics: &[String],
        id: u64,
        slot: &Slot,
        resume: &Resume<'_>,
    ) -> Result<Registered, PublishError> {
        let inner = &self.inner;
        let mut registration = super::topics::Registration::new(&inner.topics, id);
        for name in topics {
            // Dropping the registration on error takes the stream out of the others.
            let (topic, _) = inner.topics.register(name, id, slot, None)?;
            registration.push(topic);
        }
        let wanted: Vec<(&str, Option<u64>)> = topics
            .iter()
            .map(|name| (name.as_str(), resume.position(name)))
            .collect();
        // Dropping the future (the client left) or failing drops the registration.
        match shared.read(&wanted, resume.epoch(), &new_epoch()).await {
            Ok((epoch, reads)) => {
                let starts = reads
                    .into_iter()
                    .map(|read| (read.last, read.replay))
                    .collect();
                Ok((epoch, registration.keep(), starts))
            }
            Err(e) => {
                tracing::warn!(subscriber = id, "sse history unreachable: {e}");
                Err(PublishError::Unavailable)
            }
        }
    }
}

/// A short name for this run of the hub, different each time a hub is created; with Redis, the
/// name a new life of the shared history takes if none is there (Redis lost its data), fresh at
/// each call so that a new life never takes the name of an old one.
pub(super) fn new_epoch() -> String {
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

    #[tokio::test(start_paused = true)]
    async fn shutdown_returns_only_once_every_open_stream_has_ended() {
        use futures_util::{FutureExt, StreamExt};

        let hub = SseHub::default();
        let mut stream = hub.subscribe(&["a".to_owned()], None).await.unwrap();
        let mut shutdown = std::pin::pin!(hub.shutdown());
        assert!(
            shutdown.as_mut().now_or_never().is_none(),
            "a stream is open"
        );

        let mut sent = Vec::new();
        while let Some(Ok(bytes)) = stream.next().await {
            sent.push(bytes);
        }
        assert_eq!(sent.last().unwrap(), super::super::event::SHUTDOWN_COMMENT);
        assert!(
            shutdown.as_mut().now_or_never().is_none(),
            "the stream has sent its last bytes but its response is not over"
        );
        drop(stream);
        assert!(
            shutdown.as_mut().now_or_never().is_some(),
            "every stream ended"
        );
        assert_eq!(hub.stats().subscribers, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_up_on_a_stream_that_never_ends() {
        let hub = SseHub::default();
        let stream = hub.subscribe(&["a".to_owned()], None).await.unwrap();
        // Never polled, as the stream of a client that stopped reading.
        hub.shutdown().await;
        assert_eq!(hub.stats().subscribers, 1);
        drop(stream);
        assert_eq!(hub.stats().subscribers, 0);
    }
}
