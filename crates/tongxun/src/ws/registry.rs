//! The registry behind a hub: clients, topics, counters, the fan-out of messages into the
//! clients' queues, and the broadcast log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::task::TaskTracker;

use super::broadcasts::Broadcasts;
use super::client_id::ClientId;
use super::close::{WsDisconnectReason, close_frame};
use super::config::{Limits, MAX_TOPIC_LEN, OverflowPolicy, WsConfig};
use super::error::{SubscribeError, WsSendError};
use super::handlers::Handlers;
use super::message::WsMessage;
use super::outbox::{ClientShared, Enqueued, Relief};
#[cfg(feature = "redis")]
use super::relay::{Audience, Relay};
use super::stats::{Counters, WsStats};
use crate::sync::{read, write};

#[cfg(test)]
mod tests;

type Subscribers = HashMap<ClientId, Arc<ClientShared>>;

/// What the hub's stored handlers are given: the hub and the client's state, which the
/// builder's wrappers make into the [`WsClient`](super::WsClient) the app's handler takes (this
/// file sits below `client.rs`).
pub(crate) type ClientParts = (Arc<HubInner>, Arc<ClientShared>);

pub(crate) struct HubInner {
    pub(crate) config: WsConfig,
    /// The bounds of every client's outgoing messages.
    pub(crate) limits: Limits,
    pub(crate) handlers: Handlers<ClientParts>,
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
    relay: std::sync::OnceLock<Relay>,
    /// Who takes the clients' topic commands instead of the hub: a bound cross-transport hub.
    pub(crate) topic_commands: std::sync::OnceLock<Arc<dyn super::commands::TopicCommands>>,
}

impl HubInner {
    pub(crate) fn new(config: WsConfig, handlers: Handlers<ClientParts>) -> Self {
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
            topic_commands: std::sync::OnceLock::new(),
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
        self.counters
            .snapshot(clients, queued_messages, queued_bytes)
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
        self.relay(&Audience::All, message);
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
        self.relay(&Audience::Topic(topic), message);
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

    /// Shares this hub's broadcasts and publishes with the hubs of the other nodes on `bus`.
    /// The receiver fires once this node listens on the channel. A hub is shared through one
    /// bus at most; later calls are ignored.
    #[cfg(feature = "redis")]
    pub(crate) fn share_through(
        self: &Arc<Self>,
        bus: &crate::bus::RedisBus,
    ) -> tokio::sync::oneshot::Receiver<()> {
        let mut started = None;
        self.relay.get_or_init(|| {
            let channel = format!("tongxun:ws:{}", self.config.path);
            let hub = Arc::downgrade(self);
            let (relay, listening) = Relay::start(bus, channel, move |audience, message| {
                let Some(hub) = hub.upgrade() else {
                    return false;
                };
                match audience {
                    Audience::All => hub.broadcast_local(&message, None),
                    Audience::Topic(topic) => hub.publish_local(topic, &message, None),
                };
                true
            });
            started = Some(listening);
            relay
        });
        started.unwrap_or_else(|| {
            tracing::warn!(path = %self.config.path, "websocket hub already shared through Redis");
            tokio::sync::oneshot::channel().1
        })
    }

    /// Sends a message that was just delivered on this node to the other nodes, if shared.
    #[cfg(feature = "redis")]
    fn relay(&self, audience: &Audience<'_>, message: &WsMessage) {
        if let Some(relay) = self.relay.get()
            && !relay.send(audience, message)
        {
            Counters::bump(&self.counters.relay_dropped);
            tracing::warn!(
                path = %self.config.path,
                "websocket message kept on this node: the queue to Redis is full"
            );
        }
    }
}
