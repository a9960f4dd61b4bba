//! The shared state in Redis, on the node's bus.
//!
//! Keys (all in the hash slot `{shared}`, so that a script's keys share one slot on a cluster):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `tongxun:{shared}:node:<node>` | string, expires after [`NODE_LEASE`] | a live node's lease |
//! | `tongxun:{shared}:names:<scope>` | hash | name → `[node, owner, value]` (JSON) |
//! | `tongxun:{shared}:group:<scope>:<group>` | hash | member → `[node, value]` (JSON) |
//! | `tongxun:{shared}:log:<scope>:<name>` | list, expires [`LOG_IDLE_EXPIRY`] after its last append | `<id>\|<data>` |
//! | `tongxun:{shared}:next:<scope>` | counter | the scope's last id |

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex, Weak};
use std::time::{Duration, SystemTime};

use redis::{FromRedisValue, RedisError, Script};

use super::{
    Claim, Entry, Holder, Inner, LOG_IDLE_EXPIRY, Member, NODE_LEASE, SHARED_DEADLINE, SharedError,
};
use crate::bus::RedisBus;
use crate::lock;

/// How often a node renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(1);

const PREFIX: &str = "tongxun:{shared}:";

/// Gives a name to an owner unless an owner on a live node holds it; answers the holder's entry.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[2], '1', 'PX', ARGV[6])
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local e = cjson.decode(held)
  if (e[1] ~= ARGV[2] or e[2] ~= ARGV[3]) and redis.call('EXISTS', ARGV[5] .. e[1]) == 1 then
    return held
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ARGV[2], ARGV[3], ARGV[4]}))
return false
",
    )
});

/// Frees a name if this node's owner holds it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local e = cjson.decode(held)
  if e[1] == ARGV[2] and e[2] == ARGV[3] then
    redis.call('HDEL', KEYS[1], ARGV[1])
    return 1
  end
end
return 0
",
    )
});

/// The holder's entry of a name, if its node is alive (else the entry is dropped).
static HOLDER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return false end
local e = cjson.decode(held)
if redis.call('EXISTS', ARGV[2] .. e[1]) == 1 then return held end
redis.call('HDEL', KEYS[1], ARGV[1])
return false
",
    )
});

static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ARGV[2], ARGV[3]}))
",
    )
});

/// The members of a group whose nodes are alive, as `key, value, key, value...`; drops the others.
static MEMBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local all = redis.call('HGETALL', KEYS[1])
local live, alive = {}, {}
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  if alive[e[1]] == nil then alive[e[1]] = redis.call('EXISTS', ARGV[1] .. e[1]) == 1 end
  if alive[e[1]] then
    live[#live + 1] = all[i]
    live[#live + 1] = e[2]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
",
    )
});

/// Appends to a log under the scope's next id (`%d` keeps the id exact: Lua's own conversion of
/// numbers to strings keeps 14 digits).
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local id = redis.call('INCR', KEYS[1])
redis.call('RPUSH', KEYS[2], string.format('%d', id) .. '|' .. ARGV[2])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return id
",
    )
});

static NEXT_ID: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
",
    )
});

/// What this node holds, to write back when its lease lapsed while it lived on.
#[derive(Default)]
struct Held {
    names: HashMap<(String, String), (String, String)>,
    members: HashMap<(String, String, String), String>,
    /// Releases and removals that could not reach Redis, tried again at each renewal: until
    /// then the entry stays in Redis under this node's live lease.
    unreleased: HashSet<(String, String, String)>,
    unremoved: HashSet<(String, String, String)>,
}

/// The recoveries of a node's bus, each reported once.
pub(super) struct Recoveries {
    bus: RedisBus,
    watch: tokio::sync::watch::Receiver<u64>,
    seen: u64,
}

impl Recoveries {
    pub(super) async fn next(&mut self) -> SystemTime {
        if self.watch.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = *self.watch.borrow_and_update();
        let since = self.bus.lost_since(self.seen);
        self.seen = now;
        since
    }
}

pub(super) struct RedisState {
    bus: RedisBus,
    node: String,
    held: std::sync::Arc<Mutex<Held>>,
}

fn names_key(scope: &str) -> String {
    format!("{PREFIX}names:{scope}")
}

fn group_key(scope: &str, group: &str) -> String {
    format!("{PREFIX}group:{scope}:{group}")
}

fn lease_prefix() -> String {
    format!("{PREFIX}node:")
}

fn lease_ms() -> String {
    NODE_LEASE.as_millis().to_string()
}

impl RedisState {
    /// The state on `bus`, renewing this node's lease while `state` lives.
    pub(super) fn new(bus: RedisBus, state: Weak<Inner>) -> Self {
        let node = format!("{:016x}", bus.node());
        let redis = RedisState {
            bus,
            node,
            held: std::sync::Arc::default(),
        };
        let renewer = RedisState {
            bus: redis.bus.clone(),
            node: redis.node.clone(),
            held: redis.held.clone(),
        };
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(RENEW_EVERY);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut recoveries = renewer.bus.recoveries();
            loop {
                interval.tick().await;
                if state.strong_count() == 0 {
                    return;
                }
                // A write that failed while Redis was away is in `held`: written back too.
                let after_loss = recoveries.has_changed().unwrap_or(false);
                if renewer.renew(after_loss).await {
                    recoveries.borrow_and_update();
                }
            }
        });
        redis
    }

    fn lease_key(&self) -> String {
        format!("{}{}", lease_prefix(), self.node)
    }

    /// Renews the lease; writes back what this node holds if the lease had lapsed or Redis was
    /// lost since the last renewal. Tells whether Redis answered.
    async fn renew(&self, after_loss: bool) -> bool {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.lease_key())
            .arg("1")
            .arg("PX")
            .arg(lease_ms())
            .arg("GET");
        let Ok(previous) = self.query::<Option<String>>(&cmd).await else {
            return false;
        };
        self.retry_pending().await;
        if previous.is_some() && !after_loss {
            return true;
        }
        let (names, members) = {
            let held = lock(&self.held);
            let names: Vec<_> = held
                .names
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let members: Vec<_> = held
                .members
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (names, members)
        };
        if names.is_empty() && members.is_empty() {
            return true;
        }
        tracing::warn!(
            names = names.len(),
            members = members.len(),
            "writing back this node's shared state after a loss of Redis"
        );
        for ((scope, name), (owner, value)) in names {
            match self.claim(&scope, &name, &owner, &value).await {
                Ok(Claim::Claimed) | Err(_) => {}
                Ok(Claim::Held(other)) => {
                    tracing::warn!(%scope, %name, owner = %other.owner, "a name this node held was taken meanwhile");
                    lock(&self.held).names.remove(&(scope, name));
                }
            }
        }
        for ((scope, group, key), value) in members {
            self.add(&scope, &group, &key, &value).await.ok();
        }
        true
    }

    /// Tries again the releases and removals that failed.
    async fn retry_pending(&self) {
        let (unreleased, unremoved) = {
            let mut held = lock(&self.held);
            (
                std::mem::take(&mut held.unreleased),
                std::mem::take(&mut held.unremoved),
            )
        };
        // A failure puts it back in its set; one the owner took again meanwhile stays.
        for (scope, name, owner) in unreleased {
            let key = (scope, name);
            let again = lock(&self.held)
                .names
                .get(&key)
                .is_some_and(|(o, _)| *o == owner);
            if !again {
                self.release(&key.0, &key.1, &owner).await.ok();
            }
        }
        for member in unremoved {
            if !lock(&self.held).members.contains_key(&member) {
                self.remove(&member.0, &member.1, &member.2).await.ok();
            }
        }
    }

    pub(super) fn recoveries(&self) -> Recoveries {
        let mut watch = self.bus.recoveries();
        let seen = *watch.borrow_and_update();
        Recoveries {
            bus: self.bus.clone(),
            watch,
            seen,
        }
    }

    pub(super) async fn claim(
        &self,
        scope: &str,
        name: &str,
        owner: &str,
        value: &str,
    ) -> Result<Claim, SharedError> {
        let held: Option<String> = self
            .script(
                &CLAIM,
                &[names_key(scope), self.lease_key()],
                &[name, &self.node, owner, value, &lease_prefix(), &lease_ms()],
            )
            .await?;
        let Some(held) = held else {
            lock(&self.held).names.insert(
                (scope.to_owned(), name.to_owned()),
                (owner.to_owned(), value.to_owned()),
            );
            return Ok(Claim::Claimed);
        };
        let (_node, owner, value) = decode::<(String, String, String)>(&held)?;
        Ok(Claim::Held(Holder { owner, value }))
    }

    pub(super) async fn release(
        &self,
        scope: &str,
        name: &str,
        owner: &str,
    ) -> Result<bool, SharedError> {
        {
            let mut held = lock(&self.held);
            let key = (scope.to_owned(), name.to_owned());
            if held.names.get(&key).is_some_and(|(o, _)| o == owner) {
                held.names.remove(&key);
            }
        }
        let released = self
            .script::<i64>(&RELEASE, &[names_key(scope)], &[name, &self.node, owner])
            .await;
        if released.is_err() {
            let pending = (scope.to_owned(), name.to_owned(), owner.to_owned());
            lock(&self.held).unreleased.insert(pending);
        }
        Ok(released? == 1)
    }

    pub(super) async fn holder(
        &self,
        scope: &str,
        name: &str,
    ) -> Result<Option<Holder>, SharedError> {
        let held: Option<String> = self
            .script(&HOLDER, &[names_key(scope)], &[name, &lease_prefix()])
            .await?;
        held.map(|held| {
            let (_node, owner, value) = decode::<(String, String, String)>(&held)?;
            Ok(Holder { owner, value })
        })
        .transpose()
    }

    pub(super) async fn add(
        &self,
        scope: &str,
        group: &str,
        key: &str,
        value: &str,
    ) -> Result<(), SharedError> {
        lock(&self.held).members.insert(
            (scope.to_owned(), group.to_owned(), key.to_owned()),
            value.to_owned(),
        );
        self.script::<()>(
            &ADD,
            &[group_key(scope, group), self.lease_key()],
            &[key, &self.node, value, &lease_ms()],
        )
        .await
    }

    pub(super) async fn remove(
        &self,
        scope: &str,
        group: &str,
        key: &str,
    ) -> Result<bool, SharedError> {
        lock(&self.held)
            .members
            .remove(&(scope.to_owned(), group.to_owned(), key.to_owned()));
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(group_key(scope, group)).arg(key);
        let removed = self.query::<i64>(&cmd).await;
        if removed.is_err() {
            let pending = (scope.to_owned(), group.to_owned(), key.to_owned());
            lock(&self.held).unremoved.insert(pending);
        }
        Ok(removed? == 1)
    }

    pub(super) async fn members(
        &self,
        scope: &str,
        group: &str,
    ) -> Result<Vec<Member>, SharedError> {
        let flat: Vec<String> = self
            .script(&MEMBERS, &[group_key(scope, group)], &[&lease_prefix()])
            .await?;
        let mut members = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
            members.push(Member { key, value });
        }
        Ok(members)
    }

    pub(super) async fn append(
        &self,
        scope: &str,
        name: &str,
        data: &str,
        max_len: usize,
    ) -> Result<u64, SharedError> {
        self.script(
            &APPEND,
            &[
                format!("{PREFIX}next:{scope}"),
                format!("{PREFIX}log:{scope}:{name}"),
            ],
            &[
                &super::first_id().to_string(),
                data,
                &max_len.to_string(),
                &LOG_IDLE_EXPIRY.as_millis().to_string(),
            ],
        )
        .await
    }

    pub(super) async fn next_id(&self, scope: &str) -> Result<u64, SharedError> {
        self.script(
            &NEXT_ID,
            &[format!("{PREFIX}next:{scope}")],
            &[&super::first_id().to_string()],
        )
        .await
    }

    pub(super) async fn recent(&self, scope: &str, name: &str) -> Result<Vec<Entry>, SharedError> {
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(format!("{PREFIX}log:{scope}:{name}"))
            .arg(0)
            .arg(-1);
        let raw: Vec<String> = self.query(&cmd).await?;
        let mut entries: Vec<Entry> = raw
            .into_iter()
            .filter_map(|line| {
                let (id, data) = line.split_once('|')?;
                Some(Entry {
                    id: id.parse().ok()?,
                    data: data.to_owned(),
                })
            })
            .collect();
        // Appends of two nodes land in the order Redis ran them, which is their ids' order;
        // sorting is cheap insurance for a log written by hand.
        entries.sort_by_key(|entry| entry.id);
        Ok(entries)
    }

    pub(super) async fn forget(&self, scope: &str, name: &str) -> Result<(), SharedError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(format!("{PREFIX}log:{scope}:{name}"));
        self.query::<()>(&cmd).await
    }

    async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[&str],
    ) -> Result<T, SharedError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.bounded(async |conn| invocation.invoke_async(conn).await)
            .await
    }

    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, SharedError> {
        self.bounded(async |conn| cmd.query_async(conn).await).await
    }

    /// Runs `call` on a live connection within [`SHARED_DEADLINE`], noting on the bus whether
    /// Redis answered. The node's first connection is waited for (the bus bounds it by its
    /// connection timeout): a call right after start is not refused for a connection still
    /// being made.
    async fn bounded<T>(
        &self,
        call: impl AsyncFnOnce(&mut crate::bus::Connection) -> Result<T, RedisError>,
    ) -> Result<T, SharedError> {
        let Some(mut conn) = self.bus.live().await else {
            return Err(SharedError::Unreachable);
        };
        let result = match tokio::time::timeout(SHARED_DEADLINE, call(&mut conn)).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from((
                redis::ErrorKind::Io,
                "shared-state call timed out",
            ))),
        };
        self.bus.record(&result);
        result.map_err(|e| {
            if crate::bus::is_unreachable(&e) {
                SharedError::Unreachable
            } else {
                SharedError::Refused(e.to_string())
            }
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(entry: &str) -> Result<T, SharedError> {
    serde_json::from_str(entry)
        .map_err(|e| SharedError::Refused(format!("unreadable shared-state entry: {e}")))
}
