//! Topics that span the three transports: one publish reaches Socket.IO rooms, WebSocket topic
//! subscribers and SSE topic subscribers, each in its own wire format.
//!
//! | transport | subscribes with | receives `publish("prices", "tick", &json!({"p": 1}))` as |
//! | --- | --- | --- |
//! | Socket.IO | `socket.emitWithAck("subscribe", "prices")` on a namespace bound to the hub | the event `tick` with one argument `{"p": 1}`, in the room `prices` |
//! | WebSocket | the text frame `{"subscribe": "prices"}` | the text frame `{"topic": "prices", "event": "tick", "data": {"p": 1}}` |
//! | SSE | `GET /events?topic=prices` | `event: tick` / `data: {"p":1}` with a resumable `id` |
//!
//! The payload is serialized to JSON once for WebSocket and SSE (the WebSocket envelope wraps the
//! same text) and once by socketioxide for all Socket.IO recipients. Publishes go out one at a
//! time, so every subscriber of a topic sees its events in publish order, whatever its
//! transport. Nothing is bridged by default: an app forwards what a client sends into a topic
//! by calling [`Hub::publish`] from its handler.
//!
//! A topic is a Socket.IO room name with narrower rules, checked once by [`check_topic`] for
//! every transport: 1 to [`MAX_TOPIC_LEN`] bytes of ASCII letters, digits, `-`, `_`, `.`, `/`
//! and `:` (what SSE ids can carry), and never the shape of a socket id, whose room is private.
//! The WebSocket and SSE hubs on their own accept more (see their docs); a `Hub` publishes only
//! to names that pass.

use crate::meters::HubTransport;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::io::{Ack, Data, Io, Namespace, Socket};

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
}

/// What one publish reached.
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

#[derive(Debug)]
struct Inner {
    io: Option<(Io, Vec<String>)>,
    #[cfg(feature = "ws")]
    ws: Option<crate::ws::WsHub>,
    #[cfg(feature = "sse")]
    sse: Option<crate::sse::SseHub>,
    publish_path: String,
    publish_token: Option<String>,
    max_body: usize,
    /// Held while one publish goes out on every transport, so that all see the same order.
    order: tokio::sync::Mutex<()>,
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

    /// Publishes to this SSE hub's topics.
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

    /// Builds the hub.
    pub fn build(self) -> Hub {
        Hub {
            inner: Arc::new(self.inner),
        }
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
            },
        }
    }

    /// A Socket.IO namespace whose clients manage their topics: `subscribe` and `unsubscribe`
    /// take a topic or a list of topics and acknowledge `{"ok": [topics]}` or `{"error": "..."}`.
    /// A client can never subscribe to a room of a socket id's shape (see [`check_topic`]),
    /// which carries that socket's private messages.
    /// Use [`subscriptions`] to add the same listeners in a connect handler of your own.
    pub fn namespace() -> Namespace {
        Namespace::new(|socket: Socket| async move { subscriptions(&socket) })
    }

    /// Publishes `payload` (any serde value) as `event` on `topic`, to every attached transport.
    ///
    /// # Errors
    /// [`HubError`] when the topic, the event name or the payload is refused; nothing is sent
    /// then.
    ///
    /// # Cancel safety
    /// Not cancel-safe: a publish dropped midway may have reached some transports only.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        event: &str,
        payload: &T,
    ) -> Result<Delivery, HubError> {
        check_topic(topic)?;
        check_event(event)?;
        let json = serde_json::to_string(payload).map_err(HubError::Encode)?;
        // Socket.IO gets the same JSON as a value: it always serializes, so no transport can
        // fail after another one was served (socketioxide's own serializer refuses some types
        // serde_json takes, such as `u128`).
        let value: serde_json::Value = serde_json::from_str(&json).map_err(HubError::Encode)?;
        let raw = RawValue::from_string(json).map_err(HubError::Encode)?;
        self.publish_json(topic, event, &value, &raw).await
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
    /// large), 415 (not JSON) or 422 (topic or event refused). Merge it with
    /// [`Server::merge`](crate::Server::merge).
    pub fn router(&self) -> Router {
        if self.inner.publish_token.is_none() {
            return Router::new();
        }
        Router::new()
            .route(&self.inner.publish_path, post(http_publish))
            .layer(DefaultBodyLimit::max(self.inner.max_body))
            .with_state(self.clone())
    }
}

#[cfg(feature = "ws")]
#[derive(Serialize)]
struct Envelope<'a> {
    topic: &'a str,
    event: &'a str,
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct PublishRequest {
    topic: String,
    event: String,
    data: serde_json::Value,
}

async fn http_publish(
    State(hub): State<Hub>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    fn error(status: StatusCode, message: impl Into<String>) -> Response {
        (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
    }
    let expected = hub.inner.publish_token.as_deref().unwrap_or_default();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given != Some(expected) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let request: PublishRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) if e.is_data() => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")),
    };
    match hub
        .publish(&request.topic, &request.event, &request.data)
        .await
    {
        Ok(delivery) => Json(delivery).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

/// Longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 64;

/// Checks a topic name: 1 to [`MAX_TOPIC_LEN`] bytes of ASCII letters, digits, `-`, `_`, `.`,
/// `/` and `:`, and not of the shape of a socket id (16 letters, digits, `-` or `_`, such as
/// `temperature_room`).
///
/// A hub topic is a Socket.IO room name with narrower rules. A room may be any string; a topic
/// also appears inside SSE event ids, which use `;` and `,` as separators (and end each
/// position with `:` and a number, so a `:` inside a name reads back correctly), hence the
/// characters. And the room named by a socket's id is private to that socket, which may
/// connect later or on another node, hence the shape.
///
/// # Errors
/// [`HubError::InvalidTopic`] telling what is wrong.
///
/// # Examples
/// ```
/// use tongxun::hub::check_topic;
///
/// assert!(check_topic("prices").is_ok());
/// assert!(check_topic("chat:general").is_ok());
/// assert!(check_topic("a,b").is_err()); // a separator of SSE ids
/// assert!(check_topic("temperature_room").is_err()); // the shape of a socket id
/// ```
pub fn check_topic(topic: &str) -> Result<(), HubError> {
    if let Some(why) = topic_problem(topic) {
        return Err(HubError::InvalidTopic(why.into()));
    }
    if crate::io::is_id_shaped(topic) {
        return Err(HubError::InvalidTopic(
            "16 letters, digits, '-' or '_' is the shape of a socket id, whose room is private"
                .into(),
        ));
    }
    Ok(())
}

/// What is wrong with `topic` under the rules it follows on every transport (length and
/// characters); the SSE hub, which has no socket rooms, checks only these.
pub(crate) fn topic_problem(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        return Some("it is empty");
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Some("it is longer than 64 bytes");
    }
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':');
    if !topic.bytes().all(allowed) {
        return Some("only ASCII letters, digits, '-', '_', '.', '/' and ':' are allowed");
    }
    None
}

fn check_event(event: &str) -> Result<(), HubError> {
    if event.is_empty() || event.len() > 64 || event.chars().any(char::is_control) {
        return Err(HubError::InvalidEvent(
            "1 to 64 bytes without control characters".into(),
        ));
    }
    if RESERVED_EVENTS.contains(&event) {
        return Err(HubError::InvalidEvent(format!("\"{event}\" is reserved")));
    }
    Ok(())
}

/// Adds the `subscribe` and `unsubscribe` listeners of [`Hub::namespace`] to a socket.
///
/// # Examples
/// ```
/// use tongxun::Socket;
///
/// async fn on_connect(socket: Socket) {
///     tongxun::hub::subscriptions(&socket);
///     // ... the app's own listeners
/// }
/// # let _ = tongxun::Server::builder().namespace("/live", on_connect);
/// ```
pub fn subscriptions(socket: &Socket) {
    socket.on(
        "subscribe",
        |socket: Socket, Data(topics): Data<Topics>, ack: Ack| async move {
            let joined = topics.checked().and_then(|topics| {
                socket
                    .join(topics.clone())
                    .map_err(|e| HubError::InvalidTopic(e.to_string()))?;
                Ok(topics)
            });
            match joined {
                Ok(topics) => ack.send(&serde_json::json!({ "ok": topics })),
                Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
            }
        },
    );
    socket.on(
        "unsubscribe",
        |socket: Socket, Data(topics): Data<Topics>, ack: Ack| async move {
            match topics.checked() {
                Ok(topics) => {
                    socket.leave(topics.clone());
                    ack.send(&serde_json::json!({ "ok": topics }))
                }
                Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
            }
        },
    );
}

/// One topic or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Topics {
    One(String),
    Many(Vec<String>),
}

impl Topics {
    fn checked(self) -> Result<Vec<String>, HubError> {
        let topics = match self {
            Topics::One(topic) => vec![topic],
            Topics::Many(topics) => topics,
        };
        for topic in &topics {
            check_topic(topic)?;
        }
        Ok(topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_1_to_64_bytes_of_a_few_ascii_characters() {
        let longest = "t".repeat(MAX_TOPIC_LEN);
        for ok in [
            "prices",
            "A-b_c.d/e",
            "chat:general",
            "rooms/42.chat",
            "temperature_room:1",
            &longest,
        ] {
            assert!(check_topic(ok).is_ok(), "{ok}");
        }
        let too_long = "t".repeat(MAX_TOPIC_LEN + 1);
        for bad in ["", "a b", "a,b", "a;b", "é", &too_long] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topics_of_a_socket_id_shape_are_refused_whether_or_not_that_socket_exists() {
        for id_shaped in ["temperature_room", "AbCdEfGhIjKlMnOp", "0123456789-_abcd"] {
            assert!(check_topic(id_shaped).is_err(), "{id_shaped}");
        }
        assert!(check_topic(crate::Sid::new().as_str()).is_err());
    }

    #[test]
    fn reserved_events_are_refused() {
        assert!(check_event("tick").is_ok());
        for bad in ["", "connect", "disconnect", "ready", "resync", "a\nb"] {
            assert!(check_event(bad).is_err(), "{bad:?}");
        }
    }
}
