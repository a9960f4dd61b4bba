//! A hub event as one node sends it on every transport, decoded once from the SSE hub's frame.

use std::sync::Arc;

use serde::Serialize;
#[cfg(feature = "ws")]
use serde_json::value::RawValue;

use crate::sse::Stored;

/// One event of a topic, ready for Socket.IO and WebSocket subscribers.
#[derive(Debug)]
pub(crate) struct HubEvent {
    pub(crate) topic: Arc<str>,
    pub(crate) epoch: Arc<str>,
    pub(crate) seq: u64,
    /// The event's id on every transport: `<epoch>;<topic>:<seq>`, the SSE hub's.
    pub(crate) id: String,
    pub(crate) event: String,
    /// The data as Socket.IO sends it.
    pub(crate) data: serde_json::Value,
    /// Whether Socket.IO clients may receive an event of this name (they reserve a few).
    pub(crate) for_socketio: bool,
    /// The WebSocket envelope, `{"topic","event","data","id"}`, when a WebSocket hub is bound.
    #[cfg(feature = "ws")]
    pub(crate) ws: Option<crate::ws::WsMessage>,
}

/// The trailing argument of a hub event on Socket.IO: `{ topic, id }`.
#[derive(Serialize)]
pub(crate) struct Meta<'a> {
    pub(crate) topic: &'a str,
    pub(crate) id: &'a str,
}

impl HubEvent {
    /// Reads the event a hub published (or any SSE publish of the topic): its `event:` line
    /// (`message` without one) and its `data:` lines, JSON when they parse as JSON and a string
    /// otherwise. `None` for a frame the SSE hub never writes.
    pub(crate) fn decode(stored: &Stored, ws: bool) -> Option<Self> {
        let text = std::str::from_utf8(&stored.frame).ok()?;
        let mut event = None;
        let mut data: Option<String> = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("event:") {
                event = Some(name.strip_prefix(' ').unwrap_or(name).to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                }
            }
        }
        let event = event.unwrap_or_else(|| "message".to_owned());
        let text = data.unwrap_or_default();
        let (data, json) = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value) => (value, text),
            Err(_) => {
                let json = serde_json::to_string(&text).ok()?;
                (serde_json::Value::String(text), json)
            }
        };
        let id = format!("{};{}:{}", stored.epoch, stored.topic, stored.seq);
        #[cfg(feature = "ws")]
        let ws = if ws {
            let data = RawValue::from_string(json).ok()?;
            let envelope = super::Envelope {
                topic: &stored.topic,
                event: &event,
                data: &data,
                id: Some(&id),
            };
            Some(crate::ws::WsMessage::text(
                serde_json::to_string(&envelope).ok()?,
            ))
        } else {
            None
        };
        #[cfg(not(feature = "ws"))]
        let _ = (ws, json);
        Some(Self {
            topic: stored.topic.clone(),
            epoch: stored.epoch.clone(),
            seq: stored.seq,
            for_socketio: super::check_event(&event).is_ok(),
            id,
            event,
            data,
            #[cfg(feature = "ws")]
            ws,
        })
    }

    pub(crate) fn meta(&self) -> Meta<'_> {
        Meta {
            topic: &self.topic,
            id: &self.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(frame: &'static str) -> Stored {
        Stored {
            epoch: "e1".into(),
            topic: "prices".into(),
            seq: 7,
            order: 0,
            frame: bytes::Bytes::from_static(frame.as_bytes()),
        }
    }

    #[test]
    fn json_data_and_the_event_name_come_back_with_the_id() {
        let event = HubEvent::decode(&stored("event: tick\ndata: {\"p\":1}\n\n"), true).unwrap();
        assert_eq!(
            (event.event.as_str(), event.id.as_str()),
            ("tick", "e1;prices:7")
        );
        assert_eq!(event.data, serde_json::json!({ "p": 1 }));
        #[cfg(feature = "ws")]
        assert_eq!(
            event.ws.unwrap().as_text(),
            Some(r#"{"topic":"prices","event":"tick","data":{"p":1},"id":"e1;prices:7"}"#)
        );
    }

    #[test]
    fn other_data_is_a_string_and_a_nameless_event_a_message() {
        let event = HubEvent::decode(&stored("data: line one\ndata: line two\n\n"), false).unwrap();
        assert_eq!(event.event, "message");
        assert_eq!(event.data, serde_json::json!("line one\nline two"));
        let reserved = HubEvent::decode(&stored("event: disconnect\ndata: 1\n\n"), false).unwrap();
        assert!(!reserved.for_socketio);
    }
}
