//! Per-topic history in memory: the last events of a topic, for resuming clients.
//!
//! Sequence numbers are `u64`, starting at 1 per topic. The history shared through Redis
//! ([`shared`](super::shared), feature `redis`) keeps the same shape: its stream entries are
//! `<seq>-0`, and it answers with the same [`Replay`].

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

/// One published event as the hub keeps and shares it between streams.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The epoch of its id: a stream that started in another epoch must resume instead.
    pub(crate) epoch: Arc<str>,
    /// The topic it was published to.
    pub(crate) topic: Arc<str>,
    /// Its sequence number in that topic.
    pub(crate) seq: u64,
    /// Its rank among all events of the hub, so that replays of several topics come in the
    /// order the events were published.
    pub(crate) order: u64,
    /// The `event:` and `data:` lines and the blank line that ends the event, encoded once;
    /// each stream writes its own `id:` line before them.
    pub(crate) frame: Bytes,
}

/// What history holds after a position.
#[derive(Debug)]
pub(crate) enum Replay {
    /// Every event after the position, oldest first (none when the position is the last).
    Events(Vec<Arc<Stored>>),
    /// Some events after the position were already dropped from history.
    Behind,
    /// The position is past the last event: not a position of this history.
    Ahead,
}

/// The default history: the last `capacity` events of a topic, in memory.
#[derive(Debug)]
pub(crate) struct MemoryHistory {
    events: VecDeque<Arc<Stored>>,
    capacity: usize,
    last_seq: u64,
}

impl MemoryHistory {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::new(),
            capacity,
            last_seq: 0,
        }
    }

    /// The sequence number of the last event, 0 before the first.
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Records an event under the next sequence number and returns it.
    pub(crate) fn append(
        &mut self,
        epoch: &Arc<str>,
        topic: &Arc<str>,
        order: u64,
        frame: Bytes,
    ) -> Arc<Stored> {
        self.last_seq += 1;
        let stored = Arc::new(Stored {
            epoch: epoch.clone(),
            topic: topic.clone(),
            seq: self.last_seq,
            order,
            frame,
        });
        if self.capacity > 0 {
            if self.events.len() == self.capacity {
                self.events.pop_front();
            }
            self.events.push_back(stored.clone());
        }
        stored
    }

    /// The events after sequence number `after`.
    pub(crate) fn replay_after(&self, after: u64) -> Replay {
        if after > self.last_seq {
            return Replay::Ahead;
        }
        let missing = self.last_seq - after;
        match usize::try_from(missing) {
            Ok(missing) if missing <= self.events.len() => Replay::Events(
                self.events
                    .range(self.events.len() - missing..)
                    .cloned()
                    .collect(),
            ),
            _ => Replay::Behind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(replay: Replay) -> Vec<u64> {
        match replay {
            Replay::Events(events) => events.iter().map(|e| e.seq).collect(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn keeps_the_last_events_and_replays_after_a_position() {
        let topic: Arc<str> = "a".into();
        let mut history = MemoryHistory::new(3);
        assert_eq!(seqs(history.replay_after(0)), Vec::<u64>::new());
        for n in 1..=5 {
            assert_eq!(history.append(&topic, &topic, 0, Bytes::new()).seq, n);
        }
        assert_eq!(history.last_seq(), 5);
        assert_eq!(seqs(history.replay_after(5)), Vec::<u64>::new());
        assert_eq!(seqs(history.replay_after(4)), vec![5]);
        assert_eq!(seqs(history.replay_after(2)), vec![3, 4, 5]);
        assert!(matches!(history.replay_after(1), Replay::Behind));
        assert!(matches!(history.replay_after(0), Replay::Behind));
        assert!(matches!(history.replay_after(6), Replay::Ahead));
    }

    #[test]
    fn without_capacity_only_the_last_position_resumes() {
        let topic: Arc<str> = "a".into();
        let mut history = MemoryHistory::new(0);
        history.append(&topic, &topic, 0, Bytes::new());
        assert_eq!(seqs(history.replay_after(1)), Vec::<u64>::new());
        assert!(matches!(history.replay_after(0), Replay::Behind));
    }
}
