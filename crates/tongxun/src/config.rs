//! Server configuration with documented, Node-compatible defaults.

use std::time::Duration;

/// Default path of the Socket.IO endpoint, as in Node's `socket.io`.
pub const DEFAULT_PATH: &str = "/socket.io";
/// Default interval between two Engine.IO pings: 25 s, as in Node.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// Default time a client has to answer a ping: 20 s, as in Node.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Default largest accepted HTTP long-polling payload: 1 MB, as in Node (`maxHttpBufferSize`).
pub const DEFAULT_MAX_PAYLOAD: u64 = 1_000_000;
/// Default time a client has to join a namespace after opening a session: 45 s, as in Node.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
/// Default time the server waits for a client's acknowledgement: 5 s.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of packets that may wait in one client's outgoing queue.
///
/// socketioxide's own default is 128, which loses deliveries under bursts of broadcasts;
/// the queue's memory is allocated as it fills, so a larger bound costs an idle client nothing.
pub const DEFAULT_MAX_BUFFER_SIZE: usize = 1024;
/// Default size of a WebSocket connection's read buffer: 1 KiB.
///
/// Every connected client holds one, so it counts in the memory of idle connections
/// (socketioxide's default is 4 KiB). Small events fit many to a read; a message larger than the
/// buffer is still received whole, in reads of this size.
pub const DEFAULT_WS_READ_BUFFER_SIZE: usize = 1024;
/// Default number of received events that may wait for an ordered handler, per socket.
pub const DEFAULT_MAX_PENDING_EVENTS: usize = 10_000;
/// Default number of bytes of received events one client may have waiting for, or inside, its
/// handlers, over all its namespaces: 8 MiB, eight events of the largest size
/// [`DEFAULT_MAX_PAYLOAD`] lets through.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;
/// Default number of child namespaces of dynamic patterns (such as `/tenant/{id}`) that may
/// exist at once. A child namespace exists while a socket is connected to it.
pub const DEFAULT_MAX_DYNAMIC_NAMESPACES: usize = 10_000;
/// Default longest namespace name a client may join, in bytes.
pub const DEFAULT_MAX_NAMESPACE_LEN: usize = 256;
/// Default number of namespaces one client connection may join at once.
pub const DEFAULT_MAX_NAMESPACES_PER_CLIENT: usize = 64;
/// Default number of binary attachments one packet may announce: 10, as in Node's
/// `socket.io-parser` (`maxAttachments`).
pub const DEFAULT_MAX_BINARY_ATTACHMENTS: usize = 10;
/// Default largest sum of the binary attachments of one packet: 10 MB.
pub const DEFAULT_MAX_BINARY_BYTES: usize = 10_000_000;
/// Default time a client has to send every binary attachment its packet announced: 60 s.
pub const DEFAULT_BINARY_COMPLETION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time in-flight handlers get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection has to send a complete request head, and the longest a connection
/// with no request in flight is kept: 10 s.
///
/// Node keeps an idle keep-alive connection 5 s (`keepAliveTimeout`) and gives a request head
/// 60 s (`headersTimeout`); one timeout serves both here. A browser sends its whole head in one
/// write and reuses a connection within a second or two, or opens a new one, so 10 s costs a
/// real client nothing, while it lets a descriptor held by a client that sends nothing go six
/// times sooner than Node's `headersTimeout` would.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default interval between two HTTP/2 pings on a connection: 20 s.
pub const DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// Default time an HTTP/2 peer has to answer a ping: 20 s, as Engine.IO's ping timeout.
pub const DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default number of requests one HTTP/2 connection may have open at once: 100, the least
/// RFC 9113 recommends a server allow.
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// Configuration of a tongxun [`Server`](crate::Server).
///
/// Every field has a documented default matching Node's `socket.io` where one exists.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let mut config = tongxun::Config::default();
/// config.ping_interval = Duration::from_secs(10);
/// assert_eq!(config.path, "/socket.io");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Path of the Socket.IO endpoint. Defaults to [`DEFAULT_PATH`] (`/socket.io`).
    pub path: String,
    /// Interval between two pings. Defaults to [`DEFAULT_PING_INTERVAL`] (25 s).
    pub ping_interval: Duration,
    /// Time a client has to answer a ping before it is disconnected.
    /// Defaults to [`DEFAULT_PING_TIMEOUT`] (20 s).
    pub ping_timeout: Duration,
    /// Largest accepted payload of one HTTP long-polling request or WebSocket message, in bytes.
    /// Defaults to [`DEFAULT_MAX_PAYLOAD`] (1 MB).
    pub max_payload: u64,
    /// Time a client has to join a namespace after opening its session.
    /// Defaults to [`DEFAULT_CONNECT_TIMEOUT`] (45 s).
    pub connect_timeout: Duration,
    /// Time the server waits for a client's acknowledgement.
    /// Defaults to [`DEFAULT_ACK_TIMEOUT`] (5 s).
    pub ack_timeout: Duration,
    /// Packets that may wait in one client's outgoing queue.
    /// Defaults to [`DEFAULT_MAX_BUFFER_SIZE`] (1024).
    pub max_buffer_size: usize,
    /// Bytes a WebSocket connection reads at most per system call, and the buffer each holds.
    /// Defaults to [`DEFAULT_WS_READ_BUFFER_SIZE`] (1 KiB).
    pub ws_read_buffer_size: usize,
    /// Received events that may wait for an ordered handler, per socket. An event past this bound
    /// is refused: logged, and its acknowledgement (if requested) answered with an error.
    /// Defaults to [`DEFAULT_MAX_PENDING_EVENTS`] (10 000).
    pub max_pending_events: usize,
    /// Bytes of received events one client connection may have waiting for, or running in, its
    /// handlers, over all the namespaces it joined (each event counts its payload, attachments
    /// included, plus a fixed overhead). An event past this bound is refused as
    /// [`PendingOverflow`] says. An event arriving when nothing of its client is pending is
    /// always taken, whatever its size. Defaults to [`DEFAULT_MAX_PENDING_BYTES`] (8 MiB).
    pub max_pending_bytes: usize,
    /// What happens to an event past [`max_pending_events`](Self::max_pending_events) or
    /// [`max_pending_bytes`](Self::max_pending_bytes). Defaults to [`PendingOverflow::Refuse`].
    pub pending_overflow: PendingOverflow,
    /// Child namespaces of dynamic patterns that may exist at once; a client joining one more
    /// gets `connect_error` `"too many namespaces"`. A child namespace is removed when its last
    /// socket leaves. Defaults to [`DEFAULT_MAX_DYNAMIC_NAMESPACES`] (10 000).
    pub max_dynamic_namespaces: usize,
    /// Longest namespace name, in bytes, a client may join in a dynamic pattern; a longer one gets
    /// `connect_error` `"namespace name too long"`. Defaults to [`DEFAULT_MAX_NAMESPACE_LEN`] (256).
    pub max_namespace_len: usize,
    /// Namespaces one client connection may join at once; one more gets `connect_error`
    /// `"too many namespaces for this connection"`.
    /// Defaults to [`DEFAULT_MAX_NAMESPACES_PER_CLIENT`] (64).
    pub max_namespaces_per_client: usize,
    /// Binary attachments one packet may announce; a packet announcing more closes the
    /// connection. Defaults to [`DEFAULT_MAX_BINARY_ATTACHMENTS`] (10, as Node).
    pub max_binary_attachments: usize,
    /// Largest sum of one packet's binary attachments, in bytes; a larger one closes the
    /// connection. Defaults to [`DEFAULT_MAX_BINARY_BYTES`] (10 MB).
    pub max_binary_bytes: usize,
    /// Time a client has to send every attachment its binary packet announced: an attachment
    /// arriving later closes the connection. socketioxide checks it as each attachment arrives;
    /// a client that never sends one holds its one partial packet until it sends anything else
    /// (which closes the connection too) or its connection ends.
    /// Defaults to [`DEFAULT_BINARY_COMPLETION_TIMEOUT`] (60 s).
    pub binary_completion_timeout: Duration,
    /// How Socket.IO packets are encoded: JSON text with binary attachments, or MessagePack.
    /// Every client must use the same one (Node's `parser` option). The three binary limits
    /// above apply to [`Parser::Common`]; a MessagePack packet carries its binary data inline,
    /// in one message bounded by [`max_payload`](Self::max_payload).
    /// Defaults to [`Parser::Common`].
    pub parser: Parser,
    /// Whether clients speaking Engine.IO 3 and Socket.IO protocol v4 (`socket.io-client` 2.x)
    /// may connect, as Node's `allowEIO3`. When `false` their handshake is answered `400`
    /// `{"code":"5","message":"Unsupported protocol version"}`. `true` needs the `eio3`
    /// feature. Defaults to `false`, as in Node.
    pub allow_eio3: bool,
    /// Whether tongxun answers an acknowledgement that no handler answered: an event with no
    /// listener, or whose listeners all returned `Ok` without sending the ack. When `true`, the
    /// client's callback receives `{"error": "no handler for event \"...\""}` or
    /// `{"error": "event handled without an acknowledgement"}`. Defaults to `false`: the ack is
    /// left unanswered, as Node does, so that the client's own `timeout()`, `ackTimeout` and
    /// `retries` see a timeout. An ack is always answered with an error when the server failed
    /// (a payload that does not decode, a handler that returned an error or panicked).
    pub answer_unhandled_acks: bool,
    /// Whether the main namespace `/` accepts connections when no handler was registered for it.
    /// Defaults to `true`, as in Node.
    pub default_namespace: bool,
    /// Time in-flight handlers get to finish on shutdown.
    /// Defaults to [`DEFAULT_SHUTDOWN_TIMEOUT`] (10 s).
    pub shutdown_timeout: Duration,
    /// Whether [`Server::serve`](crate::Server::serve) turns Nagle's algorithm off on every
    /// connection (`TCP_NODELAY`), as Node does. Defaults to `true`: every transport already
    /// writes what is queued in one go, and waiting to coalesce small writes with the next ones
    /// only adds latency (tens of milliseconds when the peer delays its acknowledgements).
    pub tcp_nodelay: bool,
    /// Time a connection has to send a complete request head, from the moment it was accepted or
    /// its previous response was sent; also the longest a connection with no request in flight
    /// (an idle keep-alive connection, an HTTP/2 connection with no stream) is kept. The
    /// connection is then closed without an answer. A request being answered is never cut: a
    /// long-polling GET, an SSE stream or an upgraded WebSocket lasts as long as it needs.
    /// Defaults to [`DEFAULT_HEADER_READ_TIMEOUT`] (10 s).
    pub header_read_timeout: Duration,
    /// Interval between two pings the server sends on an HTTP/2 connection.
    /// Defaults to [`DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL`] (20 s).
    pub http2_keep_alive_interval: Duration,
    /// Time an HTTP/2 peer has to answer a ping before its connection is closed, so that a peer
    /// that vanished does not keep its streams open.
    /// Defaults to [`DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT`] (20 s).
    pub http2_keep_alive_timeout: Duration,
    /// Requests one HTTP/2 connection may have open at once; the peer is told in its settings
    /// and a stream past it is refused.
    /// Defaults to [`DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS`] (100).
    pub http2_max_concurrent_streams: u32,
    /// Redis to share rooms and broadcasts with other nodes through, such as
    /// `redis://127.0.0.1:6379`: Socket.IO's rooms, broadcasts and acks, the publishes of the
    /// WebSocket hub, and the SSE hub's history and publishes (see `docs/scaling.md`). Needs the
    /// `redis` feature. Defaults to `None`: one node, everything in memory.
    ///
    /// With [`redis_cluster`](Self::redis_cluster) it is the address of any node of a Redis
    /// Cluster.
    pub redis_url: Option<String>,
    /// Whether [`redis_url`](Self::redis_url) is a node of a Redis Cluster rather than a single
    /// Redis. The node only needs to be reachable when tongxun connects: the other masters are
    /// found through it, and the connection follows the cluster's topology from then on
    /// (failovers, slots moving). Everything tongxun shares works the same on a cluster; what
    /// changes is where it lives (see `docs/scaling.md`, "Redis Cluster"). Needs the `redis`
    /// feature; without `redis_url` it changes nothing. Defaults to `false`.
    ///
    /// # Examples
    /// ```no_run
    /// # #[cfg(feature = "redis")]
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), tongxun::BuildError> {
    /// let mut config = tongxun::Config::default();
    /// // Any node of the cluster: the others are found through it.
    /// config.redis_url = Some("redis://10.0.0.5:6379".to_owned());
    /// config.redis_cluster = true;
    /// let server = tongxun::Server::builder().config(config).try_build()?;
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "redis"))]
    /// # fn main() {}
    /// ```
    pub redis_cluster: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: DEFAULT_PATH.to_owned(),
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_payload: DEFAULT_MAX_PAYLOAD,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            max_buffer_size: DEFAULT_MAX_BUFFER_SIZE,
            ws_read_buffer_size: DEFAULT_WS_READ_BUFFER_SIZE,
            max_pending_events: DEFAULT_MAX_PENDING_EVENTS,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            pending_overflow: PendingOverflow::Refuse,
            max_dynamic_namespaces: DEFAULT_MAX_DYNAMIC_NAMESPACES,
            max_namespace_len: DEFAULT_MAX_NAMESPACE_LEN,
            max_namespaces_per_client: DEFAULT_MAX_NAMESPACES_PER_CLIENT,
            max_binary_attachments: DEFAULT_MAX_BINARY_ATTACHMENTS,
            max_binary_bytes: DEFAULT_MAX_BINARY_BYTES,
            binary_completion_timeout: DEFAULT_BINARY_COMPLETION_TIMEOUT,
            parser: Parser::Common,
            allow_eio3: false,
            answer_unhandled_acks: false,
            default_namespace: true,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tcp_nodelay: true,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            http2_keep_alive_interval: DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL,
            http2_keep_alive_timeout: DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT,
            http2_max_concurrent_streams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            redis_url: None,
            redis_cluster: false,
        }
    }
}

/// What happens to an event a client sends past its pending bounds
/// ([`Config::max_pending_events`], [`Config::max_pending_bytes`]).
///
/// Either way the server logs the client once per episode (at `warn`), not once per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PendingOverflow {
    /// The event is not handled; if the client asked for an acknowledgement, it is answered
    /// with `{"error": "too many pending events"}`. The client stays connected.
    #[default]
    Refuse,
    /// The event is not handled and the socket is disconnected from its namespace (the client
    /// sees `io server disconnect`).
    Disconnect,
}

/// How Socket.IO packets are encoded on the wire ([`Config::parser`]); the client must be built
/// with the matching parser.
///
/// # Examples
/// ```
/// # #[cfg(feature = "msgpack")] {
/// use tongxun::config::{Config, Parser};
///
/// // For clients built with `io(url, { parser: require("socket.io-msgpack-parser") })`.
/// let mut config = Config::default();
/// config.parser = Parser::MsgPack;
/// let server = tongxun::Server::builder().config(config).build();
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Parser {
    /// JSON text, each binary argument sent as an attachment after its packet: what every
    /// `socket.io-client` speaks unless told otherwise.
    #[default]
    Common,
    /// MessagePack, binary arguments inline: `socket.io-msgpack-parser` clients. Needs the
    /// `msgpack` feature.
    MsgPack,
}
