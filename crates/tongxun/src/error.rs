//! Errors, one enum per operation. An error that comes from another library keeps it as its
//! [`source`](std::error::Error::source), and its own message does not repeat it.

use socketioxide::{AckError as RawAckError, SendError as RawSendError, SocketError};

/// Shows an error followed by its sources, `outer: inner: innermost`, for logs and for
/// [`HandlerError`](crate::HandlerError)'s message.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// The source of an error that another library raised, kept whole.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The text of an error that cannot be shared between threads (socketioxide's adapter errors
/// are `Send` but not `Sync`), as a source that can.
#[derive(Debug)]
struct Unshared(String);

impl std::fmt::Display for Unshared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unshared {}

/// `error` as a [`BoxError`], keeping its message and the messages of its sources.
pub(crate) fn unshared(error: &dyn std::error::Error) -> BoxError {
    Box::new(Unshared(Chain(error).to_string()))
}

/// Why [`ServerBuilder::try_build`](crate::ServerBuilder::try_build) could not build the
/// server: what the builder was given does not hold together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Two namespaces (static or dynamic) were registered under the same path.
    #[error("namespace {0:?} registered twice")]
    DuplicateNamespace(String),
    /// A dynamic namespace pattern that socketioxide cannot route, such as `/a/{`.
    #[error("invalid dynamic namespace pattern {pattern:?}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// socketioxide's reason.
        #[source]
        source: BoxError,
    },
    /// `Config::redis_url` is not a Redis URL.
    #[error("invalid Config::redis_url")]
    InvalidRedisUrl(#[source] BoxError),
    /// The Admin UI's password is not a bcrypt hash (`$2a$10$...`).
    #[error("the Admin UI's password must be a bcrypt hash")]
    InvalidAdminPassword(#[source] BoxError),
    /// A setting asks for what a cargo feature of tongxun builds in, and that feature is off.
    #[error("{setting} needs tongxun's `{feature}` feature")]
    FeatureDisabled {
        /// The setting, such as `Config::redis_url`.
        setting: &'static str,
        /// The cargo feature to turn on.
        feature: &'static str,
    },
}

/// Why a message could not be sent to a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The payload could not be serialized.
    #[error("failed to serialize the payload")]
    Encode(#[source] BoxError),
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
            RawSendError::Serialize(e) => SendError::Encode(Box::new(e)),
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
    #[error("failed to decode the acknowledgement")]
    Decode(#[source] BoxError),
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
            RawAckError::Decode(e) => AckError::Decode(Box::new(e)),
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
