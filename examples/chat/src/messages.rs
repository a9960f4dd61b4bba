//! Messages: their text, ids and times, each room's history, and the rooms' read-only feeds.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tongxun::sse::{SseEvent, SseHub};

use crate::error::ChatError;
use crate::rooms::DEFAULT_ROOMS;

/// Messages a room remembers for newcomers.
pub(crate) const HISTORY: usize = 50;
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

/// Every message's id, and the last [`HISTORY`] messages of each room, which its feed also
/// publishes. The lock is taken briefly, never across an await.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    /// Read-only feeds of the rooms: every message of room `r` is also published to the SSE
    /// topic `chat:r` (`GET /events?topic=chat:general`).
    feed: SseHub,
    history: Mutex<HashMap<String, VecDeque<Message>>>,
    next_id: AtomicU64,
}

impl Messages {
    /// Messages whose rooms are also published to `feed`.
    pub(crate) fn new(feed: SseHub) -> Self {
        Self {
            feed,
            ..Self::default()
        }
    }

    /// A new message of `room`, kept in its history.
    pub(crate) fn keep(&self, room: String, from: String, text: String) -> Message {
        let message = Message {
            id: self.next_id(),
            room,
            from,
            text,
            at: now(),
        };
        let mut history = self.history();
        let kept = history.entry(message.room.clone()).or_default();
        kept.push_back(message.clone());
        while kept.len() > HISTORY {
            kept.pop_front();
        }
        message
    }

    /// A new private message.
    pub(crate) fn private(&self, from: String, to: String, text: String) -> Private {
        Private {
            id: self.next_id(),
            from,
            to,
            text,
            at: now(),
        }
    }

    /// The history of `room`, oldest first.
    pub(crate) fn recent(&self, room: &str) -> Vec<Message> {
        self.history()
            .get(room)
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default()
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

    /// Forgets the history and the feed of `room` if it is not a default room and `emptied`
    /// says it has no members left.
    pub(crate) async fn forget_if(&self, room: &str, emptied: impl FnOnce() -> bool) {
        if DEFAULT_ROOMS.contains(&room) {
            return;
        }
        // Checked under the lock, so a message sent by someone joining meanwhile stays.
        let emptied = {
            let mut history = self.history();
            let emptied = emptied();
            if emptied {
                history.remove(room);
            }
            emptied
        };
        // The room's feed forgets too, so that no `Last-Event-ID` replays what the room forgot.
        // A message sent in the moment between the two may go with it: the feed is a view, the
        // room has the message.
        if emptied {
            let topic = format!("chat:{room}");
            if let Err(e) = self.feed.forget(&topic).await {
                tracing::warn!(%topic, "the room's feed may keep its history: {e}");
            }
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes the lock, even if a panicking thread poisoned it (the map stays consistent: every
    /// update is a single insert or remove).
    fn history(&self) -> MutexGuard<'_, HashMap<String, VecDeque<Message>>> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
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
    async fn a_room_keeps_its_last_messages_until_it_empties_unless_it_is_a_default_room() {
        let messages = Messages::default();
        for n in 0..=HISTORY {
            messages.keep("rust".into(), "ada".into(), n.to_string());
        }
        messages.keep("general".into(), "ada".into(), "hi".into());
        let kept = messages.recent("rust");
        assert_eq!(kept.len(), HISTORY);
        assert_eq!((kept[0].id, kept[HISTORY - 1].id), (1, HISTORY as u64));
        messages.forget_if("rust", || false).await;
        assert_eq!(messages.recent("rust").len(), HISTORY);
        messages.forget_if("rust", || true).await;
        assert!(messages.recent("rust").is_empty());
        messages.forget_if("general", || true).await;
        assert_eq!(messages.recent("general").len(), 1);
    }
}
