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
//! `at` is milliseconds since the Unix epoch; `id`s increase in the order messages were accepted,
//! across every node of the chat. After Redis was away, a node sends its users its rooms' recent
//! messages again: a client drops the ids it already has.
//!
//! # Rules
//! - Nicknames are trimmed, 1 to 24 characters without control or invisible format characters
//!   (Unicode category Cf, such as bidi overrides), and unique among
//!   connected users of every node regardless of case. One must be set before joining or sending
//!   anything; while the state the nodes share cannot be reached, setting one is refused.
//! - Room names are 1 to 24 lowercase letters, digits, `-` or `_` (a leading `#` and capitals are
//!   accepted and normalised). A user is in at most 16 rooms.
//! - Message text is trimmed and 1 to 2,000 characters long; a payload of the wrong shape is
//!   refused as malformed.
//! - Each room shows its last 50 messages to whoever joins on any node (and keeps 1,000, for a
//!   node cut off from Redis to catch up). `general` and `random` keep theirs until a week
//!   without messages; any other room forgets them when its last member on any node leaves,
//!   and so does its SSE feed `chat:<room>` (`SseHub::forget`): its readers' streams end, and a
//!   reader resuming with an old `Last-Event-ID` gets `resync`, not the forgotten messages.
//!
//! A refused request is a [`ChatError`] returned by its handler, which tongxun answers as
//! `{"error": "<message>"}`. The nickname lives in the socket's extensions ([`Nick`]); the
//! nicknames ([`Nicknames`]), who is in which room ([`Presence`]) and the history ([`Messages`])
//! live in the state the nodes share (`tongxun::shared`): in memory on one node, in Redis with
//! `--redis-url` (see `docs/scaling.md`, "The chat on several nodes"). Rooms are described in
//! `rooms.rs`, the history and the feeds in `messages.rs`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tongxun::shared::SharedState;
use tongxun::sse::SseHub;
use tongxun::{Ack, DisconnectReason, Io, Socket, State};

use crate::error::ChatError;
use crate::messages::{Messages, valid_text};
use crate::nick::{Nick, Nicknames, nick_of, valid_nick};
use crate::payloads::{
    Accepted, Joined, Members, MessageIn, NickIn, Notice, NoticeKind, Payload, PrivateIn, Reached,
    RoomIn, Sent, Typing, TypingIn,
};
use crate::rooms::{Presence, enter, joined, member_of, tag, valid_room};

/// How far before a loss of Redis was noticed a node looks for messages to catch up: the loss
/// is noticed within a second (the bus's heartbeat).
const CATCH_UP_MARGIN: Duration = Duration::from_secs(2);

/// How often a node tries to read a room's history to catch it up (over about 15 s).
const CATCH_UP_ATTEMPTS: usize = 20;

/// The chat's state, which every handler takes as `State<Arc<Chat>>`: nicknames, presence and
/// history in the state the nodes share (in Redis when there are several).
#[derive(Debug)]
pub(crate) struct Chat {
    nicks: Nicknames,
    presence: Presence,
    messages: Messages,
    shared: SharedState,
}

impl Chat {
    /// A chat kept in `shared`, whose rooms are also published to `feed`.
    pub(crate) fn new(shared: &SharedState, feed: SseHub) -> Arc<Self> {
        Arc::new(Chat {
            nicks: Nicknames::new(shared),
            presence: Presence::new(shared),
            messages: Messages::new(shared, feed),
            shared: shared.clone(),
        })
    }

    /// Each time Redis is back after a loss, sends this node's users the messages of their
    /// rooms that other nodes may have sent meanwhile (clients drop ids they already have).
    /// A message acknowledged as delivered was in the history before its broadcast, so none is
    /// missed: a node that was not subscribed when it went out reads it here.
    pub(crate) async fn catch_up(self: Arc<Self>, io: Io) {
        let mut recoveries = self.shared.recoveries();
        loop {
            let lost = recoveries.next().await;
            let since = lost
                .checked_sub(CATCH_UP_MARGIN)
                .unwrap_or(UNIX_EPOCH)
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let Some(chat) = io.of("/chat") else { return };
            let mut rooms: Vec<String> = io
                .sockets("/chat")
                .unwrap_or_default()
                .iter()
                .flat_map(joined)
                .collect();
            rooms.sort();
            rooms.dedup();
            let mut resent = 0;
            for room in rooms {
                let Some(history) = self.history_for_catch_up(&room).await else {
                    continue;
                };
                if history.len() >= crate::messages::KEPT && history[0].at >= since {
                    tracing::error!(
                        %room,
                        "catch-up incomplete: the room's kept messages no longer reach back to the outage"
                    );
                }
                for message in history.iter().filter(|m| m.at >= since) {
                    let local = chat.clone().local().to(tag(&room));
                    if local.emit("message", message).await.is_ok() {
                        resent += 1;
                    }
                }
            }
            tracing::info!(resent, "Redis is back: caught up the rooms' messages");
        }
    }
}

impl Chat {
    /// The history of `room`, asked again while Redis is slow to answer right after its
    /// return (each call has a deadline made for users waiting, not for this).
    async fn history_for_catch_up(&self, room: &str) -> Option<Vec<crate::messages::Message>> {
        let mut wait = Duration::from_millis(50);
        for _ in 0..CATCH_UP_ATTEMPTS {
            match self.messages.history(room).await {
                Ok(history) => return Some(history),
                Err(e) => tracing::debug!(%room, "catch-up read failed, trying again: {e}"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
        tracing::error!(%room, "could not catch up the room's messages: Redis did not answer");
        None
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
    chat.nicks.claim(socket.id(), &nick, old.as_deref()).await?;
    socket.extensions().insert(Nick(nick.clone()));
    if let Some(old) = old.filter(|old| *old != nick) {
        for room in joined(&socket) {
            chat.presence.enter(&socket, &room, &nick).await;
            let text = format!("{old} is now known as {nick}");
            let notice = Notice::new(&room, NoticeKind::Nick, &nick, text);
            emit_best_effort(socket.to(tag(&room)), "notice", &notice).await?;
            chat.presence.announce(&socket, &room, None).await?;
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
    if fresh {
        chat.presence.enter(&socket, &room, &nick).await;
    }
    let members = chat.presence.members(&socket, &room, None).await;
    let history = chat.messages.recent(&room).await;
    if fresh {
        let notice = Notice::new(&room, NoticeKind::Join, &nick, format!("{nick} joined"));
        let others = socket.to(tag(&room));
        emit_best_effort(others.clone(), "notice", &notice).await?;
        let update = Members {
            room: &room,
            members: members.clone(),
        };
        emit_best_effort(others, "members", &update).await?;
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

/// `message`: keeps a message in the room's history, then sends it to the room's other
/// members on every node. It is acknowledged as delivered only when both reached Redis: a node
/// that missed the broadcast catches it up from the history ([`Chat::catch_up`]).
async fn message(
    State(chat): State<Arc<Chat>>,
    socket: Socket,
    Payload(input): Payload<MessageIn>,
    ack: Ack,
) -> Result<(), ChatError> {
    let from = nick_of(&socket)?;
    let room = member_of(&socket, &input.room)?;
    let text = valid_text(&input.text)?;
    let (message, kept) = chat.messages.keep(room, from, text).await;
    let sent = socket
        .to(tag(&message.room))
        .emit("message", &message)
        .await;
    let reached = match Reached::of(sent)? {
        Reached::Everyone if kept => Reached::Everyone,
        _ => Reached::ThisServer,
    };
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
    let others = socket.to(tag(&room)).volatile();
    emit_best_effort(others, "typing", &typing).await?;
    ack.send(&Accepted { ok: true })?;
    Ok(())
}

/// `private`: sends a message to the one socket holding a nickname, on whichever node.
async fn private(
    State(chat): State<Arc<Chat>>,
    socket: Socket,
    Payload(input): Payload<PrivateIn>,
    ack: Ack,
) -> Result<(), ChatError> {
    let from = nick_of(&socket)?;
    let wanted = input.to.trim();
    let text = valid_text(&input.text)?;
    let nobody = || ChatError::NoSuchUser(wanted.to_owned());
    let owner = chat.nicks.owner(wanted).await?.ok_or_else(nobody)?;
    if owner.sid == socket.id().to_string() {
        return Err(ChatError::ToSelf);
    }
    // The registry may still name a socket whose disconnect is being handled: ask its node.
    let online = socket.within(owner.sid.clone()).fetch_sockets().await;
    if online.is_ok_and(|sockets| sockets.is_empty()) {
        return Err(nobody());
    }
    let message = chat.messages.private(from, owner.nick, text).await;
    let sent = socket.to(owner.sid).emit("private", &message).await;
    let reached = Reached::of(sent)?;
    ack.send(&Sent::new(message.id, message.at, reached))?;
    Ok(())
}

/// Frees the nickname and announces the leave in every room the socket was in.
async fn disconnect(socket: Socket, reason: DisconnectReason) {
    let Ok(nick) = nick_of(&socket) else { return };
    // A disconnect listener takes no extractors: the state comes through the socket's Io.
    let chat: Arc<Chat> = socket.io().state().expect("app() gives the chat its state");
    chat.nicks.release(socket.id(), &nick).await;
    tracing::debug!(sid = %socket.id(), %nick, %reason, "left the chat");
    for room in joined(&socket) {
        if let Err(e) = announce_leave(&chat, &socket, &nick, &room).await {
            tracing::error!(sid = %socket.id(), %room, "could not announce a leave: {e}");
        }
    }
}

/// Tells a room that `socket` left it, and forgets the room's history and feed if it
/// emptied on every node.
async fn announce_leave(
    chat: &Chat,
    socket: &Socket,
    nick: &str,
    room: &str,
) -> Result<(), ChatError> {
    chat.presence.leave(socket, room).await;
    let notice = Notice::new(room, NoticeKind::Leave, nick, format!("{nick} left"));
    emit_best_effort(socket.to(tag(room)), "notice", &notice).await?;
    chat.presence
        .announce(socket, room, Some(socket.id()))
        .await?;
    if chat
        .presence
        .members(socket, room, Some(socket.id()))
        .await
        .is_empty()
    {
        chat.messages.forget(room).await;
    }
    Ok(())
}

/// Sends what is shown but never acknowledged (notices, member lists, typing): while Redis is
/// away, this node's users getting it is all there is to do.
async fn emit_best_effort<T: serde::Serialize + ?Sized>(
    to: tongxun::Broadcast,
    event: &str,
    data: &T,
) -> Result<(), ChatError> {
    match to.emit(event, data).await {
        Ok(()) | Err(tongxun::BroadcastError::ThisNodeOnly) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
