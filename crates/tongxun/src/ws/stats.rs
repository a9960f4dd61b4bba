//! The hub's counters: the public snapshot and the atomics behind it.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a hub's counters, from [`WsHub::stats`](super::WsHub::stats).
///
/// # Examples
/// ```
/// let hub = tongxun::ws::WsHub::new(tongxun::ws::WsConfig::default());
/// let stats = hub.stats();
/// assert_eq!(stats.clients, 0);
/// assert_eq!(stats.dead_peers, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsStats {
    /// Clients connected now.
    pub clients: usize,
    /// Messages waiting in all outgoing queues now.
    pub queued_messages: usize,
    /// Bytes the hub holds for all clients now, as bounded per client by
    /// [`WsConfig::max_queued_bytes`](super::WsConfig::max_queued_bytes): a broadcast counts once for each client that has yet to
    /// be sent it (see [`WsClient::queued_bytes`](super::WsClient::queued_bytes)).
    pub queued_bytes: u64,
    /// Connections accepted since the hub was built.
    pub connections: u64,
    /// Upgrade requests refused (origin, auth, malformed handshake, shutting down).
    pub upgrades_refused: u64,
    /// Clients torn down because they did not answer a ping in time.
    pub dead_peers: u64,
    /// Messages dropped because a queue was full, in messages or in bytes
    /// ([`OverflowPolicy::DropOldest`](super::OverflowPolicy::DropOldest) or
    /// [`DropNewest`](super::OverflowPolicy::DropNewest)).
    pub messages_dropped: u64,
    /// Clients closed with 1013 because their queue was full, in messages or in bytes
    /// ([`OverflowPolicy::Close`](super::OverflowPolicy::Close)).
    pub slow_clients_closed: u64,
    /// Clients closed with 1009 because they sent a message over the size limit.
    pub oversized_messages: u64,
    /// Clients closed with 1002 or 1007 because they broke the protocol.
    pub protocol_errors: u64,
    /// Messages that reached this node's clients but not the other nodes', because the queue to
    /// Redis was full (only with [`Config::redis_url`](crate::Config::redis_url)).
    pub relay_dropped: u64,
}

/// Counters of the hub's life, read by [`WsHub::stats`](super::WsHub::stats).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) upgrades_refused: AtomicU64,
    pub(crate) dead_peers: AtomicU64,
    pub(crate) messages_dropped: AtomicU64,
    pub(crate) slow_clients_closed: AtomicU64,
    pub(crate) oversized_messages: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) relay_dropped: AtomicU64,
}

impl Counters {
    /// Adds one and returns the new total.
    pub(crate) fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The public snapshot: these counters and what the registry counted now.
    pub(crate) fn snapshot(
        &self,
        clients: usize,
        queued_messages: usize,
        queued_bytes: u64,
    ) -> WsStats {
        WsStats {
            clients,
            queued_messages,
            queued_bytes,
            connections: self.connections.load(Ordering::Relaxed),
            upgrades_refused: self.upgrades_refused.load(Ordering::Relaxed),
            dead_peers: self.dead_peers.load(Ordering::Relaxed),
            messages_dropped: self.messages_dropped.load(Ordering::Relaxed),
            slow_clients_closed: self.slow_clients_closed.load(Ordering::Relaxed),
            oversized_messages: self.oversized_messages.load(Ordering::Relaxed),
            protocol_errors: self.protocol_errors.load(Ordering::Relaxed),
            relay_dropped: self.relay_dropped.load(Ordering::Relaxed),
        }
    }
}
