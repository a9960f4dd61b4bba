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
    /// WebSocket hub, and the SSE hub's history and publishes (see `docs/scaling.md`). Defaults
    /// to `None`: one node, everything in memory.
    #[cfg(feature = "redis")]
    pub redis_url: Option<String>,
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
            default_namespace: true,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tcp_nodelay: true,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            http2_keep_alive_interval: DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL,
            http2_keep_alive_timeout: DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT,
            http2_max_concurrent_streams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            #[cfg(feature = "redis")]
            redis_url: None,
        }
    }
}
