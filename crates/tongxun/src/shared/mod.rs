//! State the nodes of a cluster share: names that one owner holds at a time, groups of members,
//! and bounded logs whose ids increase across every node.
//!
//! One [`SharedState`] serves both cases, so that an app is written once: in memory on a single
//! node, and in Redis once the server was given it ([`ServerBuilder::shared_state`]) with
//! [`Config::redis_url`] set, on the node's one Redis connection. What a node holds (its names
//! and its group entries) lives as long as the node does: each node keeps a lease in Redis, and
//! an entry whose node's lease lapsed ([`NODE_LEASE`] after it stopped renewing it, when it was
//! killed or lost Redis) counts as gone and is cleaned up by whoever reads it. A node whose lease
//! lapsed while it lived on (Redis restarted empty) writes back what it holds.
//!
//! Every call is one round trip to Redis, bounded by a deadline; while Redis is away each fails
//! at once with [`SharedError::Unreachable`], so that the app decides what to do without a user
//! waiting on a timeout.
//!
//! # Examples
//! A nickname unique across the cluster, and the members of a room:
//! ```
//! use tongxun::shared::{Claim, SharedState};
//!
//! # async fn run() -> Result<(), tongxun::shared::SharedError> {
//! let shared = SharedState::new();
//! let nicks = shared.names("nicks");
//! assert_eq!(nicks.claim("ada", "socket-1", "Ada").await?, Claim::Claimed);
//! assert!(matches!(nicks.claim("ada", "socket-2", "ADA").await?, Claim::Held(h) if h.value == "Ada"));
//!
//! let rooms = shared.groups("rooms");
//! rooms.add("general", "socket-1", "Ada").await?;
//! assert_eq!(rooms.members("general").await?[0].value, "Ada");
//!
//! let history = shared.log("history", 50);
//! let id = history.append("general", "hello").await?;
//! assert_eq!(history.recent("general").await?[0].id, id);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```
//!
//! [`ServerBuilder::shared_state`]: crate::ServerBuilder::shared_state
//! [`Config::redis_url`]: crate::Config::redis_url

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memory::Memory;

/// How long an entry outlives the node that wrote it, when the node stops renewing its lease.
pub const NODE_LEASE: Duration = Duration::from_secs(3);

/// How long a call waits for Redis before it fails with [`SharedError::Unreachable`] (and the
/// node takes Redis for away until its heartbeat reaches it again). A Redis that was killed or
/// refuses connections fails a call at once; this bounds the wait on one that stopped
/// answering. It is well above a loaded machine's worst round trip (a script's first run is
/// two, to load it), so that a busy moment is not taken for a lost Redis.
pub const SHARED_DEADLINE: Duration = Duration::from_millis(250);

/// State shared by the nodes. Cloning is cheap: clones share it.
#[derive(Clone, Default)]
pub struct SharedState {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    memory: Memory,
    #[cfg(feature = "redis")]
    redis: std::sync::OnceLock<redis::RedisState>,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("in_redis", &self.in_redis())
            .finish_non_exhaustive()
    }
}

/// Why a call on the shared state failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedError {
    /// Redis could not be reached in time: nothing was read or changed.
    #[error("the shared state is unreachable: Redis is away")]
    Unreachable,
    /// Redis answered with an error.
    #[error("Redis refused a shared-state command: {0}")]
    Refused(String),
}

/// What [`Names::claim`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The name is the caller's now (or already was).
    Claimed,
    /// Another owner holds it.
    Held(Holder),
}

/// Who holds a name, and the value they gave with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The owner that claimed it (an app's id, such as a socket id).
    pub owner: String,
    /// What the owner stored with it.
    pub value: String,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's key in the group (such as a socket id).
    pub key: String,
    /// What was stored with it.
    pub value: String,
}

/// An entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id: larger than every id the log gave before, on any node, and than the ids of
    /// before a restart of Redis that lost its data.
    pub id: u64,
    /// What was appended.
    pub data: String,
}

impl SharedState {
    /// A shared state, in memory until a server connects it to Redis.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it lives in Redis.
    pub fn in_redis(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.inner.redis.get().is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// The names of `scope`: each held by one owner at a time.
    pub fn names(&self, scope: &str) -> Names {
        Names {
            state: self.clone(),
            scope: scope.into(),
        }
    }

    /// The groups of `scope`: sets of members, each with a value.
    pub fn groups(&self, scope: &str) -> Groups {
        Groups {
            state: self.clone(),
            scope: scope.into(),
        }
    }

    /// The logs of `scope`, each keeping its last `max_len` entries (in Redis, until
    /// [`LOG_IDLE_EXPIRY`] after its last append).
    pub fn log(&self, scope: &str, max_len: usize) -> Log {
        Log {
            state: self.clone(),
            scope: scope.into(),
            max_len: max_len.max(1),
        }
    }

    /// The returns of Redis after a loss, from now on: whatever the other nodes published
    /// meanwhile may not have reached this node, and a log holds what to catch up.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn catch_up(shared: tongxun::shared::SharedState) {
    /// let mut recoveries = shared.recoveries();
    /// loop {
    ///     let since = recoveries.next().await;
    ///     // Send this node's clients what was logged since `since`.
    /// }
    /// # }
    /// ```
    pub fn recoveries(&self) -> Recoveries {
        Recoveries {
            #[cfg(feature = "redis")]
            redis: self.inner.redis.get().map(redis::RedisState::recoveries),
        }
    }

    /// Moves the state into Redis, on `bus`.
    #[cfg(feature = "redis")]
    pub(crate) fn share_through(&self, bus: &crate::bus::RedisBus) {
        let redis = redis::RedisState::new(bus.clone(), Arc::downgrade(&self.inner));
        if self.inner.redis.set(redis).is_err() {
            tracing::warn!("a shared state was given to two servers: the first one keeps it");
        }
    }

    #[cfg(feature = "redis")]
    fn redis(&self) -> Option<&redis::RedisState> {
        self.inner.redis.get()
    }
}

/// The returns of Redis after a loss ([`SharedState::recoveries`]). None is missed: two that
/// come before [`Recoveries::next`] is called again are reported as one, since the first
/// loss.
pub struct Recoveries {
    #[cfg(feature = "redis")]
    redis: Option<redis::Recoveries>,
}

impl std::fmt::Debug for Recoveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recoveries").finish_non_exhaustive()
    }
}

impl Recoveries {
    /// Waits until Redis is reached again after a loss; tells when the loss began (a little
    /// after it did: a loss is noticed at once when the connection closes, within a second
    /// otherwise). Never returns in memory.
    pub async fn next(&mut self) -> SystemTime {
        #[cfg(feature = "redis")]
        if let Some(redis) = &mut self.redis {
            return redis.next().await;
        }
        std::future::pending().await
    }
}

/// How long a log outlives its last append.
pub const LOG_IDLE_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Names held by one owner at a time, such as nicknames. Entries are released by their owner or
/// end with its node.
#[derive(Debug, Clone)]
pub struct Names {
    state: SharedState,
    scope: Arc<str>,
}

impl Names {
    /// Gives `name` to `owner`, with `value`, unless another owner holds it.
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn claim(&self, name: &str, owner: &str, value: &str) -> Result<Claim, SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.claim(&self.scope, name, owner, value).await;
        }
        Ok(self
            .state
            .inner
            .memory
            .claim(&self.scope, name, owner, value))
    }

    /// Frees `name` if `owner` holds it; tells whether it did.
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn release(&self, name: &str, owner: &str) -> Result<bool, SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.release(&self.scope, name, owner).await;
        }
        Ok(self.state.inner.memory.release(&self.scope, name, owner))
    }

    /// Who holds `name`.
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn holder(&self, name: &str) -> Result<Option<Holder>, SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.holder(&self.scope, name).await;
        }
        Ok(self.state.inner.memory.holder(&self.scope, name))
    }
}

/// Groups of members, such as the users of each chat room. Members are removed by the app or
/// end with their node.
#[derive(Debug, Clone)]
pub struct Groups {
    state: SharedState,
    scope: Arc<str>,
}

impl Groups {
    /// Puts `key` in `group` with `value` (replacing its value if it was in it).
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn add(&self, group: &str, key: &str, value: &str) -> Result<(), SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.add(&self.scope, group, key, value).await;
        }
        self.state.inner.memory.add(&self.scope, group, key, value);
        Ok(())
    }

    /// Takes `key` out of `group`; tells whether it was in it.
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn remove(&self, group: &str, key: &str) -> Result<bool, SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.remove(&self.scope, group, key).await;
        }
        Ok(self.state.inner.memory.remove(&self.scope, group, key))
    }

    /// The members of `group` on every live node, in no particular order.
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn members(&self, group: &str) -> Result<Vec<Member>, SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.members(&self.scope, group).await;
        }
        Ok(self.state.inner.memory.members(&self.scope, group))
    }
}

/// Logs, such as the history of each chat room: each keeps its last entries, whose ids increase
/// across the scope's logs and every node.
#[derive(Debug, Clone)]
pub struct Log {
    state: SharedState,
    scope: Arc<str>,
    max_len: usize,
}

impl Log {
    /// Appends `data` to log `name`, dropping its oldest entries past the length; returns the
    /// entry's id.
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses: nothing was appended.
    pub async fn append(&self, name: &str, data: &str) -> Result<u64, SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.append(&self.scope, name, data, self.max_len).await;
        }
        Ok(self
            .state
            .inner
            .memory
            .append(&self.scope, name, data, self.max_len))
    }

    /// A new id of the scope, for what is not kept in a log (such as a private message).
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn next_id(&self) -> Result<u64, SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.next_id(&self.scope).await;
        }
        Ok(self.state.inner.memory.next_id(&self.scope))
    }

    /// The entries of log `name`, oldest first.
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn recent(&self, name: &str) -> Result<Vec<Entry>, SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.recent(&self.scope, name).await;
        }
        Ok(self.state.inner.memory.recent(&self.scope, name))
    }

    /// Deletes log `name`.
    ///
    /// # Errors
    /// [`SharedError`] when Redis cannot be reached or refuses.
    pub async fn forget(&self, name: &str) -> Result<(), SharedError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = self.state.redis() {
            return redis.forget(&self.scope, name).await;
        }
        self.state.inner.memory.forget(&self.scope, name);
        Ok(())
    }
}

/// The first id of a log scope that has none: the time in milliseconds, times 1,000, so that a
/// scope started again (Redis lost its data) gives larger ids than before, as long as it gave
/// fewer than a thousand a millisecond on average. Stays below 2^53 (exact in JavaScript) until
/// the year 2255.
fn first_id() -> u64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 1000)
    });
    ms.saturating_mul(1000)
}
