//! Configuration of the WebSocket hub, with named defaults.

use std::time::Duration;

use super::auth::WsAuth;

/// Default path of the hub: `/ws`.
pub const DEFAULT_PATH: &str = "/ws";
/// Default interval between two server pings: 25 s, as the Socket.IO endpoint.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// Default time a client has to answer a ping (with a pong or any other frame): 20 s.
pub const DEFAULT_PONG_DEADLINE: Duration = Duration::from_secs(20);
/// Default largest accepted incoming message: 1 MB, as the Socket.IO endpoint.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1_000_000;
/// Default number of messages that may wait in one client's outgoing queue.
///
/// The queue's memory is allocated as it fills (and given back once it drains), so a large
/// bound costs an idle client nothing; queued broadcasts share their bytes.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Default number of bytes the hub may hold for one client: 4 MiB.
///
/// That is the client's queue plus the broadcasts it has not been sent yet (a broadcast's
/// payload is shared, but a client that stops reading keeps alive the ones the others are done
/// with). 4 MiB is room for a few messages of the largest size the hub accepts from a client
/// ([`DEFAULT_MAX_MESSAGE_SIZE`], 1 MB), and about what the kernel already buffers for a
/// loopback socket that is not read: a client that stops reading costs the server at most
/// about as much again. The count bound alone ([`DEFAULT_QUEUE_CAPACITY`]) let a client that
/// stopped reading hold 1,024 messages of any size, 1 GB of 1 MB messages.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;
/// Default policy when a client's outgoing queue is full: close it with 1013.
pub const DEFAULT_OVERFLOW_POLICY: OverflowPolicy = OverflowPolicy::Close;
/// Default time a closing handshake may take before the connection is dropped: 5 s.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of topics one client may be subscribed to at once.
pub const DEFAULT_MAX_TOPICS_PER_CLIENT: usize = 64;
/// Default size of the per-connection read buffer: 8 KiB.
///
/// tungstenite allocates it eagerly for every connection (its own default is 128 KiB); larger
/// messages still arrive, the buffer grows for them.
pub const DEFAULT_READ_BUFFER_SIZE: usize = 8 * 1024;
/// Default amount of outgoing frames buffered before they are written to the socket: 8 KiB.
pub const DEFAULT_WRITE_BUFFER_SIZE: usize = 8 * 1024;
/// Longest accepted topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// What happens when a message is sent to a client whose outgoing queue is full, in messages
/// ([`WsConfig::queue_capacity`]) or in bytes ([`WsConfig::max_queued_bytes`]).
///
/// A full queue means the client reads slower than it is sent to. Whatever the policy, the
/// sender never waits: the other clients are not slowed down. Broadcasts to every client go
/// through one shared log instead of each queue; a client too far behind it meets the same
/// policy (see `docs/ws.md`, "Slow clients").
///
/// # Examples
/// ```
/// use tongxun::ws::{OverflowPolicy, WsConfig};
///
/// let mut config = WsConfig::default();
/// assert_eq!(config.overflow_policy, OverflowPolicy::Close);
/// config.overflow_policy = OverflowPolicy::DropOldest; // a live feed: fresh data wins
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Discard the client's queue and close it with 1013 (try again later), counted in
    /// [`WsStats::slow_clients_closed`](super::WsStats::slow_clients_closed). Nothing is lost
    /// silently: the client knows it missed messages and can reconnect. The default.
    #[default]
    Close,
    /// Drop the oldest queued message to make room for the new one, counted in
    /// [`WsStats::messages_dropped`](super::WsStats::messages_dropped).
    DropOldest,
    /// Drop the new message, counted in
    /// [`WsStats::messages_dropped`](super::WsStats::messages_dropped); the sender gets
    /// [`WsSendError::QueueFull`](super::WsSendError::QueueFull).
    DropNewest,
}

/// Configuration of a [`WsHub`](super::WsHub).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use tongxun::ws::{WsAuth, WsConfig};
///
/// let mut config = WsConfig::default();
/// config.path = "/live".to_owned();
/// config.ping_interval = Duration::from_secs(10);
/// config.allowed_origins = vec!["https://example.com".to_owned()];
/// config.auth = WsAuth::token("s3cret");
/// assert_eq!(config.max_message_size, tongxun::ws::DEFAULT_MAX_MESSAGE_SIZE);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsConfig {
    /// Path of the hub's endpoint. Defaults to [`DEFAULT_PATH`] (`/ws`).
    pub path: String,
    /// Interval between two server pings; `Duration::ZERO` disables pings.
    /// Defaults to [`DEFAULT_PING_INTERVAL`] (25 s).
    pub ping_interval: Duration,
    /// Time a client has to answer a ping. A client that sends nothing at all (no pong, no
    /// message) within it is torn down without a close frame and counted in
    /// [`WsStats::dead_peers`](super::WsStats::dead_peers). Pings go out every
    /// `ping_interval`, never while one is waiting for its answer.
    /// Defaults to [`DEFAULT_PONG_DEADLINE`] (20 s).
    pub pong_deadline: Duration,
    /// Largest accepted incoming message (after reassembly of its fragments), in bytes. A larger
    /// message closes the connection with 1009 (message too big).
    /// Defaults to [`DEFAULT_MAX_MESSAGE_SIZE`] (1 MB).
    pub max_message_size: usize,
    /// Messages that may wait in one client's outgoing queue (at least 1); also the number of
    /// broadcasts the hub keeps for clients that are behind.
    /// Defaults to [`DEFAULT_QUEUE_CAPACITY`] (1024).
    pub queue_capacity: usize,
    /// Bytes the hub may hold for one client: the payloads of the messages in its queue and of
    /// the broadcasts it has not been sent yet (each counted in full for every client that has
    /// yet to receive it, though the buffer is shared). Past the bound the
    /// [`overflow_policy`](Self::overflow_policy) applies, as for
    /// [`queue_capacity`](Self::queue_capacity): with [`OverflowPolicy::Close`] the client is
    /// closed with 1013, with the drop policies its oldest messages are dropped until the new
    /// one fits ([`DropNewest`](OverflowPolicy::DropNewest) drops the new message instead, but
    /// the oldest broadcasts, as for the count bound).
    ///
    /// The hub acts once a client would hold more than seven eighths of the bound, and checks
    /// the broadcasts every eighth of it, so what it holds never exceeds the bound. A client
    /// that holds nothing still takes one message of any size. Not counted: the message being
    /// written and what the socket buffers ([`write_buffer_size`](Self::write_buffer_size),
    /// and the kernel's buffers). Defaults to [`DEFAULT_MAX_QUEUED_BYTES`] (4 MiB).
    pub max_queued_bytes: usize,
    /// What happens when a client's outgoing queue is full, in messages or in bytes.
    /// Defaults to [`DEFAULT_OVERFLOW_POLICY`] ([`OverflowPolicy::Close`]).
    pub overflow_policy: OverflowPolicy,
    /// Values of the `Origin` header a client may connect from, such as
    /// `https://example.com` (compared without regard to ASCII case or a trailing `/`). A
    /// request from any other origin is refused with 403 before the upgrade. A request without
    /// an `Origin` header (not a browser) is not affected. Empty: every origin is allowed.
    /// Defaults to empty.
    pub allowed_origins: Vec<String>,
    /// Subprotocols the hub speaks, in decreasing order of preference. The first one the client
    /// offers in `Sec-WebSocket-Protocol` is selected and returned in the handshake; when none
    /// matches, none is returned and the client decides whether to go on (browsers do not).
    /// Defaults to empty.
    pub subprotocols: Vec<String>,
    /// How a client proves who it is before the upgrade; a refusal is answered with 401.
    /// Defaults to [`WsAuth::none`] (everyone may connect).
    pub auth: WsAuth,
    /// Whether the hub handles the JSON text frames `{"subscribe":"topic"}` and
    /// `{"unsubscribe":"topic"}` itself (see the [module docs](super#topics-from-a-client)).
    /// When `false`, every frame goes to the `on_message` handler and only Rust code subscribes
    /// clients. Defaults to `true`.
    pub topic_commands: bool,
    /// Topics one client may be subscribed to at once.
    /// Defaults to [`DEFAULT_MAX_TOPICS_PER_CLIENT`] (64).
    pub max_topics_per_client: usize,
    /// Time a closing handshake may take (from the moment the hub decides to close, or the peer
    /// does) before the connection is dropped. [`WsHub::shutdown`](super::WsHub::shutdown)
    /// waits about this long at most. Defaults to [`DEFAULT_CLOSE_TIMEOUT`] (5 s).
    pub close_timeout: Duration,
    /// Size of the per-connection read buffer, allocated for every connection.
    /// Defaults to [`DEFAULT_READ_BUFFER_SIZE`] (8 KiB).
    pub read_buffer_size: usize,
    /// Outgoing bytes buffered before a write to the socket (frames are flushed anyway once the
    /// queue is empty). Defaults to [`DEFAULT_WRITE_BUFFER_SIZE`] (8 KiB).
    pub write_buffer_size: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_PATH.to_owned(),
            ping_interval: DEFAULT_PING_INTERVAL,
            pong_deadline: DEFAULT_PONG_DEADLINE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            overflow_policy: DEFAULT_OVERFLOW_POLICY,
            allowed_origins: Vec::new(),
            subprotocols: Vec::new(),
            auth: WsAuth::none(),
            topic_commands: true,
            max_topics_per_client: DEFAULT_MAX_TOPICS_PER_CLIENT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            write_buffer_size: DEFAULT_WRITE_BUFFER_SIZE,
        }
    }
}

impl WsConfig {
    /// The tungstenite settings of every connection.
    pub(crate) fn protocol_config(
        &self,
    ) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
        config.read_buffer_size = self.read_buffer_size.max(1);
        config.write_buffer_size = self.write_buffer_size;
        // Checked when a frame header arrives, before its payload is buffered.
        config.max_frame_size = Some(self.max_message_size);
        config.max_message_size = Some(self.max_message_size);
        config
    }

    /// Whether a request with this `Origin` header may connect.
    pub(crate) fn origin_allowed(&self, origin: Option<&[u8]>) -> bool {
        let Some(origin) = origin else { return true };
        if self.allowed_origins.is_empty() {
            return true;
        }
        let origin = trim_slash(origin);
        self.allowed_origins
            .iter()
            .any(|allowed| trim_slash(allowed.as_bytes()).eq_ignore_ascii_case(origin))
    }
}

/// The bounds of one client's outgoing messages, from the [`WsConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Messages in the queue.
    pub(crate) capacity: usize,
    /// Bytes held for the client: its queue and its unread part of the broadcast log.
    pub(crate) max_bytes: u64,
    pub(crate) policy: OverflowPolicy,
}

impl Limits {
    pub(crate) fn new(config: &WsConfig) -> Self {
        Self {
            capacity: config.queue_capacity.max(1),
            max_bytes: config.max_queued_bytes as u64,
            policy: config.overflow_policy,
        }
    }

    /// Broadcast bytes between two checks of how far behind the writers are: an eighth of the
    /// byte bound.
    pub(crate) fn check_every(&self) -> u64 {
        (self.max_bytes / 8).max(1)
    }

    /// Bytes a client may hold when something new is added: seven eighths of the bound, so that
    /// what is broadcast until the next check fits in the last eighth.
    pub(crate) fn admit(&self) -> u64 {
        self.max_bytes - self.check_every().min(self.max_bytes)
    }
}

fn trim_slash(origin: &[u8]) -> &[u8] {
    origin.strip_suffix(b"/").unwrap_or(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_origin_is_allowed_by_default() {
        let config = WsConfig::default();
        assert!(config.origin_allowed(Some(b"https://evil.example")));
        assert!(config.origin_allowed(None));
    }

    #[test]
    fn the_allowlist_ignores_case_and_a_trailing_slash() {
        let config = WsConfig {
            allowed_origins: vec!["https://App.example/".to_owned()],
            ..WsConfig::default()
        };
        assert!(config.origin_allowed(Some(b"https://app.example")));
        assert!(config.origin_allowed(Some(b"HTTPS://APP.EXAMPLE/")));
        assert!(!config.origin_allowed(Some(b"https://app.example.evil")));
        assert!(!config.origin_allowed(Some(b"null")));
        assert!(
            config.origin_allowed(None),
            "non-browser clients send no Origin"
        );
    }

    #[test]
    fn the_frame_limit_follows_the_message_limit() {
        let config = WsConfig {
            max_message_size: 1234,
            ..WsConfig::default()
        };
        let ws = config.protocol_config();
        assert_eq!(ws.max_frame_size, Some(1234));
        assert_eq!(ws.max_message_size, Some(1234));
        assert_eq!(ws.read_buffer_size, DEFAULT_READ_BUFFER_SIZE);
    }
}
