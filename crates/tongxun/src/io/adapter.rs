//! The adapter socketioxide runs with when the `redis` feature is on: in memory, or shared
//! through Redis when `Config::redis_url` is set. One type serves both, so that switching is a
//! configuration value, not a change of types in the app.
//!
//! The Redis side is socketioxide-redis over a [`Driver`] of ours on the node's [`RedisBus`]
//! (reconnects with exponential backoff, resubscribes its channels). While Redis is away the
//! driver degrades instead of failing: publishes are skipped, so that every node keeps serving
//! its own clients, and a node counts itself as the only server, so that requests
//! (`fetch_sockets`, acks) answer from local sockets instead of timing out.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use socketioxide::adapter::{Emitter, LocalAdapter};
use socketioxide::{AdapterError, BroadcastError};
use socketioxide_core::adapter::{
    BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, RemoteSocketData, Room,
    RoomParam, Spawnable,
};
use socketioxide_core::packet::Packet;
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::bus::RedisBus;

type RedisAdapter = CustomRedisAdapter<Emitter, RedisDriver>;

tokio::task_local! {
    /// Whether every publish of the broadcast being sent reached Redis.
    static SHARED: std::cell::Cell<bool>;
}

/// Runs `broadcast` (a socketioxide emit, which publishes inline), telling whether what it
/// published reached Redis: `false` when the other nodes could not be told.
pub(crate) async fn shared_with_others<F: std::future::Future>(broadcast: F) -> (F::Output, bool) {
    let shared = std::cell::Cell::new(true);
    SHARED
        .scope(shared, async move {
            let output = broadcast.await;
            (output, SHARED.with(std::cell::Cell::get))
        })
        .await
}

/// The in-memory adapter, or the Redis one.
// One per namespace, and the local one is the common case: boxing it would cost every
// broadcast an indirection to save a few hundred bytes per namespace.
#[allow(clippy::large_enum_variant)]
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
    /// The state for the node's bus, or in memory when there is none.
    pub(crate) fn new(bus: Option<&RedisBus>) -> Self {
        match bus {
            None => AdapterState::Local,
            Some(bus) => AdapterState::Redis(RedisAdapterCtr::new_with_driver(
                RedisDriver { bus: bus.clone() },
                RedisAdapterConfig::default(),
            )),
        }
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

/// A socketioxide-redis [`Driver`] over the node's [`RedisBus`]: while Redis is away it lets
/// the node serve its own clients (see the module docs).
#[derive(Clone, Debug)]
pub struct RedisDriver {
    bus: RedisBus,
}

/// The error of a [`RedisDriver`] operation. The driver degrades rather than failing, so it is
/// never returned today; socketioxide-redis requires the type.
#[derive(Debug, thiserror::Error)]
#[error("redis driver failed: {0}")]
pub struct RedisDriverError(#[from] redis::RedisError);

impl Driver for RedisDriver {
    type Error = RedisDriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        // Degraded when it fails: local clients are still served (an error here would stop
        // socketioxide-redis before its local delivery), and the broadcast that asked is told.
        if !self.bus.publish(&chan, &val).await {
            SHARED.try_with(|shared| shared.set(false)).ok();
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        Ok(MessageStream::new(self.bus.subscribe(chan, size).await))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.bus.unsubscribe(&chan).await;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        Ok(self.bus.subscribers(chan).await)
    }
}
