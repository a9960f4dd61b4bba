//! Errors, one enum per operation.

use socketioxide::{AckError as RawAckError, SendError as RawSendError, SocketError};

/// Why a message could not be sent to a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The payload could not be serialized.
    #[error("failed to serialize the payload: {0}")]
    Encode(String),
    /// The client is no longer connected.
    #[error("socket is closed")]
    Closed,
    /// The client's outgoing queue is full: it does not read as fast as it is sent to.
    #[error("socket outgoing queue is full")]
    QueueFull,
    /// This acknowledgement was already answered (by another listener of the same event, or by
    /// tongxun after the handler failed).
    #[error("acknowledgement already sent")]
    AlreadyAcknowledged,
}

impl From<RawSendError> for SendError {
    fn from(err: RawSendError) -> Self {
        match err {
            RawSendError::Serialize(e) => SendError::Encode(e.to_string()),
            RawSendError::Socket(e) => e.into(),
        }
    }
}

impl From<SocketError> for SendError {
    fn from(err: SocketError) -> Self {
        match err {
            SocketError::InternalChannelFull => SendError::QueueFull,
            SocketError::Closed => SendError::Closed,
        }
    }
}

/// Why a socket could not join a room.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The room has the shape of a socket id (16 ASCII letters, digits, `-` or `_`). Every
    /// socket is alone in the room named by its id, which carries its private messages, so no
    /// other socket may ever join a room of that shape, on any node: its owner may connect
    /// later, or elsewhere. Nothing was joined.
    #[error("room {0:?} has the shape of a socket id: such rooms are private to their socket")]
    Reserved(String),
}

/// Why an acknowledgement requested from a client did not arrive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The client did not answer within the timeout.
    #[error("acknowledgement timed out")]
    Timeout,
    /// The answer did not decode into the expected type.
    #[error("failed to decode the acknowledgement: {0}")]
    Decode(String),
    /// The client disconnected before answering.
    #[error("socket disconnected before acknowledging")]
    Disconnected,
    /// The request could not be sent.
    #[error("failed to send the event")]
    Send(#[from] SendError),
}

impl From<RawAckError> for AckError {
    fn from(err: RawAckError) -> Self {
        match err {
            RawAckError::Timeout => AckError::Timeout,
            RawAckError::Decode(e) => AckError::Decode(e.to_string()),
            RawAckError::Socket(SocketError::Closed) => AckError::Disconnected,
            RawAckError::Socket(e) => AckError::Send(e.into()),
        }
    }
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Accepting or serving connections failed.
    #[error("failed to serve connections")]
    Io(#[from] std::io::Error),
}
