//! Rooms and presence: room names, which rooms a socket is in, and who is in a room on every
//! node.
//!
//! Sockets join Socket.IO rooms named `#<room>`, so a chat room can never be mistaken for the
//! room every socket has under its own id (which is how a private message reaches exactly one
//! socket).

use tongxun::shared::{Groups, SharedState};
use tongxun::{Sid, Socket};

use crate::error::ChatError;
use crate::nick::Nick;
use crate::payloads::Members;

/// Rooms offered by the page, whose history outlives their members.
pub(crate) const DEFAULT_ROOMS: [&str; 2] = ["general", "random"];
/// Longest room name, in characters.
pub(crate) const MAX_ROOM: usize = 24;
/// Most rooms one user may be in at once.
pub(crate) const MAX_ROOMS: usize = 16;

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

/// The Socket.IO room behind chat room `room`.
pub(crate) fn tag(room: &str) -> String {
    format!("#{room}")
}

/// The chat rooms a socket is in.
pub(crate) fn joined(socket: &Socket) -> Vec<String> {
    socket
        .rooms()
        .into_iter()
        .filter_map(|r| r.strip_prefix('#').map(str::to_owned))
        .collect()
}

/// Puts `socket` in `room`, unless it is in too many; returns whether it was not in it yet.
pub(crate) fn enter(socket: &Socket, room: &str) -> Result<bool, ChatError> {
    let rooms = joined(socket);
    if rooms.iter().any(|r| r == room) {
        return Ok(false);
    }
    if rooms.len() >= MAX_ROOMS {
        return Err(ChatError::TooManyRooms);
    }
    socket
        .join(tag(room))
        .expect("a room tag starts with '#', never the shape of a socket id");
    Ok(true)
}

/// The room named `raw`, if it is a valid name and `socket` is in it.
pub(crate) fn member_of(socket: &Socket, raw: &str) -> Result<String, ChatError> {
    let room = valid_room(raw)?;
    if joined(socket).contains(&room) {
        Ok(room)
    } else {
        Err(ChatError::NotJoined(room))
    }
}

/// Who is in which room, on every node: each member's socket id and nickname, in the chat's
/// shared state. A member whose node died leaves the lists once the node's lease lapses.
#[derive(Debug, Clone)]
pub(crate) struct Presence(Groups);

impl Presence {
    /// The presence kept in `shared`.
    pub(crate) fn new(shared: &SharedState) -> Self {
        Self(shared.groups("chat:rooms"))
    }

    /// Lists `socket` in `room` under `nick` (again, after a nickname change).
    pub(crate) async fn enter(&self, socket: &Socket, room: &str, nick: &str) {
        if let Err(e) = self.0.add(room, &socket.id().to_string(), nick).await {
            tracing::warn!(sid = %socket.id(), %room, "listed on this node only: {e}");
        }
    }

    /// Takes `socket` off the list of `room`.
    pub(crate) async fn leave(&self, socket: &Socket, room: &str) {
        if let Err(e) = self.0.remove(room, &socket.id().to_string()).await {
            tracing::warn!(sid = %socket.id(), %room, "still listed until this node's lease lapses: {e}");
        }
    }

    /// The nicknames in a room on every node, sorted regardless of case, leaving out
    /// `leaving`. While the shared state is unreachable, those of this node.
    pub(crate) async fn members(
        &self,
        socket: &Socket,
        room: &str,
        leaving: Option<Sid>,
    ) -> Vec<String> {
        let leaving = leaving.map(|sid| sid.to_string());
        let mut nicks: Vec<String> = match self.0.members(room).await {
            Ok(members) => members
                .into_iter()
                .filter(|m| Some(&m.key) != leaving.as_ref())
                .map(|m| m.value)
                .collect(),
            Err(e) => {
                tracing::warn!(%room, "members of this node only: {e}");
                local_members(socket, room, leaving.as_deref())
            }
        };
        nicks.sort_by_key(|n: &String| (n.to_lowercase(), n.clone()));
        nicks.dedup();
        nicks
    }

    /// Sends a room, on every node, its member list, leaving out `leaving` (to whom it is not
    /// sent either).
    pub(crate) async fn announce(
        &self,
        socket: &Socket,
        room: &str,
        leaving: Option<Sid>,
    ) -> Result<(), ChatError> {
        let update = Members {
            room,
            members: self.members(socket, room, leaving).await,
        };
        let everyone = match leaving {
            Some(_) => socket.to(tag(room)),
            None => socket.within(tag(room)),
        };
        match everyone.emit("members", &update).await {
            Ok(()) | Err(tongxun::BroadcastError::ThisNodeOnly) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The nicknames in a room on this node, read from each member's extensions.
fn local_members(socket: &Socket, room: &str, leaving: Option<&str>) -> Vec<String> {
    socket
        .within(tag(room))
        .sockets()
        .iter()
        .filter(|s| s.connected() && Some(s.id().to_string().as_str()) != leaving)
        .filter_map(|s| s.extensions().get::<Nick>().map(|Nick(nick)| nick))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_normalised() {
        assert_eq!(valid_room(" #General ").ok().as_deref(), Some("general"));
        assert_eq!(
            valid_room("rust-lang_2").ok().as_deref(),
            Some("rust-lang_2")
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
}
