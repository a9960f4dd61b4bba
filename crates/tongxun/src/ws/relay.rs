//! Across nodes: with [`Config::redis_url`](crate::Config::redis_url) set, each broadcast and
//! publish is delivered to this node's clients at once and also sent on the hub's Redis channel,
//! from which every other node's hub delivers it to its own clients.
//!
//! Sending to Redis goes through a bounded queue drained by one task, so that a broadcast never
//! waits for Redis and each node's messages stay in the order they were sent. When the queue is
//! full (Redis is slow or away) the message still reaches this node's clients; the other nodes
//! miss it, and that is logged and counted. A message on the channel is
//!
//! ```text
//! version (1) | node (8, big endian) | kind (1) | [topic length (2, big endian) | topic] | payload
//! ```
//!
//! where kind is 0 (text to all), 1 (binary to all), 2 (text to a topic) or 3 (binary to a
//! topic). A client excluded with `broadcast_except` is on the sending node, so the exclusion
//! needs no place on the wire.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use super::message::{Utf8Bytes, WsMessage};
use crate::bus::RedisBus;

const VERSION: u8 = 1;
/// Messages waiting to go to Redis before new ones are kept local.
const OUTBOX: usize = 4096;
/// Messages from other nodes waiting to be delivered before new ones are dropped.
const INBOX: usize = 4096;

/// A hub's link to the other nodes: the sending half, and the tasks that talk to Redis.
pub(crate) struct Relay {
    node: u64,
    outbox: mpsc::Sender<Bytes>,
}

/// Who a relayed message is for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Audience<'a> {
    All,
    Topic(&'a str),
}

impl Relay {
    /// Links to `channel` on `bus`: starts the task that sends to Redis and the one that hands
    /// each message from another node to `deliver`, until `deliver` returns `false` (the hub
    /// is gone). The receiver fires once this node listens on the channel.
    pub(crate) fn start(
        bus: &RedisBus,
        channel: String,
        mut deliver: impl FnMut(Audience<'_>, WsMessage) -> bool + Send + 'static,
    ) -> (Self, oneshot::Receiver<()>) {
        let (ready, listening) = oneshot::channel();
        let (outbox, mut pending) = mpsc::channel::<Bytes>(OUTBOX);
        let sender = bus.clone();
        let outgoing = channel.clone();
        // Ends when the hub is dropped, with its relay's sender.
        tokio::spawn(async move {
            while let Some(message) = pending.recv().await {
                sender.publish(&outgoing, &message).await;
            }
        });
        let bus = bus.clone();
        let node = bus.node();
        tokio::spawn(async move {
            let mut incoming = bus.subscribe(channel.clone(), INBOX).await;
            ready.send(()).ok();
            while let Some((_, payload)) = incoming.recv().await {
                match decode(&payload) {
                    Some((from, _, _)) if from == node => {}
                    Some((_, audience, message)) => {
                        if !deliver(audience, message) {
                            return;
                        }
                    }
                    None => {
                        tracing::warn!(%channel, "unreadable websocket message from Redis");
                    }
                }
            }
        });
        (Self { node, outbox }, listening)
    }

    /// Sends a message that was just delivered on this node to the other nodes; `false` when
    /// the queue to Redis is full and it stays on this node.
    pub(crate) fn send(&self, audience: &Audience<'_>, message: &WsMessage) -> bool {
        self.outbox
            .try_send(encode(self.node, audience, message))
            .is_ok()
    }
}

fn encode(node: u64, audience: &Audience<'_>, message: &WsMessage) -> Bytes {
    let (binary, payload): (bool, &[u8]) = match message {
        WsMessage::Text(text) => (false, text.as_bytes()),
        WsMessage::Binary(bytes) => (true, bytes),
    };
    let mut out = BytesMut::with_capacity(14 + payload.len());
    out.put_u8(VERSION);
    out.put_u64(node);
    match audience {
        Audience::All => out.put_u8(u8::from(binary)),
        Audience::Topic(topic) => {
            out.put_u8(2 + u8::from(binary));
            // Topics are at most `MAX_TOPIC_LEN` (256) bytes.
            out.put_u16(u16::try_from(topic.len()).unwrap_or(u16::MAX));
            out.put_slice(topic.as_bytes());
        }
    }
    out.put_slice(payload);
    out.freeze()
}

fn decode(bytes: &[u8]) -> Option<(u64, Audience<'_>, WsMessage)> {
    let (&version, rest) = bytes.split_first()?;
    if version != VERSION {
        return None;
    }
    let (node, rest) = rest.split_first_chunk::<8>()?;
    let (&kind, rest) = rest.split_first()?;
    let (audience, payload) = match kind {
        0 | 1 => (Audience::All, rest),
        2 | 3 => {
            let (len, rest) = rest.split_first_chunk::<2>()?;
            let len = usize::from(u16::from_be_bytes(*len));
            let topic = std::str::from_utf8(rest.get(..len)?).ok()?;
            (Audience::Topic(topic), &rest[len..])
        }
        _ => return None,
    };
    let message = if kind % 2 == 1 {
        WsMessage::Binary(Bytes::copy_from_slice(payload))
    } else {
        let text = std::str::from_utf8(payload).ok()?;
        WsMessage::Text(Utf8Bytes::from(text))
    };
    Some((u64::from_be_bytes(*node), audience, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_it_encodes() {
        let cases = [
            (Audience::All, WsMessage::text("hello")),
            (Audience::All, WsMessage::binary(vec![0u8, 255, 7])),
            (Audience::Topic("prices/eur"), WsMessage::text("{\"p\":1}")),
            (Audience::Topic("t"), WsMessage::binary(Vec::new())),
        ];
        for (audience, message) in cases {
            let bytes = encode(42, &audience, &message);
            let (node, decoded_audience, decoded) = decode(&bytes).unwrap();
            assert_eq!((node, &decoded_audience), (42, &audience));
            assert_eq!(decoded, message);
        }
    }

    #[test]
    fn refuses_what_it_never_encodes() {
        let good = encode(1, &Audience::Topic("abc"), &WsMessage::text("x"));
        for bad in [
            &b""[..],
            &good[..5],
            &[2, 0, 0, 0, 0, 0, 0, 0, 1, 0][..],
            &[1, 0, 0, 0, 0, 0, 0, 0, 1, 9][..],
            &[1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 9, b'a'][..],
            &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xff][..],
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }
}
