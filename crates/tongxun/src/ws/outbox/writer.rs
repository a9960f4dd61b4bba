//! The writer's side of a client's outbox: what the connection sends next, in order (a ping,
//! then queued messages and broadcasts in the order they were sent, then the close frame).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::{ClientShared, Outbox};
use crate::ws::broadcasts::{Broadcast, Reader, Taken};
use crate::ws::message::WsMessage;

/// A queue that grew past this many slots is given back its memory once it drains.
const SHRINK_ABOVE: usize = 64;

/// What a connection's writer has in hand between two turns.
pub(crate) struct Writer {
    /// Queued messages taken to be written.
    pub(crate) batch: Vec<WsMessage>,
    /// Bytes of queued messages taken per turn (at least one message): they are no longer
    /// counted against the byte bound.
    pub(crate) max_batch_bytes: usize,
    /// A broadcast taken from the log, sent once no queued message is older.
    pub(crate) held: Option<Broadcast>,
    /// The client's reader of the log while the writer waits for something to send.
    pub(crate) waiting: Option<Reader>,
}

/// What the connection's writer sends next.
pub(crate) enum Outgoing {
    Ping,
    /// The writer fell this many broadcasts behind; they are gone.
    Missed(u64),
    /// The writer holds more than the byte bound: the overflow policy must apply.
    OverBudget,
    /// Messages were moved into the writer's batch.
    Messages,
    /// The next queued message must wait for the broadcasts published before it.
    Behind,
    Close(CloseFrame),
    /// Nothing to send for now.
    Idle,
    /// The connection is going away: the writer stops.
    Stopped,
}

impl ClientShared {
    /// Records a broadcast the writer took while it waited with its reader in hand.
    pub(crate) fn took_while_waiting(&self, taken: &Taken, position: u64) {
        match taken {
            Taken::Broadcast(broadcast) => self.took(broadcast, position),
            Taken::Missed(_) | Taken::Nothing => {
                self.broadcasts_taken.fetch_max(position, Ordering::Relaxed);
            }
        }
    }

    /// What the writer does next, under one lock: puts back the reader it held while waiting,
    /// takes the next broadcast when it holds none, and moves the queued messages that may go
    /// before it into its batch (up to the batch's capacity and
    /// [`Writer::max_batch_bytes`], at least one). When there is nothing to do and
    /// `may_wait`, the reader is handed out for the writer to wait on.
    /// `max_bytes` is the byte bound, checked when the reader comes back; `published` is the
    /// log's byte total.
    pub(crate) fn next_for_writer(
        &self,
        writer: &mut Writer,
        may_wait: bool,
        max_bytes: u64,
        published: u64,
    ) -> Outgoing {
        let mut outbox = self.outbox();
        if let Some(reader) = writer.waiting.take()
            && !outbox.log_left
        {
            outbox.log = Some(reader);
            // The hub could not trim the log while the reader was out. A client that held
            // nothing took one message of any size: that message alone is not over the bound.
            let held = self.held_bytes(published);
            let only_one = outbox.queue.len() == 1
                && outbox
                    .queue
                    .front()
                    .is_some_and(|(_, m)| m.len() as u64 == held);
            if held > max_bytes && !only_one && !outbox.closing {
                return Outgoing::OverBudget;
            }
        }
        if outbox.stopped {
            return Outgoing::Stopped;
        }
        if std::mem::take(&mut outbox.ping) {
            return Outgoing::Ping;
        }
        if writer.held.is_none()
            && let Some(reader) = outbox.log.as_mut()
        {
            match reader.try_take() {
                Taken::Broadcast(broadcast) => {
                    self.took(&broadcast, reader.taken());
                    writer.held = Some(broadcast);
                }
                Taken::Missed(missed) => {
                    self.broadcasts_taken
                        .fetch_max(reader.taken(), Ordering::Relaxed);
                    return Outgoing::Missed(missed);
                }
                Taken::Nothing => {}
            }
        }
        // With no broadcast held, the log is read to its end (or left): every queued message
        // may go.
        let broadcasts = writer.held.as_ref().map_or(u64::MAX, |b| b.index - 1);
        let next = self.next_queued(
            &mut outbox,
            &mut writer.batch,
            broadcasts,
            writer.max_batch_bytes,
        );
        if matches!(next, Outgoing::Idle) && writer.held.is_none() {
            outbox.over_bytes = false;
            if may_wait {
                writer.waiting = outbox.log.take();
            }
        }
        next
    }

    /// What the writer does next, given that it sent the first `broadcasts` broadcasts.
    #[cfg(test)]
    pub(crate) fn next_outgoing(&self, batch: &mut Vec<WsMessage>, broadcasts: u64) -> Outgoing {
        let mut outbox = self.outbox();
        if outbox.stopped {
            return Outgoing::Stopped;
        }
        if std::mem::take(&mut outbox.ping) {
            return Outgoing::Ping;
        }
        self.next_queued(&mut outbox, batch, broadcasts, usize::MAX)
    }

    /// Queued messages that need no broadcast after the first `broadcasts`, up to `batch`'s
    /// capacity and `max_bytes` (at least one), are moved into `batch` and no longer counted;
    /// or the close frame, once it may go.
    fn next_queued(
        &self,
        outbox: &mut Outbox,
        batch: &mut Vec<WsMessage>,
        broadcasts: u64,
        max_bytes: usize,
    ) -> Outgoing {
        if !outbox.queue.is_empty() {
            let room = batch.capacity().max(1);
            let mut bytes = 0;
            while batch.len() < room
                && (batch.is_empty() || bytes < max_bytes)
                && let Some(&(after, _)) = outbox.queue.front()
                && after <= broadcasts
                && let Some((_, message)) = outbox.queue.pop_front()
            {
                bytes += message.len();
                batch.push(message);
            }
            self.unqueued(bytes);
            return if batch.is_empty() {
                Outgoing::Behind
            } else {
                Outgoing::Messages
            };
        }
        if outbox.queue.capacity() > SHRINK_ABOVE {
            outbox.queue = VecDeque::new();
        }
        if outbox.close.is_some() && outbox.close_after > broadcasts {
            return Outgoing::Behind;
        }
        match outbox.close.take() {
            Some(frame) => Outgoing::Close(frame),
            None => Outgoing::Idle,
        }
    }
}
