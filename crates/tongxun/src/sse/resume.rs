//! Where a stream starts: what the client asked to resume from, where that puts the stream in
//! each of its topics, and the opening bytes that tell the client.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::event::{READY_EVENT, RESYNC_EVENT, put_data, put_field};
use super::history::{Replay, Stored};
use super::id::{ParsedId, put_id_line};

/// Where a stream starts in one topic: the topic's last sequence number, and what its history
/// holds after the stream's position, if it gave one.
pub(crate) type Start = (u64, Option<Replay>);

/// What a subscriber asked to resume from.
#[derive(Clone)]
pub(crate) enum Resume<'a> {
    /// No id: start at the end of every topic.
    Fresh,
    /// A well-formed id (of the current epoch, once checked with [`within`](Self::within)).
    From(ParsedId<'a>),
    /// An id that is malformed or from another epoch.
    Unknown,
}

impl<'a> Resume<'a> {
    pub(crate) fn parse(last_event_id: Option<&'a str>, subscriber: u64) -> Self {
        match last_event_id.map(|text| (text, ParsedId::parse(text))) {
            None => Resume::Fresh,
            Some((_, Some(parsed))) => Resume::From(parsed),
            Some((text, None)) => {
                tracing::warn!(
                    subscriber,
                    last_event_id = ?text,
                    "malformed last event id, asking the client to resync"
                );
                Resume::Unknown
            }
        }
    }

    /// The same, but [`Unknown`](Self::Unknown) when the id is of another epoch (the stream
    /// then opens with a `resync`, which its log line shows).
    pub(crate) fn within(self, epoch: &str) -> Self {
        match self {
            Resume::From(parsed) if parsed.epoch != epoch => Resume::Unknown,
            other => other,
        }
    }

    #[cfg(feature = "redis")]
    pub(crate) fn epoch(&self) -> Option<&'a str> {
        match self {
            Resume::From(parsed) => Some(parsed.epoch),
            _ => None,
        }
    }

    /// The position the id records for `topic`, if any.
    pub(crate) fn position(&self, topic: &str) -> Option<u64> {
        match self {
            Resume::From(parsed) => parsed.position(topic),
            _ => None,
        }
    }

    /// Where the stream starts in each of `topics`, given where each topic stands (`starts`,
    /// in the same order).
    pub(crate) fn place<'t>(
        &self,
        topics: impl IntoIterator<Item = &'t Arc<str>>,
        starts: Vec<Start>,
    ) -> Placement {
        let mut placement = Placement::default();
        for (name, (last, history)) in topics.into_iter().zip(starts) {
            let (position, reason) = match (self, history) {
                (Resume::Fresh, _) => (last, None),
                (Resume::Unknown, _) => (last, Some(ResyncReason::UnknownId)),
                (Resume::From(parsed), history) => match (parsed.position(name), history) {
                    // A topic added since the id was issued starts now.
                    (None, _) => (last, None),
                    (Some(from), Some(Replay::Events(events))) => {
                        placement.replay.extend(events);
                        (from, None)
                    }
                    (Some(_), Some(Replay::Behind)) => (last, Some(ResyncReason::HistoryExceeded)),
                    (Some(_), Some(Replay::Ahead) | None) => (last, Some(ResyncReason::UnknownId)),
                },
            };
            if let Some(reason) = reason {
                match placement.resync.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, names)) => names.push(name.clone()),
                    None => placement.resync.push((reason, vec![name.clone()])),
                }
            }
            placement.positions.push((name.clone(), position));
        }
        // Each topic's events are in order already; this interleaves the topics as the events
        // were published, as they would have arrived live.
        placement.replay.sort_by_key(|stored| stored.order);
        placement
    }
}

/// Why a stream's position in some topics could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResyncReason {
    HistoryExceeded,
    UnknownId,
    /// The history could not be read (Redis is away); only the cross-transport hub says it.
    HistoryUnavailable,
}

impl ResyncReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::HistoryExceeded => "history_exceeded",
            Self::UnknownId => "unknown_id",
            Self::HistoryUnavailable => "history_unavailable",
        }
    }
}

/// Where a stream starts in all its topics.
#[derive(Default)]
pub(crate) struct Placement {
    /// The stream's position in each topic: its starting id.
    pub(crate) positions: Vec<(Arc<str>, u64)>,
    /// The events to replay from history, in the order they were published.
    pub(crate) replay: Vec<Arc<Stored>>,
    /// The topics whose position could not be restored, by reason.
    pub(crate) resync: Vec<(ResyncReason, Vec<Arc<str>>)>,
}

impl Placement {
    /// The first bytes of the stream: `retry`, any `resync` events, then `ready`, each
    /// carrying the stream's starting id. `resync` comes first so that a client that got
    /// `ready` also got the signal.
    pub(crate) fn opening(&self, retry_ms: u128, epoch: &str) -> BytesMut {
        let positions = &self.positions;
        let mut out = BytesMut::new();
        put_field(&mut out, "retry", &retry_ms.to_string());
        for (reason, topics) in &self.resync {
            put_id_line(&mut out, epoch, positions);
            put_field(&mut out, "event", RESYNC_EVENT);
            let names: Vec<&str> = topics.iter().map(|name| &**name).collect();
            let data = serde_json::json!({ "topics": names, "reason": reason.as_str() });
            put_data(&mut out, &data.to_string());
            out.put_u8(b'\n');
        }
        put_id_line(&mut out, epoch, positions);
        put_field(&mut out, "event", READY_EVENT);
        let names: Vec<&str> = positions.iter().map(|(name, _)| &**name).collect();
        put_data(
            &mut out,
            &serde_json::json!({ "topics": names }).to_string(),
        );
        out.put_u8(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|&name| Arc::from(name)).collect()
    }

    #[test]
    fn a_fresh_stream_starts_at_the_end_of_every_topic() {
        let topics = names(&["a", "b"]);
        let placement = Resume::Fresh.place(&topics, vec![(3, None), (0, None)]);
        assert_eq!(
            placement.positions,
            [(topics[0].clone(), 3), (topics[1].clone(), 0)]
        );
        assert!(placement.replay.is_empty() && placement.resync.is_empty());
    }

    #[test]
    fn positions_history_cannot_reach_resync_by_reason_and_start_at_the_end() {
        let topics = names(&["a", "b", "c", "new"]);
        let resume = Resume::parse(Some("e1;a:1,b:2,c:9"), 1).within("e1");
        let starts = vec![
            (4, Some(Replay::Behind)),
            (2, Some(Replay::Events(Vec::new()))),
            (5, Some(Replay::Ahead)),
            (7, None),
        ];
        let placement = resume.place(&topics, starts);
        let positions: Vec<u64> = placement.positions.iter().map(|(_, p)| *p).collect();
        assert_eq!(positions, [4, 2, 5, 7]);
        assert_eq!(
            placement.resync,
            [
                (ResyncReason::HistoryExceeded, names(&["a"])),
                (ResyncReason::UnknownId, names(&["c"])),
            ]
        );
    }

    #[test]
    fn an_id_of_another_epoch_or_malformed_resyncs_every_topic() {
        let topics = names(&["a"]);
        for resume in [
            Resume::parse(Some("old;a:1"), 1).within("e1"),
            Resume::parse(Some("not an id"), 1),
        ] {
            let placement = resume.place(&topics, vec![(3, None)]);
            assert_eq!(placement.resync, [(ResyncReason::UnknownId, names(&["a"]))]);
        }
    }

    #[test]
    fn the_opening_carries_retry_resync_then_ready() {
        let placement = Placement {
            positions: vec![(Arc::from("a"), 2)],
            replay: Vec::new(),
            resync: vec![(ResyncReason::UnknownId, names(&["a"]))],
        };
        let opening = placement.opening(3000, "e1");
        let text = std::str::from_utf8(&opening).unwrap();
        let blocks: Vec<&str> = text.split("\n\n").collect();
        let data = |block: &str| -> serde_json::Value {
            let line = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            serde_json::from_str(line).unwrap()
        };
        assert!(blocks[0].starts_with("retry: 3000\nid: e1;a:2\nevent: resync\n"));
        assert_eq!(
            data(blocks[0]),
            serde_json::json!({ "topics": ["a"], "reason": "unknown_id" })
        );
        assert!(blocks[1].starts_with("id: e1;a:2\nevent: ready\n"));
        assert_eq!(data(blocks[1]), serde_json::json!({ "topics": ["a"] }));
        assert_eq!(blocks[2], "");
    }
}
