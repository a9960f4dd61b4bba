//! The hub: its handlers, the registry of clients and topics, fan-out, stats and shutdown.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use futures_util::future::BoxFuture;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::task::TaskTracker;

use super::client::{ClientId, ClientShared, Enqueued, WsClient, close_frame};
use super::config::{MAX_TOPIC_LEN, WsConfig};
use super::connection::WsDisconnectReason;
use super::error::{SubscribeError, WsSendError};
use super::message::WsMessage;
use super::upgrade;
use crate::IntoHandlerResult;

/// Extra time [`WsHub::shutdown`] gives disconnect handlers after the close timeout.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(500);

pub(crate) type HandlerResult = BoxFuture<'static, Result<(), String>>;
type ConnectHandler = Arc<dyn Fn(WsClient) -> HandlerResult + Send + Sync>;
type MessageHandler = Arc<dyn Fn(WsClient, WsMessage) -> HandlerResult + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(WsClient, WsDisconnectReason) -> HandlerResult + Send + Sync>;

#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) on_connect: Option<ConnectHandler>,
    pub(crate) on_message: Option<MessageHandler>,
    pub(crate) on_disconnect: Option<DisconnectHandler>,
}

/// Counters of the hub's life, read by [`WsHub::stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) upgrades_refused: AtomicU64,
    pub(crate) dead_peers: AtomicU64,
    pub(crate) messages_dropped: AtomicU64,
    pub(crate) slow_clients_closed: AtomicU64,
    pub(crate) oversized_messages: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
}

impl Counters {
    /// Adds one and returns the new total.
    pub(crate) fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

type Subscribers = HashMap<ClientId, Arc<ClientShared>>;

pub(crate) struct HubInner {
    pub(crate) config: WsConfig,
    pub(crate) handlers: Handlers,
    clients: RwLock<Subscribers>,
    topics: RwLock<HashMap<Arc<str>, Subscribers>>,
    next_id: AtomicU64,
    pub(crate) counters: Counters,
    shutting_down: AtomicBool,
    pub(crate) tasks: TaskTracker,
}

/// A snapshot of a hub's counters, from [`WsHub::stats`].
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
    /// Connections accepted since the hub was built.
    pub connections: u64,
    /// Upgrade requests refused (origin, auth, malformed handshake, shutting down).
    pub upgrades_refused: u64,
    /// Clients torn down because they did not answer a ping in time.
    pub dead_peers: u64,
    /// Messages dropped because a queue was full
    /// ([`OverflowPolicy::DropOldest`](super::OverflowPolicy::DropOldest) or
    /// [`DropNewest`](super::OverflowPolicy::DropNewest)).
    pub messages_dropped: u64,
    /// Clients closed with 1013 because their queue was full
    /// ([`OverflowPolicy::Close`](super::OverflowPolicy::Close)).
    pub slow_clients_closed: u64,
    /// Clients closed with 1009 because they sent a message over the size limit.
    pub oversized_messages: u64,
    /// Clients closed with 1002 or 1007 because they broke the protocol.
    pub protocol_errors: u64,
}

/// A plain WebSocket hub: clients connect at [`WsConfig::path`], the app handles their
/// messages in Rust, and anyone holding the hub sends to one client, a topic or everyone.
///
/// See the [module docs](super) for the wire conventions. Cloning is cheap; every clone is
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
    inner: Arc<HubInner>,
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

/// Builds a [`WsHub`] with its configuration and handlers.
///
/// Handlers are async closures or functions returning `()` or `Result<(), E: Display>` (an
/// error is logged). The messages of one client are handled one at a time, in order; while
/// `on_message` runs, that client's further frames wait (only that client's), which is its
/// backpressure. A handler that panics is logged as an error and its client closed with 1011.
///
/// # Examples
/// ```
/// use tongxun::ws::{WsClient, WsDisconnectReason, WsHub, WsMessage};
///
/// let hub = WsHub::builder()
///     .on_connect(|client: WsClient| async move { client.send("hello") })
///     .on_message(|client: WsClient, message: WsMessage| async move {
///         client.send(message) // echo
///     })
///     .on_disconnect(|client: WsClient, reason: WsDisconnectReason| async move {
///         tracing::info!(client = %client.id(), ?reason, "gone");
///     })
///     .build();
/// ```
#[must_use]
pub struct WsHubBuilder {
    config: WsConfig,
    handlers: Handlers,
}

impl fmt::Debug for WsHubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsHubBuilder")
            .field("config", &self.config)
            .field("on_connect", &self.handlers.on_connect.is_some())
            .field("on_message", &self.handlers.on_message.is_some())
            .field("on_disconnect", &self.handlers.on_disconnect.is_some())
            .finish()
    }
}

impl WsHubBuilder {
    /// Replaces the configuration (by default [`WsConfig::default`]).
    ///
    /// # Examples
    /// ```
    /// let mut config = tongxun::ws::WsConfig::default();
    /// config.path = "/live".to_owned();
    /// let hub = tongxun::ws::WsHub::builder().config(config).build();
    /// assert_eq!(hub.config().path, "/live");
    /// ```
    pub fn config(mut self, config: WsConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs `handler` for each new client, once it is registered and before its first message
    /// is handled; messages sent from it are queued in order.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsClient, WsHub};
    ///
    /// let hub = WsHub::builder()
    ///     .on_connect(|client: WsClient| async move {
    ///         if let Some(room) = client.request().query("room") {
    ///             client.subscribe(&room)?;
    ///         }
    ///         Ok::<_, tongxun::ws::SubscribeError>(())
    ///     })
    ///     .build();
    /// ```
    pub fn on_connect<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(WsClient) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.handlers.on_connect = Some(Arc::new(move |client| {
            let fut = handler(client);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Runs `handler` for each text or binary message a client sends (topic commands excepted,
    /// see [`WsConfig::topic_commands`]). Without it, messages are ignored.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsClient, WsHub, WsMessage};
    ///
    /// let hub = WsHub::builder()
    ///     .on_message(|client: WsClient, message: WsMessage| async move {
    ///         match message {
    ///             WsMessage::Text(text) => client.broadcast_others(text),
    ///             WsMessage::Binary(bytes) => client.broadcast_others(bytes),
    ///         };
    ///     })
    ///     .build();
    /// ```
    pub fn on_message<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(WsClient, WsMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.handlers.on_message = Some(Arc::new(move |client, message| {
            let fut = handler(client, message);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Runs `handler` once a client's connection is over and the client has left the hub and
    /// its topics.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsClient, WsDisconnectReason, WsHub};
    ///
    /// let hub = WsHub::builder()
    ///     .on_disconnect(|client: WsClient, reason: WsDisconnectReason| async move {
    ///         client.hub().broadcast(format!("{} left ({reason})", client.id()));
    ///     })
    ///     .build();
    /// ```
    pub fn on_disconnect<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(WsClient, WsDisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.handlers.on_disconnect = Some(Arc::new(move |client, reason| {
            let fut = handler(client, reason);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Builds the hub.
    ///
    /// # Examples
    /// ```
    /// let hub = tongxun::ws::WsHub::builder().build();
    /// assert_eq!(hub.config().path, "/ws");
    /// ```
    pub fn build(self) -> WsHub {
        WsHub {
            inner: Arc::new(HubInner {
                config: self.config,
                handlers: self.handlers,
                clients: RwLock::default(),
                topics: RwLock::default(),
                next_id: AtomicU64::new(1),
                counters: Counters::default(),
                shutting_down: AtomicBool::new(false),
                tasks: TaskTracker::new(),
            }),
        }
    }
}

impl WsHub {
    /// A hub with this configuration and no handlers (messages from clients are ignored; the
    /// app sends with [`broadcast`](Self::broadcast), [`publish`](Self::publish) and
    /// [`send_to`](Self::send_to)).
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsConfig, WsHub};
    ///
    /// let hub = WsHub::new(WsConfig::default());
    /// assert_eq!(hub.broadcast("nobody is listening"), 0);
    /// ```
    pub fn new(config: WsConfig) -> Self {
        Self::builder().config(config).build()
    }

    /// Starts building a hub with handlers.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsClient, WsHub, WsMessage};
    ///
    /// let hub = WsHub::builder()
    ///     .on_message(|client: WsClient, message: WsMessage| async move { client.send(message) })
    ///     .build();
    /// ```
    pub fn builder() -> WsHubBuilder {
        WsHubBuilder {
            config: WsConfig::default(),
            handlers: Handlers::default(),
        }
    }

    pub(crate) fn from_inner(inner: Arc<HubInner>) -> Self {
        Self { inner }
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

    /// The hub's route: `GET` [`WsConfig::path`], answered with 101 and a WebSocket, or with
    /// 401, 403, 426 or 503 before any upgrade. [`Server`](crate::Server) mounts it for you;
    /// merge it into your own axum `Router` otherwise.
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

    /// Queues `message` for every client; returns how many took it. The payload is shared, not
    /// copied, and the call never waits for a client.
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

    /// Queues `message` for every client but `except`; returns how many took it.
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
        read(&self.inner.clients).keys().copied().collect()
    }

    /// Number of connected clients.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::ws::WsHub::default().client_count(), 0);
    /// ```
    pub fn client_count(&self) -> usize {
        read(&self.inner.clients).len()
    }

    /// Number of clients subscribed to `topic`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::ws::WsHub::default().subscriber_count("news"), 0);
    /// ```
    pub fn subscriber_count(&self, topic: &str) -> usize {
        read(&self.inner.topics).get(topic).map_or(0, HashMap::len)
    }

    /// The hub's counters: clients, queued messages, dead peers torn down, messages dropped,
    /// slow clients closed with 1013, and more.
    ///
    /// # Examples
    /// ```
    /// let stats = tongxun::ws::WsHub::default().stats();
    /// assert_eq!(stats.messages_dropped + stats.slow_clients_closed, 0);
    /// ```
    pub fn stats(&self) -> WsStats {
        let (clients, queued_messages) = {
            let clients = read(&self.inner.clients);
            (clients.len(), clients.values().map(|c| c.queued()).sum())
        };
        let c = &self.inner.counters;
        WsStats {
            clients,
            queued_messages,
            connections: c.connections.load(Ordering::Relaxed),
            upgrades_refused: c.upgrades_refused.load(Ordering::Relaxed),
            dead_peers: c.dead_peers.load(Ordering::Relaxed),
            messages_dropped: c.messages_dropped.load(Ordering::Relaxed),
            slow_clients_closed: c.slow_clients_closed.load(Ordering::Relaxed),
            oversized_messages: c.oversized_messages.load(Ordering::Relaxed),
            protocol_errors: c.protocol_errors.load(Ordering::Relaxed),
        }
    }

    /// Closes every client with 1001 (going away), after the messages already queued, refuses
    /// new connections with 503, and returns once every connection is over — or after
    /// [`WsConfig::close_timeout`] and a short margin. [`Server::serve`](crate::Server::serve)
    /// calls it on graceful shutdown. Calling it again waits again.
    ///
    /// # Examples
    /// ```
    /// # async fn f() {
    /// let hub = tongxun::ws::WsHub::default();
    /// hub.shutdown().await;
    /// assert_eq!(hub.client_count(), 0);
    /// # }
    /// ```
    ///
    /// # Cancel safety
    /// Cancelling the wait does not stop the shutdown: clients keep closing in the background.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if !inner.shutting_down.swap(true, Ordering::SeqCst) {
            let clients: Vec<Arc<ClientShared>> = read(&inner.clients).values().cloned().collect();
            tracing::info!(clients = clients.len(), path = %inner.config.path, "closing websocket clients");
            for client in clients {
                inner.close_for_shutdown(&client);
            }
        }
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

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // No code panics while holding these locks; the maps stay consistent if one ever did.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl HubInner {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    fn client(&self, id: ClientId) -> Option<Arc<ClientShared>> {
        read(&self.clients).get(&id).cloned()
    }

    /// Adds a client that just completed its handshake.
    pub(crate) fn register(&self, client: Arc<ClientShared>) {
        write(&self.clients).insert(client.id, client.clone());
        Counters::bump(&self.counters.connections);
        // A shutdown that started before the insert did not see this client.
        if self.is_shutting_down() {
            self.close_for_shutdown(&client);
        }
    }

    pub(crate) fn next_id(&self) -> ClientId {
        ClientId::new(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Removes a client whose connection is over from the registry and its topics.
    pub(crate) fn unregister(&self, client: &ClientShared) {
        client.detached.store(true, Ordering::SeqCst);
        write(&self.clients).remove(&client.id);
        let mut topics = write(&self.topics);
        for topic in client.topics().drain() {
            if let Some(subscribers) = topics.get_mut(&topic) {
                subscribers.remove(&client.id);
                if subscribers.is_empty() {
                    topics.remove(&topic);
                }
            }
        }
    }

    fn close_for_shutdown(&self, client: &ClientShared) {
        client.close(
            close_frame(CloseCode::Away, "server shutting down"),
            WsDisconnectReason::ServerShutdown,
            false,
        );
    }

    /// Offers `message` to one client's queue, counting and logging what the overflow policy
    /// did. Never waits.
    pub(crate) fn deliver(
        &self,
        client: &ClientShared,
        message: WsMessage,
    ) -> Result<(), WsSendError> {
        let policy = self.config.overflow_policy;
        match client.enqueue(message, self.config.queue_capacity, policy) {
            Enqueued::Queued => Ok(()),
            Enqueued::DroppedOldest => {
                self.count_drop(client);
                Ok(())
            }
            Enqueued::DroppedNewest => {
                self.count_drop(client);
                Err(WsSendError::QueueFull)
            }
            Enqueued::Overflowed => {
                let total = Counters::bump(&self.counters.slow_clients_closed);
                tracing::warn!(
                    client = %client.id,
                    capacity = self.config.queue_capacity,
                    slow_clients_closed = total,
                    "websocket client too slow: outgoing queue full, closing with 1013"
                );
                Err(WsSendError::QueueFull)
            }
            Enqueued::Closed => Err(WsSendError::Closed),
        }
    }

    fn count_drop(&self, client: &ClientShared) {
        let total = Counters::bump(&self.counters.messages_dropped);
        // One warning per client per burst would flood the log; the first one and the totals
        // (in the stats and in the disconnect log) tell the story.
        let (_, dropped) = client.close_reason_and_drops();
        if dropped == 1 {
            tracing::warn!(
                client = %client.id,
                capacity = self.config.queue_capacity,
                messages_dropped = total,
                "websocket client too slow: outgoing queue full, dropping messages"
            );
        } else {
            tracing::trace!(client = %client.id, messages_dropped = total, "websocket message dropped");
        }
    }

    /// Queues one shared message for every client but `except`.
    pub(crate) fn broadcast(&self, message: &WsMessage, except: Option<ClientId>) -> usize {
        let clients = read(&self.clients);
        self.fan_out(clients.values(), message, except)
    }

    /// Queues one shared message for the subscribers of `topic` but `except`.
    pub(crate) fn publish(
        &self,
        topic: &str,
        message: &WsMessage,
        except: Option<ClientId>,
    ) -> usize {
        let topics = read(&self.topics);
        let Some(subscribers) = topics.get(topic) else {
            return 0;
        };
        self.fan_out(subscribers.values(), message, except)
    }

    fn fan_out<'a>(
        &self,
        clients: impl Iterator<Item = &'a Arc<ClientShared>>,
        message: &WsMessage,
        except: Option<ClientId>,
    ) -> usize {
        // Only a queue push per client under the read lock: no await, no write to a socket.
        clients
            .filter(|client| Some(client.id) != except)
            .filter(|client| self.deliver(client, message.clone()).is_ok())
            .count()
    }

    pub(crate) fn subscribe(
        &self,
        client: &Arc<ClientShared>,
        topic: &str,
    ) -> Result<bool, SubscribeError> {
        if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
            return Err(SubscribeError::InvalidTopic);
        }
        // Lock order: the hub's topics, then the client's own set (as in `unregister`).
        let mut topics = write(&self.topics);
        // `unregister` sets `detached` before it takes the topics lock: checked under that
        // lock, a client being torn down can never be left in a topic.
        if client.detached.load(Ordering::SeqCst) || client.is_closing() {
            return Err(SubscribeError::Closed);
        }
        let mut own = client.topics();
        if own.contains(topic) {
            return Ok(false);
        }
        if own.len() >= self.config.max_topics_per_client {
            return Err(SubscribeError::TooManyTopics);
        }
        let key: Arc<str> = match topics.get_key_value(topic) {
            Some((key, _)) => key.clone(),
            None => Arc::from(topic),
        };
        topics
            .entry(key.clone())
            .or_default()
            .insert(client.id, client.clone());
        own.insert(key);
        Ok(true)
    }

    pub(crate) fn unsubscribe(&self, client: &ClientShared, topic: &str) -> bool {
        let mut topics = write(&self.topics);
        if !client.topics().remove(topic) {
            return false;
        }
        if let Some(subscribers) = topics.get_mut(topic) {
            subscribers.remove(&client.id);
            if subscribers.is_empty() {
                topics.remove(topic);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::client::Outgoing;
    use crate::ws::request::WsRequest;

    fn join(hub: &WsHub) -> WsClient {
        let shared = Arc::new(ClientShared::new(
            hub.inner.next_id(),
            WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new()),
            None,
        ));
        hub.inner.register(shared.clone());
        WsClient {
            hub: hub.inner.clone(),
            shared,
        }
    }

    fn next_message(client: &WsClient) -> Option<WsMessage> {
        match client.shared.next_outgoing() {
            Outgoing::Message(message) => Some(message),
            _ => None,
        }
    }

    #[test]
    fn a_broadcast_is_one_buffer_shared_by_every_queue() {
        let hub = WsHub::default();
        let clients: Vec<WsClient> = (0..3).map(|_| join(&hub)).collect();
        let message = WsMessage::json(&serde_json::json!({ "big": "x".repeat(10_000) })).unwrap();
        let payload = message.as_bytes().as_ptr();
        assert_eq!(hub.broadcast(message), 3);
        for client in &clients {
            let queued = next_message(client).unwrap();
            assert_eq!(
                queued.as_bytes().as_ptr(),
                payload,
                "the payload was copied"
            );
        }
    }

    #[test]
    fn broadcast_others_and_publish_pick_their_recipients() {
        let hub = WsHub::default();
        let [a, b, c] = [join(&hub), join(&hub), join(&hub)];
        assert_eq!(a.broadcast_others("hi"), 2);
        assert!(next_message(&a).is_none());
        assert_eq!(next_message(&b).unwrap().as_text(), Some("hi"));
        assert_eq!(next_message(&c).unwrap().as_text(), Some("hi"));

        assert_eq!(a.subscribe("t"), Ok(true));
        assert_eq!(b.subscribe("t"), Ok(true));
        assert_eq!(b.subscribe("t"), Ok(false));
        assert_eq!(hub.subscriber_count("t"), 2);
        assert_eq!(hub.publish("t", "news"), 2);
        assert_eq!(a.publish_others("t", "mine"), 1);
        assert_eq!(next_message(&a).unwrap().as_text(), Some("news"));
        assert_eq!(next_message(&b).unwrap().as_text(), Some("news"));
        assert_eq!(next_message(&b).unwrap().as_text(), Some("mine"));
        assert!(next_message(&c).is_none());
        assert_eq!(hub.publish("nobody", "x"), 0);
    }

    #[test]
    fn topics_are_validated_and_bounded() {
        let hub = WsHub::new(WsConfig {
            max_topics_per_client: 2,
            ..WsConfig::default()
        });
        let a = join(&hub);
        assert_eq!(a.subscribe(""), Err(SubscribeError::InvalidTopic));
        assert_eq!(
            a.subscribe(&"x".repeat(MAX_TOPIC_LEN + 1)),
            Err(SubscribeError::InvalidTopic)
        );
        assert_eq!(a.subscribe(&"x".repeat(MAX_TOPIC_LEN)), Ok(true));
        assert_eq!(a.subscribe("b"), Ok(true));
        assert_eq!(a.subscribe("c"), Err(SubscribeError::TooManyTopics));
        assert!(a.unsubscribe("b"));
        assert!(!a.unsubscribe("b"));
        assert_eq!(hub.subscriber_count("b"), 0);
        assert_eq!(a.subscribe("c"), Ok(true));
        assert_eq!(a.topics(), vec!["c".to_owned(), "x".repeat(MAX_TOPIC_LEN)]);
    }

    #[test]
    fn a_client_that_leaves_leaves_its_topics_and_can_no_longer_join_any() {
        let hub = WsHub::default();
        let a = join(&hub);
        a.subscribe("t").unwrap();
        hub.inner.unregister(&a.shared);
        assert_eq!(hub.subscriber_count("t"), 0);
        assert_eq!(hub.client_count(), 0);
        assert_eq!(a.subscribe("u"), Err(SubscribeError::Closed));
        assert!(hub.client(a.id()).is_none());
        assert_eq!(hub.send_to(a.id(), "x"), Err(WsSendError::Closed));
    }

    #[test]
    fn stats_count_drops_and_queued_messages() {
        let hub = WsHub::new(WsConfig {
            queue_capacity: 2,
            overflow_policy: crate::ws::OverflowPolicy::DropOldest,
            ..WsConfig::default()
        });
        let a = join(&hub);
        for _ in 0..5 {
            a.send("x").unwrap();
        }
        let stats = hub.stats();
        assert_eq!(stats.clients, 1);
        assert_eq!(stats.queued_messages, 2);
        assert_eq!(stats.messages_dropped, 3);
        assert_eq!(stats.slow_clients_closed, 0);
    }
}
