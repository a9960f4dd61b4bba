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
    /// Text and binary messages received from clients.
    pub(crate) messages_received: AtomicU64,
    /// Text and binary messages written to clients.
    pub(crate) messages_sent: AtomicU64,
    /// Connections ended, by the close code of [`CLOSE_CODES`] they ended with (the last slot:
    /// any other code).
    closes: [AtomicU64; CLOSE_CODES.len() + 1],
}

/// The close codes the hub counts apart: what it sends and what RFC 6455 clients send
/// (`none`: no close frame at all; `1005`: a close frame without a code).
pub(crate) const CLOSE_CODES: [(Option<u16>, &str); 11] = [
    (Some(1000), "1000"),
    (Some(1001), "1001"),
    (Some(1002), "1002"),
    (Some(1003), "1003"),
    (Some(1005), "1005"),
    (Some(1007), "1007"),
    (Some(1008), "1008"),
    (Some(1009), "1009"),
    (Some(1011), "1011"),
    (Some(1013), "1013"),
    (None, "none"),
];

impl Counters {
    /// Counts a connection that ended with `code`.
    pub(crate) fn closed(&self, code: Option<u16>) {
        let slot = CLOSE_CODES
            .iter()
            .position(|(known, _)| *known == code)
            .unwrap_or(CLOSE_CODES.len());
        self.closes[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections ended, by close code; the app's own codes (and any other) as `other`.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn closes_by_code(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        CLOSE_CODES
            .iter()
            .map(|(_, text)| *text)
            .chain(std::iter::once("other"))
            .zip(self.closes.iter().map(|n| n.load(Ordering::Relaxed)))
    }

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
