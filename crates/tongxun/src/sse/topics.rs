//! The hub's topics: each one's history and subscribed streams under one lock, topics created
//! and forgotten within the hub's bounds, and the fan-out of an event to a topic's streams.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SseConfig;
use super::config::sweep_period;
use super::event::PublishError;
use super::history::{ForgottenMarks, HistoryBudget, MemoryHistory, Stored};
use super::resume::Start;
use crate::sync::lock;

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
pub(crate) struct Slot {
    pub(crate) queue: mpsc::Sender<Arc<Stored>>,
    pub(crate) cancel: CancellationToken,
}

/// The topics of one hub, at most [`SseConfig::max_live_topics`].
pub(crate) struct Topics {
    /// These topics, for the sweep task they start.
    this: Weak<Topics>,
    map: Mutex<HashMap<Arc<str>, Arc<Topic>>>,
    max_live_topics: usize,
    history_len: usize,
    max_history_bytes: usize,
    idle_timeout: Duration,
    /// Where topics created from now on start their sequence numbers. Raised, and read, under
    /// the `map` lock.
    forgotten: ForgottenMarks,
    /// The bytes all histories hold.
    pub(crate) history_budget: HistoryBudget,
    /// Ranks events across topics, see [`Stored::order`].
    next_order: AtomicU64,
    /// Whether the idle sweep runs (it starts with the first topic).
    sweeping: AtomicBool,
    /// Ends the sweep: the hub's shutdown.
    shutdown: CancellationToken,
    /// Set when a limit was hit and logged; the sweep clears them, so a limit is logged once per
    /// sweep interval rather than once per event.
    topic_limit_logged: AtomicBool,
    history_limit_logged: AtomicBool,
    /// Live deliveries, see [`SseStats`](super::SseStats) for these counters.
    pub(crate) delivered: AtomicU64,
    pub(crate) lagged: AtomicU64,
    pub(crate) history_evicted: AtomicU64,
    pub(crate) topics_forgotten: AtomicU64,
    pub(crate) topics_refused: AtomicU64,
    /// Every event of every topic, in each topic's order, for the [`Hub`](crate::hub::Hub)
    /// that feeds Socket.IO and WebSocket subscribers from this hub.
    tap: OnceLock<mpsc::Sender<Arc<Stored>>>,
    /// Set when the tap missed events (it was full, or Redis was away); the reader checks its
    /// topics against history once it has caught up, woken by `tap_wake`.
    tap_lost: AtomicBool,
    pub(crate) tap_wake: tokio::sync::Notify,
    /// Told each time the tap takes an event.
    pub(crate) tap_ready: tokio::sync::Notify,
}

/// Events the tap holds for its reader; past it an event is dropped, and the reader repairs
/// the gap from history at the topic's next event.
pub(crate) const TAP_QUEUE: usize = 8192;

impl Topics {
    /// No topics yet, within the bounds of `config`; the idle sweep stops at `shutdown`.
    pub(crate) fn new(config: &SseConfig, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            this: this.clone(),
            map: Mutex::default(),
            max_live_topics: config.max_live_topics,
            history_len: config.history_len,
            max_history_bytes: config.max_history_bytes,
            idle_timeout: config.topic_idle_timeout,
            forgotten: ForgottenMarks::new(),
            history_budget: HistoryBudget::new(config.max_history_bytes),
            next_order: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
            shutdown,
            topic_limit_logged: AtomicBool::new(false),
            history_limit_logged: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            lagged: AtomicU64::new(0),
            history_evicted: AtomicU64::new(0),
            topics_forgotten: AtomicU64::new(0),
            topics_refused: AtomicU64::new(0),
            tap: OnceLock::new(),
            tap_lost: AtomicBool::new(false),
            tap_wake: tokio::sync::Notify::new(),
            tap_ready: tokio::sync::Notify::new(),
        })
    }

    /// How many topics the hub holds now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Adds a stream to topic `name`; returns the topic, its last sequence number, and what
    /// its in-memory history holds after `position`, if one is given.
    pub(crate) fn register(
        &self,
        name: &str,
        subscriber: u64,
        slot: &Slot,
        position: Option<u64>,
    ) -> Result<(Arc<Topic>, Start), PublishError> {
        loop {
            let topic = self.topic(name)?;
            let mut state = lock(&topic.state);
            if state.removed {
                continue;
            }
            let last = state.history.last_seq();
            let replay = position.map(|from| state.history.replay_after(from));
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

    /// Records `frame` in topic `name`'s history and queues it for every stream on the topic;
    /// returns the topic's name and the event's sequence number.
    pub(crate) fn append(
        &self,
        name: &str,
        epoch: &Arc<str>,
        frame: Bytes,
    ) -> Result<(Arc<str>, u64), PublishError> {
        loop {
            let topic = self.topic(name)?;
            let mut state = lock(&topic.state);
            if state.removed {
                continue;
            }
            let order = self.next_order.fetch_add(1, Ordering::Relaxed);
            let (stored, dropped) =
                state
                    .history
                    .append(epoch, &topic.name, order, frame, &self.history_budget);
            state.last_active = Instant::now();
            // Under the topic's lock, so that the tap sees the topic's events in order; before
            // the streams, so that the feed is not woken behind all of them.
            self.tap_event(&stored);
            self.fan_out(&topic, &mut state, &stored);
            drop(state);
            if dropped > 0 {
                self.history_dropped(&topic.name, dropped);
            }
            return Ok((topic.name.clone(), stored.seq));
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

    /// Delivers an event that arrived from the shared history to this node's streams and tap.
    #[cfg(feature = "redis")]
    pub(crate) fn deliver_shared(&self, epoch: Arc<str>, topic: &str, seq: u64, frame: Bytes) {
        let local = lock(&self.map).get(topic).cloned();
        let stored = |name: Arc<str>| {
            Arc::new(Stored {
                epoch,
                topic: name,
                seq,
                order: self.next_order.fetch_add(1, Ordering::Relaxed),
                frame,
            })
        };
        let Some(topic) = local else {
            if self.tap.get().is_some() {
                self.tap_event(&stored(topic.into()));
            }
            return;
        };
        let stored = stored(topic.name.clone());
        let mut state = lock(&topic.state);
        if !state.removed {
            self.fan_out(&topic, &mut state, &stored);
        }
        drop(state);
        // Events come from one channel, in order: no lock needed to keep them so.
        self.tap_event(&stored);
    }

    /// Opens the tap: every event from now on, each topic's in order. Once per hub; `None`
    /// after the first call.
    pub(crate) fn open_tap(&self) -> Option<mpsc::Receiver<Arc<Stored>>> {
        let (sender, receiver) = mpsc::channel(TAP_QUEUE);
        self.tap.set(sender).ok()?;
        Some(receiver)
    }

    /// Offers `stored` to the tap, if one is open; drops it when the tap is full, and tells the
    /// reader to check its topics against history.
    fn tap_event(&self, stored: &Arc<Stored>) {
        let Some(tap) = self.tap.get() else {
            return;
        };
        if tap.try_send(stored.clone()).is_ok() {
            self.tap_ready.notify_one();
        } else if !self.tap_lost.load(Ordering::Relaxed) {
            tracing::warn!(
                topic = %stored.topic,
                seq = stored.seq,
                queue = TAP_QUEUE,
                "hub feed behind: events left to history, where it will read them"
            );
            self.mark_tap_lost();
        }
    }

    /// Events in the tap that its reader has not taken yet.
    pub(crate) fn tap_backlog(&self) -> usize {
        self.tap
            .get()
            .map_or(0, |tap| tap.max_capacity() - tap.capacity())
    }

    /// Tells the tap's reader that it missed events.
    pub(crate) fn mark_tap_lost(&self) {
        self.tap_lost.store(true, Ordering::Relaxed);
        self.tap_wake.notify_one();
    }

    /// Whether the tap missed events since the last call.
    pub(crate) fn take_tap_lost(&self) -> bool {
        self.tap_lost.swap(false, Ordering::Relaxed)
    }

    /// The topic's last sequence number and what its history holds after `after`.
    pub(crate) fn replay_after(&self, name: &str, after: u64) -> (u64, super::history::Replay) {
        use super::history::Replay;
        let topic = lock(&self.map).get(name).cloned();
        if let Some(topic) = topic {
            let state = lock(&topic.state);
            if !state.removed {
                return (state.history.last_seq(), state.history.replay_after(after));
            }
        }
        // Never published, or forgotten: a topic of this name starts past `base`.
        let base = self.forgotten.base(name);
        let replay = match after.cmp(&base) {
            std::cmp::Ordering::Equal => Replay::Events(Vec::new()),
            std::cmp::Ordering::Greater => Replay::Ahead,
            std::cmp::Ordering::Less => Replay::Behind,
        };
        (base, replay)
    }

    /// The topic named `name`, created if needed and the hub holds fewer than
    /// [`max_live_topics`](SseConfig::max_live_topics).
    fn topic(&self, name: &str) -> Result<Arc<Topic>, PublishError> {
        let mut topics = lock(&self.map);
        if let Some(topic) = topics.get(name) {
            return Ok(topic.clone());
        }
        let max = self.max_live_topics;
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
                history: MemoryHistory::new(self.history_len, base),
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
                max = self.max_history_bytes,
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
    pub(crate) fn forget(&self, name: &str) -> bool {
        let mut topics = lock(&self.map);
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
        let idle = self.idle_timeout;
        let mut topics = lock(&self.map);
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
        let period = sweep_period(self.idle_timeout);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let Some(topics) = this.upgrade() else { return };
                topics.sweep(Instant::now());
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
        let mut topics = lock(&self.map);
        let mut state = lock(&topic.state);
        if !state.removed && state.subscribers.is_empty() && state.history.is_untouched() {
            state.removed = true;
            topics.remove(&topic.name);
        }
    }
}

/// A stream's place in its topics until its [`SubscriberStream`](super::stream::SubscriberStream)
/// owns it: dropped before that, it takes the stream out of the topics again.
#[cfg(feature = "redis")]
pub(crate) struct Registration<'a> {
    topics: &'a Topics,
    subscriber: u64,
    registered: Vec<Arc<Topic>>,
}

#[cfg(feature = "redis")]
impl<'a> Registration<'a> {
    pub(crate) fn new(topics: &'a Topics, subscriber: u64) -> Self {
        Self {
            topics,
            subscriber,
            registered: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, topic: Arc<Topic>) {
        self.registered.push(topic);
    }

    /// The topics, now the stream's to leave.
    pub(crate) fn keep(mut self) -> Vec<Arc<Topic>> {
        std::mem::take(&mut self.registered)
    }
}

#[cfg(feature = "redis")]
impl Drop for Registration<'_> {
    fn drop(&mut self) {
        for topic in &self.registered {
            self.topics.unsubscribe(topic, self.subscriber);
        }
    }
}
