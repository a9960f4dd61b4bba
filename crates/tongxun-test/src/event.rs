//! An event the server sent, and the answer to its acknowledgement request.

use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide_core::packet::Packet;
use socketioxide_core::{Str, Value};

use crate::engine::Outgoing;
use crate::error::ClientError;
use crate::packet::{decode, encode, send};

/// An event the server sent.
pub struct Event {
    pub(crate) name: String,
    pub(crate) data: Value,
    pub(crate) ack: Option<AckTarget>,
}

/// Where an acknowledgement goes: the server's ack id, on the client's namespace and session.
pub(crate) struct AckTarget {
    pub(crate) id: i64,
    pub(crate) ns: Str,
    pub(crate) out: Outgoing,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("args", &self.args())
            .field("wants_ack", &self.wants_ack())
            .finish()
    }
}

impl Event {
    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event's arguments decoded as `T`: one argument as itself, several as a tuple, the
    /// binary attachments where `T` has [`bytes::Bytes`].
    ///
    /// # Errors
    /// [`ClientError::Decode`] when they do not decode as `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        decode(&self.data, true)
    }

    /// The event's arguments as JSON, binary attachments shown as their placeholders
    /// (`{"_placeholder":true,"num":0}`).
    pub fn args(&self) -> Vec<serde_json::Value> {
        let Value::Str(text, _) = &self.data else {
            return Vec::new();
        };
        let mut args: Vec<serde_json::Value> =
            serde_json::from_str(text.as_str()).unwrap_or_default();
        if !args.is_empty() {
            args.remove(0);
        }
        args
    }

    /// Whether the server waits for an acknowledgement of this event.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Answers the server's acknowledgement request with `data` (several arguments as a
    /// tuple).
    ///
    /// # Errors
    /// [`ClientError::NoAckRequested`] when the server asked for none,
    /// [`ClientError::Encode`] when `data` does not serialize, and
    /// [`ClientError::Disconnected`] when the session has ended.
    pub fn ack<T: Serialize + ?Sized>(self, data: &T) -> Result<(), ClientError> {
        let target = self.ack.ok_or(ClientError::NoAckRequested)?;
        let packet = Packet::ack(target.ns, encode(data, None)?, target.id);
        if send(&target.out, packet) {
            Ok(())
        } else {
            Err(ClientError::Disconnected)
        }
    }
}
