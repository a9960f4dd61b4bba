//! How a connection ends: the reason given to `on_disconnect`, and the close frame sent.

use std::fmt;

use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::message::Utf8Bytes;

/// Longest close reason RFC 6455 allows (a control frame carries 125 bytes, 2 are the code).
const MAX_CLOSE_REASON: usize = 123;

/// Why a client's connection ended, as given to the
/// [`on_disconnect`](super::WsHubBuilder::on_disconnect) handler.
///
/// # Examples
/// ```
/// use tongxun::ws::WsDisconnectReason;
///
/// let reason = WsDisconnectReason::ServerShutdown;
/// assert_eq!(reason.close_code(), Some(1001));
/// assert_eq!(reason.to_string(), "server shutting down");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsDisconnectReason {
    /// The client closed the connection with this code (1005 when it sent none) and reason.
    ClientClosed {
        /// The client's close code.
        code: u16,
        /// The client's close reason.
        reason: String,
    },
    /// The connection dropped without a close handshake.
    ConnectionLost,
    /// The client answered no ping within [`WsConfig::pong_deadline`](super::WsConfig): it
    /// was torn down without a close frame.
    PingTimeout,
    /// The client sent a message larger than
    /// [`WsConfig::max_message_size`](super::WsConfig): closed with 1009.
    MessageTooBig,
    /// The client broke RFC 6455: closed with 1002 (protocol error) or 1007 (invalid UTF-8).
    ProtocolError {
        /// The close code sent.
        code: u16,
    },
    /// The client's outgoing queue overflowed under
    /// [`OverflowPolicy::Close`](super::OverflowPolicy::Close): closed with 1013.
    SlowConsumer,
    /// The app closed the connection with [`WsClient::close`](super::WsClient::close).
    ClosedByServer {
        /// The close code sent.
        code: u16,
        /// The close reason sent.
        reason: String,
    },
    /// The hub shut down: closed with 1001.
    ServerShutdown,
    /// A handler panicked: closed with 1011.
    HandlerPanicked,
}

impl WsDisconnectReason {
    /// The close code of the close frame that ended the connection (the client's or the
    /// hub's), or `None` when no close frame was sent.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::WsDisconnectReason;
    ///
    /// assert_eq!(WsDisconnectReason::MessageTooBig.close_code(), Some(1009));
    /// assert_eq!(WsDisconnectReason::PingTimeout.close_code(), None);
    /// ```
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Self::ClientClosed { code, .. }
            | Self::ClosedByServer { code, .. }
            | Self::ProtocolError { code } => Some(*code),
            Self::ConnectionLost | Self::PingTimeout => None,
            Self::MessageTooBig => Some(1009),
            Self::SlowConsumer => Some(1013),
            Self::ServerShutdown => Some(1001),
            Self::HandlerPanicked => Some(1011),
        }
    }
}

impl fmt::Display for WsDisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientClosed { code, reason } => {
                write!(f, "client closed the connection ({code} {reason:?})")
            }
            Self::ConnectionLost => f.write_str("connection lost"),
            Self::PingTimeout => f.write_str("ping timeout"),
            Self::MessageTooBig => f.write_str("message too big"),
            Self::ProtocolError { code } => write!(f, "protocol error ({code})"),
            Self::SlowConsumer => f.write_str("client too slow"),
            Self::ClosedByServer { code, reason } => {
                write!(f, "closed by the server ({code} {reason:?})")
            }
            Self::ServerShutdown => f.write_str("server shutting down"),
            Self::HandlerPanicked => f.write_str("handler panicked"),
        }
    }
}

/// A close frame with a valid code and a reason cut to what RFC 6455 allows.
pub(crate) fn close_frame(code: impl Into<CloseCode>, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from(&reason[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_tell_their_close_code() {
        let closed = WsDisconnectReason::ClientClosed {
            code: 4000,
            reason: "bye".into(),
        };
        assert_eq!(closed.close_code(), Some(4000));
        assert_eq!(
            closed.to_string(),
            r#"client closed the connection (4000 "bye")"#
        );
        assert_eq!(WsDisconnectReason::SlowConsumer.close_code(), Some(1013));
        assert_eq!(WsDisconnectReason::ConnectionLost.close_code(), None);
    }

    #[test]
    fn close_reasons_are_cut_on_a_char_boundary() {
        let reason = "é".repeat(100);
        let frame = close_frame(CloseCode::Normal, &reason);
        assert_eq!(frame.reason.len(), 122);
    }
}
