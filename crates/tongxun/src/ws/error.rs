//! Errors of the WebSocket hub, one enum per operation.

/// Why a message was not queued for a client.
///
/// # Examples
/// ```
/// use tongxun::ws::{WsClient, WsSendError};
///
/// fn greet(client: &WsClient) {
///     match client.send("hello") {
///         Ok(()) => {}
///         Err(WsSendError::Closed) => { /* gone: nothing to do */ }
///         Err(err) => tracing::debug!(client = %client.id(), %err, "greeting not sent"),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsSendError {
    /// The client is gone, closing, or was never connected.
    #[error("websocket client is not connected")]
    Closed,
    /// The client's outgoing queue is full: it reads slower than it is sent to. What happened to
    /// the message and the client depends on the [`OverflowPolicy`](super::OverflowPolicy).
    #[error("websocket client outgoing queue is full")]
    QueueFull,
}

/// Why a client was not subscribed to a topic.
///
/// # Examples
/// ```
/// use tongxun::ws::SubscribeError;
///
/// assert_eq!(SubscribeError::TooManyTopics.to_string(), "too many topics");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The client is gone or closing.
    #[error("websocket client is not connected")]
    Closed,
    /// The topic is empty or longer than [`MAX_TOPIC_LEN`](super::MAX_TOPIC_LEN) bytes.
    #[error("invalid topic")]
    InvalidTopic,
    /// The client is already subscribed to
    /// [`WsConfig::max_topics_per_client`](super::WsConfig::max_topics_per_client) topics.
    #[error("too many topics")]
    TooManyTopics,
}
