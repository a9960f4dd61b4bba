//! A resuming subscriber's replay: read from history and sent to it alone at its pace, then
//! the events queued for it meanwhile, and it is ready for the feed to hand it to the room.

use std::sync::Arc;

use super::{Feed, Position, Stage};
use crate::hub::event::HubEvent;
use crate::hub::target::{Target, Unsent};
use crate::sse::{Replay, ResyncReason};
use crate::sync::lock;

/// How draining a resuming subscriber's queue ended.
enum Drain {
    /// It is ready, or gone.
    Done,
    /// An event is missing before the queued ones.
    Gap,
    /// It could not take an event.
    Failed,
}

impl Feed {
    /// Replays `topic` to `target` (registered by [`subscribe`](Self::subscribe)) from
    /// `since`, then hands it to the live feed; sends `resync` instead when history does not
    /// reach back that far.
    pub(crate) async fn resume(&self, target: Target, since: Position) {
        let Position { topic, epoch, seq } = since;
        let mut sent = seq;
        loop {
            let read = self.history_after(&topic, &epoch, sent).await;
            let replay = match read {
                Ok((current, _, Replay::Events(events))) if current == epoch => events,
                Ok((current, _, replay)) => {
                    let reason = if current == epoch && matches!(replay, Replay::Behind) {
                        ResyncReason::HistoryExceeded
                    } else {
                        ResyncReason::UnknownId
                    };
                    return self.resync_waiting(&target, &topic, reason);
                }
                Err(_) => {
                    return self.resync_waiting(&target, &topic, ResyncReason::HistoryUnavailable);
                }
            };
            for stored in replay {
                sent = stored.seq;
                let Some(event) = self.decode(&stored) else {
                    continue;
                };
                if !send_paced(&target, &event).await {
                    return self.give_up(&target, &topic);
                }
            }
            match self.drain(&target, &topic, &epoch, &mut sent) {
                Drain::Done => return,
                Drain::Failed => return self.give_up(&target, &topic),
                // Events were lost between the history read and the queue: read again.
                Drain::Gap => {}
            }
        }
    }

    /// Sends what was queued for a resuming `target` past `sent`, and makes it ready when
    /// nothing is missing.
    fn drain(&self, target: &Target, topic: &str, epoch: &Arc<str>, sent: &mut u64) -> Drain {
        let mut state = lock(&self.inner.state);
        let Some(waiting) = state.waiting_mut(topic, target) else {
            return Drain::Done; // unsubscribed meanwhile
        };
        let Stage::Replaying(queue) = &mut waiting.stage else {
            return Drain::Done;
        };
        let queued = std::mem::take(queue);
        for (at, event) in queued.iter().enumerate() {
            if event.epoch != *epoch || event.seq > *sent + 1 {
                queue.extend(queued[at..].iter().cloned());
                return Drain::Gap;
            }
            if event.seq <= *sent {
                continue;
            }
            if target.send(event).is_err() {
                return Drain::Failed;
            }
            *sent = event.seq;
        }
        waiting.stage = Stage::Ready(*sent);
        Drain::Done
    }

    /// After a `resync`, the subscriber goes on live: what was queued for it, then the room.
    fn resync_waiting(&self, target: &Target, topic: &Arc<str>, reason: ResyncReason) {
        target.resync(topic, reason);
        let failed = {
            let mut state = lock(&self.inner.state);
            let Some(waiting) = state.waiting_mut(topic, target) else {
                return;
            };
            let Stage::Replaying(queue) = &mut waiting.stage else {
                return;
            };
            let queued = std::mem::take(queue);
            let failed = queued.iter().any(|event| target.send(event).is_err());
            waiting.stage = Stage::Ready(queued.last().map_or(0, |event| event.seq));
            failed
        };
        if failed {
            self.give_up(target, topic);
        }
    }

    /// A subscriber that could not take its replay (its queue is full or it left) is let go:
    /// out of the topic, and disconnected so that it comes back and resumes.
    fn give_up(&self, target: &Target, topic: &str) {
        tracing::warn!(%topic, "hub subscriber could not take its replay, disconnecting it");
        self.unsubscribe(target, topic);
        target.disconnect();
    }
}

/// How long a replay waits for a subscriber's queue to have room, between two tries, and how
/// many tries it makes: 5 seconds in all.
const PACE: std::time::Duration = std::time::Duration::from_millis(10);
const PACE_TRIES: u32 = 500;

/// Sends one replayed event at the pace `target` reads: `false` when it is gone, or has had no
/// room for [`PACE_TRIES`] × [`PACE`].
async fn send_paced(target: &Target, event: &HubEvent) -> bool {
    for _ in 0..PACE_TRIES {
        if target.has_room() {
            match target.send(event) {
                Ok(()) => return true,
                Err(Unsent::Gone) => return false,
                Err(Unsent::Full) => {}
            }
        }
        tokio::time::sleep(PACE).await;
    }
    false
}
