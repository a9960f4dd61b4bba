//! One connected client: its handle for the app and the bounded outgoing queue the hub fills.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::broadcasts::{Broadcast, Reader, Taken};
use super::config::{OverflowPolicy, WsConfig};
use super::connection::WsDisconnectReason;
use super::error::{SubscribeError, WsSendError};
use super::hub::WsHub;
use super::message::{Utf8Bytes, WsMessage};
use super::registry::HubInner;
use super::request::WsRequest;

/// A queue that grew past this many slots is given back its memory once it drains.
const SHRINK_ABOVE: usize = 64;
/// Longest close reason RFC 6455 allows (a control frame carries 125 bytes, 2 are the code).
const MAX_CLOSE_REASON: usize = 123;

/// Identifies a client of one hub; ids are never reused while the hub lives.
///
/// # Examples
/// ```
/// use tongxun::ws::{ClientId, WsClient};
///
/// fn log_id(client: &WsClient) -> ClientId {
///     tracing::info!(client = %client.id(), "hello");
///     client.id()
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(u64);

impl ClientId {
    pub(crate) fn new(id: u64) -> Self {
        Self(id)
    }

    /// The id as a number.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: &tongxun::ws::WsClient) {
    /// let n: u64 = client.id().as_u64();
    /// assert_eq!(n.to_string(), client.id().to_string());
    /// # }
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Parses the form [`Display`](fmt::Display) writes, for ids that went through another
/// system (an admin page, a queue) and come back.
///
/// # Examples
/// ```
/// # fn f(hub: tongxun::ws::WsHub, client: tongxun::ws::WsClient) {
/// let id: tongxun::ws::ClientId = client.id().to_string().parse().unwrap();
/// assert_eq!(id, client.id());
/// # }
/// ```
impl std::str::FromStr for ClientId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// The bounds of one client's outgoing messages, from the [`WsConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Messages in the queue.
    pub(crate) capacity: usize,
    /// Bytes held for the client: its queue and its unread part of the broadcast log.
    pub(crate) max_bytes: u64,
    pub(crate) policy: OverflowPolicy,
}

impl Limits {
    pub(crate) fn new(config: &WsConfig) -> Self {
        Self {
            capacity: config.queue_capacity.max(1),
            max_bytes: config.max_queued_bytes as u64,
            policy: config.overflow_policy,
        }
    }

    /// Broadcast bytes between two checks of how far behind the writers are: an eighth of the
    /// byte bound.
    pub(crate) fn check_every(&self) -> u64 {
        (self.max_bytes / 8).max(1)
    }

    /// Bytes a client may hold when something new is added: seven eighths of the bound, so that
    /// what is broadcast until the next check fits in the last eighth.
    pub(crate) fn admit(&self) -> u64 {
        self.max_bytes - self.check_every().min(self.max_bytes)
    }
}

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
        // Nothing panics while the lock is held; a poisoned queue is still consistent.
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn topics(&self) -> MutexGuard<'_, HashSet<Arc<str>>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Records a broadcast the writer took while it waited with its reader in hand.
    pub(crate) fn took_while_waiting(&self, taken: &Taken, position: u64) {
        match taken {
            Taken::Broadcast(broadcast) => self.took(broadcast, position),
            Taken::Missed(_) | Taken::Nothing => {
                self.broadcasts_taken.fetch_max(position, Ordering::Relaxed);
            }
        }
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

/// A close frame with a valid code and a reason cut to what RFC 6455 allows.
pub(crate) fn close_frame(code: impl Into<CloseCode>, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from(&reason[..end]),
    }
}

/// A connected client, handed to the hub's handlers; cheap to clone and usable from anywhere.
///
/// Sending never waits: a message goes into the client's bounded outgoing queue, which its
/// connection drains (see [`OverflowPolicy`] for a full queue).
///
/// # Examples
/// ```
/// use tongxun::ws::{WsClient, WsHub, WsMessage};
///
/// let hub = WsHub::builder()
///     .on_connect(|client: WsClient| async move {
///         client.subscribe("news")?;
///         client.send(format!("welcome, you are client {}", client.id()))?;
///         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(()) // an error is logged
///     })
///     .on_message(|client: WsClient, message: WsMessage| async move {
///         client.broadcast_others(message); // everyone else gets it, text or binary as sent
///     })
///     .build();
/// ```
#[derive(Clone)]
pub struct WsClient {
    pub(crate) hub: Arc<HubInner>,
    pub(crate) shared: Arc<ClientShared>,
}

impl fmt::Debug for WsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsClient")
            .field("id", &self.shared.id)
            .field("protocol", &self.shared.protocol)
            .field("closing", &self.shared.is_closing())
            .finish_non_exhaustive()
    }
}

impl WsClient {
    /// The client's id in its hub.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// let hub = client.hub();
    /// assert!(hub.client(client.id()).is_some() || !client.is_connected());
    /// # }
    /// ```
    pub fn id(&self) -> ClientId {
        self.shared.id
    }

    /// The upgrade request that opened the connection (query, headers, peer address).
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// let room = client.request().query("room").unwrap_or_else(|| "lobby".to_owned());
    /// # }
    /// ```
    pub fn request(&self) -> &WsRequest {
        &self.shared.request
    }

    /// The subprotocol selected during the handshake, if any.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// if client.protocol() == Some("chat.v2") { /* speak v2 */ }
    /// # }
    /// ```
    pub fn protocol(&self) -> Option<&str> {
        self.shared.protocol.as_deref()
    }

    /// The hub this client belongs to.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// client.hub().broadcast("someone did something"); // everyone, this client included
    /// # }
    /// ```
    pub fn hub(&self) -> WsHub {
        WsHub::from_inner(self.hub.clone())
    }

    /// Whether the client is connected and not closing.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// client.close(1000, "bye");
    /// assert!(!client.is_connected());
    /// # }
    /// ```
    pub fn is_connected(&self) -> bool {
        !self.shared.is_closing()
    }

    /// Bytes the hub holds for this client now: the payloads of the messages in its queue and of
    /// the broadcasts it has not been sent yet, which
    /// [`WsConfig::max_queued_bytes`](super::WsConfig::max_queued_bytes) bounds. A client that
    /// keeps up holds about nothing; one that stops reading holds what its socket could not
    /// take. Zero once the client is closing after an overflow, or gone.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// let limit = client.hub().config().max_queued_bytes as u64;
    /// assert!(client.queued_bytes() <= limit);
    /// # }
    /// ```
    pub fn queued_bytes(&self) -> u64 {
        self.shared
            .held_bytes(self.hub.broadcasts.published_bytes())
    }

    /// Queues a message for this client.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) -> Result<(), tongxun::ws::WsSendError> {
    /// client.send("text")?;
    /// client.send(vec![0u8, 1, 2])?; // binary
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`WsSendError::Closed`] when the client is gone or closing, [`WsSendError::QueueFull`]
    /// when its queue is full and the message was not queued.
    pub fn send(&self, message: impl Into<WsMessage>) -> Result<(), WsSendError> {
        self.hub.deliver(&self.shared, message.into())
    }

    /// Sends a message to every other client of the hub; returns how many clients of this node
    /// it is for.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// let reached = client.broadcast_others(format!("{} joined", client.id()));
    /// # }
    /// ```
    pub fn broadcast_others(&self, message: impl Into<WsMessage>) -> usize {
        self.hub.broadcast(&message.into(), Some(self.shared.id))
    }

    /// Queues a message for every other subscriber of `topic`; returns how many took it.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// client.publish_others("room:1", "typing...");
    /// # }
    /// ```
    pub fn publish_others(&self, topic: &str, message: impl Into<WsMessage>) -> usize {
        self.hub
            .publish(topic, &message.into(), Some(self.shared.id))
    }

    /// Subscribes the client to `topic`; returns `false` when it already was.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) -> Result<(), tongxun::ws::SubscribeError> {
    /// assert!(client.subscribe("prices")?);
    /// assert!(!client.subscribe("prices")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`SubscribeError::InvalidTopic`] for an empty or too long topic,
    /// [`SubscribeError::TooManyTopics`] past
    /// [`WsConfig::max_topics_per_client`](super::WsConfig::max_topics_per_client),
    /// [`SubscribeError::Closed`] when the client is gone.
    pub fn subscribe(&self, topic: &str) -> Result<bool, SubscribeError> {
        self.hub.subscribe(&self.shared, topic)
    }

    /// Unsubscribes the client from `topic`; returns `false` when it was not subscribed.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// client.unsubscribe("prices");
    /// # }
    /// ```
    pub fn unsubscribe(&self, topic: &str) -> bool {
        self.hub.unsubscribe(&self.shared, topic)
    }

    /// The topics the client is subscribed to.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// for topic in client.topics() {
    ///     println!("{topic}");
    /// }
    /// # }
    /// ```
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.shared.topics().iter().map(|t| t.to_string()).collect();
        topics.sort_unstable();
        topics
    }

    /// Closes the connection with `code` and `reason` (cut to 123 bytes), after the messages
    /// already queued; the client's close frame is then awaited for at most
    /// [`WsConfig::close_timeout`](super::WsConfig::close_timeout). A code that may not be
    /// sent (such as 1005 or 1006) is replaced by 1000 and logged as an error.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: tongxun::ws::WsClient) {
    /// use tongxun::ws::close_code;
    /// client.close(close_code::POLICY, "not allowed here");
    /// # }
    /// ```
    pub fn close(&self, code: u16, reason: &str) {
        let mut close_code = CloseCode::from(code);
        if !close_code.is_allowed() {
            tracing::error!(client = %self.shared.id, code, "close code may not be sent; closing with 1000");
            close_code = CloseCode::Normal;
        }
        let reason_text = reason.to_owned();
        let frame = close_frame(close_code, reason);
        self.shared.close(
            frame,
            WsDisconnectReason::ClosedByServer {
                code: close_code.into(),
                reason: reason_text,
            },
            false,
            self.hub.broadcasts.published(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientShared {
        ClientShared::new(
            ClientId::new(1),
            WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new()),
            None,
        )
    }

    /// Offers a message under a count bound only.
    fn offer(
        c: &ClientShared,
        message: WsMessage,
        after: u64,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Enqueued {
        let limits = Limits {
            capacity,
            max_bytes: 1 << 30,
            policy,
        };
        c.enqueue(message, after, 0, limits)
    }

    fn bytes_limits(max_bytes: u64, policy: OverflowPolicy) -> Limits {
        Limits {
            capacity: 1000,
            max_bytes,
            policy,
        }
    }

    #[test]
    fn the_byte_bound_admits_seven_eighths_and_always_one_message() {
        let limits = bytes_limits(800, OverflowPolicy::Close);
        assert_eq!((limits.check_every(), limits.admit()), (100, 700));
        let c = client();
        // A client that holds nothing takes a message of any size.
        let big = WsMessage::binary(vec![0u8; 2000]);
        assert_eq!(c.enqueue(big, 0, 0, limits), Enqueued::Queued);
        assert_eq!(c.queued_bytes(), 2000);
        assert_eq!(
            c.enqueue(WsMessage::text("x"), 0, 0, limits),
            Enqueued::OverflowedBytes
        );
        assert_eq!(
            c.queued_bytes(),
            0,
            "the discarded queue is no longer counted"
        );
        assert_eq!(drain(&c), ["<close 1013>"]);
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_until_the_new_message_fits() {
        let limits = bytes_limits(800, OverflowPolicy::DropOldest);
        let c = client();
        let hundred = |n: u8| WsMessage::text(char::from(b'a' + n).to_string().repeat(100));
        for n in 0..7 {
            assert_eq!(c.enqueue(hundred(n), 0, 0, limits), Enqueued::Queued);
        }
        assert_eq!(c.held_bytes(0), 700);
        assert_eq!(
            c.enqueue(hundred(7), 0, 0, limits),
            Enqueued::DroppedOldest {
                dropped: 1,
                first: true
            }
        );
        assert_eq!(
            c.enqueue(hundred(8), 0, 0, limits),
            Enqueued::DroppedOldest {
                dropped: 1,
                first: false
            }
        );
        assert_eq!(c.held_bytes(0), 700);
        let sent = drain(&c);
        assert_eq!(sent.len(), 7);
        assert!(
            sent[0].starts_with('c') && sent[6].starts_with('i'),
            "{sent:?}"
        );
        assert_eq!(c.close_reason_and_drops().1, 2);
    }

    #[test]
    fn the_byte_bound_drops_the_newest_under_drop_newest() {
        let limits = bytes_limits(800, OverflowPolicy::DropNewest);
        let c = client();
        let message = || WsMessage::binary(vec![0u8; 400]);
        assert_eq!(c.enqueue(message(), 0, 0, limits), Enqueued::Queued);
        assert_eq!(
            c.enqueue(message(), 0, 0, limits),
            Enqueued::DroppedNewest { first: true }
        );
        assert_eq!(c.held_bytes(0), 400);
    }

    fn drain(client: &ClientShared) -> Vec<String> {
        let mut out = Vec::new();
        // A batch of two shows that a longer queue takes several turns.
        let mut batch = Vec::with_capacity(2);
        loop {
            match client.next_outgoing(&mut batch, u64::MAX) {
                Outgoing::Messages => {
                    assert!(batch.len() <= 2);
                    out.extend(batch.drain(..).map(|m| m.as_text().unwrap().to_owned()));
                }
                Outgoing::Ping => out.push("<ping>".into()),
                Outgoing::Close(f) => out.push(format!("<close {}>", u16::from(f.code))),
                Outgoing::Idle | Outgoing::Behind | Outgoing::Stopped => return out,
                Outgoing::Missed(_) | Outgoing::OverBudget => unreachable!("no broadcast log"),
            }
        }
    }

    #[test]
    fn drop_oldest_keeps_the_newest_messages() {
        let c = client();
        for i in 0..5 {
            offer(
                &c,
                WsMessage::text(i.to_string()),
                0,
                3,
                OverflowPolicy::DropOldest,
            );
        }
        assert_eq!(drain(&c), ["2", "3", "4"]);
        assert_eq!(c.close_reason_and_drops().1, 2);
    }

    #[test]
    fn drop_newest_refuses_new_messages() {
        let c = client();
        let outcomes: Vec<_> = (0..4)
            .map(|i| {
                offer(
                    &c,
                    WsMessage::text(i.to_string()),
                    0,
                    2,
                    OverflowPolicy::DropNewest,
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                Enqueued::Queued,
                Enqueued::Queued,
                Enqueued::DroppedNewest { first: false },
                Enqueued::DroppedNewest { first: false }
            ]
        );
        assert_eq!(drain(&c), ["0", "1"]);
    }

    #[test]
    fn overflow_under_the_close_policy_discards_the_queue_and_closes_with_1013() {
        let c = client();
        assert_eq!(
            offer(&c, WsMessage::text("a"), 0, 1, OverflowPolicy::Close),
            Enqueued::Queued
        );
        assert_eq!(
            offer(&c, WsMessage::text("b"), 0, 1, OverflowPolicy::Close),
            Enqueued::Overflowed
        );
        assert_eq!(
            offer(&c, WsMessage::text("c"), 0, 1, OverflowPolicy::Close),
            Enqueued::Closed
        );
        assert!(c.is_closing());
        assert_eq!(drain(&c), ["<close 1013>"]);
        assert_eq!(
            c.close_reason_and_drops().0,
            Some(WsDisconnectReason::SlowConsumer)
        );
    }

    #[test]
    fn stopping_discards_the_queue_and_stops_the_writer() {
        let c = client();
        offer(&c, WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
        c.queue_ping();
        c.stop();
        assert!(matches!(
            c.next_outgoing(&mut Vec::with_capacity(4), 0),
            Outgoing::Stopped
        ));
        assert_eq!(
            offer(&c, WsMessage::text("b"), 0, 10, OverflowPolicy::Close),
            Enqueued::Closed
        );
    }

    #[test]
    fn pings_go_first_and_a_close_goes_out_after_the_queued_messages() {
        let c = client();
        let away = || close_frame(CloseCode::Away, "bye");
        offer(&c, WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
        c.queue_ping();
        assert!(matches!(
            c.next_outgoing(&mut Vec::new(), 0),
            Outgoing::Ping
        ));
        offer(&c, WsMessage::text("b"), 0, 10, OverflowPolicy::Close);
        c.queue_ping();
        assert!(c.close(away(), WsDisconnectReason::ServerShutdown, false, 0));
        assert!(!c.close(away(), WsDisconnectReason::ServerShutdown, false, 0));
        let late = offer(&c, WsMessage::text("c"), 0, 10, OverflowPolicy::Close);
        assert_eq!(late, Enqueued::Closed);
        // A closing connection sends no more pings.
        assert_eq!(drain(&c), ["a", "b", "<close 1001>"]);
    }

    #[test]
    fn close_reasons_are_cut_on_a_char_boundary() {
        let reason = "é".repeat(100);
        let frame = close_frame(CloseCode::Normal, &reason);
        assert_eq!(frame.reason.len(), 122);
    }

    #[test]
    fn a_queued_message_waits_for_the_broadcasts_published_before_it() {
        let c = client();
        offer(&c, WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
        offer(&c, WsMessage::text("b"), 2, 10, OverflowPolicy::Close);
        let mut batch = Vec::with_capacity(8);
        assert!(matches!(c.next_outgoing(&mut batch, 1), Outgoing::Messages));
        assert_eq!(batch, [WsMessage::text("a")]);
        batch.clear();
        assert!(matches!(c.next_outgoing(&mut batch, 1), Outgoing::Behind));
        assert!(matches!(c.next_outgoing(&mut batch, 2), Outgoing::Messages));
        assert_eq!(batch, [WsMessage::text("b")]);
    }

    #[test]
    fn a_drained_queue_gives_its_memory_back() {
        let c = client();
        for i in 0..1000 {
            offer(
                &c,
                WsMessage::text(i.to_string()),
                0,
                2000,
                OverflowPolicy::Close,
            );
        }
        assert_eq!(drain(&c).len(), 1000);
        assert_eq!(c.outbox().queue.capacity(), 0);
    }
}
