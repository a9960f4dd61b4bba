//! One node's feed of hub events to its Socket.IO and WebSocket subscribers.
//!
//! The SSE hub is the log: a publish is appended there (in memory, or in Redis for every node),
//! and each node reads every event back from it, each topic's in order, through its tap. The
//! feed relays each event to the topic's room in the bound namespaces and to the WebSocket
//! hub's subscribers of the topic, with the event's id. So every transport, on every node, sees
//! one numbering and one order, and a subscriber that comes back with the id of its last event
//! can be replayed from the same history.
//!
//! A subscriber that resumes is *waiting*: it is not in the room yet. Its replay is read from
//! history and sent to it alone; events the feed relays meanwhile are queued for it. Once the
//! replay and the queue are sent, it is ready at a position, and the feed itself puts it in
//! the room just before relaying the first event past that position. Between the two, under one
//! lock, no event can reach it twice or not at all. The replay is in `feed/replay.rs`.
//!
//! The feed notices a gap in a topic (an event lost on the way from Redis, or a tap too far
//! behind) by its sequence numbers, and repairs it from history before relaying further; when
//! history no longer holds the missing events, the topic's subscribers here get `resync`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Notify, mpsc};

mod replay;

use super::event::HubEvent;
use super::target::Target;
use crate::io::Io;
use crate::sse::{Replay, ResyncReason, SseHub, Stored};
use crate::sync::lock;

/// A node's feed of one SSE hub's events to the Socket.IO and WebSocket subscribers of a
/// [`Hub`](super::Hub). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Feed {
    inner: Arc<FeedInner>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("namespaces", &self.inner.io.as_ref().map(|(_, ns)| ns))
            .finish_non_exhaustive()
    }
}

struct FeedInner {
    sse: SseHub,
    io: Option<(Io, Vec<String>)>,
    #[cfg(feature = "ws")]
    ws: Option<crate::ws::WsHub>,
    state: Mutex<State>,
    /// Topics whose last event the feed remembers, beyond those with waiting subscribers.
    max_tracked: usize,
    /// Told when the tap holds [`TAP_LOW`] events or fewer: publishers waiting in
    /// [`Feed::keep_up`] go on.
    caught_up: Notify,
    /// Every event of the SSE hub, each topic's in order. Whoever holds it relays (nobody
    /// relays without it): the feed's task, or a publisher of this node right after its append
    /// ([`Feed::relay_now`]).
    tap: tokio::sync::Mutex<mpsc::Receiver<Arc<Stored>>>,
}

#[derive(Default)]
struct State {
    topics: HashMap<Arc<str>, Track>,
    /// Waiting subscribers over every topic, and the count at which the next sweep of the
    /// disconnected ones runs.
    waiting: usize,
    sweep_at: usize,
}

/// What the feed knows of one topic.
#[derive(Default)]
struct Track {
    /// The epoch and sequence number of the last event relayed here.
    last: Option<(Arc<str>, u64)>,
    waiting: Vec<Waiting>,
}

struct Waiting {
    target: Target,
    stage: Stage,
}

enum Stage {
    /// Its replay is being read and sent; what the feed relays meanwhile waits here.
    Replaying(Vec<Arc<HubEvent>>),
    /// It has every event up to this sequence number; it joins the room before the next.
    Ready(u64),
}

/// Where a subscriber resumes in one topic: the epoch and sequence number of its last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) topic: Arc<str>,
    pub(crate) epoch: Arc<str>,
    pub(crate) seq: u64,
}

/// What [`Feed::subscribe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subscribed {
    /// The subscriber had the topic already, or is resuming into it: nothing changed.
    Already,
    /// It receives the topic's events from now on.
    Live,
    /// It is replayed from history; [`Feed::resume`] sends the replay.
    Resuming,
}

impl Feed {
    /// A feed of `sse`'s events to these transports, or `None` when another hub has `sse`'s tap
    /// already.
    pub(crate) fn start(
        sse: SseHub,
        io: Option<(Io, Vec<String>)>,
        #[cfg(feature = "ws")] ws: Option<crate::ws::WsHub>,
    ) -> Option<Self> {
        let tap = sse.tap()?;
        let max_tracked = sse.inner.config.max_live_topics.max(1);
        let inner = Arc::new(FeedInner {
            sse,
            io,
            #[cfg(feature = "ws")]
            ws,
            state: Mutex::default(),
            max_tracked,
            caught_up: Notify::new(),
            tap: tokio::sync::Mutex::new(tap),
        });
        tokio::spawn(run(Arc::downgrade(&inner)));
        Some(Self { inner })
    }

    /// Subscribers held as resuming: replayed now, or waiting for the topic's next event to
    /// join it (disconnected ones until the next sweep).
    pub(crate) fn resuming(&self) -> usize {
        lock(&self.inner.state).waiting
    }

    /// Whether the feed relays to Socket.IO namespace `path`.
    pub(crate) fn serves(&self, path: &str) -> bool {
        self.inner
            .io
            .as_ref()
            .is_some_and(|(_, namespaces)| namespaces.iter().any(|ns| ns == path))
    }

    /// Subscribes `target` to `topic`, live from now or, with a `since` position, from there.
    /// A resume registers here; the caller then runs [`resume`](Self::resume).
    ///
    /// # Errors
    /// Why the subscriber cannot join the topic (too many topics, a reserved room).
    pub(crate) fn subscribe(
        &self,
        target: &Target,
        topic: &Arc<str>,
        since: Option<&Position>,
    ) -> Result<Subscribed, String> {
        let mut state = lock(&self.inner.state);
        let waiting = state
            .topics
            .get(topic)
            .is_some_and(|track| track.waiting.iter().any(|w| w.target.is(target)));
        if waiting || target.has(topic) {
            return Ok(Subscribed::Already);
        }
        if since.is_none() {
            target.join(topic)?;
            return Ok(Subscribed::Live);
        }
        target.can_join(topic)?;
        state.sweep_if_due();
        state
            .topics
            .entry(topic.clone())
            .or_default()
            .waiting
            .push(Waiting {
                target: target.clone(),
                stage: Stage::Replaying(Vec::new()),
            });
        state.waiting += 1;
        Ok(Subscribed::Resuming)
    }

    /// Leaves `topic`, or stops resuming into it.
    pub(crate) fn unsubscribe(&self, target: &Target, topic: &str) {
        let mut state = lock(&self.inner.state);
        if let Some(track) = state.topics.get_mut(topic) {
            let before = track.waiting.len();
            track.waiting.retain(|w| !w.target.is(target));
            let removed = before - track.waiting.len();
            state.waiting -= removed;
        }
        target.leave(topic);
    }

    /// Reads the history after `after`; while Redis is away, tries again every
    /// [`HISTORY_RETRY`] for [`HISTORY_PATIENCE`] (events can arrive again before the node
    /// counts Redis as back).
    async fn history_after(
        &self,
        topic: &str,
        epoch: &str,
        after: u64,
    ) -> Result<(Arc<str>, u64, Replay), crate::sse::PublishError> {
        let deadline = tokio::time::Instant::now() + HISTORY_PATIENCE;
        loop {
            let read = self.inner.sse.history_after(topic, epoch, after).await;
            if read.is_ok() || tokio::time::Instant::now() >= deadline {
                return read;
            }
            tokio::time::sleep(HISTORY_RETRY).await;
        }
    }

    fn decode(&self, stored: &Stored) -> Option<Arc<HubEvent>> {
        #[cfg(feature = "ws")]
        let ws = self.inner.ws.is_some();
        #[cfg(not(feature = "ws"))]
        let ws = false;
        let event = HubEvent::decode(stored, ws);
        if event.is_none() {
            tracing::warn!(topic = %stored.topic, seq = stored.seq, "unreadable hub event");
        }
        event.map(Arc::new)
    }
}

/// The longest a publish waits for the feed to catch up.
const RELAY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Events in the tap past which a publish of this node waits, and at or below which the feed
/// says it caught up.
const TAP_HIGH: usize = crate::sse::TAP_QUEUE / 2;
const TAP_LOW: usize = crate::sse::TAP_QUEUE / 4;

/// How long a read of the history is tried again while Redis is away, and how often.
const HISTORY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);
const HISTORY_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Relays what the tap gives whenever no publisher of this node does, until the feed is gone;
/// once it has caught up after the tap missed events, checks every topic against history.
async fn run(feed: Weak<FeedInner>) {
    let Some(topics) = feed.upgrade().map(|inner| inner.sse.inner.topics.clone()) else {
        return;
    };
    loop {
        tokio::select! {
            () = topics.tap_ready.notified() => {}
            () = topics.tap_wake.notified() => {}
        }
        let Some(inner) = feed.upgrade() else { return };
        let feed = Feed { inner };
        // Held while relaying, the catch-up included: one relays at a time, in order.
        let mut tap = feed.inner.tap.lock().await;
        if !feed.drain_tap(&mut tap).await {
            return;
        }
        if topics.take_tap_lost() {
            feed.catch_up().await;
        }
    }
}

impl Feed {
    /// Relays what the tap holds, in its order; `false` once the tap is closed.
    async fn drain_tap(&self, tap: &mut mpsc::Receiver<Arc<Stored>>) -> bool {
        loop {
            let stored = match tap.try_recv() {
                Ok(stored) => stored,
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            };
            if let Some(event) = self.decode(&stored) {
                self.relay(event).await;
            }
            if tap.len() <= TAP_LOW {
                self.inner.caught_up.notify_waiters();
            }
        }
    }

    /// Relays, in the publisher's own task, what the tap holds right after this node appended
    /// an event, unless someone else relays already (who then relays it too): the common case
    /// costs no hop to another task. Only with the history in memory, where the event is in
    /// the tap once appended.
    pub(crate) async fn relay_now(&self) {
        if self.inner.sse.is_shared() {
            return;
        }
        if let Ok(mut tap) = self.inner.tap.try_lock() {
            self.drain_tap(&mut tap).await;
        }
    }

    /// Relays one event from the tap, after repairing any gap before it.
    async fn relay(&self, event: Arc<HubEvent>) {
        enum Before {
            Nothing,
            Duplicate,
            Repair(u64),
            NewEpoch,
        }
        let before = {
            let mut state = lock(&self.inner.state);
            let track = state.track(&event.topic, self.inner.max_tracked);
            match &track.last {
                Some((epoch, last)) if *epoch == event.epoch => {
                    if event.seq <= *last {
                        Before::Duplicate // relayed already, by a repair
                    } else if event.seq > last + 1 {
                        Before::Repair(*last)
                    } else {
                        Before::Nothing
                    }
                }
                // The history started a new life: nobody's position holds in it.
                Some(_) => Before::NewEpoch,
                // Nothing relayed here yet: repair only for a subscriber ready at a position.
                None => track
                    .waiting
                    .iter()
                    .filter_map(|w| match w.stage {
                        Stage::Ready(seq) if seq > 0 && seq + 1 < event.seq => Some(seq),
                        _ => None,
                    })
                    .min()
                    .map_or(Before::Nothing, Before::Repair),
            }
        };
        match before {
            Before::Nothing => {}
            Before::Duplicate => return,
            Before::Repair(from) => self.repair(&event, from).await,
            Before::NewEpoch => self.resync_all(&event.topic, ResyncReason::UnknownId).await,
        }
        self.deliver(&event).await;
    }

    /// Relays from history what every known topic published after its last event here.
    async fn catch_up(&self) {
        let known: Vec<(Arc<str>, Arc<str>, u64)> = lock(&self.inner.state)
            .topics
            .iter()
            .filter_map(|(topic, track)| {
                let (epoch, last) = track.last.clone()?;
                Some((topic.clone(), epoch, last))
            })
            .collect();
        tracing::debug!(
            topics = known.len(),
            "hub feed reading what it missed from history"
        );
        for (topic, epoch, last) in known {
            match self.history_after(&topic, &epoch, last).await {
                Ok((current, _, Replay::Events(events))) if current == epoch => {
                    for stored in &events {
                        if let Some(missed) = self.decode(stored) {
                            self.relay(missed).await;
                        }
                    }
                }
                Ok(_) => self.resync_all(&topic, ResyncReason::HistoryExceeded).await,
                Err(_) => {
                    self.resync_all(&topic, ResyncReason::HistoryUnavailable)
                        .await
                }
            }
        }
    }

    /// Relays the events of `event`'s topic after `from` and before `event`, from history.
    async fn repair(&self, event: &HubEvent, from: u64) {
        let topic = &event.topic;
        let read = self.history_after(topic, &event.epoch, from).await;
        match read {
            Ok((epoch, _, Replay::Events(events))) if epoch == event.epoch => {
                tracing::debug!(%topic, from, to = event.seq, "hub feed repaired a gap from history");
                for stored in events.iter().filter(|s| s.seq < event.seq) {
                    if let Some(missed) = self.decode(stored) {
                        self.deliver(&missed).await;
                    }
                }
            }
            Ok(_) => self.resync_all(topic, ResyncReason::HistoryExceeded).await,
            Err(_) => {
                self.resync_all(topic, ResyncReason::HistoryUnavailable)
                    .await
            }
        }
    }

    /// Hands over the waiting subscribers due at `event`, then sends it to the room and the
    /// WebSocket subscribers of its topic.
    async fn deliver(&self, event: &Arc<HubEvent>) {
        {
            let mut state = lock(&self.inner.state);
            let track = state.track(&event.topic, self.inner.max_tracked);
            let mut handed = 0;
            track.waiting.retain_mut(|waiting| match &mut waiting.stage {
                Stage::Replaying(queue) => {
                    queue.push(event.clone());
                    true
                }
                Stage::Ready(sent) if event.seq <= *sent => true,
                Stage::Ready(_) => {
                    if let Err(e) = waiting.target.join(&event.topic) {
                        tracing::debug!(topic = %event.topic, "resumed subscriber not joined: {e}");
                    }
                    handed += 1;
                    false
                }
            });
            track.last = Some((event.epoch.clone(), event.seq));
            state.waiting -= handed;
        }
        self.emit(event).await;
    }

    /// Waits while the feed has more than half its tap to relay, for [`RELAY_WAIT`] at most: a
    /// publisher of this node never runs so far ahead of the feed that the tap overflows, yet
    /// publishes in bursts that the feed relays in batches.
    pub(crate) async fn keep_up(&self) {
        let topics = &self.inner.sse.inner.topics;
        let deadline = tokio::time::Instant::now() + RELAY_WAIT;
        while topics.tap_backlog() > TAP_HIGH {
            let caught_up = self.inner.caught_up.notified();
            if topics.tap_backlog() <= TAP_HIGH {
                return;
            }
            if tokio::time::timeout_at(deadline, caught_up).await.is_err() {
                return;
            }
        }
    }

    /// Sends `event` to this node's subscribers of its topic: the WebSocket ones first, which
    /// take a queue push each, then the Socket.IO room, which serializes once.
    async fn emit(&self, event: &HubEvent) {
        #[cfg(feature = "ws")]
        if let (Some(ws), Some(message)) = (&self.inner.ws, &event.ws) {
            ws.publish_local(&event.topic, message);
        }
        if let Some((io, namespaces)) = &self.inner.io
            && event.for_socketio
        {
            let args = (&event.data, event.meta());
            for path in namespaces {
                let Some(ns) = io.of(path) else { continue };
                let room = ns.within(event.topic.to_string()).local();
                if let Err(e) = room.emit(&event.event, &args).await {
                    let e = crate::error::Chain(&e);
                    tracing::warn!(topic = %event.topic, ns = %path, "hub event not sent to Socket.IO: {e}");
                }
            }
        }
    }

    /// Tells every subscriber of `topic` here that its position is lost.
    async fn resync_all(&self, topic: &Arc<str>, reason: ResyncReason) {
        tracing::warn!(%topic, reason = reason.as_str(), "hub subscribers of a topic must resync");
        {
            let mut state = lock(&self.inner.state);
            if let Some(track) = state.topics.get_mut(topic) {
                for waiting in &mut track.waiting {
                    // A replay in progress finds the gap in its queue and resyncs by itself.
                    if let Stage::Ready(sent) = &mut waiting.stage {
                        waiting.target.resync(topic, reason);
                        *sent = 0;
                    }
                }
                track.last = None;
            }
        }
        if let Some((io, namespaces)) = &self.inner.io {
            let data = super::target::resync_data(topic, reason);
            for path in namespaces {
                if let Some(ns) = io.of(path) {
                    let room = ns.within(topic.to_string()).local();
                    room.emit("resync", &data).await.ok();
                }
            }
        }
        #[cfg(feature = "ws")]
        if let Some(ws) = &self.inner.ws {
            ws.publish_local(topic, &super::target::ws_resync(topic, reason));
        }
    }
}

impl State {
    /// The track of `topic`, created if needed; past `max` tracks, those with nobody waiting
    /// are forgotten first (they only lose gap repair until their next event).
    fn track(&mut self, topic: &Arc<str>, max: usize) -> &mut Track {
        if !self.topics.contains_key(topic) && self.topics.len() >= max {
            self.topics.retain(|_, track| !track.waiting.is_empty());
        }
        self.topics.entry(topic.clone()).or_default()
    }

    fn waiting_mut(&mut self, topic: &str, target: &Target) -> Option<&mut Waiting> {
        self.topics
            .get_mut(topic)?
            .waiting
            .iter_mut()
            .find(|w| w.target.is(target))
    }

    /// Drops the waiting subscribers that disconnected, each time their count doubled since
    /// the last sweep: a topic that never publishes again cannot keep them.
    fn sweep_if_due(&mut self) {
        if self.waiting < self.sweep_at {
            return;
        }
        let mut left = 0;
        self.topics.retain(|_, track| {
            track.waiting.retain(|w| w.target.connected());
            left += track.waiting.len();
            !track.waiting.is_empty() || track.last.is_some()
        });
        self.waiting = left;
        self.sweep_at = (left * 2).max(64);
    }
}
