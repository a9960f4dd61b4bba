//! The adapter socketioxide runs with when the `redis` feature is on: in memory, or shared
//! through Redis when `Config::redis_url` is set. One type serves both, so that switching is a
//! configuration value, not a change of types in the app.
//!
//! The Redis side is socketioxide-redis over a [`Driver`] of ours built on redis-rs's
//! `ConnectionManager` (reconnects with exponential backoff, resubscribes its channels). While
//! Redis is away the driver degrades instead of failing: publishes are counted and skipped, so
//! that every node keeps serving its own clients, and a node counts itself as the only server,
//! so that requests (`fetch_sockets`, acks) answer from local sockets instead of timing out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::Either;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, FromRedisValue, PushInfo, PushKind};
use socketioxide::adapter::{Emitter, LocalAdapter};
use socketioxide::{AdapterError, BroadcastError};
use socketioxide_core::adapter::{
    BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, RemoteSocketData, Room,
    RoomParam, Spawnable,
};
use socketioxide_core::packet::Packet;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::{OnceCell, mpsc};

type RedisAdapter = CustomRedisAdapter<Emitter, RedisDriver>;

/// Interval of the liveness check that makes a node reconnect even when it only listens.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The in-memory adapter, or the Redis one.
pub enum TongxunAdapter {
    /// One node.
    Local(LocalAdapter),
    /// Several nodes sharing rooms and broadcasts through Redis. Behind an `Arc` because its
    /// `init` takes one, and keeps it for the task that answers the other nodes.
    Redis(Arc<RedisAdapter>),
}

/// What [`TongxunAdapter`] is built from.
pub enum AdapterState {
    /// In memory.
    Local,
    /// Through Redis.
    Redis(RedisAdapterCtr<RedisDriver>),
}

impl AdapterState {
    /// The state for `redis_url`, or in memory when there is none.
    ///
    /// # Errors
    /// When the URL is not a valid Redis URL.
    pub(crate) fn new(redis_url: Option<&str>) -> Result<Self, redis::RedisError> {
        let Some(url) = redis_url else {
            return Ok(AdapterState::Local);
        };
        // Pub/sub messages arrive as RESP3 pushes on the shared connection.
        let info = redis::IntoConnectionInfo::into_connection_info(url)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let driver = RedisDriver::new(redis::Client::open(info.set_redis_settings(settings))?);
        Ok(AdapterState::Redis(RedisAdapterCtr::new_with_driver(
            driver,
            RedisAdapterConfig::default(),
        )))
    }
}

/// The result of an adapter's initialization.
pub enum InitRes {
    /// Done.
    Local,
    /// To await (or spawn): subscribes the namespace's channels.
    Redis(socketioxide_redis::InitRes<RedisDriver>),
}

impl InitRes {
    /// Waits until the namespace is ready.
    pub(crate) async fn wait(self) {
        if let InitRes::Redis(init) = self
            && let Err(e) = init.await
        {
            tracing::error!("failed to set up the namespace on Redis: {e}");
        }
    }
}

impl Spawnable for InitRes {
    fn spawn(self) {
        if let InitRes::Redis(init) = self {
            init.spawn();
        }
    }
}

impl std::fmt::Debug for TongxunAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TongxunAdapter::Local(_) => "TongxunAdapter::Local",
            TongxunAdapter::Redis(_) => "TongxunAdapter::Redis",
        })
    }
}

impl std::fmt::Debug for AdapterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AdapterState::Local => "AdapterState::Local",
            AdapterState::Redis(_) => "AdapterState::Redis",
        })
    }
}

impl std::fmt::Debug for InitRes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InitRes::Local => "InitRes::Local",
            InitRes::Redis(_) => "InitRes::Redis",
        })
    }
}

type LocalAck = <LocalAdapter as CoreAdapter<Emitter>>::AckStream;
type RedisAck = <RedisAdapter as CoreAdapter<Emitter>>::AckStream;

fn adapter_error(e: impl Into<AdapterError>) -> AdapterError {
    e.into()
}

impl CoreAdapter<Emitter> for TongxunAdapter {
    type Error = AdapterError;
    type State = AdapterState;
    type AckStream = Either<LocalAck, RedisAck>;
    type InitRes = InitRes;

    fn new(state: &Self::State, local: CoreLocalAdapter<Emitter>) -> Self {
        match state {
            AdapterState::Local => TongxunAdapter::Local(LocalAdapter::new(&(), local)),
            AdapterState::Redis(ctr) => {
                TongxunAdapter::Redis(Arc::new(RedisAdapter::new(ctr, local)))
            }
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        match &*self {
            TongxunAdapter::Local(_) => {
                on_success();
                InitRes::Local
            }
            TongxunAdapter::Redis(redis) => InitRes::Redis(redis.clone().init(on_success)),
        }
    }

    async fn close(&self) -> Result<(), Self::Error> {
        match self {
            TongxunAdapter::Local(a) => a.close().await.map_err(adapter_error),
            TongxunAdapter::Redis(a) => a.close().await.map_err(adapter_error),
        }
    }

    async fn server_count(&self) -> Result<u16, Self::Error> {
        match self {
            TongxunAdapter::Local(a) => a.server_count().await.map_err(adapter_error),
            TongxunAdapter::Redis(a) => a.server_count().await.map_err(adapter_error),
        }
    }

    async fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> Result<(), BroadcastError> {
        match self {
            TongxunAdapter::Local(a) => a.broadcast(packet, opts).await,
            TongxunAdapter::Redis(a) => a.broadcast(packet, opts).await,
        }
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Self::Error> {
        match self {
            TongxunAdapter::Local(a) => a
                .broadcast_with_ack(packet, opts, timeout)
                .await
                .map(Either::Left)
                .map_err(adapter_error),
            TongxunAdapter::Redis(a) => a
                .broadcast_with_ack(packet, opts, timeout)
                .await
                .map(Either::Right)
                .map_err(adapter_error),
        }
    }

    async fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        match self {
            TongxunAdapter::Local(a) => a.add_sockets(opts, rooms).await.map_err(adapter_error),
            TongxunAdapter::Redis(a) => a.add_sockets(opts, rooms).await.map_err(adapter_error),
        }
    }

    async fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl RoomParam,
    ) -> Result<(), Self::Error> {
        match self {
            TongxunAdapter::Local(a) => a.del_sockets(opts, rooms).await.map_err(adapter_error),
            TongxunAdapter::Redis(a) => a.del_sockets(opts, rooms).await.map_err(adapter_error),
        }
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        match self {
            TongxunAdapter::Local(a) => a.disconnect_socket(opts).await,
            TongxunAdapter::Redis(a) => a.disconnect_socket(opts).await,
        }
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Self::Error> {
        match self {
            TongxunAdapter::Local(a) => a.rooms(opts).await.map_err(adapter_error),
            TongxunAdapter::Redis(a) => a.rooms(opts).await.map_err(adapter_error),
        }
    }

    async fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> Result<Vec<RemoteSocketData>, Self::Error> {
        match self {
            TongxunAdapter::Local(a) => a.fetch_sockets(opts).await.map_err(adapter_error),
            TongxunAdapter::Redis(a) => a.fetch_sockets(opts).await.map_err(adapter_error),
        }
    }

    fn get_local(&self) -> &CoreLocalAdapter<Emitter> {
        match self {
            TongxunAdapter::Local(a) => a.get_local(),
            TongxunAdapter::Redis(a) => a.get_local(),
        }
    }
}

impl DefinedAdapter for TongxunAdapter {}

/// A socketioxide-redis [`Driver`] over redis-rs's `ConnectionManager`, connected lazily and
/// kept connected: reconnects with exponential backoff, resubscribes its channels, and while
/// Redis is away lets the node serve its own clients (see the module docs).
#[derive(Clone)]
pub struct RedisDriver {
    inner: Arc<DriverInner>,
}

struct DriverInner {
    client: redis::Client,
    /// Where messages of each subscribed channel go.
    handlers: RwLock<HashMap<String, mpsc::Sender<ChanItem>>>,
    /// The connection, once made. It reconnects by itself after that.
    conn: OnceCell<ConnectionManager>,
    /// Whether the last command reached Redis, to log each change once.
    up: AtomicBool,
}

impl std::fmt::Debug for RedisDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDriver")
            .field("up", &self.inner.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The error of a [`RedisDriver`] operation.
#[derive(Debug, thiserror::Error)]
#[error("redis driver failed: {0}")]
pub struct RedisDriverError(#[from] redis::RedisError);

impl RedisDriver {
    fn new(client: redis::Client) -> Self {
        let driver = RedisDriver {
            inner: Arc::new(DriverInner {
                client,
                handlers: RwLock::default(),
                conn: OnceCell::new(),
                up: AtomicBool::new(false),
            }),
        };
        // Connect in the background, then keep checking: a node that only listens sends no
        // command that would notice a lost connection and start the reconnection.
        let weak = Arc::downgrade(&driver.inner);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(HEARTBEAT);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let driver = RedisDriver { inner };
                driver.heartbeat().await;
            }
        });
        driver
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
        self.inner
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, if it was ever made. Publishing never waits for a first connection:
    /// the heartbeat and the namespaces' setup make it.
    fn made(&self) -> Option<ConnectionManager> {
        self.inner.conn.get().cloned()
    }

    /// The connection, making it if needed; `None` while Redis cannot be reached.
    async fn conn(&self) -> Option<ConnectionManager> {
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
                    // Bounds how long a broadcast waits on a Redis that stopped answering.
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_push_sender(move |push: PushInfo| {
                        deliver(&handlers, push);
                        Ok::<(), std::convert::Infallible>(())
                    });
                let mut conn =
                    ConnectionManager::new_with_config(inner.client.clone(), config).await?;
                // Channels subscribed before the connection existed.
                let channels: Vec<String> = self.handlers().keys().cloned().collect();
                for channel in channels {
                    conn.subscribe(&channel).await?;
                }
                Ok::<_, redis::RedisError>(conn)
            })
            .await;
        match made {
            Ok(conn) => Some(conn.clone()),
            Err(e) => {
                self.mark(false, &e);
                None
            }
        }
    }

    async fn heartbeat(&self) {
        let Some(mut conn) = self.conn().await else {
            return;
        };
        match redis::cmd("PING").query_async::<()>(&mut conn).await {
            Ok(()) => self.mark_up(),
            Err(e) => self.mark(false, &e),
        }
    }

    fn mark_up(&self) {
        if !self.inner.up.swap(true, Ordering::Relaxed) {
            tracing::info!("connected to Redis: cross-node delivery is on");
        }
    }

    fn mark(&self, up: bool, error: &redis::RedisError) {
        if self.inner.up.swap(up, Ordering::Relaxed) {
            tracing::error!("lost Redis ({error}): serving local clients only until it is back");
        } else {
            tracing::debug!("Redis still unreachable: {error}");
        }
    }
}

/// Hands a pub/sub message to its channel's reader, never waiting for it.
fn deliver(inner: &DriverInner, push: PushInfo) {
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

impl Driver for RedisDriver {
    type Error = RedisDriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let Some(mut conn) = self.made() else {
            return Ok(()); // degraded: local clients are still served
        };
        match conn.publish::<_, _, ()>(&chan, val).await {
            Ok(()) => {
                self.mark_up();
                Ok(())
            }
            Err(e) => {
                self.mark(false, &e);
                Ok(())
            }
        }
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size);
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chan.clone(), tx);
        // A namespace's setup (awaited before the server accepts clients) makes the first
        // connection, which subscribes every channel registered so far.
        if let Some(mut conn) = self.conn().await
            && let Err(e) = conn.subscribe(&chan).await
        {
            // Resubscribed automatically once the connection is back.
            self.mark(false, &e);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&chan);
        if let Some(mut conn) = self.made() {
            conn.unsubscribe(&chan).await.ok();
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let Some(mut conn) = self.made() else {
            return Ok(1);
        };
        let counts: Result<Vec<(String, u16)>, _> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut conn)
            .await;
        match counts {
            Ok(counts) => Ok(counts.first().map_or(1, |(_, n)| (*n).max(1))),
            Err(e) => {
                // Alone until Redis is back: expect no answer from other nodes.
                self.mark(false, &e);
                Ok(1)
            }
        }
    }
}
