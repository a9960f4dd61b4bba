//! What clients send and what they receive (other than the messages themselves), and the
//! extractor that decodes a request or refuses it as malformed.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tongxun::extract::{EventContext, ExtractError, FromEvent};

use crate::error::ChatError;
use crate::messages::{Message, now};

/// What a request's payload decodes into.
pub(crate) trait Request: DeserializeOwned {
    /// What the payload looks like, for the refusal of one that does not decode.
    const EXPECTED: &'static str;
}

/// A request's payload; one that does not decode is refused with [`ChatError::Malformed`]
/// (which tongxun logs as a warning, the client's mistake) and the handler is not called.
#[derive(Debug)]
pub(crate) struct Payload<T>(pub(crate) T);

impl<T: Request> FromEvent for Payload<T> {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        ctx.decode().map(Payload).map_err(|_| {
            let event = ctx.event().to_owned();
            ExtractError::refused(
                ChatError::Malformed {
                    event,
                    expected: T::EXPECTED,
                }
                .to_string(),
            )
        })
    }
}

/// The payload of `nick`.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct NickIn(pub(crate) String);

/// The payload of `join` and `leave`.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct RoomIn(pub(crate) String);

/// The payload of `message`.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageIn {
    pub(crate) room: String,
    pub(crate) text: String,
}

/// The payload of `typing`.
#[derive(Debug, Deserialize)]
pub(crate) struct TypingIn {
    pub(crate) room: String,
}

/// The payload of `private`.
#[derive(Debug, Deserialize)]
pub(crate) struct PrivateIn {
    pub(crate) to: String,
    pub(crate) text: String,
}

impl Request for NickIn {
    const EXPECTED: &'static str = "a string";
}
impl Request for RoomIn {
    const EXPECTED: &'static str = "a room name";
}
impl Request for MessageIn {
    const EXPECTED: &'static str = "{room: string, text: string}";
}
impl Request for TypingIn {
    const EXPECTED: &'static str = "{room: string}";
}
impl Request for PrivateIn {
    const EXPECTED: &'static str = "{to: string, text: string}";
}

/// What a system line is about.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NoticeKind {
    Join,
    Leave,
    Nick,
}

/// A system line shown in a room: someone joined, left or changed nickname.
#[derive(Debug, Serialize)]
pub(crate) struct Notice<'a> {
    room: &'a str,
    kind: NoticeKind,
    nick: &'a str,
    text: String,
    at: u64,
}

impl<'a> Notice<'a> {
    /// A notice about `nick`, now.
    pub(crate) fn new(room: &'a str, kind: NoticeKind, nick: &'a str, text: String) -> Self {
        let at = now();
        Notice {
            room,
            kind,
            nick,
            text,
            at,
        }
    }
}

/// Who is in a room now.
#[derive(Debug, Serialize)]
pub(crate) struct Members<'a> {
    pub(crate) room: &'a str,
    pub(crate) members: Vec<String>,
}

/// Someone is typing in a room.
#[derive(Debug, Serialize)]
pub(crate) struct Typing<'a> {
    pub(crate) room: &'a str,
    pub(crate) nick: &'a str,
}

/// The acknowledgement of `nick` (the nickname), `leave` (the room) and `typing` (`true`).
#[derive(Debug, Serialize)]
pub(crate) struct Accepted<T> {
    pub(crate) ok: T,
}

/// The acknowledgement of `join`.
#[derive(Debug, Serialize)]
pub(crate) struct Joined {
    pub(crate) ok: bool,
    pub(crate) room: String,
    pub(crate) members: Vec<String>,
    pub(crate) history: Vec<Message>,
}

/// The acknowledgement of `message` and `private`.
#[derive(Debug, Serialize)]
pub(crate) struct Sent {
    ok: bool,
    id: u64,
    at: u64,
    /// Only this server's users got it: Redis, and so the other chat servers, could not be
    /// reached. Absent when every server was told.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    local: bool,
}

impl Sent {
    /// The acknowledgement of the message `id` sent `at`, which `reached` every server or this
    /// one only.
    pub(crate) fn new(id: u64, at: u64, reached: Reached) -> Self {
        let local = matches!(reached, Reached::ThisServer);
        Sent {
            ok: true,
            id,
            at,
            local,
        }
    }
}

/// Whom a message reached.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reached {
    /// Every chat server.
    Everyone,
    /// This server's users only (Redis is away).
    ThisServer,
}

impl Reached {
    /// Whom the broadcast that `sent` reports reached; an error other than Redis being away
    /// stays an error.
    pub(crate) fn of(
        sent: Result<(), tongxun::BroadcastError>,
    ) -> Result<Self, tongxun::BroadcastError> {
        match sent {
            Ok(()) => Ok(Reached::Everyone),
            Err(tongxun::BroadcastError::ThisNodeOnly) => Ok(Reached::ThisServer),
            Err(e) => Err(e),
        }
    }
}
