//! The handle of one connected client that the app holds: sending, topics, closing.

use std::fmt;
use std::sync::Arc;

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::client_id::ClientId;
use super::close::{WsDisconnectReason, close_frame};
use super::error::{SubscribeError, WsSendError};
use super::message::WsMessage;
use super::outbox::ClientShared;
use super::registry::{ClientParts, HubInner};
use super::request::WsRequest;

/// A connected client, handed to the hub's handlers; cheap to clone and usable from anywhere.
///
/// Sending never waits: a message goes into the client's bounded outgoing queue, which its
/// connection drains (see [`OverflowPolicy`](super::OverflowPolicy) for a full queue).
///
/// # Examples
/// ```
/// use tongxun::ws::{WsClient, WsHub, WsMessage};
///
/// let hub = WsHub::builder()
///     .on_connect(async |client: WsClient| -> Result<(), tongxun::BoxError> {
///         client.subscribe("news")?;
///         client.send(format!("welcome, you are client {}", client.id()))?;
///         Ok(()) // an error is logged
///     })
///     .on_message(|client: WsClient, message: WsMessage| async move {
///         client.broadcast_others(message); // everyone else gets it, text or binary as sent
///     })
///     .build();
/// ```
#[derive(Clone)]
pub struct WsClient {
    pub(crate) hub: Arc<HubInner>,
    pub(crate) shared: Arc<ClientShared>,
}

impl fmt::Debug for WsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsClient")
            .field("id", &self.shared.id)
            .field("protocol", &self.shared.protocol)
            .field("closing", &self.shared.is_closing())
            .finish_non_exhaustive()
    }
}

// `WsClient::hub` is in hub.rs, beside the `WsHub` it returns: this file sits below the hub.
impl WsClient {
    pub(crate) fn from_parts((hub, shared): ClientParts) -> Self {
        Self { hub, shared }
    }

    /// Whether its queue is less than half full, in messages and in bytes: a replay sends only
    /// then, so that it never meets the overflow policy.
    #[cfg(feature = "sse")]
    pub(crate) fn has_room(&self) -> bool {
        let config = &self.hub.config;
        self.shared.queued() < config.queue_capacity / 2
            && self.queued_bytes() < config.max_queued_bytes as u64 / 2
    }

    /// What the hub's stored handlers are given for this client.
    pub(crate) fn parts(&self) -> ClientParts {
        (self.hub.clone(), self.shared.clone())
    }

    /// The client's id in its hub.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// let hub = client.hub();
    /// assert!(hub.client(client.id()).is_some() || !client.is_connected());
    /// # }
    /// ```
    pub fn id(&self) -> ClientId {
        self.shared.id
    }

    /// The upgrade request that opened the connection (query, headers, peer address).
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// let room = client.request().query("room").unwrap_or_else(|| "lobby".to_owned());
    /// # }
    /// ```
    pub fn request(&self) -> &WsRequest {
        &self.shared.request
    }

    /// The subprotocol selected during the handshake, if any.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// if client.protocol() == Some("chat.v2") { /* speak v2 */ }
    /// # }
    /// ```
    pub fn protocol(&self) -> Option<&str> {
        self.shared.protocol.as_deref()
    }

    /// Whether the client is connected and not closing.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// client.close(1000, "bye");
    /// assert!(!client.is_connected());
    /// # }
    /// ```
    pub fn is_connected(&self) -> bool {
        !self.shared.is_closing()
    }

    /// Bytes the hub holds for this client now.
    ///
    /// That is the payloads of the messages in its queue and of the broadcasts it has not been
    /// sent yet, which
    /// [`WsConfig::max_queued_bytes`](super::WsConfig::max_queued_bytes) bounds. A client that
    /// keeps up holds about nothing; one that stops reading holds what its socket could not
    /// take. Zero once the client is closing after an overflow, or gone.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// let limit = client.hub().config().max_queued_bytes as u64;
    /// assert!(client.queued_bytes() <= limit);
    /// # }
    /// ```
    pub fn queued_bytes(&self) -> u64 {
        self.shared
            .held_bytes(self.hub.broadcasts.published_bytes())
    }

    /// Queues a message for this client.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) -> Result<(), tongxun::ws::WsSendError> {
    /// client.send("text")?;
    /// client.send(vec![0u8, 1, 2])?; // binary
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`WsSendError::Closed`] when the client is gone or closing, [`WsSendError::QueueFull`]
    /// when its queue is full and the message was not queued.
    pub fn send(&self, message: impl Into<WsMessage>) -> Result<(), WsSendError> {
        self.hub.deliver(&self.shared, message.into())
    }

    /// Sends a message to every other client of the hub; returns how many it is for here.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// let reached = client.broadcast_others(format!("{} joined", client.id()));
    /// # }
    /// ```
    pub fn broadcast_others(&self, message: impl Into<WsMessage>) -> usize {
        self.hub.broadcast(&message.into(), Some(self.shared.id))
    }

    /// Queues a message for every other subscriber of `topic`; returns how many took it.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// client.publish_others("room:1", "typing...");
    /// # }
    /// ```
    pub fn publish_others(&self, topic: &str, message: impl Into<WsMessage>) -> usize {
        self.hub
            .publish(topic, &message.into(), Some(self.shared.id))
    }

    /// Subscribes the client to `topic`; returns `false` when it already was.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) -> Result<(), tongxun::ws::SubscribeError> {
    /// assert!(client.subscribe("prices")?);
    /// assert!(!client.subscribe("prices")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SubscribeError::InvalidTopic`] for an empty or too long topic,
    /// [`SubscribeError::TooManyTopics`] past
    /// [`WsConfig::max_topics_per_client`](super::WsConfig::max_topics_per_client),
    /// [`SubscribeError::Closed`] when the client is gone.
    pub fn subscribe(&self, topic: &str) -> Result<bool, SubscribeError> {
        self.hub.subscribe(&self.shared, topic)
    }

    /// Unsubscribes the client from `topic`; returns `false` when it was not subscribed.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// client.unsubscribe("prices");
    /// # }
    /// ```
    pub fn unsubscribe(&self, topic: &str) -> bool {
        self.hub.unsubscribe(&self.shared, topic)
    }

    /// The topics the client is subscribed to.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// for topic in client.topics() {
    ///     println!("{topic}");
    /// }
    /// # }
    /// ```
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.shared.topics().iter().map(|t| t.to_string()).collect();
        topics.sort_unstable();
        topics
    }

    /// Closes the connection with `code` and `reason`, after the messages already queued.
    ///
    /// The reason is cut to 123 bytes, and the client's close frame is awaited for at most
    /// [`WsConfig::close_timeout`](super::WsConfig::close_timeout). A code that may not be
    /// sent (such as 1005 or 1006) is replaced by 1000 and logged as an error.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// use tongxun::ws::close_code;
    /// client.close(close_code::POLICY, "not allowed here");
    /// # }
    /// ```
    pub fn close(&self, code: u16, reason: &str) {
        let mut close_code = CloseCode::from(code);
        if !close_code.is_allowed() {
            tracing::error!(client = %self.shared.id, code, "close code may not be sent; closing with 1000");
            close_code = CloseCode::Normal;
        }
        let reason_text = reason.to_owned();
        let frame = close_frame(close_code, reason);
        self.shared.close(
            frame,
            WsDisconnectReason::ClosedByServer {
                code: close_code.into(),
                reason: reason_text,
            },
            false,
            self.hub.broadcasts.published(),
        );
    }
}
