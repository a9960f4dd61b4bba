//! The hub's counters.

/// Counters of a hub, from [`SseHub::stats`](super::SseHub::stats).
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
    /// [`subscriber_queue`](super::SseConfig::subscriber_queue) events behind.
    pub lagged: u64,
    /// `resync` events sent: streams that asked to resume from where history cannot reach.
    pub resyncs: u64,
    /// Bytes the in-memory history of all topics holds now, at most
    /// [`max_history_bytes`](super::SseConfig::max_history_bytes).
    pub history_bytes: usize,
    /// Events dropped from history early, or never kept, to stay within
    /// [`max_history_bytes`](super::SseConfig::max_history_bytes).
    pub history_evicted: u64,
    /// Topics forgotten with their history: idle for
    /// [`topic_idle_timeout`](super::SseConfig::topic_idle_timeout), or by
    /// [`SseHub::forget`](super::SseHub::forget).
    pub topics_forgotten: u64,
    /// Publishes and streams refused because they asked for a new topic while the hub held
    /// [`max_live_topics`](super::SseConfig::max_live_topics).
    pub topics_refused: u64,
}
