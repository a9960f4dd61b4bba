//! The registry behind a hub: clients, topics, counters, the fan-out of messages into the
//! clients' queues, and the broadcast log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::task::TaskTracker;

use super::broadcasts::Broadcasts;
use super::builder::Handlers;
use super::client::{ClientId, ClientShared, Enqueued, Limits, Relief, close_frame};
use super::config::{MAX_TOPIC_LEN, OverflowPolicy, WsConfig};
use super::connection::WsDisconnectReason;
use super::error::{SubscribeError, WsSendError};
use super::hub::WsStats;
use super::message::WsMessage;

/// Counters of the hub's life, read by [`WsHub::stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) upgrades_refused: AtomicU64,
    pub(crate) dead_peers: AtomicU64,
    pub(crate) messages_dropped: AtomicU64,
    pub(crate) slow_clients_closed: AtomicU64,
    pub(crate) oversized_messages: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) relay_dropped: AtomicU64,
}

impl Counters {
    /// Adds one and returns the new total.
    pub(crate) fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

type Subscribers = HashMap<ClientId, Arc<ClientShared>>;

pub(crate) struct HubInner {
    pub(crate) config: WsConfig,
    /// The bounds of every client's outgoing messages.
    pub(crate) limits: Limits,
    pub(crate) handlers: Handlers,
    clients: RwLock<Subscribers>,
    topics: RwLock<HashMap<Arc<str>, Subscribers>>,
    next_id: AtomicU64,
    pub(crate) counters: Counters,
    shutting_down: AtomicBool,
    pub(crate) tasks: TaskTracker,
    /// Messages to every client.
    pub(crate) broadcasts: Broadcasts,
    /// The link to the other nodes, when shared through Redis.
    #[cfg(feature = "redis")]
    pub(crate) relay: std::sync::OnceLock<super::relay::Relay>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // No code panics while holding these locks; the maps stay consistent if one ever did.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl HubInner {
    pub(crate) fn new(config: WsConfig, handlers: Handlers) -> Self {
        let broadcasts = Broadcasts::new(config.queue_capacity);
        Self {
            limits: Limits::new(&config),
            config,
            handlers,
            clients: RwLock::default(),
            topics: RwLock::default(),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            shutting_down: AtomicBool::new(false),
            tasks: TaskTracker::new(),
            broadcasts,
            #[cfg(feature = "redis")]
            relay: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn client_ids(&self) -> Vec<ClientId> {
        read(&self.clients).keys().copied().collect()
    }

    pub(crate) fn client_count(&self) -> usize {
        read(&self.clients).len()
    }

    pub(crate) fn subscriber_count(&self, topic: &str) -> usize {
        read(&self.topics).get(topic).map_or(0, HashMap::len)
    }

    pub(crate) fn stats(&self) -> WsStats {
        let (clients, queued_messages, queued_bytes) = {
            let clients = read(&self.clients);
            let published_bytes = self.broadcasts.published_bytes();
            let bytes: u64 = clients
                .values()
                .map(|c| c.held_bytes(published_bytes))
                .fold(0, u64::saturating_add);
            let published = self.broadcasts.published();
            // The log holds at most `queue_capacity` broadcasts for a writer that is behind.
            let queued = |c: &Arc<ClientShared>| {
                let behind = published.saturating_sub(c.broadcasts_taken.load(Ordering::Relaxed));
                c.queued()
                    + usize::try_from(behind)
                        .map_or(usize::MAX, |b| b.min(self.config.queue_capacity))
            };
            let messages = clients.values().map(queued).sum();
            (clients.len(), messages, bytes)
        };
        let c = &self.counters;
        WsStats {
            clients,
            queued_messages,
            queued_bytes,
            connections: c.connections.load(Ordering::Relaxed),
            upgrades_refused: c.upgrades_refused.load(Ordering::Relaxed),
            dead_peers: c.dead_peers.load(Ordering::Relaxed),
            messages_dropped: c.messages_dropped.load(Ordering::Relaxed),
            slow_clients_closed: c.slow_clients_closed.load(Ordering::Relaxed),
            oversized_messages: c.oversized_messages.load(Ordering::Relaxed),
            protocol_errors: c.protocol_errors.load(Ordering::Relaxed),
            relay_dropped: c.relay_dropped.load(Ordering::Relaxed),
        }
    }

    /// Refuses new connections from now on and closes every client with 1001, once.
    pub(crate) fn begin_shutdown(&self) {
        if self.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        // `register` checks the flag after inserting: a client is either seen here or there.
        let clients: Vec<Arc<ClientShared>> = read(&self.clients).values().cloned().collect();
        tracing::info!(clients = clients.len(), path = %self.config.path, "closing websocket clients");
        for client in clients {
            self.close_for_shutdown(&client);
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn client(&self, id: ClientId) -> Option<Arc<ClientShared>> {
        read(&self.clients).get(&id).cloned()
    }

    /// Adds a client that just completed its handshake.
    pub(crate) fn register(&self, client: Arc<ClientShared>) {
        write(&self.clients).insert(client.id, client.clone());
        Counters::bump(&self.counters.connections);
        // A shutdown that started before the insert did not see this client.
        if self.is_shutting_down() {
            self.close_for_shutdown(&client);
        }
    }

    pub(crate) fn next_id(&self) -> ClientId {
        ClientId::new(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Removes a client whose connection is over from the registry and its topics.
    pub(crate) fn unregister(&self, client: &ClientShared) {
        client.detached.store(true, Ordering::SeqCst);
        write(&self.clients).remove(&client.id);
        let mut topics = write(&self.topics);
        for topic in client.topics().drain() {
            if let Some(subscribers) = topics.get_mut(&topic) {
                subscribers.remove(&client.id);
                if subscribers.is_empty() {
                    topics.remove(&topic);
                }
            }
        }
    }

    fn close_for_shutdown(&self, client: &ClientShared) {
        client.close(
            close_frame(CloseCode::Away, "server shutting down"),
            WsDisconnectReason::ServerShutdown,
            false,
            self.broadcasts.published(),
        );
    }

    /// Offers `message` to one client's queue, counting and logging what the overflow policy
    /// did. Never waits.
    pub(crate) fn deliver(
        &self,
        client: &ClientShared,
        message: WsMessage,
    ) -> Result<(), WsSendError> {
        let after = self.broadcasts.published();
        let published_bytes = self.broadcasts.published_bytes();
        match client.enqueue(message, after, published_bytes, self.limits) {
            Enqueued::Queued => Ok(()),
            Enqueued::DroppedOldest { dropped, first } => {
                self.count_drops(client, dropped, first);
                Ok(())
            }
            Enqueued::DroppedNewest { first } => {
                self.count_drops(client, 1, first);
                Err(WsSendError::QueueFull)
            }
            Enqueued::DroppedOldestAndNewest { dropped, first } => {
                self.count_drops(client, dropped, first);
                Err(WsSendError::QueueFull)
            }
            Enqueued::OverflowedBytes => {
                self.closed_over_bytes(client);
                Err(WsSendError::QueueFull)
            }
            Enqueued::Overflowed => {
                let total = Counters::bump(&self.counters.slow_clients_closed);
                tracing::warn!(
                    client = %client.id,
                    capacity = self.config.queue_capacity,
                    slow_clients_closed = total,
                    "websocket client too slow: outgoing queue full, closing with 1013"
                );
                Err(WsSendError::QueueFull)
            }
            Enqueued::Closed => Err(WsSendError::Closed),
        }
    }

    /// Counts `count` messages dropped for `client`; `over_bytes` when the byte bound dropped
    /// them for the first time since the client last caught up.
    fn count_drops(&self, client: &ClientShared, count: u64, over_bytes: bool) {
        let total = self
            .counters
            .messages_dropped
            .fetch_add(count, Ordering::Relaxed)
            + count;
        // One warning per client per burst would flood the log; the first one and the totals
        // (in the stats and in the disconnect log) tell the story.
        let (_, dropped) = client.close_reason_and_drops();
        if over_bytes {
            tracing::warn!(
                client = %client.id,
                max_queued_bytes = self.config.max_queued_bytes,
                messages_dropped = total,
                "websocket client too slow: over max_queued_bytes, dropping its oldest messages"
            );
        } else if dropped == count {
            tracing::warn!(
                client = %client.id,
                capacity = self.config.queue_capacity,
                messages_dropped = total,
                "websocket client too slow: outgoing queue full, dropping messages"
            );
        } else {
            tracing::trace!(client = %client.id, messages_dropped = total, "websocket message dropped");
        }
    }

    /// Queues one shared message for every client but `except`, here and on the other nodes;
    /// returns how many clients of this node took it.
    pub(crate) fn broadcast(&self, message: &WsMessage, except: Option<ClientId>) -> usize {
        let delivered = self.broadcast_local(message, except);
        #[cfg(feature = "redis")]
        self.relay(super::relay::Audience::All, message);
        delivered
    }

    /// Queues one shared message for the subscribers of `topic` but `except`, here and on the
    /// other nodes; returns how many clients of this node took it.
    pub(crate) fn publish(
        &self,
        topic: &str,
        message: &WsMessage,
        except: Option<ClientId>,
    ) -> usize {
        let delivered = self.publish_local(topic, message, except);
        #[cfg(feature = "redis")]
        self.relay(super::relay::Audience::Topic(topic), message);
        delivered
    }

    /// [`broadcast`](Self::broadcast) to this node's clients only: one append to the broadcast
    /// log, which every writer reads. Returns how many clients it is for.
    pub(crate) fn broadcast_local(&self, message: &WsMessage, except: Option<ClientId>) -> usize {
        let incoming = message.len() as u64;
        let index = self.broadcasts.publish(
            message.clone(),
            except,
            self.limits.check_every(),
            |published| self.check_bytes(published, incoming),
        );
        let clients = read(&self.clients);
        let step = self.lag_check_step();
        if self.config.overflow_policy == OverflowPolicy::Close && index.is_multiple_of(step) {
            // Whoever is this far behind could miss a broadcast before the next check.
            let bound = (self.config.queue_capacity.max(1) as u64).saturating_sub(step);
            for client in clients.values() {
                let taken = client.broadcasts_taken.load(Ordering::Relaxed);
                if index.saturating_sub(taken) > bound {
                    self.missed_broadcasts(client, index - taken);
                }
            }
        }
        clients.len() - except.map_or(0, |id| usize::from(clients.contains_key(&id)))
    }

    /// Holds every client to the byte bound before a broadcast of `incoming` bytes goes into
    /// the log (which holds `published` bytes so far): a client that would hold more than
    /// [`Limits::admit`] meets the overflow policy. Runs once per
    /// [`Limits::check_every`] broadcast bytes, so what is broadcast until the next check fits
    /// in the last eighth of the bound.
    fn check_bytes(&self, published: u64, incoming: u64) {
        let admit = self.limits.admit();
        for client in read(&self.clients).values() {
            let held = client.held_bytes(published);
            // A client that holds nothing takes a message of any size.
            if held > 0 && held.saturating_add(incoming) > admit {
                self.relieve(client, incoming, published);
            }
        }
    }

    /// The writer of `client` found it over the byte bound after waiting with its reader in
    /// hand (the hub could not trim the log meanwhile).
    pub(crate) fn over_budget(&self, client: &ClientShared) {
        self.relieve(client, 0, self.broadcasts.published_bytes());
    }

    /// Applies the overflow policy to a client over the byte bound: for broadcasts both drop
    /// policies drop the oldest, as for the count bound.
    fn relieve(&self, client: &ClientShared, incoming: u64, published: u64) {
        let trim = self.config.overflow_policy != OverflowPolicy::Close;
        match client.relieve(incoming, published, self.limits, trim) {
            Relief::Fits | Relief::Closing | Relief::Dropped { dropped: 0, .. } => {}
            Relief::Dropped { dropped, first, .. } => self.count_drops(client, dropped, first),
            Relief::Closed => self.closed_over_bytes(client),
        }
    }

    fn closed_over_bytes(&self, client: &ClientShared) {
        let total = Counters::bump(&self.counters.slow_clients_closed);
        tracing::warn!(
            client = %client.id,
            max_queued_bytes = self.config.max_queued_bytes,
            slow_clients_closed = total,
            "websocket client too slow: over max_queued_bytes, closing with 1013"
        );
    }

    /// Broadcasts between two checks of how far behind the writers are.
    fn lag_check_step(&self) -> u64 {
        (self.config.queue_capacity as u64 / 8).max(1)
    }

    /// A writer is (or fell) `missed` broadcasts behind: the overflow policy decides what
    /// follows.
    pub(crate) fn missed_broadcasts(&self, client: &ClientShared, missed: u64) {
        match self.config.overflow_policy {
            OverflowPolicy::Close => {
                let frame = close_frame(CloseCode::Again, "client too slow");
                if client.close(frame, WsDisconnectReason::SlowConsumer, true, 0) {
                    let total = Counters::bump(&self.counters.slow_clients_closed);
                    tracing::warn!(
                        client = %client.id,
                        capacity = self.config.queue_capacity,
                        missed,
                        slow_clients_closed = total,
                        "websocket client too slow: fell behind the broadcasts, closing with 1013"
                    );
                }
            }
            OverflowPolicy::DropOldest | OverflowPolicy::DropNewest => {
                client.count_dropped(missed);
                self.counters
                    .messages_dropped
                    .fetch_add(missed, Ordering::Relaxed);
                tracing::warn!(
                    client = %client.id,
                    capacity = self.config.queue_capacity,
                    missed,
                    "websocket client too slow: missed broadcasts"
                );
            }
        }
    }

    /// [`publish`](Self::publish) to this node's clients only.
    pub(crate) fn publish_local(
        &self,
        topic: &str,
        message: &WsMessage,
        except: Option<ClientId>,
    ) -> usize {
        let topics = read(&self.topics);
        let Some(subscribers) = topics.get(topic) else {
            return 0;
        };
        self.fan_out(subscribers.values(), message, except)
    }

    fn fan_out<'a>(
        &self,
        clients: impl Iterator<Item = &'a Arc<ClientShared>>,
        message: &WsMessage,
        except: Option<ClientId>,
    ) -> usize {
        // Only a queue push per client under the read lock: no await, no write to a socket.
        clients
            .filter(|client| Some(client.id) != except)
            .filter(|client| self.deliver(client, message.clone()).is_ok())
            .count()
    }

    pub(crate) fn subscribe(
        &self,
        client: &Arc<ClientShared>,
        topic: &str,
    ) -> Result<bool, SubscribeError> {
        if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
            return Err(SubscribeError::InvalidTopic);
        }
        // Lock order: the hub's topics, then the client's own set (as in `unregister`).
        let mut topics = write(&self.topics);
        // `unregister` sets `detached` before it takes the topics lock: checked under that
        // lock, a client being torn down can never be left in a topic.
        if client.detached.load(Ordering::SeqCst) || client.is_closing() {
            return Err(SubscribeError::Closed);
        }
        let mut own = client.topics();
        if own.contains(topic) {
            return Ok(false);
        }
        if own.len() >= self.config.max_topics_per_client {
            return Err(SubscribeError::TooManyTopics);
        }
        let key: Arc<str> = match topics.get_key_value(topic) {
            Some((key, _)) => key.clone(),
            None => Arc::from(topic),
        };
        topics
            .entry(key.clone())
            .or_default()
            .insert(client.id, client.clone());
        own.insert(key);
        Ok(true)
    }

    pub(crate) fn unsubscribe(&self, client: &ClientShared, topic: &str) -> bool {
        let mut topics = write(&self.topics);
        if !client.topics().remove(topic) {
            return false;
        }
        if let Some(subscribers) = topics.get_mut(topic) {
            subscribers.remove(&client.id);
            if subscribers.is_empty() {
                topics.remove(topic);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::broadcasts::{Reader, Taken};
    use crate::ws::client::{Outgoing, WsClient};
    use crate::ws::error::WsSendError;
    use crate::ws::hub::WsHub;
    use crate::ws::request::WsRequest;

    fn join(hub: &WsHub) -> WsClient {
        let inner = hub.inner.clone();
        let shared = Arc::new(ClientShared::new(
            inner.next_id(),
            WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new()),
            None,
        ));
        inner.register(shared.clone());
        WsClient { hub: inner, shared }
    }

    fn next_message(client: &WsClient) -> Option<WsMessage> {
        let mut batch = Vec::with_capacity(1);
        match client.shared.next_outgoing(&mut batch, u64::MAX) {
            Outgoing::Messages => batch.pop(),
            _ => None,
        }
    }

    /// What a writer reading `reader` would send `client`.
    fn next_broadcast(reader: &mut Reader, client: &WsClient) -> Option<WsMessage> {
        loop {
            match reader.try_take() {
                Taken::Broadcast(b) if b.except == Some(client.id()) => {}
                Taken::Broadcast(b) => return Some(b.message),
                _ => return None,
            }
        }
    }

    #[test]
    fn a_broadcast_is_one_buffer_shared_by_every_reader() {
        let hub = WsHub::default();
        let clients: Vec<WsClient> = (0..3).map(|_| join(&hub)).collect();
        let mut readers: Vec<Reader> = (0..3).map(|_| hub.inner.broadcasts.reader().0).collect();
        let message = WsMessage::json(&serde_json::json!({ "big": "x".repeat(10_000) })).unwrap();
        let payload = message.as_bytes().as_ptr();
        assert_eq!(hub.broadcast(message), 3);
        for (client, reader) in clients.iter().zip(&mut readers) {
            let queued = next_broadcast(reader, client).unwrap();
            assert_eq!(
                queued.as_bytes().as_ptr(),
                payload,
                "the payload was copied"
            );
            assert!(next_message(client).is_none(), "nothing in the queue");
        }
    }

    #[test]
    fn broadcast_others_and_publish_pick_their_recipients() {
        let hub = WsHub::default();
        let [a, b, c] = [join(&hub), join(&hub), join(&hub)];
        let [mut ra, mut rb, mut rc] = [(); 3].map(|()| hub.inner.broadcasts.reader().0);
        assert_eq!(a.broadcast_others("hi"), 2);
        assert!(next_broadcast(&mut ra, &a).is_none());
        assert_eq!(next_broadcast(&mut rb, &b).unwrap().as_text(), Some("hi"));
        assert_eq!(next_broadcast(&mut rc, &c).unwrap().as_text(), Some("hi"));

        assert_eq!(a.subscribe("t"), Ok(true));
        assert_eq!(b.subscribe("t"), Ok(true));
        assert_eq!(b.subscribe("t"), Ok(false));
        assert_eq!(hub.subscriber_count("t"), 2);
        assert_eq!(hub.publish("t", "news"), 2);
        assert_eq!(a.publish_others("t", "mine"), 1);
        assert_eq!(next_message(&a).unwrap().as_text(), Some("news"));
        assert_eq!(next_message(&b).unwrap().as_text(), Some("news"));
        assert_eq!(next_message(&b).unwrap().as_text(), Some("mine"));
        assert!(next_message(&c).is_none());
        assert_eq!(hub.publish("nobody", "x"), 0);
    }

    #[test]
    fn a_message_queued_after_a_broadcast_waits_for_it() {
        let hub = WsHub::default();
        let a = join(&hub);
        let mut reader = hub.inner.broadcasts.reader().0;
        hub.broadcast("first");
        a.send("second").unwrap();
        let mut batch = Vec::with_capacity(4);
        // The writer has taken no broadcast yet: the queued message must wait.
        assert!(matches!(
            a.shared.next_outgoing(&mut batch, reader.taken()),
            Outgoing::Behind
        ));
        assert_eq!(
            next_broadcast(&mut reader, &a).unwrap().as_text(),
            Some("first")
        );
        assert!(matches!(
            a.shared.next_outgoing(&mut batch, reader.taken()),
            Outgoing::Messages
        ));
        assert_eq!(batch[0].as_text(), Some("second"));
    }

    #[test]
    fn a_close_goes_out_after_the_broadcasts_published_before_it() {
        let hub = WsHub::default();
        let a = join(&hub);
        let mut reader = hub.inner.broadcasts.reader().0;
        hub.broadcast("last words");
        a.close(1000, "bye");
        hub.broadcast("too late");
        let mut batch = Vec::with_capacity(4);
        assert!(matches!(
            a.shared.next_outgoing(&mut batch, reader.taken()),
            Outgoing::Behind
        ));
        assert_eq!(
            next_broadcast(&mut reader, &a).unwrap().as_text(),
            Some("last words")
        );
        assert!(matches!(
            a.shared.next_outgoing(&mut batch, reader.taken()),
            Outgoing::Close(_)
        ));
    }

    #[test]
    fn topics_are_validated_and_bounded() {
        let hub = WsHub::new(WsConfig {
            max_topics_per_client: 2,
            ..WsConfig::default()
        });
        let a = join(&hub);
        assert_eq!(a.subscribe(""), Err(SubscribeError::InvalidTopic));
        assert_eq!(
            a.subscribe(&"x".repeat(MAX_TOPIC_LEN + 1)),
            Err(SubscribeError::InvalidTopic)
        );
        assert_eq!(a.subscribe(&"x".repeat(MAX_TOPIC_LEN)), Ok(true));
        assert_eq!(a.subscribe("b"), Ok(true));
        assert_eq!(a.subscribe("c"), Err(SubscribeError::TooManyTopics));
        assert!(a.unsubscribe("b"));
        assert!(!a.unsubscribe("b"));
        assert_eq!(hub.subscriber_count("b"), 0);
        assert_eq!(a.subscribe("c"), Ok(true));
        assert_eq!(a.topics(), vec!["c".to_owned(), "x".repeat(MAX_TOPIC_LEN)]);
    }

    #[test]
    fn a_client_that_leaves_leaves_its_topics_and_can_no_longer_join_any() {
        let hub = WsHub::default();
        let a = join(&hub);
        a.subscribe("t").unwrap();
        hub.inner.unregister(&a.shared);
        assert_eq!(hub.subscriber_count("t"), 0);
        assert_eq!(hub.client_count(), 0);
        assert_eq!(a.subscribe("u"), Err(SubscribeError::Closed));
        assert!(hub.client(a.id()).is_none());
        assert_eq!(hub.send_to(a.id(), "x"), Err(WsSendError::Closed));
    }

    /// A client with its place in the log, whose writer never runs: it reads nothing.
    fn join_stalled(hub: &WsHub) -> WsClient {
        let inner = hub.inner.clone();
        let shared = Arc::new(ClientShared::new(
            inner.next_id(),
            WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new()),
            None,
        ));
        let (reader, bytes) = inner.broadcasts.reader();
        shared.attach_log(reader, bytes);
        inner.register(shared.clone());
        WsClient { hub: inner, shared }
    }

    fn byte_bound_hub(policy: crate::ws::OverflowPolicy) -> WsHub {
        WsHub::new(WsConfig {
            max_queued_bytes: 800,
            overflow_policy: policy,
            ..WsConfig::default()
        })
    }

    #[test]
    fn a_stalled_client_is_closed_before_the_broadcasts_it_holds_pass_the_byte_bound() {
        let hub = byte_bound_hub(crate::ws::OverflowPolicy::Close);
        let a = join_stalled(&hub);
        for n in 1..=7 {
            hub.broadcast(vec![0u8; 100]);
            assert_eq!(a.queued_bytes(), n * 100);
        }
        // 700 bytes is seven eighths of the bound: the next broadcast would pass it.
        hub.broadcast(vec![0u8; 100]);
        assert_eq!(hub.stats().slow_clients_closed, 1);
        assert_eq!(a.queued_bytes(), 0, "it left the log");
        assert_eq!(hub.stats().queued_messages, 0);
    }

    #[test]
    fn a_stalled_client_loses_its_oldest_broadcasts_and_queued_messages_under_drop_oldest() {
        let hub = byte_bound_hub(crate::ws::OverflowPolicy::DropOldest);
        let a = join_stalled(&hub);
        a.send(vec![1u8; 100]).unwrap();
        for _ in 0..20 {
            hub.broadcast(vec![0u8; 100]);
            assert!(a.queued_bytes() <= 800, "{} bytes", a.queued_bytes());
        }
        a.send(vec![2u8; 100]).unwrap();
        assert_eq!(a.queued_bytes(), 700);
        let stats = hub.stats();
        // 22 messages of 100 bytes, 7 kept.
        assert_eq!((stats.messages_dropped, stats.slow_clients_closed), (15, 0));
        assert_eq!(
            a.shared.queued_bytes(),
            100,
            "only the newest queued message is left"
        );
    }

    #[test]
    fn stats_count_drops_and_queued_messages() {
        let hub = WsHub::new(WsConfig {
            queue_capacity: 2,
            overflow_policy: crate::ws::OverflowPolicy::DropOldest,
            ..WsConfig::default()
        });
        let a = join(&hub);
        for _ in 0..5 {
            a.send("x").unwrap();
        }
        let stats = hub.stats();
        assert_eq!(stats.clients, 1);
        assert_eq!(stats.queued_messages, 2);
        assert_eq!(stats.messages_dropped, 3);
        assert_eq!(stats.slow_clients_closed, 0);
    }
}
