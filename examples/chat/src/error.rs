//! Why a request was refused.

use tongxun::shared::SharedError;
use tongxun::{BroadcastError, SendError};

use crate::messages::MAX_TEXT;
use crate::nick::MAX_NICK;
use crate::rooms::{MAX_ROOM, MAX_ROOMS};

/// Why a request was refused: the handlers return it, and its message is what the client's
/// acknowledgement receives as `{"error": "<message>"}` (tongxun answers it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChatError {
    /// Joining or sending before choosing a nickname.
    #[error("pick a nickname first")]
    NoNick,
    /// A nickname of nothing but spaces.
    #[error("nickname is empty")]
    EmptyNick,
    /// A nickname past [`MAX_NICK`].
    #[error("nickname is longer than {MAX_NICK} characters")]
    LongNick,
    /// A nickname with control characters (new lines, tabs, ...).
    #[error("nickname contains control characters")]
    ControlInNick,
    /// A nickname with invisible format characters (bidi overrides, zero-width spaces, ...),
    /// which could make it pass for another.
    #[error("nickname contains invisible formatting characters")]
    InvisibleInNick,
    /// Another connected user has this nickname (in any case).
    #[error("the nickname \"{0}\" is taken")]
    NickTaken(String),
    /// A room name outside the allowed characters or length.
    #[error("room names are 1 to {MAX_ROOM} lowercase letters, digits, '-' or '_'")]
    BadRoom,
    /// Already in [`MAX_ROOMS`] rooms.
    #[error("you are in too many rooms (at most {MAX_ROOMS})")]
    TooManyRooms,
    /// Sending to, or leaving, a room the user is not in.
    #[error("you have not joined #{0}")]
    NotJoined(String),
    /// A message of nothing but spaces.
    #[error("message is empty")]
    EmptyText,
    /// A message past [`MAX_TEXT`].
    #[error("message is longer than {MAX_TEXT} characters")]
    LongText,
    /// A payload of the wrong shape or types.
    #[error("malformed {event}: expected {expected}")]
    Malformed {
        /// The event.
        event: String,
        /// What the payload should look like.
        expected: &'static str,
    },
    /// A private message to a nickname nobody connected has.
    #[error("nobody called \"{0}\" is online")]
    NoSuchUser(String),
    /// A private message to oneself.
    #[error("that is you")]
    ToSelf,
    /// The state the chat's nodes share (Redis) cannot be reached: nicknames cannot be
    /// checked.
    #[error(
        "the chat cannot check nicknames right now (its shared store is unreachable): try again in a moment"
    )]
    Unavailable(#[from] SharedError),
    /// A broadcast could not be sent (a server-side failure, not the client's).
    #[error("the server could not deliver it")]
    Delivery(#[source] BroadcastError),
    /// The acknowledgement could not be sent (the client left); nobody is told.
    #[error("could not answer")]
    Answer(#[from] SendError),
}

/// Our failure, not the client's: logged as an error here, since tongxun logs what a handler
/// returns as a refusal (at debug level).
impl From<BroadcastError> for ChatError {
    fn from(e: BroadcastError) -> Self {
        tracing::error!("broadcast failed: {e}");
        ChatError::Delivery(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_clearly() {
        assert_eq!(
            ChatError::NickTaken("Ada".into()).to_string(),
            "the nickname \"Ada\" is taken"
        );
        assert_eq!(
            ChatError::NotJoined("general".into()).to_string(),
            "you have not joined #general"
        );
        assert_eq!(
            ChatError::Malformed {
                event: "message".into(),
                expected: "{room: string, text: string}"
            }
            .to_string(),
            "malformed message: expected {room: string, text: string}"
        );
    }
}
