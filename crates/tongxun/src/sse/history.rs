//! Per-topic history in memory: the last events of a topic, for resuming clients.
//!
//! Sequence numbers are `u64`, starting at 1 per topic. The history shared through Redis
//! ([`shared`](super::shared), feature `redis`) keeps the same shape: its stream entries are
//! `<seq>-0`, and it answers with the same [`Replay`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

/// Bytes one kept event costs beyond its frame: the [`Stored`] itself, its reference counts and
/// its slot in the history's queue.
pub(crate) const EVENT_OVERHEAD: usize = std::mem::size_of::<Stored>()
    + 2 * std::mem::size_of::<usize>()
    + std::mem::size_of::<Arc<Stored>>();

/// What keeping an event with this frame costs against [`HistoryBudget`].
pub(crate) fn event_cost(frame: &Bytes) -> usize {
    frame.len() + EVENT_OVERHEAD
}

/// The bytes every topic's history may hold together
/// ([`SseConfig::max_history_bytes`](super::SseConfig::max_history_bytes)).
#[derive(Debug)]
pub(crate) struct HistoryBudget {
    used: AtomicUsize,
    max: usize,
}

impl HistoryBudget {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `cost` bytes if that stays within the budget; never over it, even for a moment.
    fn try_charge(&self, cost: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(cost).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn release(&self, cost: usize) {
        self.used.fetch_sub(cost, Ordering::Relaxed);
    }
}

/// Slots of [`ForgottenMarks`]: 32 KiB per hub.
pub(crate) const MARK_SLOTS: usize = 4096;

/// The slot of `topic` in [`ForgottenMarks`] and in its Redis counterpart: FNV-1a, the same on
/// every node.
pub(crate) fn mark_slot(topic: &str) -> usize {
    let hash = topic.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    // The remainder is below MARK_SLOTS, so it fits a usize.
    (hash % MARK_SLOTS as u64) as usize
}

/// Where topics created from now on start numbering, per slot of their names' hash: past every
/// sequence number a forgotten topic of that slot ever had, so that no position of a forgotten
/// topic is mistaken for one of its new life (such a resume gets `resync`). Hashing the names
/// into a fixed table bounds the memory; a collision only costs a topic that never had an event
/// a needless `resync`.
#[derive(Debug)]
pub(crate) struct ForgottenMarks {
    slots: Box<[AtomicU64]>,
}

impl ForgottenMarks {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..MARK_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The base of a topic named `topic` created now.
    pub(crate) fn base(&self, topic: &str) -> u64 {
        self.slots[mark_slot(topic)].load(Ordering::Relaxed)
    }

    /// Records that `topic` was forgotten when `mark` was above all of its sequence numbers.
    pub(crate) fn raise(&self, topic: &str, mark: u64) {
        self.slots[mark_slot(topic)].fetch_max(mark, Ordering::Relaxed);
    }
}

/// The default history: the last `capacity` events of a topic, in memory, within the hub's
/// [`HistoryBudget`].
#[derive(Debug)]
pub(crate) struct MemoryHistory {
    events: VecDeque<Arc<Stored>>,
    capacity: usize,
    /// The position before this topic's first event. Positions below it are of an earlier life
    /// of a topic of this name, one the hub forgot: they resume as [`Replay::Behind`].
    base: u64,
    last_seq: u64,
    /// What the events held cost against the budget.
    bytes: usize,
}

impl MemoryHistory {
    pub(crate) fn new(capacity: usize, base: u64) -> Self {
        Self {
            events: VecDeque::new(),
            capacity,
            base,
            last_seq: base,
            bytes: 0,
        }
    }

    /// The sequence number of the last event; the base (0 unless the hub forgot topics before
    /// this one was created) before the first.
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Whether nothing was ever published here.
    pub(crate) fn is_untouched(&self) -> bool {
        self.last_seq == self.base
    }

    /// Records an event under the next sequence number and returns it, with how many events
    /// the budget cost history: older ones dropped, and this one if it could not be kept.
    ///
    /// When the budget is spent, the oldest events of this topic make room; when this topic has
    /// none left, the event is delivered but not kept.
    pub(crate) fn append(
        &mut self,
        epoch: &Arc<str>,
        topic: &Arc<str>,
        order: u64,
        frame: Bytes,
        budget: &HistoryBudget,
    ) -> (Arc<Stored>, usize) {
        self.last_seq += 1;
        let cost = event_cost(&frame);
        let stored = Arc::new(Stored {
            epoch: epoch.clone(),
            topic: topic.clone(),
            seq: self.last_seq,
            order,
            frame,
        });
        let mut dropped = 0;
        if self.capacity > 0 {
            if self.events.len() >= self.capacity {
                self.pop_oldest(budget);
            }
            while !budget.try_charge(cost) {
                if !self.pop_oldest(budget) {
                    return (stored, dropped + 1);
                }
                dropped += 1;
            }
            self.bytes += cost;
            self.events.push_back(stored.clone());
        }
        (stored, dropped)
    }

    fn pop_oldest(&mut self, budget: &HistoryBudget) -> bool {
        let Some(oldest) = self.events.pop_front() else {
            return false;
        };
        let cost = event_cost(&oldest.frame);
        self.bytes -= cost;
        budget.release(cost);
        true
    }

    /// Drops every event and gives their bytes back to the budget.
    pub(crate) fn clear(&mut self, budget: &HistoryBudget) {
        self.events.clear();
        budget.release(self.bytes);
        self.bytes = 0;
    }

    /// The events after sequence number `after`.
    pub(crate) fn replay_after(&self, after: u64) -> Replay {
        if after > self.last_seq {
            return Replay::Ahead;
        }
        // A position below the base misses more events than this life of the topic holds.
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

    fn unlimited() -> HistoryBudget {
        HistoryBudget::new(usize::MAX)
    }

    #[test]
    fn keeps_the_last_events_and_replays_after_a_position() {
        let topic: Arc<str> = "a".into();
        let budget = unlimited();
        let mut history = MemoryHistory::new(3, 0);
        assert_eq!(seqs(history.replay_after(0)), Vec::<u64>::new());
        for n in 1..=5 {
            let (stored, _) = history.append(&topic, &topic, 0, Bytes::new(), &budget);
            assert_eq!(stored.seq, n);
        }
        assert_eq!(history.last_seq(), 5);
        assert_eq!(budget.used(), 3 * EVENT_OVERHEAD);
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
        let budget = unlimited();
        let mut history = MemoryHistory::new(0, 0);
        history.append(&topic, &topic, 0, Bytes::new(), &budget);
        assert_eq!(seqs(history.replay_after(1)), Vec::<u64>::new());
        assert!(matches!(history.replay_after(0), Replay::Behind));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_events_of_the_topic_that_needs_room() {
        let topic: Arc<str> = "a".into();
        let frame = Bytes::from_static(&[b'x'; 100]);
        let cost = event_cost(&frame);
        let budget = HistoryBudget::new(3 * cost + cost / 2);
        let mut a = MemoryHistory::new(100, 0);
        let mut b = MemoryHistory::new(100, 0);
        for _ in 0..3 {
            assert_eq!(a.append(&topic, &topic, 0, frame.clone(), &budget).1, 0);
        }
        assert_eq!(budget.used(), 3 * cost);
        // `b` has nothing to give: its event is delivered, not kept.
        let (stored, dropped) = b.append(&topic, &topic, 0, frame.clone(), &budget);
        assert_eq!((stored.seq, dropped, budget.used()), (1, 1, 3 * cost));
        assert!(matches!(b.replay_after(0), Replay::Behind));
        // `a` makes room from its own oldest event.
        assert_eq!(a.append(&topic, &topic, 0, frame.clone(), &budget).1, 1);
        assert_eq!(budget.used(), 3 * cost);
        assert_eq!(seqs(a.replay_after(1)), vec![2, 3, 4]);
        assert!(matches!(a.replay_after(0), Replay::Behind));
        a.clear(&budget);
        assert_eq!(budget.used(), 0);
        assert!(matches!(a.replay_after(3), Replay::Behind));
    }

    #[test]
    fn forgotten_marks_are_per_slot_and_only_rise() {
        let marks = ForgottenMarks::new();
        assert_eq!(mark_slot("chat:general"), mark_slot("chat:general"));
        let other = (0..)
            .map(|n| format!("t{n}"))
            .find(|name| mark_slot(name) != mark_slot("a"))
            .unwrap();
        marks.raise("a", 10);
        marks.raise("a", 7);
        assert_eq!((marks.base("a"), marks.base(&other)), (10, 0));
    }

    #[test]
    fn positions_below_the_base_belong_to_a_forgotten_life() {
        let topic: Arc<str> = "a".into();
        let budget = unlimited();
        let mut history = MemoryHistory::new(10, 40);
        assert!(history.is_untouched());
        assert_eq!(history.last_seq(), 40);
        assert_eq!(seqs(history.replay_after(40)), Vec::<u64>::new());
        assert!(matches!(history.replay_after(39), Replay::Behind));
        let (stored, _) = history.append(&topic, &topic, 0, Bytes::new(), &budget);
        assert_eq!(stored.seq, 41);
        assert!(!history.is_untouched());
        assert_eq!(seqs(history.replay_after(40)), vec![41]);
        assert!(matches!(history.replay_after(3), Replay::Behind));
    }
}
