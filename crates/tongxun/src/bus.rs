//! The Redis bus: the one connection a node keeps to Redis when [`Config::redis_url`] is set,
//! shared by Socket.IO's adapter, the WebSocket hub and the SSE hub.
//!
//! It is redis-rs's `ConnectionManager` speaking RESP3, so that pub/sub messages arrive as pushes
//! on the same connection as commands. The manager reconnects with exponential backoff and
//! resubscribes the channels; a heartbeat makes a node that only listens notice a lost
//! connection too. Whether Redis is reachable is logged once per change, and every return after a
//! loss is announced ([`RedisBus::recoveries`]) so that the SSE hub can make its streams resume
//! from history. Nothing is ever queued for a Redis that is away: each user decides what a failed
//! command means (the Socket.IO adapter and the WebSocket hub keep delivering locally, the SSE hub
//! refuses to publish what it could not record).
//!
//! [`Config::redis_url`]: crate::Config::redis_url

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, FromRedisValue, PushInfo, PushKind, RedisError};
use tokio::sync::{OnceCell, mpsc, watch};

/// Interval of the liveness check that makes a node reconnect even when it only listens.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a publish may take before Redis is taken for away: a publish caught in the
/// connection's reconnection attempts would otherwise wait for them (hundreds of
/// milliseconds), and the acknowledgement that waits for it with them. A Redis on the same
/// network answers in about a millisecond; a slower one is reported as away, which loses no
/// honesty: the broadcast says it reached this node only.
pub(crate) const PUBLISH_DEADLINE: Duration = Duration::from_millis(40);

/// A connection to Redis, for commands and scripts.
pub(crate) type Connection = ConnectionManager;

/// A pub/sub message: its channel and its payload.
pub(crate) type Message = (String, Vec<u8>);

/// A node's connection to Redis. Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub(crate) struct RedisBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    client: redis::Client,
    /// Where messages of each subscribed channel go.
    handlers: RwLock<HashMap<String, mpsc::Sender<Message>>>,
    /// The connection, once made. It reconnects by itself after that.
    conn: OnceCell<ConnectionManager>,
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
    /// A bus for `url`, connecting in the background.
    ///
    /// # Errors
    /// When the URL is not a valid Redis URL.
    pub(crate) fn new(url: &str) -> Result<Self, RedisError> {
        let info = redis::IntoConnectionInfo::into_connection_info(url)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let bus = RedisBus {
            inner: Arc::new(BusInner {
                client,
                handlers: RwLock::default(),
                conn: OnceCell::new(),
                up: AtomicBool::new(false),
                reached: AtomicBool::new(false),
                recoveries: watch::Sender::new(0),
                node: crate::random_u64(),
                publish_failures: AtomicU64::new(0),
                lost_at_ms: AtomicU64::new(0),
            }),
        };
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

    /// When Redis was last found lost (the epoch before it ever was).
    pub(crate) fn lost_at(&self) -> std::time::SystemTime {
        let ms = self.inner.lost_at_ms.load(Ordering::Relaxed);
        std::time::UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, mpsc::Sender<Message>>> {
        self.inner
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, if it was ever made. Publishing never waits for a first connection: the
    /// heartbeat and the namespaces' setup make it.
    fn made(&self) -> Option<ConnectionManager> {
        self.inner.conn.get().cloned()
    }

    /// The connection, making it if needed; `None` while Redis cannot be reached.
    pub(crate) async fn conn(&self) -> Option<ConnectionManager> {
        let inner = &self.inner;
        let made = inner
            .conn
            .get_or_try_init(|| async {
                let handlers = self.inner.clone();
                let config = ConnectionManagerConfig::new()
                    .set_automatic_resubscription()
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2))
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    // Bounds how long a caller waits on a Redis that stopped answering.
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_push_sender(move |push: PushInfo| {
                        dispatch(&handlers, push);
                        Ok::<(), std::convert::Infallible>(())
                    });
                let mut conn =
                    ConnectionManager::new_with_config(inner.client.clone(), config).await?;
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
            inner.recoveries.send_modify(|n| *n += 1);
        } else {
            tracing::info!("connected to Redis: cross-node delivery is on");
        }
    }

    fn mark_down(&self, error: &RedisError) {
        if self.inner.up.swap(false, Ordering::Relaxed) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            self.inner.lost_at_ms.store(now, Ordering::Relaxed);
            tracing::error!("lost Redis ({error}): serving local clients only until it is back");
        } else {
            tracing::debug!("Redis still unreachable: {error}");
        }
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
        let sent = match tokio::time::timeout(
            PUBLISH_DEADLINE,
            conn.publish::<_, _, ()>(channel, payload),
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
    pub(crate) async fn subscribers(&self, channel: &str) -> u16 {
        let Some(mut conn) = self.made() else {
            return 1;
        };
        let counts: Result<Vec<(String, u16)>, _> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await;
        self.record(&counts);
        counts.map_or(1, |counts| counts.first().map_or(1, |(_, n)| (*n).max(1)))
    }
}

/// Whether an error means Redis could not be reached, rather than that it refused a command.
pub(crate) fn is_unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

/// Hands a pub/sub message to its channel's reader, never waiting for it.
fn dispatch(inner: &BusInner, push: PushInfo) {
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
