//! The Redis bus: the one connection a node keeps to Redis when [`Config::redis_url`] is set,
//! shared by Socket.IO's adapter, the WebSocket hub and the SSE hub.
//!
//! On one Redis it is redis-rs's `ConnectionManager` speaking RESP3, so that pub/sub messages
//! arrive as pushes on the same connection as commands. The manager reconnects with exponential
//! backoff and resubscribes the channels. On a Redis Cluster ([`Config::redis_cluster`]) it is
//! redis-rs's cluster connection, RESP3 too: it keeps a connection to each master, routes each
//! command (and each subscription) to the master of its key's slot, follows the cluster's
//! topology, and reconnects and resubscribes by itself. Both are behind [`RedisConn`], so that the
//! rest of the crate sends commands and scripts the same way to either.
//!
//! Pub/sub is classic (`PUBLISH`, `SUBSCRIBE`) on one Redis and sharded (`SPUBLISH`,
//! `SSUBSCRIBE`) on a cluster, where a channel lives on the master of its slot like a key: a
//! message goes to that master's subscribers only, rather than over the cluster bus to every
//! node, and a channel whose slot moves to another master is dropped by the old one, which tells
//! its subscribers (`sunsubscribe`), so that no node ends up subscribed twice. redis-rs forgets a
//! channel the server dropped, and does not always resubscribe every channel after its masters
//! restarted: [`keep_subscriptions`] subscribes them again, and redis-rs follows the redirection
//! to their master. Counting a channel's subscribers (`PUBSUB SHARDNUMSUB`), redis-rs asks every
//! node of the cluster and adds up their answers. See `docs/scaling.md`.
//!
//! A heartbeat makes a node that only listens notice a lost connection too. Whether Redis is
//! reachable is logged once per change, and every return after a loss is announced
//! ([`RedisBus::recoveries`]) so that the SSE hub can make its streams resume from history.
//! Nothing is ever queued for a Redis that is away: each user decides what a failed command means
//! (the Socket.IO adapter and the WebSocket hub keep delivering locally, the SSE hub refuses to
//! publish what it could not record).
//!
//! [`Config::redis_url`]: crate::Config::redis_url
//! [`Config::redis_cluster`]: crate::Config::redis_cluster

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{
    ConnectionInfo, ErrorKind, FromRedisValue, PushInfo, PushKind, RedisError, ServerErrorKind,
};
use tokio::sync::{Notify, OnceCell, mpsc, watch};

mod conn;
pub(crate) use conn::RedisConn;

/// Interval of the liveness check that makes a node reconnect even when it only listens.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a publish may take before Redis is taken for away. A Redis that was killed or
/// restarted closes the connection, which the bus learns at once (the connection's
/// `Disconnection` push): this bounds the wait on one that stopped answering with its
/// connection open. It is well above what a loaded node sees (a publish waits behind the
/// node's own writes: at 40 ms, two nodes busy with 1,000 receivers each took Redis for away
/// several times a second); a slower Redis is reported as away, which loses no honesty: the
/// broadcast says it reached this node only.
pub(crate) const PUBLISH_DEADLINE: Duration = Duration::from_millis(250);

/// How long connecting to Redis (each node of a cluster) may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a caller waits on a Redis that stopped answering.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// A connection to Redis, for commands and scripts: one Redis or a cluster.
pub(crate) type Connection = RedisConn;

/// A pub/sub message: its channel and its payload.
pub(crate) type Message = (String, Vec<u8>);

/// Where the bus connects.
enum Target {
    /// One Redis.
    Single(redis::Client),
    /// A Redis Cluster, found through this node of it.
    Cluster(ConnectionInfo),
}

impl BusInner {
    /// Notes that Redis is not reachable: logged and timed once per loss.
    fn mark_down(&self, why: &dyn std::fmt::Display) {
        if self.up.swap(false, Ordering::Relaxed) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            self.lost_at_ms.store(now, Ordering::Relaxed);
            tracing::error!("lost Redis ({why}): serving local clients only until it is back");
        } else {
            tracing::debug!("Redis still unreachable: {why}");
        }
    }
}

/// A node's connection to Redis. Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub(crate) struct RedisBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    target: Target,
    /// Where messages of each subscribed channel go.
    handlers: RwLock<HashMap<String, mpsc::Sender<Message>>>,
    /// The connection, once made. It reconnects by itself after that.
    conn: OnceCell<RedisConn>,
    /// Whether the last command reached Redis, to log each change once.
    up: AtomicBool,
    /// Whether Redis was ever reached, so that the first connection is not a recovery.
    reached: AtomicBool,
    /// Counts the times Redis was reached again after it was lost.
    recoveries: watch::Sender<u64>,
    /// This node's name on the bus, so that it can skip its own messages.
    node: u64,
    /// Publishes that did not reach Redis.
    publish_failures: AtomicU64,
    /// When Redis was last lost, in milliseconds since the Unix epoch.
    lost_at_ms: AtomicU64,
    /// Asks the cluster's subscription keeper ([`keep_subscriptions`]) to subscribe every
    /// channel again.
    resubscribe: Arc<Notify>,
    /// The last [`OUTAGES_KEPT`] outages: the recovery that ended each, and when it began.
    outages: std::sync::Mutex<std::collections::VecDeque<(u64, u64)>>,
}

/// Outages remembered for [`RedisBus::lost_since`].
const OUTAGES_KEPT: usize = 16;

impl Drop for BusInner {
    fn drop(&mut self) {
        // Lets the keeper see that the bus is gone.
        self.resubscribe.notify_one();
    }
}

/// What the metrics read of the bus.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct BusState {
    /// The last command reached Redis.
    pub(crate) up: bool,
    /// Times Redis was reached again after it was lost.
    pub(crate) reconnects: u64,
    pub(crate) publish_failures: u64,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("node", &format_args!("{:016x}", self.inner.node))
            .field("up", &self.inner.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// A bus for `url`, connecting in the background: to one Redis, or to the Redis Cluster
    /// that `url` is a node of when `cluster` is true.
    ///
    /// # Errors
    /// When the URL is not a valid Redis URL.
    pub(crate) fn new(url: &str, cluster: bool) -> Result<Self, RedisError> {
        let info = redis::IntoConnectionInfo::into_connection_info(url)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let target = if cluster {
            // Checks what the cluster client would refuse, without connecting.
            ClusterClientBuilder::new([info.clone()]).build()?;
            Target::Cluster(info)
        } else {
            Target::Single(redis::Client::open(info)?)
        };
        let bus = RedisBus {
            inner: Arc::new(BusInner {
                target,
                handlers: RwLock::default(),
                conn: OnceCell::new(),
                up: AtomicBool::new(false),
                reached: AtomicBool::new(false),
                recoveries: watch::Sender::new(0),
                node: crate::random_u64(),
                publish_failures: AtomicU64::new(0),
                lost_at_ms: AtomicU64::new(0),
                outages: std::sync::Mutex::default(),
                resubscribe: Arc::new(Notify::new()),
            }),
        };
        if matches!(bus.inner.target, Target::Cluster(_)) {
            tokio::spawn(keep_subscriptions(
                Arc::downgrade(&bus.inner),
                bus.inner.resubscribe.clone(),
            ));
        }
        let weak = Arc::downgrade(&bus.inner);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(HEARTBEAT);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                RedisBus { inner }.heartbeat().await;
            }
        });
        Ok(bus)
    }

    /// Whether Redis is reachable and how often it failed, for the metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn state(&self) -> BusState {
        let inner = &self.inner;
        BusState {
            up: inner.up.load(Ordering::Relaxed),
            reconnects: *inner.recoveries.borrow(),
            publish_failures: inner.publish_failures.load(Ordering::Relaxed),
        }
    }

    /// This node's name on the bus.
    pub(crate) fn node(&self) -> u64 {
        self.inner.node
    }

    /// Changes each time Redis is reachable again after it was lost: whatever was published in
    /// between never reached this node.
    pub(crate) fn recoveries(&self) -> watch::Receiver<u64> {
        self.inner.recoveries.subscribe()
    }

    /// When the first of the outages ended by the recoveries after number `seen` began: the
    /// Unix epoch when it is no longer remembered.
    pub(crate) fn lost_since(&self, seen: u64) -> std::time::SystemTime {
        let outages = crate::lock(&self.inner.outages);
        let remembered = outages.front().is_some_and(|(n, _)| *n <= seen + 1);
        let began = outages
            .iter()
            .filter(|(n, _)| *n > seen)
            .map(|(_, lost_at)| *lost_at)
            .min();
        match began {
            Some(ms) if remembered => std::time::UNIX_EPOCH + Duration::from_millis(ms),
            _ => std::time::UNIX_EPOCH,
        }
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, mpsc::Sender<Message>>> {
        self.inner
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, if it was ever made. Publishing never waits for a first connection: the
    /// heartbeat and the namespaces' setup make it.
    fn made(&self) -> Option<RedisConn> {
        self.inner.conn.get().cloned()
    }

    /// The connection, making it if needed; `None` while Redis cannot be reached.
    pub(crate) async fn conn(&self) -> Option<RedisConn> {
        let inner = &self.inner;
        let made = inner
            .conn
            .get_or_try_init(|| async {
                let mut conn = self.connect().await?;
                // Channels subscribed before the connection existed.
                let channels: Vec<String> = self.handlers().keys().cloned().collect();
                for channel in channels {
                    conn.subscribe(&channel).await?;
                }
                Ok::<_, RedisError>(conn)
            })
            .await;
        match made {
            Ok(conn) => Some(conn.clone()),
            Err(e) => {
                self.mark_down(&e);
                None
            }
        }
    }

    /// Makes the connection, which hands every pub/sub message to [`dispatch`].
    async fn connect(&self) -> Result<RedisConn, RedisError> {
        // Weak: the connection is the bus's, and goes with it when the last user drops it.
        let bus = Arc::downgrade(&self.inner);
        let push_sender = move |push: PushInfo| {
            if let Some(inner) = bus.upgrade() {
                dispatch(&inner, push);
            }
            Ok::<(), std::convert::Infallible>(())
        };
        match &self.inner.target {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_automatic_resubscription()
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2))
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_push_sender(push_sender);
                let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
                Ok(RedisConn::Single(conn))
            }
            Target::Cluster(seed) => {
                let client = ClusterClientBuilder::new([seed.clone()])
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(push_sender)
                    .retries(2)
                    .connection_timeout(CONNECTION_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .build()?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    async fn heartbeat(&self) {
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let pong = redis::cmd("PING").query_async::<()>(&mut conn).await;
        self.record(&pong);
    }

    /// Notes whether a command reached Redis.
    pub(crate) fn record<T>(&self, result: &Result<T, RedisError>) {
        match result {
            Ok(_) => self.mark_up(),
            Err(e) if is_unreachable(e) => self.mark_down(e),
            Err(_) => {}
        }
    }

    fn mark_up(&self) {
        let inner = &self.inner;
        if inner.up.swap(true, Ordering::Relaxed) {
            return;
        }
        if inner.reached.swap(true, Ordering::Relaxed) {
            tracing::warn!("Redis is back: cross-node delivery resumes");
            let lost_at = inner.lost_at_ms.load(Ordering::Relaxed);
            // The outage is recorded before its recovery is announced.
            inner.recoveries.send_modify(|n| {
                *n += 1;
                let mut outages = crate::lock(&inner.outages);
                if outages.len() == OUTAGES_KEPT {
                    outages.pop_front();
                }
                outages.push_back((*n, lost_at));
            });
            inner.resubscribe.notify_one();
        } else {
            tracing::info!("connected to Redis: cross-node delivery is on");
        }
    }

    fn mark_down(&self, error: &RedisError) {
        self.inner.mark_down(error);
    }

    /// Whether Redis was reached and then lost, and not reached again since: the heartbeat
    /// (every second) finds out when it is back.
    fn known_away(&self) -> bool {
        let inner = &self.inner;
        inner.reached.load(Ordering::Relaxed) && !inner.up.load(Ordering::Relaxed)
    }

    /// The connection while Redis is reachable; `None` at once while it is known to be away,
    /// so that no caller waits for the manager's reconnection attempts (about a second each).
    pub(crate) async fn live(&self) -> Option<Connection> {
        if self.known_away() {
            return None;
        }
        self.conn().await
    }

    /// Publishes `payload` on `channel`; `false` when it did not reach Redis (logged), at once
    /// while Redis is known to be away.
    pub(crate) async fn publish(&self, channel: &str, payload: &[u8]) -> bool {
        let made = if self.known_away() { None } else { self.made() };
        let Some(mut conn) = made else {
            self.inner.publish_failures.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let mut publish = redis::cmd(conn.publish_command());
        publish.arg(channel).arg(payload);
        let sent = match tokio::time::timeout(
            PUBLISH_DEADLINE,
            publish.query_async::<()>(&mut conn),
        )
        .await
        {
            Ok(sent) => sent,
            Err(_) => Err(RedisError::from((
                redis::ErrorKind::Io,
                "publish timed out",
            ))),
        };
        self.record(&sent);
        if sent.is_err() {
            self.inner.publish_failures.fetch_add(1, Ordering::Relaxed);
        }
        sent.is_ok()
    }

    /// Delivers the messages of `channel` to a new receiver holding up to `size` of them; a
    /// message that finds it full is dropped and logged. The receiver ends when the channel is
    /// unsubscribed.
    pub(crate) async fn subscribe(&self, channel: String, size: usize) -> mpsc::Receiver<Message> {
        let (tx, rx) = mpsc::channel(size.max(1));
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel.clone(), tx);
        // The first connection subscribes every channel registered so far; later ones are
        // resubscribed automatically after a reconnection.
        if let Some(mut conn) = self.conn().await {
            let subscribed = conn.subscribe(&channel).await;
            self.record(&subscribed);
        }
        rx
    }

    /// Stops delivering the messages of `channel`.
    pub(crate) async fn unsubscribe(&self, channel: &str) {
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(channel);
        if let Some(mut conn) = self.made() {
            conn.unsubscribe(channel).await.ok();
        }
    }

    /// The number of nodes subscribed to `channel`, this one included; 1 while Redis is away,
    /// so that a node then expects no answer from the others.
    ///
    /// On a cluster, redis-rs sends `PUBSUB SHARDNUMSUB` to every node and adds up their
    /// answers: each node counts only the subscribers connected to it.
    pub(crate) async fn subscribers(&self, channel: &str) -> u16 {
        let Some(mut conn) = self.made() else {
            return 1;
        };
        let count = match conn {
            RedisConn::Single(_) => "NUMSUB",
            RedisConn::Cluster(_) => "SHARDNUMSUB",
        };
        // A flat array from one Redis, a map from a cluster.
        let counts: Result<HashMap<String, u16>, _> = redis::cmd("PUBSUB")
            .arg(count)
            .arg(channel)
            .query_async(&mut conn)
            .await;
        self.record(&counts);
        counts.map_or(1, |counts| counts.get(channel).map_or(1, |n| (*n).max(1)))
    }
}

/// Whether an error means Redis could not be reached, rather than that it refused a command.
pub(crate) fn is_unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(ServerErrorKind::ClusterDown | ServerErrorKind::MasterDown)
        )
}

/// Hands a pub/sub message to its channel's reader, never waiting for it; on a cluster, has the
/// channels subscribed again after a connection to a master was lost, or when a master dropped
/// a channel that still has a reader.
fn dispatch(inner: &BusInner, push: PushInfo) {
    match push.kind {
        PushKind::Disconnection => {
            // Known at once: no publish or call waits for a deadline or for the reconnection
            // attempts before saying Redis is away. The heartbeat finds it back.
            inner.mark_down(&"the connection closed");
            inner.resubscribe.notify_one();
            return;
        }
        PushKind::SUnsubscribe => {
            // Also the confirmation of our own `unsubscribe`, which removed the reader first.
            let channel = push.data.into_iter().next().map(String::from_redis_value);
            if let Some(Ok(channel)) = channel
                && has_reader(inner, &channel)
            {
                tracing::info!(%channel, "Redis moved a channel to another master: subscribing there");
                inner.resubscribe.notify_one();
            }
            return;
        }
        _ => {}
    }
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) || push.data.len() < 2 {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(payload)) = (
        String::from_redis_value(channel),
        Vec::<u8>::from_redis_value(payload),
    ) else {
        tracing::warn!("unreadable message from Redis");
        return;
    };
    let handlers = inner.handlers.read().unwrap_or_else(|p| p.into_inner());
    if let Some(tx) = handlers.get(&channel)
        && tx.try_send((channel.clone(), payload)).is_err()
    {
        tracing::warn!(%channel, "a cross-node message was dropped: its reader is behind");
    }
}

fn has_reader(inner: &BusInner, channel: &str) -> bool {
    let handlers = inner.handlers.read().unwrap_or_else(|p| p.into_inner());
    handlers.contains_key(channel)
}

/// Keeps a cluster connection subscribed to every channel that has a reader, until the bus is
/// gone: each time it is asked (`resubscribe`), it subscribes every channel again, and retries
/// those that failed every [`HEARTBEAT`] until each is subscribed or has no reader any more.
///
/// redis-rs resubscribes by itself after a reconnection or a failover, but not always all of
/// them: after every master of the test's cluster restarted, redis-rs 1.8 subscribed 2 of the two
/// nodes' 10 channels again (cause not found); and a master drops the sharded channels of a slot
/// that moved to another master (`sunsubscribe`), which redis-rs then forgets. So the keeper is
/// asked after each lost connection to a master, each return of Redis, and each channel a
/// master dropped. A sharded subscription is idempotent and only taken by the master of its
/// slot, so subscribing again never makes a node subscribed twice.
async fn keep_subscriptions(bus: std::sync::Weak<BusInner>, resubscribe: Arc<Notify>) {
    loop {
        resubscribe.notified().await;
        let Some(inner) = bus.upgrade() else { return };
        let mut pending: Vec<String> = inner
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        drop(inner);
        while !pending.is_empty() {
            let Some(inner) = bus.upgrade() else { return };
            let bus = RedisBus { inner };
            if let Some(mut conn) = bus.made() {
                let mut failed = Vec::new();
                for channel in pending {
                    if !has_reader(&bus.inner, &channel) {
                        continue;
                    }
                    let subscribed = conn.subscribe(&channel).await;
                    bus.record(&subscribed);
                    if subscribed.is_err() {
                        failed.push(channel);
                    }
                }
                pending = failed;
            }
            drop(bus);
            if !pending.is_empty() {
                tokio::time::sleep(HEARTBEAT).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the crate's Redis users rely on: a connection they can clone, keep across tasks and
    /// give to `query_async` and `Script::invoke_async`.
    /// A reader of the recoveries that missed some learns when the first missed loss began.
    #[tokio::test]
    async fn lost_since_names_the_start_of_the_first_outage_not_seen_yet() {
        let bus = RedisBus::new("redis://127.0.0.1:1", false).unwrap();
        let epoch = std::time::UNIX_EPOCH;
        let at = |ms| epoch + Duration::from_millis(ms);
        let record = |n: u64, ms: u64| crate::lock(&bus.inner.outages).push_back((n, ms));
        record(1, 1_000);
        record(2, 5_000);
        assert_eq!(bus.lost_since(0), at(1_000));
        assert_eq!(bus.lost_since(1), at(5_000));
        for n in 3..=(2 + OUTAGES_KEPT as u64) {
            let mut outages = crate::lock(&bus.inner.outages);
            if outages.len() == OUTAGES_KEPT {
                outages.pop_front();
            }
            outages.push_back((n, n * 10_000));
        }
        // Outage 2 is forgotten: a reader that saw only the first must catch up everything.
        assert_eq!(bus.lost_since(1), epoch);
        assert_eq!(bus.lost_since(2), at(30_000));
    }

    #[test]
    fn a_connection_is_a_cloneable_shareable_redis_connection() {
        fn usable<T: redis::aio::ConnectionLike + Clone + Send + Sync + 'static>() {}
        usable::<RedisConn>();
    }

    #[test]
    fn a_cluster_that_is_down_or_unreachable_is_redis_away() {
        let down = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ClusterDown),
            "CLUSTERDOWN",
        ));
        let lost = RedisError::from((ErrorKind::ClusterConnectionNotFound, "no node"));
        let refused = RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "ERR"));
        assert!(is_unreachable(&down) && is_unreachable(&lost));
        assert!(
            !is_unreachable(&refused),
            "a refused command is not an outage"
        );
    }
}
