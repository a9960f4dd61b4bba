//! Topics that span the three transports: one publish reaches Socket.IO rooms, WebSocket topic
//! subscribers and SSE topic subscribers, each in its own wire format.
//!
//! | transport | subscribes with | receives `publish("prices", "tick", &json!({"p": 1}))` as |
//! | --- | --- | --- |
//! | Socket.IO | `socket.emitWithAck("subscribe", "prices")` on a namespace bound to the hub | the event `tick` with the arguments `{"p": 1}` and `{"topic": "prices", "id": "<id>"}`, in the room `prices` |
//! | WebSocket | the text frame `{"subscribe": "prices"}` | the text frame `{"topic": "prices", "event": "tick", "data": {"p": 1}, "id": "<id>"}` |
//! | SSE | `GET /events?topic=prices` | `id: <id>` / `event: tick` / `data: {"p":1}` |
//!
//! # One id, one order, resume on every transport
//! With an SSE hub attached ([`HubBuilder::sse`]), the SSE hub is the topic's log: a publish is
//! appended to its history (in memory, or in Redis for every node with
//! [`Config::redis_url`](crate::Config::redis_url)), and every node feeds its Socket.IO and
//! WebSocket subscribers from that log. So an event has one id everywhere, the SSE hub's
//! `<epoch>;<topic>:<seq>`, every subscriber of a topic sees its events in the same order
//! whatever its transport and node, and a client that comes back with the id of its last event
//! is replayed what it missed, on any node, before live events and without duplicates:
//!
//! | transport | resumes with |
//! | --- | --- |
//! | Socket.IO | `io(url, { auth: (cb) => cb({ since: lastId }) })`: on connect the socket is subscribed to every topic of `since` (one id or a list) and replayed; or `emitWithAck("subscribe", { topics: ["prices"], since: lastId })` |
//! | WebSocket | `{"subscribe": "prices", "since": "<id>"}` |
//! | SSE | `Last-Event-ID`, as browsers send it |
//!
//! When history no longer reaches back, the client gets `resync` instead, the same on all three
//! (`{"topics": ["prices"], "reason": "history_exceeded"}`; `unknown_id` for an id of another
//! epoch; `history_unavailable` while Redis is away), and continues live from then on. The
//! client code for each transport is in `docs/resume.md`.
//!
//! Without an SSE hub, a publish goes to each transport directly and carries no id: there is
//! nothing to resume from.
//!
//! The payload is serialized to JSON once, for the history; each node reads it back once and
//! serializes it once for all its Socket.IO recipients and once for all its WebSocket ones.
//! Nothing is bridged by default: an app forwards what a client sends into a topic by calling
//! [`Hub::publish`] from its handler.
//!
//! A topic is a Socket.IO room name with narrower rules, checked once by [`check_topic`] for
//! every transport: 1 to [`MAX_TOPIC_LEN`] bytes of ASCII letters, digits, `-`, `_`, `.`, `/`
//! and `:` (what SSE ids can carry), and never the shape of a socket id, whose room is private.
//! The WebSocket and SSE hubs on their own accept more (see their docs); a `Hub` publishes only
//! to names that pass.

#[cfg(feature = "sse")]
mod event;
#[cfg(feature = "sse")]
pub(crate) mod feed;
mod http;
mod rules;
mod subscribe;
#[cfg(feature = "sse")]
mod target;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::io::{Io, Namespace, Socket};
use crate::meters::HubTransport;

pub(crate) use rules::check_event;
#[cfg(feature = "sse")]
pub(crate) use rules::topic_problem;
pub use rules::{MAX_TOPIC_LEN, check_topic};
pub use subscribe::{MAX_SINCE_TOPICS, subscriptions};

/// Default path of the HTTP publish endpoint.
pub const DEFAULT_PUBLISH_PATH: &str = "/publish";
/// Default largest accepted HTTP publish body: 256 KiB.
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// Event names a hub refuses: Socket.IO clients reserve them, and the SSE hub sends `ready` and
/// `resync` itself.
pub const RESERVED_EVENTS: [&str; 8] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
    "ready",
    "resync",
];

/// Why a publish was refused. Nothing was sent to any transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The topic name breaks the rules of [`check_topic`].
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    /// The event name is empty, longer than 64 bytes, has a control character, or is reserved.
    #[error("invalid event name: {0}")]
    InvalidEvent(String),
    /// The payload could not be serialized.
    #[error("failed to serialize the payload")]
    Encode(#[source] serde_json::Error),
    /// A transport refused the event (for example, SSE data over its size limit).
    #[error("a transport refused the event: {0}")]
    Refused(String),
    /// The history is in Redis and Redis cannot be reached: the event was published nowhere.
    #[error("the hub's history is unreachable: nothing was published")]
    Unavailable,
}

/// What one publish reached. With an SSE hub attached, the counts are this node's subscribers
/// of the topic when the event was published; each node delivers it from the history.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Socket.IO sockets of this node in the topic's room, over every bound namespace.
    pub socketio: usize,
    /// WebSocket clients subscribed to the topic that took the message.
    pub ws: usize,
    /// The SSE event id, when an SSE hub is attached and took the event: `None` when its
    /// history is in Redis and Redis was unreachable.
    pub sse: Option<String>,
    /// The event's id on every transport (the SSE hub's), when an SSE hub is attached.
    pub id: Option<String>,
}

/// One publish point for Socket.IO, WebSocket and SSE subscribers of a topic.
///
/// # Examples
/// ```no_run
/// # #[cfg(all(feature = "ws", feature = "sse"))] {
/// use std::time::Duration;
/// use tongxun::hub::Hub;
/// use tongxun::sse::{SseConfig, SseHub};
/// use tongxun::ws::WsHub;
/// use tongxun::Server;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ws = WsHub::default();
/// let sse = SseHub::new(SseConfig::default());
/// let server = Server::builder()
///     .namespace_with("/live", Hub::namespace())
///     .ws(ws.clone())
///     .sse(sse.clone())
///     .build();
/// let hub = Hub::builder().socketio(server.io(), ["/live"]).ws(ws).sse(sse).build();
///
/// let ticker = hub.clone();
/// tokio::spawn(async move {
///     for n in 0u64.. {
///         ticker.publish("metrics", "tick", &n).await.ok();
///         tokio::time::sleep(Duration::from_secs(1)).await;
///     }
/// });
/// let server = server.merge(hub.router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// # Ok(()) }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    io: Option<(Io, Vec<String>)>,
    #[cfg(feature = "ws")]
    ws: Option<crate::ws::WsHub>,
    #[cfg(feature = "sse")]
    sse: Option<crate::sse::SseHub>,
    publish_path: String,
    publish_token: Option<String>,
    max_body: usize,
    /// Held while one publish goes out on every transport, so that all see the same order
    /// (without an SSE hub: with one, its history orders the events).
    order: tokio::sync::Mutex<()>,
    /// Feeds this node's Socket.IO and WebSocket subscribers from the SSE hub's history.
    #[cfg(feature = "sse")]
    feed: Option<feed::Feed>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("namespaces", &self.io.as_ref().map(|(_, ns)| ns))
            .field("publish_path", &self.publish_path)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Hub`].
#[derive(Debug)]
#[must_use]
pub struct HubBuilder {
    inner: Inner,
}

impl HubBuilder {
    /// Publishes to the rooms named by topics in these Socket.IO namespaces.
    pub fn socketio<I, S>(mut self, io: Io, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.io = Some((io, namespaces.into_iter().map(Into::into).collect()));
        self
    }

    /// Publishes to this WebSocket hub's topics.
    #[cfg(feature = "ws")]
    pub fn ws(mut self, hub: crate::ws::WsHub) -> Self {
        self.inner.ws = Some(hub);
        self
    }

    /// Publishes to this SSE hub's topics, and makes its history the log of every topic: one
    /// id and one order on every transport, and resume (see the [module docs](self)). An SSE
    /// hub is the log of one `Hub` at most; a second one bound to it publishes directly.
    #[cfg(feature = "sse")]
    pub fn sse(mut self, hub: crate::sse::SseHub) -> Self {
        self.inner.sse = Some(hub);
        self
    }

    /// Enables the HTTP publish endpoint ([`Hub::router`]) for requests that carry
    /// `Authorization: Bearer <token>`. Without a token the endpoint answers 404.
    pub fn publish_token(mut self, token: impl Into<String>) -> Self {
        self.inner.publish_token = Some(token.into());
        self
    }

    /// The path of the HTTP publish endpoint. Defaults to [`DEFAULT_PUBLISH_PATH`].
    pub fn publish_path(mut self, path: impl Into<String>) -> Self {
        self.inner.publish_path = path.into();
        self
    }

    /// The largest accepted HTTP publish body. Defaults to [`DEFAULT_MAX_BODY`].
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.inner.max_body = bytes;
        self
    }

    /// Builds the hub. With an SSE hub, this starts the node's feed: call it inside a Tokio
    /// runtime.
    #[cfg_attr(not(feature = "sse"), allow(unused_mut))]
    pub fn build(mut self) -> Hub {
        #[cfg(feature = "sse")]
        {
            self.inner.feed = self.start_feed();
        }
        Hub {
            inner: Arc::new(self.inner),
        }
    }

    /// Starts feeding the bound transports from the SSE hub's history, and takes their
    /// subscriptions.
    #[cfg(feature = "sse")]
    fn start_feed(&mut self) -> Option<feed::Feed> {
        let sse = self.inner.sse.clone()?;
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::error!(
                "Hub built outside a Tokio runtime: it publishes without ids or resume"
            );
            return None;
        }
        let Some(feed) = feed::Feed::start(
            sse,
            self.inner.io.clone(),
            #[cfg(feature = "ws")]
            self.inner.ws.clone(),
        ) else {
            tracing::error!(
                "this SSE hub is the log of another Hub already: this one publishes without ids or resume"
            );
            return None;
        };
        if let Some((io, _)) = &self.inner.io {
            crate::sync::write(&io.shared.hub_feeds).push(feed.clone());
        }
        #[cfg(feature = "ws")]
        if let Some(ws) = &self.inner.ws {
            ws.take_topic_commands(Arc::new(feed.clone()));
        }
        Some(feed)
    }
}

impl Hub {
    /// Starts building a hub.
    pub fn builder() -> HubBuilder {
        HubBuilder {
            inner: Inner {
                io: None,
                #[cfg(feature = "ws")]
                ws: None,
                #[cfg(feature = "sse")]
                sse: None,
                publish_path: DEFAULT_PUBLISH_PATH.to_owned(),
                publish_token: None,
                max_body: DEFAULT_MAX_BODY,
                order: tokio::sync::Mutex::new(()),
                #[cfg(feature = "sse")]
                feed: None,
            },
        }
    }

    /// A Socket.IO namespace whose clients manage their topics: `subscribe` and `unsubscribe`
    /// take a topic, a list of topics, or `{"topics": ..., "since": <id or ids>}`, and
    /// acknowledge `{"ok": [topics]}` or `{"error": "..."}` (after the replay, when resuming).
    /// A socket whose handshake `auth` has `since` is subscribed to its topics on connect and
    /// replayed from there. A client can never subscribe to a room of a socket id's shape (see
    /// [`check_topic`]), which carries that socket's private messages.
    /// Use [`subscriptions`] to add the same listeners in a connect handler of your own.
    pub fn namespace() -> Namespace {
        Namespace::new(|socket: Socket| async move { subscriptions(&socket) })
    }

    /// Publishes `payload` (any serde value) as `event` on `topic`, to every attached transport.
    ///
    /// With an SSE hub, the event is appended to its history, from which every node's feed
    /// delivers it to its Socket.IO and WebSocket subscribers. The call waits (1 second at most)
    /// while this node's feed has more than 4,096 events to relay: a publisher may run ahead in
    /// bursts, never so far that the feed has to read back from history.
    ///
    /// # Errors
    /// [`HubError`] when the topic, the event name or the payload is refused; nothing is sent
    /// then. [`HubError::Unavailable`] when the history is in Redis and Redis is away: the event
    /// was published nowhere.
    ///
    /// # Cancel safety
    /// Not cancel-safe: without an SSE hub, a publish dropped midway may have reached some
    /// transports only; with one, an event already appended is delivered everywhere.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        event: &str,
        payload: &T,
    ) -> Result<Delivery, HubError> {
        check_topic(topic)?;
        check_event(event)?;
        let json = serde_json::to_string(payload).map_err(HubError::Encode)?;
        #[cfg(feature = "sse")]
        if let (Some(sse), Some(_)) = (&self.inner.sse, &self.inner.feed) {
            return self.publish_logged(sse, topic, event, json).await;
        }
        // Socket.IO gets the same JSON as a value: it always serializes, so no transport can
        // fail after another one was served (socketioxide's own serializer refuses some types
        // serde_json takes, such as `u128`).
        let value: serde_json::Value = serde_json::from_str(&json).map_err(HubError::Encode)?;
        let raw = RawValue::from_string(json).map_err(HubError::Encode)?;
        self.publish_json(topic, event, &value, &raw).await
    }

    /// Appends the event to the SSE hub's history; every node's feed delivers it from there.
    #[cfg(feature = "sse")]
    async fn publish_logged(
        &self,
        sse: &crate::sse::SseHub,
        topic: &str,
        event: &str,
        json: String,
    ) -> Result<Delivery, HubError> {
        let id = match sse
            .publish(topic, crate::sse::SseEvent::new(json).event(event))
            .await
        {
            Ok(id) => id,
            Err(crate::sse::PublishError::Unavailable) => return Err(HubError::Unavailable),
            Err(e) => return Err(HubError::Refused(e.to_string())),
        };
        if let Some(feed) = &self.inner.feed {
            feed.relay_now().await;
            feed.keep_up().await;
        }
        let id = id.to_string();
        let mut delivery = Delivery {
            sse: Some(id.clone()),
            id: Some(id),
            ..Delivery::default()
        };
        self.count(HubTransport::Sse);
        #[cfg(feature = "ws")]
        if let Some(ws) = &self.inner.ws {
            delivery.ws = ws.subscriber_count(topic);
            self.count(HubTransport::Ws);
        }
        if let Some((io, namespaces)) = &self.inner.io {
            io.shared.meters.hub_published(HubTransport::SocketIo);
            for path in namespaces {
                if let Some(ns) = io.of(path) {
                    delivery.socketio += ns.within(topic.to_owned()).sockets().len();
                }
            }
        }
        tracing::trace!(%topic, %event, ?delivery, "published");
        Ok(delivery)
    }

    #[cfg_attr(not(any(feature = "ws", feature = "sse")), allow(unused_variables))]
    async fn publish_json(
        &self,
        topic: &str,
        event: &str,
        value: &serde_json::Value,
        json: &RawValue,
    ) -> Result<Delivery, HubError> {
        #[cfg(feature = "sse")]
        let sse_event = self
            .inner
            .sse
            .as_ref()
            .map(|_| crate::sse::SseEvent::new(json.get()).event(event));
        #[cfg(feature = "ws")]
        let ws_frame = match &self.inner.ws {
            Some(_) => {
                let envelope = Envelope {
                    topic,
                    event,
                    data: json,
                    id: None,
                };
                let text = serde_json::to_string(&envelope).map_err(HubError::Encode)?;
                Some(crate::ws::WsMessage::text(text))
            }
            None => None,
        };

        let _order = self.inner.order.lock().await;
        let mut delivery = Delivery::default();
        // SSE first: it is the one transport that can still refuse (data size), and a refusal
        // must leave the others untouched.
        #[cfg(feature = "sse")]
        if let (Some(hub), Some(sse_event)) = (&self.inner.sse, sse_event) {
            match hub.publish(topic, sse_event).await {
                Ok(id) => {
                    self.count(HubTransport::Sse);
                    delivery.sse = Some(id.to_string());
                }
                // Redis is away: SSE subscribers miss the event (the hub logged it), the
                // others still get it, as Socket.IO and WebSocket clients of this node do.
                Err(crate::sse::PublishError::Unavailable) => {}
                Err(e) => return Err(HubError::Refused(e.to_string())),
            }
        }
        #[cfg(feature = "ws")]
        if let (Some(hub), Some(frame)) = (&self.inner.ws, ws_frame) {
            delivery.ws = hub.publish(topic, frame);
            self.count(HubTransport::Ws);
        }
        if let Some((io, namespaces)) = &self.inner.io {
            io.shared.meters.hub_published(HubTransport::SocketIo);
            for path in namespaces {
                let Some(ns) = io.of(path) else { continue };
                let room = ns.clone().within(topic.to_owned());
                delivery.socketio += room.clone().sockets().len();
                match room.emit(event, value).await {
                    Ok(()) => {}
                    // The bus logs the loss of Redis once; each publish meanwhile is no news.
                    Err(crate::BroadcastError::ThisNodeOnly) => {
                        tracing::debug!(%topic, %event, ns = %path, "hub publish reached this node's Socket.IO clients only");
                    }
                    Err(e) => {
                        let e = crate::error::Chain(&e);
                        tracing::warn!(%topic, %event, ns = %path, "hub publish to Socket.IO failed: {e}");
                    }
                }
            }
        }
        tracing::trace!(%topic, %event, ?delivery, "published");
        Ok(delivery)
    }

    /// Subscribers of this node held as resuming: being replayed, or replayed and waiting for
    /// their topic's next event to go live (see `docs/resume.md`). Those that disconnected count
    /// until a sweep drops them, each time the count doubles: at most about twice those still
    /// connected. 0 without an SSE hub.
    ///
    /// # Examples
    /// ```
    /// let hub = tongxun::hub::Hub::builder().build();
    /// assert_eq!(hub.resuming(), 0);
    /// ```
    pub fn resuming(&self) -> usize {
        #[cfg(feature = "sse")]
        if let Some(feed) = &self.inner.feed {
            return feed.resuming();
        }
        0
    }

    /// The metrics of the server whose Socket.IO side the hub reaches, or none (counted nowhere).
    #[cfg(any(feature = "ws", feature = "sse"))]
    fn count(&self, transport: HubTransport) {
        if let Some((io, _)) = &self.inner.io {
            io.shared.meters.hub_published(transport);
        }
    }

    /// The HTTP publish endpoint: `POST` with `Authorization: Bearer <token>` and the JSON body
    /// `{"topic": "...", "event": "...", "data": <any JSON>}`; answers the [`Delivery`] as JSON.
    /// Errors are JSON `{"error": "..."}` with 401 (token), 400 (malformed JSON), 413 (too
    /// large), 415 (not JSON), 422 (topic or event refused) or 503 (the history is in Redis and
    /// Redis is away: published nowhere). Merge it with
    /// [`Server::merge`](crate::Server::merge).
    pub fn router(&self) -> Router {
        if self.inner.publish_token.is_none() {
            return Router::new();
        }
        Router::new()
            .route(&self.inner.publish_path, post(http::http_publish))
            .layer(DefaultBodyLimit::max(self.inner.max_body))
            .with_state(self.clone())
    }
}

/// A hub event as the WebSocket hub sends it: `{"topic","event","data","id"}`, without `id`
/// when the hub has no history.
#[cfg(feature = "ws")]
#[derive(Serialize)]
struct Envelope<'a> {
    topic: &'a str,
    event: &'a str,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}
