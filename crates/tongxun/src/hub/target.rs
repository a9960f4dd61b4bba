//! A subscriber of hub topics on one node: a Socket.IO socket or a WebSocket client.

use std::sync::Arc;

use super::event::HubEvent;
use crate::io::Socket;
use crate::sse::ResyncReason;

/// Why an event was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsent {
    /// Its queue is full: later, maybe.
    Full,
    /// It is gone or closing.
    Gone,
}

/// A Socket.IO socket of a bound namespace, or a client of the bound WebSocket hub.
#[derive(Clone)]
pub(crate) enum Target {
    Socket(Socket),
    #[cfg(feature = "ws")]
    Ws(crate::ws::WsClient),
}

impl Target {
    /// Whether both are the same subscriber.
    pub(crate) fn is(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Socket(a), Target::Socket(b)) => a.id() == b.id() && a.ns() == b.ns(),
            #[cfg(feature = "ws")]
            (Target::Ws(a), Target::Ws(b)) => a.id() == b.id(),
            #[cfg(feature = "ws")]
            _ => false,
        }
    }

    /// Whether it receives `topic` live already.
    pub(crate) fn has(&self, topic: &str) -> bool {
        match self {
            Target::Socket(socket) => socket.rooms().iter().any(|room| room == topic),
            #[cfg(feature = "ws")]
            Target::Ws(client) => client.topics().iter().any(|t| t == topic),
        }
    }

    /// Why it could not join `topic`, checked before a replay starts.
    pub(crate) fn can_join(&self, topic: &str) -> Result<(), String> {
        match self {
            Target::Socket(_) => super::check_topic(topic).map_err(|e| e.to_string()),
            #[cfg(feature = "ws")]
            Target::Ws(client) => {
                let max = client.hub().config().max_topics_per_client;
                if client.topics().len() >= max {
                    return Err(crate::ws::SubscribeError::TooManyTopics.to_string());
                }
                Ok(())
            }
        }
    }

    /// Receives `topic` live from now.
    pub(crate) fn join(&self, topic: &str) -> Result<(), String> {
        match self {
            Target::Socket(socket) => socket.join(topic.to_owned()).map_err(|e| e.to_string()),
            #[cfg(feature = "ws")]
            Target::Ws(client) => client
                .subscribe(topic)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    pub(crate) fn leave(&self, topic: &str) {
        match self {
            Target::Socket(socket) => socket.leave(topic.to_owned()),
            #[cfg(feature = "ws")]
            Target::Ws(client) => {
                client.unsubscribe(topic);
            }
        }
    }

    /// Sends one event to it alone.
    pub(crate) fn send(&self, event: &HubEvent) -> Result<(), Unsent> {
        match self {
            Target::Socket(socket) if event.for_socketio => socket
                .emit(&event.event, &(&event.data, event.meta()))
                .map_err(|e| match e {
                    crate::SendError::QueueFull => Unsent::Full,
                    _ => Unsent::Gone,
                }),
            Target::Socket(_) => Ok(()),
            #[cfg(feature = "ws")]
            Target::Ws(client) => match &event.ws {
                Some(message) => client.send(message.clone()).map_err(|_| Unsent::Gone),
                None => Ok(()),
            },
        }
    }

    /// Whether it can take more now without meeting its queue's bound (a Socket.IO socket
    /// does not tell: its send says so).
    pub(crate) fn has_room(&self) -> bool {
        match self {
            Target::Socket(_) => true,
            #[cfg(feature = "ws")]
            Target::Ws(client) => client.has_room(),
        }
    }

    /// Tells it that its position in `topic` is lost.
    pub(crate) fn resync(&self, topic: &Arc<str>, reason: ResyncReason) {
        match self {
            Target::Socket(socket) => {
                socket.emit("resync", &resync_data(topic, reason)).ok();
            }
            #[cfg(feature = "ws")]
            Target::Ws(client) => {
                client.send(ws_resync(topic, reason)).ok();
            }
        }
    }

    pub(crate) fn connected(&self) -> bool {
        match self {
            Target::Socket(socket) => socket.connected(),
            #[cfg(feature = "ws")]
            Target::Ws(client) => client.is_connected(),
        }
    }

    /// Ends its connection: it comes back, and resumes.
    pub(crate) fn disconnect(&self) {
        match self {
            Target::Socket(socket) => {
                socket.disconnect().ok();
            }
            #[cfg(feature = "ws")]
            Target::Ws(client) => {
                client.close(crate::ws::close_code::AGAIN, "too slow for its replay");
            }
        }
    }
}

/// The data of a `resync` event: `{"topics": [topic], "reason": "..."}`.
pub(crate) fn resync_data(topic: &str, reason: ResyncReason) -> serde_json::Value {
    serde_json::json!({ "topics": [topic], "reason": reason.as_str() })
}

/// The WebSocket frame of a `resync`: `{"event": "resync", "data": {...}}`.
#[cfg(feature = "ws")]
pub(crate) fn ws_resync(topic: &str, reason: ResyncReason) -> crate::ws::WsMessage {
    let frame = serde_json::json!({ "event": "resync", "data": resync_data(topic, reason) });
    crate::ws::WsMessage::text(frame.to_string())
}
