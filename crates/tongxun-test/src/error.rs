//! Errors of the test client, one enum per operation.

/// The source of an error that another library raised, kept whole.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why [`ClientBuilder::connect`](crate::ClientBuilder::connect) did not join the namespace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server could not be reached, or the WebSocket or HTTP request failed.
    #[error("transport failed")]
    Transport(#[source] BoxError),
    /// The server answered, but not with an Engine.IO 4 open packet (the text is shown).
    #[error("not an Engine.IO open packet: {0:?}")]
    NotEngineIo(String),
    /// The namespace refused the client: an auth middleware returned an error, or the
    /// namespace does not exist (`"Invalid namespace"`), as `connect_error` reports it.
    #[error("connection refused: {message}")]
    Refused {
        /// The `message` of the `connect_error` packet.
        message: String,
        /// Its `data`, when the server sent some.
        data: Option<serde_json::Value>,
    },
    /// The server closed the session before answering.
    #[error("the server closed the session before answering")]
    Closed,
    /// No answer within the client's [timeout](crate::ClientBuilder::timeout).
    #[error("no answer within the timeout")]
    Timeout,
}

/// Why an emit, an acknowledgement or a wait for an event failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The payload could not be serialized.
    #[error("failed to serialize the payload")]
    Encode(#[source] BoxError),
    /// The data received did not decode into the type asked for.
    #[error("failed to decode the data")]
    Decode(#[source] BoxError),
    /// The client is no longer connected to its namespace.
    #[error("the client is disconnected")]
    Disconnected,
    /// The server did not answer, or the event did not come, within the client's
    /// [timeout](crate::ClientBuilder::timeout).
    #[error("timed out")]
    Timeout,
    /// [`Event::ack`](crate::Event::ack) on an event whose sender asked for no
    /// acknowledgement.
    #[error("the event asked for no acknowledgement")]
    NoAckRequested,
}
