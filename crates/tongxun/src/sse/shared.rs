//! History shared by every node through Redis, so that a client resumes on any node.
//!
//! With [`Config::redis_url`](crate::Config::redis_url) set, a topic's history is a Redis Stream
//! whose entries have the ids `<seq>-0`: the sequence numbers of the in-memory history, so event
//! ids keep their shape. Publishing is one Lua script, atomic in Redis: it takes the next
//! sequence number, appends the entry (trimmed to [`SseConfig::history_len`]), and publishes it
//! on the hub's channel (`SPUBLISH` on a cluster, whose bus uses sharded pub/sub). Every node,
//! the publishing one included, delivers to its streams what arrives on the channel, so all nodes
//! see one order: the order of the stream. The epoch lives
//! in Redis too and changes only when Redis loses its data.
//!
//! The hub's path is a hash tag in every key (`{...}`), so that on a Redis Cluster all the keys
//! of one hub are in one hash slot, as a script's keys must be. With the hub at `/events`:
//!
//! | key | holds |
//! | --- | --- |
//! | `tongxun:sse:{/events}:epoch` | the epoch of the ids |
//! | `tongxun:sse:{/events}:order` | a counter that ranks events across topics, for replays |
//! | `tongxun:sse:{/events}:marks` | a hash: where topics created after a [`forget`](SseHub::forget) start numbering, per slot of their names' hash (at most 4,096 fields) |
//! | `tongxun:sse:{/events}:seq:<topic>` | the topic's last sequence number |
//! | `tongxun:sse:{/events}:log:<topic>` | the topic's stream: fields `o` (order) and `f` (frame) |
//!
//! (A path with a `}` in it is cut there, which still gives every key of the hub the same tag.)
//!
//! Bounds: a stream holds at most [`SseConfig::history_len`] entries and expires
//! [`SseConfig::topic_idle_timeout`] after its last publish. [`SseHub::forget`] deletes the
//! stream and the sequence counter and raises the topic's mark past every order taken so far, so
//! that a topic of the same name numbers its new events past every old position (an old id then
//! resumes with `resync`), as the in-memory history does. The sequence counter of a topic that was never forgotten does not
//! expire: it is what tells an old id from a new one once the stream expired. That is one small
//! integer key per topic name ever published and never forgotten.
//!
//! A message on the channel `tongxun:sse:{/events}` is `<epoch> <seq> <topic>\n<frame>`.
//!
//! [`SseConfig::history_len`]: super::SseConfig::history_len
//! [`SseConfig::topic_idle_timeout`]: super::SseConfig::topic_idle_timeout

use std::sync::{Arc, Weak};

use bytes::Bytes;
use redis::{RedisError, Script, Value};
use tokio::sync::oneshot;

use super::SseHub;
use super::history::{Replay, Stored, mark_slot};
use super::hub::Inner;
use crate::bus::RedisBus;

/// Messages from the channel waiting to be delivered before new ones are dropped (the streams
/// that miss one notice the gap and resume from history).
const INBOX: usize = 8192;

const APPEND: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[1])
local order = redis.call('INCR', KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 0 then
  local mark = redis.call('HGET', KEYS[5], ARGV[7])
  if mark then
    redis.call('SET', KEYS[3], mark)
  end
end
local seq = redis.call('INCR', KEYS[3])
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[2], seq .. '-0', 'o', order, 'f', ARGV[5])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
redis.call(ARGV[8], ARGV[3], epoch .. ' ' .. seq .. ' ' .. ARGV[4] .. '\n' .. ARGV[5])
return {epoch, seq}
";

const READ: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[1])
local out = {epoch}
local resume = ARGV[2] == epoch
for i = 1, (#KEYS - 2) / 2 do
  local mark = redis.call('HGET', KEYS[2], ARGV[2 + 2 * i]) or '0'
  local last = tonumber(redis.call('GET', KEYS[2 * i + 1]) or mark)
  local after = ARGV[1 + 2 * i]
  out[#out + 1] = last
  if resume and after ~= '' and tonumber(after) < last then
    local entries = redis.call('XRANGE', KEYS[2 * i + 2], '(' .. after .. '-0', '+')
    out[#out + 1] = #entries
    for _, entry in ipairs(entries) do
      out[#out + 1] = entry[1]
      out[#out + 1] = entry[2][2]
      out[#out + 1] = entry[2][4]
    end
  else
    out[#out + 1] = 0
  end
end
return out
";

/// Raises the topic's mark past every order taken so far, then deletes its counter and stream;
/// returns how many of the two existed.
const FORGET: &str = r"
local order = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], order + 1)
return redis.call('DEL', KEYS[3], KEYS[4])
";

/// Longest expiry given to a stream, whatever the idle timeout: about ten years.
const MAX_EXPIRY_MS: u128 = 10 * 365 * 24 * 3600 * 1000;

/// A hub's history in Redis.
pub(crate) struct SharedHistory {
    bus: RedisBus,
    channel: String,
    /// `tongxun:sse:{<path>}:`
    prefix: String,
    history_len: usize,
    /// How long a stream lives after its last publish, in milliseconds (at least 1).
    expiry_ms: u64,
    append: Script,
    read: Script,
    forget: Script,
}

/// What [`SharedHistory::read`] found for one topic.
pub(crate) struct TopicRead {
    /// The topic's last sequence number.
    pub(crate) last: u64,
    /// The events after the position asked for, when one was.
    pub(crate) replay: Option<Replay>,
}

impl SseHub {
    /// Keeps this hub's history in Redis and delivers what any node publishes. The receiver
    /// fires once this node listens on the hub's channel. A hub is shared through one bus at
    /// most; later calls are ignored.
    pub(crate) fn share_through(&self, bus: &RedisBus) -> oneshot::Receiver<()> {
        let (ready, listening) = oneshot::channel();
        let inner = &self.inner;
        let path = &inner.config.path;
        let shared = SharedHistory {
            bus: bus.clone(),
            channel: channel(path),
            prefix: format!("{}:", channel(path)),
            history_len: inner.config.history_len,
            expiry_ms: expiry_ms(inner.config.topic_idle_timeout),
            append: Script::new(APPEND),
            read: Script::new(READ),
            forget: Script::new(FORGET),
        };
        let channel = shared.channel.clone();
        if inner.shared.set(shared).is_err() {
            tracing::warn!(%path, "sse hub already shared through Redis");
            return listening;
        }
        let bus = bus.clone();
        let weak = Arc::downgrade(inner);
        tokio::spawn(async move {
            let mut recoveries = bus.recoveries();
            let mut incoming = bus.subscribe(channel, INBOX).await;
            ready.send(()).ok();
            let mut epoch: Arc<str> = "".into();
            loop {
                tokio::select! {
                    message = incoming.recv() => {
                        let Some((_, payload)) = message else { return };
                        if !receive(&weak, &mut epoch, payload) {
                            return;
                        }
                    }
                    Ok(()) = recoveries.changed() => {
                        // Events published while this node was cut off never arrived: let every
                        // stream resume from history.
                        let Some(inner) = weak.upgrade() else { return };
                        inner.topics.mark_tap_lost();
                        SseHub { inner }.disconnect_all();
                    }
                }
            }
        });
        listening
    }
}

/// The channel of the hub at `path`, and the start of its keys: the path is their hash tag.
fn channel(path: &str) -> String {
    format!("tongxun:sse:{{{path}}}")
}

/// The stream expiry for this idle timeout, in milliseconds: at least 1, at most
/// [`MAX_EXPIRY_MS`].
fn expiry_ms(idle: std::time::Duration) -> u64 {
    // Both bounds fit in a u64.
    idle.as_millis().clamp(1, MAX_EXPIRY_MS) as u64
}

/// Delivers a message from the channel; `false` once the hub is gone. `epoch` caches the last
/// epoch seen, so that each event does not allocate its own.
fn receive(hub: &Weak<Inner>, epoch: &mut Arc<str>, payload: Vec<u8>) -> bool {
    let Some(hub) = hub.upgrade() else {
        return false;
    };
    let payload = Bytes::from(payload);
    let Some((message_epoch, seq, topic, frame)) = parse_message(&payload) else {
        tracing::warn!("unreadable sse event from Redis");
        return true;
    };
    if **epoch != *message_epoch {
        *epoch = message_epoch.into();
    }
    let frame = payload.slice_ref(frame);
    hub.topics.deliver_shared(epoch.clone(), topic, seq, frame);
    true
}

/// Splits `<epoch> <seq> <topic>\n<frame>`.
fn parse_message(payload: &[u8]) -> Option<(&str, u64, &str, &[u8])> {
    let newline = payload.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&payload[..newline]).ok()?;
    let mut parts = header.splitn(3, ' ');
    let epoch = parts.next()?;
    let seq = parts.next()?.parse().ok()?;
    let topic = parts.next()?;
    Some((epoch, seq, topic, &payload[newline + 1..]))
}

impl SharedHistory {
    /// Records an event and publishes it to every node; returns its epoch and sequence number.
    pub(crate) async fn append(
        &self,
        topic: &str,
        frame: &[u8],
        candidate_epoch: &str,
    ) -> Result<(String, u64), RedisError> {
        let Some(mut conn) = self.bus.live().await else {
            let result = Err(unreachable());
            self.bus.record(&result);
            return result;
        };
        let mut invocation = self.append.prepare_invoke();
        invocation
            .key(format!("{}epoch", self.prefix))
            .key(format!("{}order", self.prefix))
            .key(format!("{}seq:{topic}", self.prefix))
            .key(format!("{}log:{topic}", self.prefix))
            .key(format!("{}marks", self.prefix))
            .arg(candidate_epoch)
            .arg(self.history_len)
            .arg(&self.channel)
            .arg(topic)
            .arg(frame)
            .arg(self.expiry_ms)
            .arg(mark_slot(topic))
            // PUBLISH, or SPUBLISH on a cluster: the channel has the slot of the keys.
            .arg(conn.publish_command());
        let result = invocation.invoke_async(&mut conn).await;
        self.bus.record(&result);
        result
    }

    /// The epoch, and for each topic its last sequence number and, when `epoch` is the current
    /// one and a position is given, the events after that position.
    pub(crate) async fn read(
        &self,
        topics: &[(&str, Option<u64>)],
        epoch: Option<&str>,
        candidate_epoch: &str,
    ) -> Result<(Arc<str>, Vec<TopicRead>), RedisError> {
        let mut invocation = self.read.prepare_invoke();
        invocation
            .key(format!("{}epoch", self.prefix))
            .key(format!("{}marks", self.prefix))
            .arg(candidate_epoch)
            .arg(epoch.unwrap_or_default());
        for (topic, after) in topics {
            invocation
                .key(format!("{}seq:{topic}", self.prefix))
                .key(format!("{}log:{topic}", self.prefix))
                .arg(after.map(|seq| seq.to_string()).unwrap_or_default())
                .arg(mark_slot(topic));
        }
        let result = match self.bus.live().await {
            Some(mut conn) => invocation.invoke_async::<Vec<Value>>(&mut conn).await,
            None => Err(unreachable()),
        };
        self.bus.record(&result);
        parse_read(result?, topics).ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "unexpected answer to the sse history read",
            ))
        })
    }
}

impl SharedHistory {
    /// Deletes the topic's stream and counter; whether there was any.
    pub(crate) async fn forget(&self, topic: &str) -> Result<bool, RedisError> {
        let mut invocation = self.forget.prepare_invoke();
        invocation
            .key(format!("{}order", self.prefix))
            .key(format!("{}marks", self.prefix))
            .key(format!("{}seq:{topic}", self.prefix))
            .key(format!("{}log:{topic}", self.prefix))
            .arg(mark_slot(topic));
        let result = match self.bus.live().await {
            Some(mut conn) => invocation.invoke_async::<u64>(&mut conn).await,
            None => Err(unreachable()),
        };
        self.bus.record(&result);
        Ok(result? > 0)
    }
}

fn unreachable() -> RedisError {
    RedisError::from((redis::ErrorKind::Io, "not connected to Redis"))
}

/// Reads the answer of the read script: the epoch, then per topic its last sequence number, a
/// count, and that many (id, order, frame) triples.
fn parse_read(
    values: Vec<Value>,
    topics: &[(&str, Option<u64>)],
) -> Option<(Arc<str>, Vec<TopicRead>)> {
    let mut values = values.into_iter();
    let epoch: Arc<str> = redis::from_redis_value::<String>(values.next()?)
        .ok()?
        .into();
    let mut reads = Vec::with_capacity(topics.len());
    for (topic, after) in topics {
        let last: u64 = redis::from_redis_value(values.next()?).ok()?;
        let count: usize = redis::from_redis_value(values.next()?).ok()?;
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            let id: String = redis::from_redis_value(values.next()?).ok()?;
            let order: u64 = redis::from_redis_value(values.next()?).ok()?;
            let frame: Vec<u8> = redis::from_redis_value(values.next()?).ok()?;
            let seq = id.strip_suffix("-0")?.parse().ok()?;
            events.push((seq, order, Bytes::from(frame)));
        }
        let replay = after.map(|after| replay_after(&epoch, topic, after, last, events));
        reads.push(TopicRead { last, replay });
    }
    Some((epoch, reads))
}

/// What the events read after position `after` mean for a stream resuming there.
fn replay_after(
    epoch: &Arc<str>,
    topic: &str,
    after: u64,
    last: u64,
    events: Vec<(u64, u64, Bytes)>,
) -> Replay {
    if after > last {
        return Replay::Ahead;
    }
    // Every sequence number up to `last` was appended; trimming only removes the oldest.
    let missing = last - after;
    if events.len() as u64 != missing {
        return Replay::Behind;
    }
    let topic: Arc<str> = topic.into();
    Replay::Events(
        events
            .into_iter()
            .map(|(seq, order, frame)| {
                Arc::new(Stored {
                    epoch: epoch.clone(),
                    topic: topic.clone(),
                    seq,
                    order,
                    frame,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_the_channel_of_a_hub_share_one_cluster_slot() {
        use redis::cluster_routing::Slot;
        assert_eq!(channel("/events"), "tongxun:sse:{/events}");
        let mut slots = std::collections::HashSet::new();
        for path in ["/events", "/a}b", "/{x}", "/sse/"] {
            let channel = channel(path);
            let prefix = format!("{channel}:");
            let keys = ["epoch", "order", "marks", "seq:chat:{room}", "log:}"];
            let slot = Slot::for_key(&channel);
            for key in keys {
                assert_eq!(
                    Slot::for_key(format!("{prefix}{key}")),
                    slot,
                    "{path} {key}"
                );
            }
            slots.insert(format!("{slot:?}"));
        }
        assert_eq!(slots.len(), 4, "each path its own slot here: {slots:?}");
    }

    #[test]
    fn channel_messages_split_into_their_parts() {
        let (epoch, seq, topic, frame) =
            parse_message(b"e1 17 chat:general\nevent: x\ndata: a b\n\n").unwrap();
        assert_eq!((epoch, seq, topic), ("e1", 17, "chat:general"));
        assert_eq!(frame, b"event: x\ndata: a b\n\n");
        for bad in [&b""[..], b"e1 17 t", b"e1 x t\n", b"e1 17\n", b"\xff 1 t\n"] {
            assert!(parse_message(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn replays_only_an_unbroken_run_of_events() {
        let events = |seqs: std::ops::RangeInclusive<u64>| {
            seqs.map(|seq| (seq, seq, Bytes::new())).collect::<Vec<_>>()
        };
        let seqs = |replay: Replay| match replay {
            Replay::Events(events) => events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            other => panic!("expected events, got {other:?}"),
        };
        let epoch: Arc<str> = "e1".into();
        let replay = |after, last, events| replay_after(&epoch, "t", after, last, events);
        assert_eq!(seqs(replay(5, 5, Vec::new())), Vec::<u64>::new());
        assert_eq!(seqs(replay(2, 5, events(3..=5))), vec![3, 4, 5]);
        assert!(matches!(replay(1, 5, events(3..=5)), Replay::Behind));
        assert!(matches!(replay(6, 5, Vec::new()), Replay::Ahead));
    }
}
