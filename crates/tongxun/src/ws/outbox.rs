//! One client's outgoing side, shared by the hub (which fills it) and the connection's writer
//! (which drains it): the bounded queue of messages for this client only, its place in the
//! hub's broadcast log, and the closing state. Every change happens under the one `outbox`
//! lock; byte counts the hub reads without it are atomics.
//!
//! The hub's side is here (offer a message, apply the byte bound, queue a ping, close, stop);
//! the writer's side, which decides what goes out next, is in `outbox/writer.rs`.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::broadcasts::{Broadcast, Reader, Taken};
use super::client_id::ClientId;
use super::close::{WsDisconnectReason, close_frame};
use super::config::{Limits, OverflowPolicy};
use super::message::WsMessage;
use super::request::WsRequest;
use crate::sync::lock;

#[cfg(test)]
mod tests;
mod writer;

pub(crate) use writer::{Outgoing, Writer};

/// What the byte bound did to a client (see [`ClientShared::relieve`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Relief {
    /// It holds little enough.
    Fits,
    /// The oldest messages were dropped; `fits` tells whether the new bytes now fit.
    Dropped {
        dropped: u64,
        fits: bool,
        /// The first time in this episode (the writer has not caught up since the last one).
        first: bool,
    },
    /// The client is now closing with 1013.
    Closed,
    /// It was closing already.
    Closing,
}

/// The outcome of offering a message to a client's queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Enqueued {
    Queued,
    /// Queued after this many of the oldest messages were dropped; `first` when the byte bound
    /// did it for the first time in an episode.
    DroppedOldest {
        dropped: u64,
        first: bool,
    },
    /// The new message was dropped; `first` when the byte bound did it for the first time in
    /// an episode.
    DroppedNewest {
        first: bool,
    },
    /// The byte bound dropped the oldest messages, and the new one still did not fit: this
    /// many were dropped, the new one included.
    DroppedOldestAndNewest {
        dropped: u64,
        first: bool,
    },
    /// The queue overflowed and the client is now closing with 1013.
    Overflowed,
    /// The byte bound was hit and the client is now closing with 1013.
    OverflowedBytes,
    /// The client is closing or gone.
    Closed,
}

struct Outbox {
    /// Each message with the number of broadcasts published before it was queued.
    queue: VecDeque<(u64, WsMessage)>,
    ping: bool,
    /// The close frame to send once the queue is drained.
    close: Option<CloseFrame>,
    /// The broadcasts that go out before the close frame.
    close_after: u64,
    /// No more messages are accepted.
    closing: bool,
    /// The writer must stop (set by [`ClientShared::stop`]).
    stopped: bool,
    /// Why the hub closes this client, when it does.
    reason: Option<WsDisconnectReason>,
    /// Messages dropped on overflow.
    dropped: u64,
    /// The writer's place in the broadcast log; the writer takes it out only while it waits
    /// with nothing to send, so that the hub can trim or drop it when the client is too slow.
    log: Option<Reader>,
    /// The client no longer reads the log (it is closing without its queue, or stopped).
    log_left: bool,
    /// The byte bound acted since the writer last caught up.
    over_bytes: bool,
}

/// The state of one client shared by its connection task, the hub and every [`WsClient`].
pub(crate) struct ClientShared {
    pub(crate) id: ClientId,
    pub(crate) request: WsRequest,
    pub(crate) protocol: Option<String>,
    outbox: Mutex<Outbox>,
    /// Wakes the writer: a message, a ping or a close frame is waiting.
    pub(crate) wake_writer: Notify,
    /// The index of the last broadcast the writer took (or missed), for the hub's lag checks;
    /// `u64::MAX` once it left the log.
    pub(crate) broadcasts_taken: AtomicU64,
    /// The running total of broadcast bytes up to which the writer is done with the log (sent,
    /// skipped or gone); `u64::MAX` once it left the log.
    log_done: AtomicU64,
    /// Bytes of the messages in the queue.
    queued_bytes: AtomicUsize,
    /// Starts the close timer.
    pub(crate) close_started: Notify,
    closing: AtomicBool,
    /// Set when the hub forgets the client; no topic may be added after.
    pub(crate) detached: AtomicBool,
    /// Topics this client is subscribed to. Changed only under the hub's topics lock.
    pub(crate) topics: Mutex<HashSet<Arc<str>>>,
}

impl ClientShared {
    pub(crate) fn new(id: ClientId, request: WsRequest, protocol: Option<String>) -> Self {
        Self {
            id,
            request,
            protocol,
            outbox: Mutex::new(Outbox {
                queue: VecDeque::new(),
                ping: false,
                close: None,
                close_after: 0,
                closing: false,
                stopped: false,
                reason: None,
                dropped: 0,
                log: None,
                log_left: false,
                over_bytes: false,
            }),
            wake_writer: Notify::new(),
            broadcasts_taken: AtomicU64::new(0),
            // No log until `attach_log`.
            log_done: AtomicU64::new(u64::MAX),
            queued_bytes: AtomicUsize::new(0),
            close_started: Notify::new(),
            closing: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            topics: Mutex::new(HashSet::new()),
        }
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        lock(&self.outbox)
    }

    pub(crate) fn topics(&self) -> MutexGuard<'_, HashSet<Arc<str>>> {
        lock(&self.topics)
    }

    /// Gives the client its place in the broadcast log, `bytes` being the broadcast bytes
    /// published before it; done once, before the client is registered.
    pub(crate) fn attach_log(&self, reader: Reader, bytes: u64) {
        self.broadcasts_taken
            .store(reader.taken(), Ordering::Relaxed);
        self.log_done.store(bytes, Ordering::Relaxed);
        self.outbox().log = Some(reader);
    }

    /// Bytes the server holds for this client now: its queue and the broadcasts its writer has
    /// not taken yet (`published` is the log's total, see
    /// [`Broadcasts::published_bytes`](super::broadcasts::Broadcasts::published_bytes)).
    pub(crate) fn held_bytes(&self, published: u64) -> u64 {
        let log = published.saturating_sub(self.log_done.load(Ordering::Acquire));
        (self.queued_bytes.load(Ordering::Acquire) as u64).saturating_add(log)
    }

    /// Records that the writer took `broadcast` from the log (to write it or skip it).
    /// `fetch_max`: a reader that comes back after the client left the log must not count
    /// again.
    fn took(&self, broadcast: &Broadcast, position: u64) {
        self.broadcasts_taken.fetch_max(position, Ordering::Relaxed);
        self.log_done.fetch_max(broadcast.end, Ordering::Release);
    }

    /// Records that queued messages left the queue (to be written, or dropped).
    fn unqueued(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::Release);
    }

    /// Offers a message to the queue; never waits. `after` is the number of broadcasts
    /// published so far (the writer sends those first), `published` their bytes.
    pub(crate) fn enqueue(
        &self,
        message: WsMessage,
        after: u64,
        published: u64,
        limits: Limits,
    ) -> Enqueued {
        let mut outbox = self.outbox();
        if outbox.closing {
            return Enqueued::Closed;
        }
        let len = message.len();
        let mut outcome = Enqueued::Queued;
        let held = self.held_bytes(published);
        if held > 0 && held.saturating_add(len as u64) > limits.admit() {
            if limits.policy == OverflowPolicy::DropNewest {
                outbox.dropped += 1;
                let first = !std::mem::replace(&mut outbox.over_bytes, true);
                return Enqueued::DroppedNewest { first };
            }
            let trim = limits.policy == OverflowPolicy::DropOldest;
            match self.relieve_locked(&mut outbox, len as u64, published, limits, trim) {
                Relief::Fits => {}
                Relief::Dropped {
                    dropped,
                    fits: true,
                    first,
                } => outcome = Enqueued::DroppedOldest { dropped, first },
                Relief::Dropped {
                    dropped,
                    fits: false,
                    first,
                } => {
                    // What is left is in the writer's hands: the new message cannot fit.
                    outbox.dropped += 1;
                    let first = first || !std::mem::replace(&mut outbox.over_bytes, true);
                    return Enqueued::DroppedOldestAndNewest {
                        dropped: dropped + 1,
                        first,
                    };
                }
                Relief::Closed => return Enqueued::OverflowedBytes,
                Relief::Closing => return Enqueued::Closed,
            }
        }
        if outbox.queue.len() >= limits.capacity {
            match limits.policy {
                OverflowPolicy::DropOldest => {
                    if let Some((_, oldest)) = outbox.queue.pop_front() {
                        self.unqueued(oldest.len());
                    }
                    outbox.dropped += 1;
                    outcome = match outcome {
                        Enqueued::DroppedOldest { dropped, first } => Enqueued::DroppedOldest {
                            dropped: dropped + 1,
                            first,
                        },
                        _ => Enqueued::DroppedOldest {
                            dropped: 1,
                            first: false,
                        },
                    };
                }
                OverflowPolicy::DropNewest => {
                    outbox.dropped += 1;
                    return Enqueued::DroppedNewest { first: false };
                }
                OverflowPolicy::Close => {
                    let frame = close_frame(CloseCode::Again, "client too slow");
                    self.start_closing(outbox, frame, WsDisconnectReason::SlowConsumer, true);
                    return Enqueued::Overflowed;
                }
            }
        }
        let was_empty = outbox.queue.is_empty();
        self.queued_bytes.fetch_add(len, Ordering::Release);
        outbox.queue.push_back((after, message));
        drop(outbox);
        if was_empty {
            // The writer drains the whole queue per wake-up; one wake-up per burst is enough.
            self.wake_writer.notify_one();
        }
        outcome
    }

    /// Applies the overflow policy to a client that would hold more than
    /// [`Limits::admit`] bytes once `incoming` more bytes are added: with `trim`, drops the
    /// oldest queued messages and broadcasts until they fit (or nothing droppable is left);
    /// otherwise closes it with 1013.
    pub(crate) fn relieve(
        &self,
        incoming: u64,
        published: u64,
        limits: Limits,
        trim: bool,
    ) -> Relief {
        let mut outbox = self.outbox();
        self.relieve_locked(&mut outbox, incoming, published, limits, trim)
    }

    fn relieve_locked(
        &self,
        outbox: &mut MutexGuard<'_, Outbox>,
        incoming: u64,
        published: u64,
        limits: Limits,
        trim: bool,
    ) -> Relief {
        if outbox.closing {
            return Relief::Closing;
        }
        let fits =
            |client: &Self| client.held_bytes(published).saturating_add(incoming) <= limits.admit();
        if fits(self) {
            return Relief::Fits;
        }
        if !trim {
            let frame = close_frame(CloseCode::Again, "client too slow");
            self.start_closing_locked(outbox, frame, WsDisconnectReason::SlowConsumer, true);
            return Relief::Closed;
        }
        let mut dropped = 0;
        while !fits(self) {
            // The oldest first: a queued message that waits for no broadcast still in the log
            // is older than every broadcast there.
            let log_first = match (outbox.queue.front(), &outbox.log) {
                (Some(&(after, _)), Some(reader)) => after > reader.taken(),
                (None, Some(_)) => true,
                (_, None) => false,
            };
            if log_first && let Some(reader) = outbox.log.as_mut() {
                match reader.try_take() {
                    Taken::Broadcast(broadcast) => {
                        let position = reader.taken();
                        self.took(&broadcast, position);
                        if broadcast.except != Some(self.id) {
                            dropped += 1;
                        }
                        continue;
                    }
                    Taken::Missed(missed) => {
                        self.broadcasts_taken
                            .fetch_max(reader.taken(), Ordering::Relaxed);
                        dropped += missed;
                        continue;
                    }
                    // Caught up: what is left is in the writer's hands or queued.
                    Taken::Nothing => {}
                }
            }
            match outbox.queue.pop_front() {
                Some((_, oldest)) => {
                    self.unqueued(oldest.len());
                    dropped += 1;
                }
                None => break,
            }
        }
        outbox.dropped += dropped;
        let first = dropped > 0 && !std::mem::replace(&mut outbox.over_bytes, true);
        Relief::Dropped {
            dropped,
            fits: fits(self),
            first,
        }
    }

    /// Asks the writer to send a ping before the next queued message.
    pub(crate) fn queue_ping(&self) {
        let mut outbox = self.outbox();
        if outbox.closing {
            return;
        }
        outbox.ping = true;
        drop(outbox);
        self.wake_writer.notify_one();
    }

    /// Starts closing with `frame`, sent once the queue is drained and the first `broadcasts`
    /// broadcasts are sent (or right away when `discard_queue`). Returns `false` when the
    /// client was already closing.
    pub(crate) fn close(
        &self,
        frame: CloseFrame,
        reason: WsDisconnectReason,
        discard_queue: bool,
        broadcasts: u64,
    ) -> bool {
        let mut outbox = self.outbox();
        if outbox.closing {
            return false;
        }
        outbox.close_after = if discard_queue { 0 } else { broadcasts };
        self.start_closing(outbox, frame, reason, discard_queue);
        true
    }

    fn start_closing(
        &self,
        mut outbox: MutexGuard<'_, Outbox>,
        frame: CloseFrame,
        reason: WsDisconnectReason,
        discard_queue: bool,
    ) {
        self.start_closing_locked(&mut outbox, frame, reason, discard_queue);
    }

    fn start_closing_locked(
        &self,
        outbox: &mut Outbox,
        frame: CloseFrame,
        reason: WsDisconnectReason,
        discard_queue: bool,
    ) {
        outbox.closing = true;
        outbox.close = Some(frame);
        outbox.reason = Some(reason);
        outbox.ping = false;
        if discard_queue {
            self.discard(outbox);
            outbox.close_after = 0;
        }
        self.closing.store(true, Ordering::Release);
        self.wake_writer.notify_one();
        self.close_started.notify_one();
    }

    /// Drops the queue and leaves the broadcast log: nothing more is sent but a close frame.
    fn discard(&self, outbox: &mut Outbox) {
        let queue = std::mem::take(&mut outbox.queue);
        self.unqueued(queue.iter().map(|(_, message)| message.len()).sum());
        // Dropping the reader releases the broadcasts only it had not read yet.
        outbox.log = None;
        outbox.log_left = true;
        self.log_done.store(u64::MAX, Ordering::Release);
        self.broadcasts_taken.store(u64::MAX, Ordering::Relaxed);
    }

    /// Accepts no more messages, without a close frame (the connection is going away), and
    /// starts the close timer.
    pub(crate) fn stop(&self) {
        let mut outbox = self.outbox();
        let was_closing = std::mem::replace(&mut outbox.closing, true);
        outbox.stopped = true;
        self.discard(&mut outbox);
        outbox.ping = false;
        drop(outbox);
        self.closing.store(true, Ordering::Release);
        self.wake_writer.notify_one();
        if !was_closing {
            self.close_started.notify_one();
        }
    }

    /// Whether the hub started closing this client (it accepts no more messages).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Counts messages the client missed.
    pub(crate) fn count_dropped(&self, missed: u64) {
        self.outbox().dropped += missed;
    }

    /// Messages waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        self.outbox().queue.len()
    }

    /// Bytes waiting in the queue.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Why the hub closed this client, if it did, and how many messages it dropped.
    pub(crate) fn close_reason_and_drops(&self) -> (Option<WsDisconnectReason>, u64) {
        let outbox = self.outbox();
        (outbox.reason.clone(), outbox.dropped)
    }
}
