//! One connected client: its handle for the app and the bounded outgoing queue the hub fills.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::config::OverflowPolicy;
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

/// What the connection's writer sends next.
pub(crate) enum Outgoing {
    Ping,
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
    /// Queued after the oldest message was dropped.
    DroppedOldest,
    /// The new message was dropped.
    DroppedNewest,
    /// The queue overflowed and the client is now closing with 1013.
    Overflowed,
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
}

/// The state of one client shared by its connection task, the hub and every [`WsClient`].
pub(crate) struct ClientShared {
    pub(crate) id: ClientId,
    pub(crate) request: WsRequest,
    pub(crate) protocol: Option<String>,
    outbox: Mutex<Outbox>,
    /// Wakes the writer: a message, a ping or a close frame is waiting.
    pub(crate) wake_writer: Notify,
    /// The index of the last broadcast the writer took (or missed), for the hub's lag checks.
    pub(crate) broadcasts_taken: AtomicU64,
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
            }),
            wake_writer: Notify::new(),
            broadcasts_taken: AtomicU64::new(0),
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

    /// Offers a message to the queue; never waits. `after` is the number of broadcasts
    /// published so far: the writer sends those first.
    pub(crate) fn enqueue(
        &self,
        message: WsMessage,
        after: u64,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Enqueued {
        let mut outbox = self.outbox();
        if outbox.closing {
            return Enqueued::Closed;
        }
        let mut outcome = Enqueued::Queued;
        if outbox.queue.len() >= capacity.max(1) {
            match policy {
                OverflowPolicy::DropOldest => {
                    outbox.queue.pop_front();
                    outbox.dropped += 1;
                    outcome = Enqueued::DroppedOldest;
                }
                OverflowPolicy::DropNewest => {
                    outbox.dropped += 1;
                    return Enqueued::DroppedNewest;
                }
                OverflowPolicy::Close => {
                    let frame = close_frame(CloseCode::Again, "client too slow");
                    self.start_closing(outbox, frame, WsDisconnectReason::SlowConsumer, true);
                    return Enqueued::Overflowed;
                }
            }
        }
        let was_empty = outbox.queue.is_empty();
        outbox.queue.push_back((after, message));
        drop(outbox);
        if was_empty {
            // The writer drains the whole queue per wake-up; one wake-up per burst is enough.
            self.wake_writer.notify_one();
        }
        outcome
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
        outbox.closing = true;
        outbox.close = Some(frame);
        outbox.reason = Some(reason);
        outbox.ping = false;
        if discard_queue {
            outbox.queue = VecDeque::new();
            outbox.close_after = 0;
        }
        drop(outbox);
        self.closing.store(true, Ordering::Release);
        self.wake_writer.notify_one();
        self.close_started.notify_one();
    }

    /// Accepts no more messages, without a close frame (the connection is going away), and
    /// starts the close timer.
    pub(crate) fn stop(&self) {
        let mut outbox = self.outbox();
        let was_closing = std::mem::replace(&mut outbox.closing, true);
        outbox.stopped = true;
        outbox.queue = VecDeque::new();
        outbox.ping = false;
        drop(outbox);
        self.closing.store(true, Ordering::Release);
        self.wake_writer.notify_one();
        if !was_closing {
            self.close_started.notify_one();
        }
    }

    /// What the writer does next. Queued messages that need no broadcast after the first
    /// `broadcasts`, up to `batch`'s capacity, are moved into `batch` under one lock.
    pub(crate) fn next_outgoing(&self, batch: &mut Vec<WsMessage>, broadcasts: u64) -> Outgoing {
        let mut outbox = self.outbox();
        if outbox.stopped {
            return Outgoing::Stopped;
        }
        if std::mem::take(&mut outbox.ping) {
            return Outgoing::Ping;
        }
        if !outbox.queue.is_empty() {
            let room = batch.capacity().max(1);
            while batch.len() < room
                && let Some(&(after, _)) = outbox.queue.front()
                && after <= broadcasts
            {
                batch.extend(outbox.queue.pop_front().map(|(_, message)| message));
            }
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
            }
        }
    }

    #[test]
    fn drop_oldest_keeps_the_newest_messages() {
        let c = client();
        for i in 0..5 {
            c.enqueue(
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
                c.enqueue(
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
                Enqueued::DroppedNewest,
                Enqueued::DroppedNewest
            ]
        );
        assert_eq!(drain(&c), ["0", "1"]);
    }

    #[test]
    fn overflow_under_the_close_policy_discards_the_queue_and_closes_with_1013() {
        let c = client();
        assert_eq!(
            c.enqueue(WsMessage::text("a"), 0, 1, OverflowPolicy::Close),
            Enqueued::Queued
        );
        assert_eq!(
            c.enqueue(WsMessage::text("b"), 0, 1, OverflowPolicy::Close),
            Enqueued::Overflowed
        );
        assert_eq!(
            c.enqueue(WsMessage::text("c"), 0, 1, OverflowPolicy::Close),
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
        c.enqueue(WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
        c.queue_ping();
        c.stop();
        assert!(matches!(
            c.next_outgoing(&mut Vec::with_capacity(4), 0),
            Outgoing::Stopped
        ));
        assert_eq!(
            c.enqueue(WsMessage::text("b"), 0, 10, OverflowPolicy::Close),
            Enqueued::Closed
        );
    }

    #[test]
    fn pings_go_first_and_a_close_goes_out_after_the_queued_messages() {
        let c = client();
        let away = || close_frame(CloseCode::Away, "bye");
        c.enqueue(WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
        c.queue_ping();
        assert!(matches!(
            c.next_outgoing(&mut Vec::new(), 0),
            Outgoing::Ping
        ));
        c.enqueue(WsMessage::text("b"), 0, 10, OverflowPolicy::Close);
        c.queue_ping();
        assert!(c.close(away(), WsDisconnectReason::ServerShutdown, false, 0));
        assert!(!c.close(away(), WsDisconnectReason::ServerShutdown, false, 0));
        let late = c.enqueue(WsMessage::text("c"), 0, 10, OverflowPolicy::Close);
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
        c.enqueue(WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
        c.enqueue(WsMessage::text("b"), 2, 10, OverflowPolicy::Close);
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
            c.enqueue(
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
