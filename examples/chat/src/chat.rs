//! The chat itself: Socket.IO handlers on namespace `/chat`.
//!
//! # Protocol
//! Every request the client sends takes an acknowledgement. A refused request is answered with
//! `{"error": "<what went wrong>"}` and changes nothing; the page shows that message.
//!
//! | client emits | payload | acknowledgement when accepted |
//! | --- | --- | --- |
//! | `nick` | `"ada"` | `{"ok": "ada"}` |
//! | `join` | `"general"` | `{"ok": true, "room", "members": ["ada", ...], "history": [Message, ...]}` |
//! | `leave` | `"general"` | `{"ok": "general"}` |
//! | `message` | `{"room", "text"}` | `{"ok": true, "id", "at"}`: the page marks it "delivered" |
//! | `typing` | `{"room"}` | `{"ok": true}` (clients usually ask for none) |
//! | `private` | `{"to": "grace", "text"}` | `{"ok": true, "id", "at"}` |
//!
//! | server emits | payload | to whom |
//! | --- | --- | --- |
//! | `message` | `{"id", "room", "from", "text", "at"}` | the room's other members (the sender shows its own copy) |
//! | `private` | `{"id", "from", "to", "text", "at"}` | the one recipient |
//! | `typing` | `{"room", "nick"}` | the room's other members, volatile (dropped rather than queued) |
//! | `members` | `{"room", "members"}` | the room, after a join, leave, nickname change or disconnect |
//! | `notice` | `{"room", "kind": "join" / "leave" / "nick", "nick", "text", "at"}` | the room, except whom it is about |
//!
//! `at` is milliseconds since the Unix epoch; `id`s increase in the order messages were accepted.
//!
//! # Rules
//! - Nicknames are trimmed, 1 to 24 characters without control or invisible format characters
//!   (Unicode category Cf, such as bidi overrides), and unique among
//!   connected users regardless of case. One must be set before joining or sending anything.
//! - Room names are 1 to 24 lowercase letters, digits, `-` or `_` (a leading `#` and capitals are
//!   accepted and normalised). A user is in at most 16 rooms.
//! - Message text is trimmed and 1 to 2,000 characters long; a payload of the wrong shape is
//!   refused as malformed.
//! - Each room keeps its last 50 messages, sent to whoever joins. `general` and `random` keep
//!   theirs for the life of the server; any other room forgets them when its last member leaves,
//!   and so does its SSE feed `chat:<room>` (`SseHub::forget`): its readers' streams end, and a
//!   reader resuming with an old `Last-Event-ID` gets `resync`, not the forgotten messages.
//!
//! The nickname lives in the socket's store, where member lists read it; a registry beside it
//! makes claiming a nickname atomic. Sockets join Socket.IO rooms named `#<room>`, so a chat room
//! can never be mistaken for the room every socket has under its own id (which is how a private
//! message reaches exactly one socket).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tongxun::sse::{SseEvent, SseHub};
use tongxun::{Ack, BroadcastError, DisconnectReason, Sid, Socket, TryData};

/// Rooms offered by the page, whose history outlives their members.
pub(crate) const DEFAULT_ROOMS: [&str; 2] = ["general", "random"];
/// Messages a room remembers for newcomers.
pub(crate) const HISTORY: usize = 50;
/// Longest nickname, in characters.
pub(crate) const MAX_NICK: usize = 24;
/// Longest room name, in characters.
pub(crate) const MAX_ROOM: usize = 24;
/// Longest message, in characters.
pub(crate) const MAX_TEXT: usize = 2_000;
/// Most rooms one user may be in at once.
pub(crate) const MAX_ROOMS: usize = 16;

/// The store key holding a socket's nickname.
const NICK: &str = "nick";

/// Why a request was refused; the message is what the client's acknowledgement receives.
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
        event: &'static str,
        /// What the payload should look like.
        expected: &'static str,
    },
    /// A private message to a nickname nobody connected has.
    #[error("nobody called \"{0}\" is online")]
    NoSuchUser(String),
    /// A private message to oneself.
    #[error("that is you")]
    ToSelf,
    /// A broadcast could not be sent (a server-side failure, not the client's).
    #[error("the server could not deliver it")]
    Delivery(#[from] BroadcastError),
}

/// A message of a room, as broadcast and as kept in its history.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Message {
    id: u64,
    room: String,
    from: String,
    text: String,
    at: u64,
}

/// A private message.
#[derive(Debug, Serialize)]
struct Private {
    id: u64,
    from: String,
    to: String,
    text: String,
    at: u64,
}

/// What a system line is about.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
enum NoticeKind {
    Join,
    Leave,
    Nick,
}

/// A system line shown in a room: someone joined, left or changed nickname.
#[derive(Debug, Serialize)]
struct Notice<'a> {
    room: &'a str,
    kind: NoticeKind,
    nick: &'a str,
    text: String,
    at: u64,
}

/// Who is in a room now.
#[derive(Debug, Serialize)]
struct Members<'a> {
    room: &'a str,
    members: Vec<String>,
}

/// Someone is typing in a room.
#[derive(Debug, Serialize)]
struct Typing<'a> {
    room: &'a str,
    nick: &'a str,
}

/// The acknowledgement of `nick`.
#[derive(Debug, Serialize)]
struct NickSet {
    ok: String,
}

/// The acknowledgement of `join`.
#[derive(Debug, Serialize)]
struct Joined {
    ok: bool,
    room: String,
    members: Vec<String>,
    history: Vec<Message>,
}

/// The acknowledgement of `leave`.
#[derive(Debug, Serialize)]
struct Left {
    ok: String,
}

/// The acknowledgement of `message` and `private`.
#[derive(Debug, Serialize)]
struct Sent {
    ok: bool,
    id: u64,
    at: u64,
}

/// The acknowledgement of `typing`.
#[derive(Debug, Serialize)]
struct Done {
    ok: bool,
}

/// The acknowledgement of a refused request.
#[derive(Debug, Serialize)]
struct Refused {
    error: String,
}

/// The payload of `message`.
#[derive(Debug, Deserialize)]
struct MessageIn {
    room: String,
    text: String,
}

/// The payload of `typing`.
#[derive(Debug, Deserialize)]
struct TypingIn {
    room: String,
}

/// The payload of `private`.
#[derive(Debug, Deserialize)]
struct PrivateIn {
    to: String,
    text: String,
}

/// Who holds a nickname.
#[derive(Debug, Clone)]
struct Owner {
    sid: Sid,
    nick: String,
}

/// The chat's shared state. Its locks are taken briefly and never held across an await.
#[derive(Debug, Default)]
pub(crate) struct Chat {
    /// Read-only feeds of the rooms: every message of room `r` is also published to the SSE
    /// topic `chat:r` (`GET /events?topic=chat:general`).
    feed: SseHub,
    /// Nicknames in use, by their lowercase form.
    nicks: Mutex<HashMap<String, Owner>>,
    /// The last [`HISTORY`] messages of each room.
    history: Mutex<HashMap<String, VecDeque<Message>>>,
    /// The id of the next message.
    next_id: AtomicU64,
}

/// Takes a lock, even if a panicking thread poisoned it (the maps stay consistent: every
/// update is a single insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Milliseconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The Socket.IO room behind chat room `room`.
fn tag(room: &str) -> String {
    format!("#{room}")
}

/// The chat rooms a socket is in.
fn joined(socket: &Socket) -> Vec<String> {
    socket
        .rooms()
        .into_iter()
        .filter_map(|r| r.strip_prefix('#').map(str::to_owned))
        .collect()
}

/// Whether `c` is a Unicode format character (category Cf): invisible, and able to reorder or
/// join the text around it (U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE), so that a
/// nickname could pass for another.
fn is_format_char(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}

/// Checks and normalises a nickname.
pub(crate) fn valid_nick(raw: &str) -> Result<String, ChatError> {
    let nick = raw.trim();
    if nick.is_empty() {
        Err(ChatError::EmptyNick)
    } else if nick.chars().count() > MAX_NICK {
        Err(ChatError::LongNick)
    } else if nick.chars().any(char::is_control) {
        Err(ChatError::ControlInNick)
    } else if nick.chars().any(is_format_char) {
        Err(ChatError::InvisibleInNick)
    } else {
        Ok(nick.to_owned())
    }
}

/// Checks and normalises a room name: `" #General "` is `general`.
pub(crate) fn valid_room(raw: &str) -> Result<String, ChatError> {
    let trimmed = raw.trim();
    let room = trimmed.strip_prefix('#').unwrap_or(trimmed).to_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if room.is_empty() || room.len() > MAX_ROOM || !room.chars().all(allowed) {
        Err(ChatError::BadRoom)
    } else {
        Ok(room)
    }
}

/// Checks and trims a message's text.
pub(crate) fn valid_text(raw: &str) -> Result<String, ChatError> {
    let text = raw.trim();
    if text.is_empty() {
        Err(ChatError::EmptyText)
    } else if text.chars().count() > MAX_TEXT {
        Err(ChatError::LongText)
    } else {
        Ok(text.to_owned())
    }
}

/// Registers a request handler for `event`: decodes the payload as `In`, runs `handle`, and
/// answers the acknowledgement with its outcome, or with `{"error"}` when the payload does not
/// decode (described by `expected`) or the request is refused.
fn request<In, Out, F, Fut>(
    socket: &Socket,
    chat: &Arc<Chat>,
    event: &'static str,
    expected: &'static str,
    handle: F,
) where
    In: DeserializeOwned + Send + 'static,
    Out: Serialize,
    F: Fn(Arc<Chat>, Socket, In) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Out, ChatError>> + Send + 'static,
{
    let chat = chat.clone();
    socket.on(
        event,
        move |socket: Socket, TryData(input): TryData<In>, ack: Ack| {
            let (chat, handle) = (chat.clone(), handle.clone());
            async move {
                let outcome = match input {
                    Ok(input) => handle(chat, socket.clone(), input).await,
                    Err(_) => Err(ChatError::Malformed { event, expected }),
                };
                match outcome {
                    Ok(answer) => ack.send(&answer),
                    Err(refusal) => {
                        match &refusal {
                            ChatError::Delivery(e) => {
                                tracing::error!(sid = %socket.id(), event, "broadcast failed: {e}")
                            }
                            ChatError::Malformed { .. } => {
                                tracing::warn!(sid = %socket.id(), event, %refusal, "refused")
                            }
                            _ => tracing::debug!(sid = %socket.id(), event, %refusal, "refused"),
                        }
                        ack.send(&Refused {
                            error: refusal.to_string(),
                        })
                    }
                }
            }
        },
    );
}

impl Chat {
    /// A chat whose rooms are also published to `feed`.
    pub(crate) fn new(feed: SseHub) -> Self {
        Self {
            feed,
            ..Self::default()
        }
    }

    /// Sets up a socket that joined `/chat`.
    pub(crate) async fn connect(self: Arc<Self>, socket: Socket) {
        request(&socket, &self, "nick", "a string", Chat::set_nick);
        request(&socket, &self, "join", "a room name", Chat::join);
        request(&socket, &self, "leave", "a room name", Chat::leave);
        request(
            &socket,
            &self,
            "message",
            "{room: string, text: string}",
            Chat::message,
        );
        request(&socket, &self, "typing", "{room: string}", Chat::typing);
        request(
            &socket,
            &self,
            "private",
            "{to: string, text: string}",
            Chat::private,
        );
        let chat = self.clone();
        socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| {
            chat.clone().disconnect(socket, reason)
        });
    }

    /// `nick`: claims a nickname, releasing the previous one.
    async fn set_nick(self: Arc<Self>, socket: Socket, raw: String) -> Result<NickSet, ChatError> {
        let nick = valid_nick(&raw)?;
        let old: Option<String> = socket.store().get(NICK).ok();
        {
            let mut nicks = lock(&self.nicks);
            if nicks
                .get(&nick.to_lowercase())
                .is_some_and(|owner| owner.sid != socket.id())
            {
                return Err(ChatError::NickTaken(nick));
            }
            if let Some(old) = &old {
                nicks.remove(&old.to_lowercase());
            }
            nicks.insert(
                nick.to_lowercase(),
                Owner {
                    sid: socket.id(),
                    nick: nick.clone(),
                },
            );
        }
        // A String always serializes: this cannot fail.
        socket.store().set(NICK, &nick).ok();

        if let Some(old) = old.filter(|old| *old != nick) {
            for room in joined(&socket) {
                let notice = Notice {
                    room: &room,
                    kind: NoticeKind::Nick,
                    nick: &nick,
                    text: format!("{old} is now known as {nick}"),
                    at: now(),
                };
                socket.to(tag(&room)).emit("notice", &notice).await?;
                self.announce_members(&socket, &room, None).await?;
            }
        }
        Ok(NickSet { ok: nick })
    }

    /// `join`: enters a room; answers its members and history.
    async fn join(self: Arc<Self>, socket: Socket, raw: String) -> Result<Joined, ChatError> {
        let nick = nick_of(&socket)?;
        let room = valid_room(&raw)?;
        let rooms = joined(&socket);
        let fresh = !rooms.contains(&room);
        if fresh {
            if rooms.len() >= MAX_ROOMS {
                return Err(ChatError::TooManyRooms);
            }
            socket
                .join(tag(&room))
                .expect("a room tag starts with '#', never the shape of a socket id");
        }
        let members = members(&socket, &room, None);
        let history = lock(&self.history)
            .get(&room)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default();
        if fresh {
            let notice = Notice {
                room: &room,
                kind: NoticeKind::Join,
                nick: &nick,
                text: format!("{nick} joined"),
                at: now(),
            };
            let others = socket.to(tag(&room));
            others.clone().emit("notice", &notice).await?;
            let update = Members {
                room: &room,
                members: members.clone(),
            };
            others.emit("members", &update).await?;
        }
        Ok(Joined {
            ok: true,
            room,
            members,
            history,
        })
    }

    /// `leave`: leaves a room; the others see a notice and the new member list.
    async fn leave(self: Arc<Self>, socket: Socket, raw: String) -> Result<Left, ChatError> {
        let nick = nick_of(&socket)?;
        let room = valid_room(&raw)?;
        if !joined(&socket).contains(&room) {
            return Err(ChatError::NotJoined(room));
        }
        socket.leave(tag(&room));
        self.announce_leave(&socket, &nick, &room).await?;
        Ok(Left { ok: room })
    }

    /// `message`: sends a message to a room the sender is in and keeps it in the history.
    async fn message(self: Arc<Self>, socket: Socket, input: MessageIn) -> Result<Sent, ChatError> {
        let from = nick_of(&socket)?;
        let room = valid_room(&input.room)?;
        if !joined(&socket).contains(&room) {
            return Err(ChatError::NotJoined(room));
        }
        let text = valid_text(&input.text)?;
        let message = Message {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            room,
            from,
            text,
            at: now(),
        };
        {
            let mut history = lock(&self.history);
            let kept = history.entry(message.room.clone()).or_default();
            kept.push_back(message.clone());
            while kept.len() > HISTORY {
                kept.pop_front();
            }
        }
        socket
            .to(tag(&message.room))
            .emit("message", &message)
            .await?;
        // The feed is a view: the room already has the message, whatever the feed says.
        let topic = format!("chat:{}", message.room);
        match SseEvent::json(&message) {
            Ok(event) => {
                if let Err(e) = self.feed.publish(&topic, event.event("message")).await {
                    tracing::warn!(%topic, "message not published to the room's feed: {e}");
                }
            }
            Err(e) => tracing::error!(%topic, "message not serializable for the feed: {e}"),
        }
        Ok(Sent {
            ok: true,
            id: message.id,
            at: message.at,
        })
    }

    /// `typing`: tells the room's other members, if they can take it right now.
    async fn typing(self: Arc<Self>, socket: Socket, input: TypingIn) -> Result<Done, ChatError> {
        let nick = nick_of(&socket)?;
        let room = valid_room(&input.room)?;
        if !joined(&socket).contains(&room) {
            return Err(ChatError::NotJoined(room));
        }
        let typing = Typing {
            room: &room,
            nick: &nick,
        };
        socket
            .to(tag(&room))
            .volatile()
            .emit("typing", &typing)
            .await?;
        Ok(Done { ok: true })
    }

    /// `private`: sends a message to the one socket holding a nickname.
    async fn private(self: Arc<Self>, socket: Socket, input: PrivateIn) -> Result<Sent, ChatError> {
        let from = nick_of(&socket)?;
        let wanted = input.to.trim().to_owned();
        let owner = lock(&self.nicks).get(&wanted.to_lowercase()).cloned();
        // The registry may still name a socket whose disconnect is being handled.
        let Some(owner) = owner.filter(|o| !socket.within(o.sid.to_string()).sockets().is_empty())
        else {
            return Err(ChatError::NoSuchUser(wanted));
        };
        if owner.sid == socket.id() {
            return Err(ChatError::ToSelf);
        }
        let text = valid_text(&input.text)?;
        let message = Private {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            from,
            to: owner.nick,
            text,
            at: now(),
        };
        socket
            .to(owner.sid.to_string())
            .emit("private", &message)
            .await?;
        Ok(Sent {
            ok: true,
            id: message.id,
            at: message.at,
        })
    }

    /// Frees the nickname and announces the leave in every room the socket was in.
    async fn disconnect(self: Arc<Self>, socket: Socket, reason: DisconnectReason) {
        let Ok(nick) = nick_of(&socket) else { return };
        {
            let mut nicks = lock(&self.nicks);
            let key = nick.to_lowercase();
            if nicks.get(&key).is_some_and(|o| o.sid == socket.id()) {
                nicks.remove(&key);
            }
        }
        tracing::debug!(sid = %socket.id(), %nick, %reason, "left the chat");
        for room in joined(&socket) {
            if let Err(e) = self.announce_leave(&socket, &nick, &room).await {
                tracing::error!(sid = %socket.id(), %room, "could not announce a leave: {e}");
            }
        }
    }

    /// Tells a room that `socket` left it, and forgets the room's history and feed if it
    /// emptied.
    async fn announce_leave(
        &self,
        socket: &Socket,
        nick: &str,
        room: &str,
    ) -> Result<(), ChatError> {
        let notice = Notice {
            room,
            kind: NoticeKind::Leave,
            nick,
            text: format!("{nick} left"),
            at: now(),
        };
        socket.to(tag(room)).emit("notice", &notice).await?;
        self.announce_members(socket, room, Some(socket.id()))
            .await?;
        if !DEFAULT_ROOMS.contains(&room) {
            // Checked under the lock, so a message sent by someone joining meanwhile stays.
            let emptied = {
                let mut history = lock(&self.history);
                let emptied = members(socket, room, Some(socket.id())).is_empty();
                if emptied {
                    history.remove(room);
                }
                emptied
            };
            // The room's feed forgets too, so that no `Last-Event-ID` replays what the room
            // forgot. A message sent in the moment between the two may go with it: the feed is
            // a view, the room has the message.
            if emptied {
                let topic = format!("chat:{room}");
                if let Err(e) = self.feed.forget(&topic).await {
                    tracing::warn!(%topic, "the room's feed may keep its history: {e}");
                }
            }
        }
        Ok(())
    }

    /// Sends a room its member list, leaving out `leaving`.
    async fn announce_members(
        &self,
        socket: &Socket,
        room: &str,
        leaving: Option<Sid>,
    ) -> Result<(), ChatError> {
        let update = Members {
            room,
            members: members(socket, room, leaving),
        };
        let everyone = match leaving {
            Some(_) => socket.to(tag(room)),
            None => socket.within(tag(room)),
        };
        everyone.emit("members", &update).await?;
        Ok(())
    }
}

/// The socket's nickname, if it chose one.
fn nick_of(socket: &Socket) -> Result<String, ChatError> {
    socket.store().get(NICK).map_err(|_| ChatError::NoNick)
}

/// The nicknames in a room, sorted regardless of case, read from each member's store.
fn members(socket: &Socket, room: &str, leaving: Option<Sid>) -> Vec<String> {
    let mut nicks: Vec<String> = socket
        .within(tag(room))
        .sockets()
        .iter()
        .filter(|s| s.connected() && Some(s.id()) != leaving)
        .filter_map(|s| s.store().get(NICK).ok())
        .collect();
    nicks.sort_by_key(|n: &String| (n.to_lowercase(), n.clone()));
    nicks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outcome with the refusal as its message, for comparing.
    fn said(outcome: Result<String, ChatError>) -> Result<String, String> {
        outcome.map_err(|e| e.to_string())
    }

    #[test]
    fn nicknames_are_trimmed_and_bounded() {
        assert_eq!(said(valid_nick("  ada ")), Ok("ada".to_owned()));
        assert_eq!(said(valid_nick("   ")), Err("nickname is empty".to_owned()));
        assert_eq!(
            said(valid_nick(&"é".repeat(MAX_NICK))),
            Ok("é".repeat(MAX_NICK))
        );
        assert_eq!(
            said(valid_nick(&"x".repeat(MAX_NICK + 1))),
            Err("nickname is longer than 24 characters".to_owned())
        );
        assert!(matches!(valid_nick("a\nb"), Err(ChatError::ControlInNick)));
        for disguised in [
            "ada\u{202E}",
            "a\u{200B}da",
            "\u{2066}ada",
            "ad\u{FEFF}a",
            "a\u{00AD}da",
        ] {
            assert!(
                matches!(valid_nick(disguised), Err(ChatError::InvisibleInNick)),
                "{disguised:?}"
            );
        }
        // Letters of any script stay welcome.
        assert_eq!(said(valid_nick("أحمد")), Ok("أحمد".to_owned()));
        assert_eq!(said(valid_nick("李雷")), Ok("李雷".to_owned()));
    }

    #[test]
    fn room_names_are_normalised() {
        assert_eq!(said(valid_room(" #General ")), Ok("general".to_owned()));
        assert_eq!(
            said(valid_room("rust-lang_2")),
            Ok("rust-lang_2".to_owned())
        );
        for bad in [
            "",
            "#",
            "two words",
            "ünïcode",
            "a/b",
            &"r".repeat(MAX_ROOM + 1),
        ] {
            assert!(
                matches!(valid_room(bad), Err(ChatError::BadRoom)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(said(valid_text("  hi\n")), Ok("hi".to_owned()));
        assert_eq!(
            said(valid_text(" \n\t ")),
            Err("message is empty".to_owned())
        );
        assert!(valid_text(&"x".repeat(MAX_TEXT)).is_ok());
        assert_eq!(
            said(valid_text(&"x".repeat(MAX_TEXT + 1))),
            Err("message is longer than 2000 characters".to_owned())
        );
    }

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
                event: "message",
                expected: "{room: string, text: string}"
            }
            .to_string(),
            "malformed message: expected {room: string, text: string}"
        );
    }
}
