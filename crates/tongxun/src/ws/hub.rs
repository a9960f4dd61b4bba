//! The hub's public face: routes, sending, stats and shutdown.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::get;

use super::client::WsClient;
use super::client_id::ClientId;
use super::config::WsConfig;
use super::error::WsSendError;
use super::handlers::Handlers;
use super::message::WsMessage;
use super::registry::HubInner;
use super::stats::WsStats;
use super::upgrade;

/// Extra time [`WsHub::shutdown`] gives disconnect handlers after the close timeout.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(500);

/// A plain WebSocket hub: its clients, their topics, and sending to them.
///
/// Clients connect at [`WsConfig::path`], the app handles their messages in Rust, and anyone
/// holding the hub sends to one client, a topic or everyone. See the [module docs](super) for
/// the wire conventions. Cloning is cheap; every clone is
/// the same hub.
///
/// # Examples
/// ```no_run
/// use tongxun::ws::{WsClient, WsConfig, WsHub, WsMessage};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = WsHub::builder()
///     .config(WsConfig::default())
///     .on_message(|client: WsClient, message: WsMessage| async move {
///         client.hub().broadcast(message);
///     })
///     .build();
/// let server = tongxun::Server::builder().ws(hub.clone()).build();
///
/// // From anywhere, such as a timer:
/// hub.publish("clock", "tick");
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WsHub {
    pub(crate) inner: Arc<HubInner>,
}

impl fmt::Debug for WsHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsHub")
            .field("path", &self.inner.config.path)
            .field("clients", &self.client_count())
            .finish_non_exhaustive()
    }
}

impl Default for WsHub {
    fn default() -> Self {
        Self::new(WsConfig::default())
    }
}

impl WsHub {
    /// Creates a hub with this configuration and no handlers.
    ///
    /// Messages from clients are ignored; the app sends with [`broadcast`](Self::broadcast),
    /// [`publish`](Self::publish) and [`send_to`](Self::send_to).
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsConfig, WsHub};
    ///
    /// let hub = WsHub::new(WsConfig::default());
    /// assert_eq!(hub.broadcast("nobody is listening"), 0);
    /// ```
    pub fn new(config: WsConfig) -> Self {
        Self::from_inner(Arc::new(HubInner::new(config, Handlers::default())))
    }

    pub(crate) fn from_inner(inner: Arc<HubInner>) -> Self {
        Self { inner }
    }

    /// Shares this hub's broadcasts and publishes with the hubs of the other nodes on `bus`
    /// (see `relay.rs`). The receiver fires once this node listens on the channel.
    #[cfg(feature = "redis")]
    pub(crate) fn share_through(
        &self,
        bus: &crate::bus::RedisBus,
    ) -> tokio::sync::oneshot::Receiver<()> {
        self.inner.share_through(bus)
    }

    /// The hub's configuration.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::ws::WsHub::default().config().path, "/ws");
    /// ```
    pub fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    /// The hub's route, `GET` [`WsConfig::path`].
    ///
    /// It answers with 101 and a WebSocket, or with 401, 403, 426 or 503 before any upgrade.
    /// [`Server`](crate::Server) mounts it for you; merge it into your own axum `Router`
    /// otherwise.
    ///
    /// # Examples
    /// ```
    /// let hub = tongxun::ws::WsHub::default();
    /// let app: axum::Router = axum::Router::new().merge(hub.router());
    /// ```
    ///
    /// # Panics
    /// When the configured path is not a valid axum route (it must start with `/`).
    pub fn router(&self) -> Router {
        let inner = self.inner.clone();
        Router::new().route(
            &self.inner.config.path,
            get(move |request: Request| upgrade::handle(inner.clone(), request)),
        )
    }

    /// Sends `message` to every client; returns how many clients of this node it is for.
    ///
    /// It is one append to the hub's broadcast log, whatever the number of clients: the
    /// payload is shared, not copied, and the call never waits for a client (see `docs/ws.md`,
    /// "Slow clients").
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsHub, WsMessage};
    ///
    /// let hub = WsHub::default();
    /// let update = WsMessage::json(&serde_json::json!({ "online": 3 })).unwrap();
    /// hub.broadcast(update);
    /// ```
    pub fn broadcast(&self, message: impl Into<WsMessage>) -> usize {
        self.inner.broadcast(&message.into(), None)
    }

    /// Sends `message` to every client but `except`; returns how many it is for here.
    ///
    /// # Examples
    /// ```
    /// # fn f(hub: tongxun::ws::WsHub, sender: tongxun::ws::ClientId) {
    /// hub.broadcast_except(sender, "someone else spoke");
    /// # }
    /// ```
    pub fn broadcast_except(&self, except: ClientId, message: impl Into<WsMessage>) -> usize {
        self.inner.broadcast(&message.into(), Some(except))
    }

    /// Queues `message` for every subscriber of `topic`; returns how many took it.
    ///
    /// # Examples
    /// ```
    /// let hub = tongxun::ws::WsHub::default();
    /// assert_eq!(hub.publish("prices", bytes::Bytes::from_static(b"\x01\x02")), 0);
    /// ```
    pub fn publish(&self, topic: &str, message: impl Into<WsMessage>) -> usize {
        self.inner.publish(topic, &message.into(), None)
    }

    /// Hands the clients' topic commands to `taker` (a bound cross-transport hub); `false` when
    /// another one has them already.
    #[cfg(feature = "sse")]
    pub(crate) fn take_topic_commands(&self, taker: Arc<dyn super::TopicCommands>) -> bool {
        self.inner.topic_commands.set(taker).is_ok()
    }

    /// [`publish`](Self::publish) to this node's subscribers only.
    #[cfg(feature = "sse")]
    pub(crate) fn publish_local(&self, topic: &str, message: &WsMessage) -> usize {
        self.inner.publish_local(topic, message, None)
    }

    /// Queues `message` for one client.
    ///
    /// # Examples
    /// ```
    /// # fn f(hub: tongxun::ws::WsHub, id: tongxun::ws::ClientId) {
    /// if hub.send_to(id, "just for you").is_err() { /* gone or too slow */ }
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`WsSendError::Closed`] when no such client is connected, [`WsSendError::QueueFull`]
    /// when its queue is full and the message was not queued.
    pub fn send_to(&self, id: ClientId, message: impl Into<WsMessage>) -> Result<(), WsSendError> {
        let client = self.inner.client(id).ok_or(WsSendError::Closed)?;
        self.inner.deliver(&client, message.into())
    }

    /// The handle of a connected client.
    ///
    /// # Examples
    /// ```
    /// # fn f(hub: tongxun::ws::WsHub, id: tongxun::ws::ClientId) {
    /// if let Some(client) = hub.client(id) {
    ///     client.close(1008, "kicked");
    /// }
    /// # }
    /// ```
    pub fn client(&self, id: ClientId) -> Option<WsClient> {
        self.inner.client(id).map(|shared| WsClient {
            hub: self.inner.clone(),
            shared,
        })
    }

    /// The ids of the connected clients, in no particular order.
    ///
    /// # Examples
    /// ```
    /// assert!(tongxun::ws::WsHub::default().client_ids().is_empty());
    /// ```
    pub fn client_ids(&self) -> Vec<ClientId> {
        self.inner.client_ids()
    }

    /// Number of connected clients.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::ws::WsHub::default().client_count(), 0);
    /// ```
    pub fn client_count(&self) -> usize {
        self.inner.client_count()
    }

    /// Number of clients subscribed to `topic`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::ws::WsHub::default().subscriber_count("news"), 0);
    /// ```
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.inner.subscriber_count(topic)
    }

    /// The atomics behind [`stats`](Self::stats), for the metrics.
    #[cfg(feature = "metrics")]
    pub(crate) fn counters(&self) -> &super::stats::Counters {
        &self.inner.counters
    }

    /// The hub's counters.
    ///
    /// Clients, queued messages, dead peers torn down, messages dropped, slow clients closed
    /// with 1013, and more: see [`WsStats`].
    ///
    /// # Examples
    /// ```
    /// let stats = tongxun::ws::WsHub::default().stats();
    /// assert_eq!(stats.messages_dropped + stats.slow_clients_closed, 0);
    /// ```
    pub fn stats(&self) -> WsStats {
        self.inner.stats()
    }

    /// Closes every client and waits until their connections are over.
    ///
    /// Each client is closed with 1001 (going away) after the messages already queued, new
    /// connections are refused with 503, and the call returns once every connection is over,
    /// or after [`WsConfig::close_timeout`] and a short margin.
    /// [`Server::serve`](crate::Server::serve) calls it on graceful shutdown. Calling it again
    /// waits again.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = tongxun::ws::WsHub::default();
    /// hub.shutdown().await; // no client connected: returns at once
    /// assert_eq!(hub.client_count(), 0);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    /// Cancelling the wait does not stop the shutdown: clients keep closing in the background.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.begin_shutdown();
        inner.tasks.close();
        let bound = inner.config.close_timeout.saturating_add(SHUTDOWN_MARGIN);
        if tokio::time::timeout(bound, inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = inner.tasks.len(),
                "websocket connections still open after the shutdown bound"
            );
        }
    }
}

impl WsClient {
    /// The hub this client belongs to.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// client.hub().broadcast("someone did something"); // everyone, this client included
    /// # }
    /// ```
    pub fn hub(&self) -> WsHub {
        WsHub::from_inner(self.hub.clone())
    }
}
