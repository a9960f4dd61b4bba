//! Messages: their text, ids and times, each room's history, and the rooms' read-only feeds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tongxun::shared::{Log, SharedError, SharedState};
use tongxun::sse::{SseEvent, SseHub};

use crate::error::ChatError;
use crate::rooms::DEFAULT_ROOMS;

/// Messages a room remembers for newcomers.
pub(crate) const HISTORY: usize = 50;
/// Messages a room keeps in all, so that a node cut off from Redis for a while can catch up
/// what it missed (20 s of a room at 50 messages a second): at most 1,000 × 8 KB (2,000
/// characters of up to 4 bytes) in Redis per room.
pub(crate) const KEPT: usize = 1_000;
/// Longest message, in characters.
pub(crate) const MAX_TEXT: usize = 2_000;

/// A message of a room, as broadcast and as kept in its history.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Message {
    pub(crate) id: u64,
    pub(crate) room: String,
    from: String,
    text: String,
    pub(crate) at: u64,
}

/// A private message.
#[derive(Debug, Serialize)]
pub(crate) struct Private {
    pub(crate) id: u64,
    from: String,
    to: String,
    text: String,
    pub(crate) at: u64,
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

/// Milliseconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Every message's id, the last [`HISTORY`] messages of each room, and the rooms' feeds. The
/// history and the ids live in the chat's [`SharedState`]: in Redis when the chat runs on
/// several nodes, so that every node numbers messages in one sequence and shows a newcomer the
/// same history.
#[derive(Debug)]
pub(crate) struct Messages {
    /// Read-only feeds of the rooms: every message of room `r` is also published to the SSE
    /// topic `chat:r` (`GET /events?topic=chat:general`).
    feed: SseHub,
    history: Log,
    /// Ids for what is sent while the shared state is away: above every id given before.
    local_ids: AtomicU64,
}

/// A message as kept in the history: the message but its id, which the log gives.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    room: String,
    from: String,
    text: String,
    at: u64,
}

impl Messages {
    /// Messages kept in `shared`, whose rooms are also published to `feed`.
    pub(crate) fn new(shared: &SharedState, feed: SseHub) -> Self {
        Self {
            feed,
            history: shared.log("chat:history", KEPT),
            local_ids: AtomicU64::new(now().saturating_mul(1000)),
        }
    }

    /// A new message of `room`, kept in its history; `false` with it when the history could not
    /// be reached (Redis is away), so that the other nodes cannot catch it up later.
    pub(crate) async fn keep(&self, room: String, from: String, text: String) -> (Message, bool) {
        let kept = Kept {
            room,
            from,
            text,
            at: now(),
        };
        let data = serde_json::to_string(&kept).expect("a message serializes");
        let (id, shared) = match self.history.append(&kept.room, &data).await {
            Ok(id) => (id, true),
            Err(e) => {
                tracing::warn!(room = %kept.room, "message kept on this node only: {e}");
                (self.local_id(), false)
            }
        };
        let Kept {
            room,
            from,
            text,
            at,
        } = kept;
        let message = Message {
            id,
            room,
            from,
            text,
            at,
        };
        (message, shared)
    }

    /// A new private message.
    pub(crate) async fn private(&self, from: String, to: String, text: String) -> Private {
        let id = match self.history.next_id().await {
            Ok(id) => id,
            Err(_) => self.local_id(),
        };
        Private {
            id,
            from,
            to,
            text,
            at: now(),
        }
    }

    /// The last [`HISTORY`] messages of `room`, oldest first; none when they cannot be reached.
    pub(crate) async fn recent(&self, room: &str) -> Vec<Message> {
        let mut kept = self.history(room).await.unwrap_or_else(|e| {
            tracing::warn!(%room, "history unavailable: {e}");
            Vec::new()
        });
        kept.drain(..kept.len().saturating_sub(HISTORY));
        kept
    }

    /// The last [`KEPT`] messages of `room`, oldest first.
    pub(crate) async fn history(&self, room: &str) -> Result<Vec<Message>, SharedError> {
        let entries = self.history.recent(room).await?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let kept: Kept = serde_json::from_str(&entry.data).ok()?;
                Some(Message {
                    id: entry.id,
                    room: kept.room,
                    from: kept.from,
                    text: kept.text,
                    at: kept.at,
                })
            })
            .collect())
    }

    /// Publishes a message of a room to the room's feed. The feed is a view: the room already
    /// has the message, whatever the feed says.
    pub(crate) async fn publish(&self, message: &Message) {
        let topic = format!("chat:{}", message.room);
        match SseEvent::json(message) {
            Ok(event) => {
                if let Err(e) = self.feed.publish(&topic, event.event("message")).await {
                    tracing::warn!(%topic, "message not published to the room's feed: {e}");
                }
            }
            Err(e) => tracing::error!(%topic, "message not serializable for the feed: {e}"),
        }
    }

    /// Forgets the history and the feed of `room`, unless it is a default room.
    pub(crate) async fn forget(&self, room: &str) {
        if DEFAULT_ROOMS.contains(&room) {
            return;
        }
        if let Err(e) = self.history.forget(room).await {
            tracing::warn!(%room, "the room's history stays until it expires: {e}");
        }
        // The room's feed forgets too, so that no `Last-Event-ID` replays what the room forgot.
        let topic = format!("chat:{room}");
        if let Err(e) = self.feed.forget(&topic).await {
            tracing::warn!(%topic, "the room's feed may keep its history: {e}");
        }
    }

    fn local_id(&self) -> u64 {
        let floor = now().saturating_mul(1000);
        let mut id = self.local_ids.fetch_add(1, Ordering::Relaxed) + 1;
        if id < floor {
            self.local_ids.fetch_max(floor, Ordering::Relaxed);
            id = self.local_ids.fetch_add(1, Ordering::Relaxed) + 1;
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(valid_text("  hi\n").ok().as_deref(), Some("hi"));
        assert_eq!(
            valid_text(" \n\t ").map_err(|e| e.to_string()),
            Err("message is empty".to_owned())
        );
        assert!(valid_text(&"x".repeat(MAX_TEXT)).is_ok());
        assert_eq!(
            valid_text(&"x".repeat(MAX_TEXT + 1)).map_err(|e| e.to_string()),
            Err("message is longer than 2000 characters".to_owned())
        );
    }

    #[tokio::test]
    async fn a_room_keeps_its_last_messages_until_forgotten_unless_it_is_a_default_room() {
        let messages = Messages::new(&SharedState::new(), SseHub::default());
        let mut ids = Vec::new();
        for n in 0..=KEPT {
            let (message, shared) = messages
                .keep("rust".into(), "ada".into(), n.to_string())
                .await;
            assert!(shared);
            ids.push(message.id);
        }
        messages
            .keep("general".into(), "ada".into(), "hi".into())
            .await;
        let kept = messages.recent("rust").await;
        assert_eq!(kept.len(), HISTORY);
        let first_shown = KEPT + 1 - HISTORY;
        assert_eq!(
            (kept[0].id, kept[HISTORY - 1].id),
            (ids[first_shown], ids[KEPT])
        );
        assert_eq!(kept[0].text, first_shown.to_string());
        // All but the oldest stay for a node to catch up.
        let all = messages.history("rust").await.unwrap();
        assert_eq!((all.len(), all[0].id), (KEPT, ids[1]));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
        messages.forget("rust").await;
        assert!(messages.recent("rust").await.is_empty());
        messages.forget("general").await;
        assert_eq!(messages.recent("general").await.len(), 1);
    }
}
