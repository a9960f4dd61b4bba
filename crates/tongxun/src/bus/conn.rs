//! The bus's connection: one Redis or a Redis Cluster, behind one type that redis-rs's commands
//! and scripts take.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// A connection to Redis, or to a Redis Cluster: what [`RedisBus::live`](super::RedisBus::live) and
/// [`RedisBus::conn`](super::RedisBus::conn) give. Commands and scripts go through it as through any redis-rs
/// connection (`redis::cmd(..).query_async(&mut conn)`, `Script::invoke_async(&mut conn)`); on a
/// cluster each goes to the master of its key's slot, so the keys of one command, script or
/// `MULTI` must share a slot (a hash tag: `{...}`); a pipeline goes to the master of its first
/// key. Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub(crate) enum RedisConn {
    /// One Redis, through a connection that reconnects by itself.
    Single(ConnectionManager),
    /// A Redis Cluster: a connection to each master, which follows the cluster's topology.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisConn {
    /// The command that publishes on the bus's channels: `PUBLISH` on one Redis, `SPUBLISH`
    /// (sharded pub/sub) on a cluster. A script publishing on a cluster must have its channel in
    /// the slot of its keys.
    pub(crate) fn publish_command(&self) -> &'static str {
        match self {
            RedisConn::Single(_) => "PUBLISH",
            RedisConn::Cluster(_) => "SPUBLISH",
        }
    }

    /// Subscribes to `channel` (sharded on a cluster); the connection resubscribes by itself
    /// after a reconnection or a failover (on a cluster with [`keep_subscriptions`](super::keep_subscriptions)'s help).
    pub(super) async fn subscribe(&mut self, channel: &str) -> Result<(), RedisError> {
        match self {
            RedisConn::Single(conn) => conn.subscribe(channel).await,
            RedisConn::Cluster(conn) => conn.ssubscribe(channel).await,
        }
    }

    pub(super) async fn unsubscribe(&mut self, channel: &str) -> Result<(), RedisError> {
        match self {
            RedisConn::Single(conn) => conn.unsubscribe(channel).await,
            RedisConn::Cluster(conn) => conn.sunsubscribe(channel).await,
        }
    }
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConn::Single(_) => "RedisConn::Single",
            RedisConn::Cluster(_) => "RedisConn::Cluster",
        })
    }
}
