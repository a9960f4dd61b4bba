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
//! | `message` | `{"room", "text"}` | `{"ok": true, "id", "at"}`: the page marks it "delivered"; with `"local": true` (Redis is away) only this server's users got it, and the page says "sent to this server only" |
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
//! A refused request is a [`ChatError`] returned by its handler, which tongxun answers as
//! `{"error": "<message>"}`. The nickname lives in the socket's extensions ([`Nick`]), where
//! member lists read it; a registry beside it ([`Nicknames`]) makes claiming a nickname atomic.
//! Rooms are described in `rooms.rs`, the history and the feeds in `messages.rs`.

use std::sync::Arc;

use tongxun::sse::SseHub;
use tongxun::{Ack, DisconnectReason, Socket, State};

use crate::error::ChatError;
use crate::messages::{Messages, valid_text};
use crate::nick::{Nick, Nicknames, nick_of, valid_nick};
use crate::payloads::{
    Accepted, Joined, Members, MessageIn, NickIn, Notice, NoticeKind, Payload, PrivateIn, Reached,
    RoomIn, Sent, Typing, TypingIn,
};
use crate::rooms::{announce_members, enter, joined, member_of, members, tag, valid_room};

/// The chat's shared state, which every handler takes as `State<Arc<Chat>>`.
#[derive(Debug)]
pub(crate) struct Chat {
    nicks: Nicknames,
    messages: Messages,
}

impl Chat {
    /// A chat whose rooms are also published to `feed`.
    pub(crate) fn new(feed: SseHub) -> Arc<Self> {
        let nicks = Nicknames::default();
        let messages = Messages::new(feed);
        Arc::new(Chat { nicks, messages })
    }
}

/// Sets up a socket that joined `/chat`.
pub(crate) async fn connect(socket: Socket) {
    socket.on("nick", set_nick);
    socket.on("join", join);
    socket.on("leave", leave);
    socket.on("message", message);
    socket.on("typing", typing);
    socket.on("private", private);
    socket.on_disconnect(disconnect);
}

/// `nick`: claims a nickname, releasing the previous one.
async fn set_nick(
    State(chat): State<Arc<Chat>>,
    socket: Socket,
    Payload(NickIn(raw)): Payload<NickIn>,
    ack: Ack,
) -> Result<(), ChatError> {
    let nick = valid_nick(&raw)?;
    let old = socket.extensions().get::<Nick>().map(|Nick(old)| old);
    chat.nicks.claim(socket.id(), &nick, old.as_deref())?;
    socket.extensions().insert(Nick(nick.clone()));
    if let Some(old) = old.filter(|old| *old != nick) {
        for room in joined(&socket) {
            let text = format!("{old} is now known as {nick}");
            let notice = Notice::new(&room, NoticeKind::Nick, &nick, text);
            socket.to(tag(&room)).emit("notice", &notice).await?;
            announce_members(&socket, &room, None).await?;
        }
    }
    ack.send(&Accepted { ok: nick })?;
    Ok(())
}

/// `join`: enters a room; answers its members and history.
async fn join(
    State(chat): State<Arc<Chat>>,
    socket: Socket,
    Payload(RoomIn(raw)): Payload<RoomIn>,
    ack: Ack,
) -> Result<(), ChatError> {
    let nick = nick_of(&socket)?;
    let room = valid_room(&raw)?;
    let fresh = enter(&socket, &room)?;
    let members = members(&socket, &room, None);
    let history = chat.messages.recent(&room);
    if fresh {
        let notice = Notice::new(&room, NoticeKind::Join, &nick, format!("{nick} joined"));
        let others = socket.to(tag(&room));
        others.clone().emit("notice", &notice).await?;
        let update = Members {
            room: &room,
            members: members.clone(),
        };
        others.emit("members", &update).await?;
    }
    ack.send(&Joined {
        ok: true,
        room,
        members,
        history,
    })?;
    Ok(())
}

/// `leave`: leaves a room; the others see a notice and the new member list.
async fn leave(
    State(chat): State<Arc<Chat>>,
    socket: Socket,
    Payload(RoomIn(raw)): Payload<RoomIn>,
    ack: Ack,
) -> Result<(), ChatError> {
    let nick = nick_of(&socket)?;
    let room = member_of(&socket, &raw)?;
    socket.leave(tag(&room));
    announce_leave(&chat, &socket, &nick, &room).await?;
    ack.send(&Accepted { ok: room })?;
    Ok(())
}

/// `message`: sends a message to a room the sender is in and keeps it in the history.
async fn message(
    State(chat): State<Arc<Chat>>,
    socket: Socket,
    Payload(input): Payload<MessageIn>,
    ack: Ack,
) -> Result<(), ChatError> {
    let from = nick_of(&socket)?;
    let room = member_of(&socket, &input.room)?;
    let text = valid_text(&input.text)?;
    let message = chat.messages.keep(room, from, text);
    let sent = socket
        .to(tag(&message.room))
        .emit("message", &message)
        .await;
    let reached = Reached::of(sent)?;
    chat.messages.publish(&message).await;
    ack.send(&Sent::new(message.id, message.at, reached))?;
    Ok(())
}

/// `typing`: tells the room's other members, if they can take it right now.
async fn typing(
    socket: Socket,
    Payload(input): Payload<TypingIn>,
    ack: Ack,
) -> Result<(), ChatError> {
    let nick = nick_of(&socket)?;
    let room = member_of(&socket, &input.room)?;
    let typing = Typing {
        room: &room,
        nick: &nick,
    };
    socket
        .to(tag(&room))
        .volatile()
        .emit("typing", &typing)
        .await?;
    ack.send(&Accepted { ok: true })?;
    Ok(())
}

/// `private`: sends a message to the one socket holding a nickname.
async fn private(
    State(chat): State<Arc<Chat>>,
    socket: Socket,
    Payload(input): Payload<PrivateIn>,
    ack: Ack,
) -> Result<(), ChatError> {
    let from = nick_of(&socket)?;
    let wanted = input.to.trim();
    // The registry may still name a socket whose disconnect is being handled.
    let online = |sid: &tongxun::Sid| !socket.within(sid.to_string()).sockets().is_empty();
    let Some(owner) = chat.nicks.owner(wanted).filter(|o| online(&o.sid)) else {
        return Err(ChatError::NoSuchUser(wanted.to_owned()));
    };
    if owner.sid == socket.id() {
        return Err(ChatError::ToSelf);
    }
    let text = valid_text(&input.text)?;
    let message = chat.messages.private(from, owner.nick, text);
    let sent = socket
        .to(owner.sid.to_string())
        .emit("private", &message)
        .await;
    let reached = Reached::of(sent)?;
    ack.send(&Sent::new(message.id, message.at, reached))?;
    Ok(())
}

/// Frees the nickname and announces the leave in every room the socket was in.
async fn disconnect(socket: Socket, reason: DisconnectReason) {
    let Ok(nick) = nick_of(&socket) else { return };
    // A disconnect listener takes no extractors: the state comes through the socket's Io.
    let chat: Arc<Chat> = socket.io().state().expect("app() gives the chat its state");
    chat.nicks.release(socket.id(), &nick);
    tracing::debug!(sid = %socket.id(), %nick, %reason, "left the chat");
    for room in joined(&socket) {
        if let Err(e) = announce_leave(&chat, &socket, &nick, &room).await {
            tracing::error!(sid = %socket.id(), %room, "could not announce a leave: {e}");
        }
    }
}

/// Tells a room that `socket` left it, and forgets the room's history and feed if it
/// emptied.
async fn announce_leave(
    chat: &Chat,
    socket: &Socket,
    nick: &str,
    room: &str,
) -> Result<(), ChatError> {
    let notice = Notice::new(room, NoticeKind::Leave, nick, format!("{nick} left"));
    socket.to(tag(room)).emit("notice", &notice).await?;
    announce_members(socket, room, Some(socket.id())).await?;
    let emptied = || members(socket, room, Some(socket.id())).is_empty();
    chat.messages.forget_if(room, emptied).await;
    Ok(())
}
