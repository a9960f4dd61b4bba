//! Event ids: one string that records a stream's position in each of its topics.
//!
//! ```text
//! id       = epoch ";" position *( "," position )
//! position = topic ":" seq
//! ```
//! `epoch` names the history's lifetime (it changes when an in-memory hub restarts) and `seq`
//! is the topic's sequence number of the last event the stream delivered (`0` before the
//! first). Clients must treat ids as opaque.

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};

/// Largest accepted id length; longer `Last-Event-ID` values are treated as unknown.
const MAX_ID_LEN: usize = 8 * 1024;

/// The id the hub gave a published event.
///
/// Its text form (`Display`) is a valid `Last-Event-ID` for a stream on this one topic: a
/// client that presents it receives the events published after this one.
///
/// # Examples
/// ```
/// use tongxun::sse::{SseConfig, SseEvent, SseHub};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let hub = SseHub::new(SseConfig::default());
/// let first = hub.publish("prices", SseEvent::new("1")).await.unwrap();
/// let second = hub.publish("prices", SseEvent::new("2")).await.unwrap();
/// assert_eq!((first.topic(), first.seq(), second.seq()), ("prices", 1, 2));
/// assert!(second.to_string().ends_with(";prices:2"));
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId {
    pub(crate) epoch: Arc<str>,
    pub(crate) topic: Arc<str>,
    pub(crate) seq: u64,
}

impl EventId {
    /// The topic the event was published to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The event's sequence number in its topic: 1 for the first event, then one more for each.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}:{}", self.epoch, self.topic, self.seq)
    }
}

/// A parsed `Last-Event-ID`: the epoch and the position in each topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedId<'a> {
    pub(crate) epoch: &'a str,
    pub(crate) positions: Vec<(&'a str, u64)>,
}

impl<'a> ParsedId<'a> {
    /// Parses an id of this hub's format; `None` when it is not one.
    pub(crate) fn parse(id: &'a str) -> Option<Self> {
        if id.len() > MAX_ID_LEN {
            return None;
        }
        let (epoch, list) = id.split_once(';')?;
        if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let mut positions = Vec::new();
        for item in list.split(',') {
            let (topic, seq) = item.rsplit_once(':')?;
            super::event::check_topic(topic).ok()?;
            if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            positions.push((topic, seq.parse().ok()?));
        }
        Some(Self { epoch, positions })
    }

    /// The position recorded for `topic`, if the id has one.
    pub(crate) fn position(&self, topic: &str) -> Option<u64> {
        self.positions
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|&(_, seq)| seq)
    }
}

/// Writes the `id:` line of a stream at these positions.
pub(crate) fn put_id_line(out: &mut BytesMut, epoch: &str, positions: &[(Arc<str>, u64)]) {
    out.put_slice(b"id: ");
    out.put_slice(epoch.as_bytes());
    out.put_u8(b';');
    for (i, (topic, seq)) in positions.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(topic.as_bytes());
        out.put_u8(b':');
        let mut digits = [0u8; 20];
        out.put_slice(format_u64(*seq, &mut digits));
    }
    out.put_u8(b'\n');
}

/// Formats `n` in decimal without allocating.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_line_lists_every_topic() {
        let mut out = BytesMut::new();
        put_id_line(
            &mut out,
            "e1",
            &[("a".into(), 17), ("b/c".into(), 0), ("d".into(), u64::MAX)],
        );
        assert_eq!(&out[..], b"id: e1;a:17,b/c:0,d:18446744073709551615\n");
    }

    #[test]
    fn parses_what_it_writes() {
        let parsed = ParsedId::parse("e1;a:17,b/c:0,chat:general:5").unwrap();
        assert_eq!(parsed.epoch, "e1");
        assert_eq!(parsed.position("a"), Some(17));
        assert_eq!(parsed.position("b/c"), Some(0));
        assert_eq!(parsed.position("chat:general"), Some(5));
        assert_eq!(parsed.position("x"), None);
    }

    #[test]
    fn rejects_what_it_never_writes() {
        for bad in [
            "",
            "17",
            "e1",
            ";a:1",
            "e-1;a:1",
            "e1;",
            "e1;a",
            "e1;a:",
            "e1;a:-1",
            "e1;a:+1",
            "e1;a:1,",
            "e1;a b:1",
            "e1;a:99999999999999999999",
        ] {
            assert_eq!(ParsedId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(ParsedId::parse(&format!("e1;a:{}", "1".repeat(9000))), None);
    }

    #[test]
    fn event_id_displays_as_a_one_topic_id() {
        let id = EventId {
            epoch: "e1".into(),
            topic: "a".into(),
            seq: 3,
        };
        assert_eq!(id.to_string(), "e1;a:3");
        assert_eq!(
            ParsedId::parse(&id.to_string()).unwrap().position("a"),
            Some(3)
        );
    }
}
