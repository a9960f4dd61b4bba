//! Configuration of the SSE hub, with its named defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

/// Default path of the SSE endpoint: `/events`.
pub const DEFAULT_PATH: &str = "/events";
/// Default reconnection delay sent to clients in the `retry` field: 3 s, the delay browsers
/// use when a server sends none.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);
/// Default interval between two keep-alive comments on an idle stream: 15 s, well below the
/// 30 to 60 s after which proxies commonly drop idle connections.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Default number of events each topic keeps for resuming clients: 1,000.
pub const DEFAULT_HISTORY_LEN: usize = 1_000;
/// Default number of events that may wait for one subscriber before it counts as too slow and
/// is disconnected: 256.
pub const DEFAULT_SUBSCRIBER_QUEUE: usize = 256;
/// Default largest number of topics one stream may subscribe to: 32.
pub const DEFAULT_MAX_TOPICS: usize = 32;
/// Default largest size of one event's data, in bytes: 64 KiB.
pub const DEFAULT_MAX_DATA_LEN: usize = 64 * 1024;
/// Default largest number of live topics per hub (topics with history or subscribers): 10,000.
pub const DEFAULT_MAX_LIVE_TOPICS: usize = 10_000;
/// Default largest number of bytes all topics' history may hold together: 64 MiB.
pub const DEFAULT_MAX_HISTORY_BYTES: usize = 64 * 1024 * 1024;
/// Default time after which a topic with no subscribers and no publish is forgotten with its
/// history: 10 minutes, far longer than a client takes to reconnect after a network blip.
pub const DEFAULT_TOPIC_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default bearer token for publishing over HTTP: none, so `POST` is refused with `403`.
pub const DEFAULT_PUBLISH_TOKEN: Option<&str> = None;
/// Default subscribe check: anyone may subscribe to any topic.
pub const DEFAULT_SUBSCRIBE_AUTH: SubscribeAuth = SubscribeAuth::Open;

/// Configuration of an [`SseHub`](super::SseHub).
///
/// Every field has a named default; build one with [`SseConfig::default`] and change what you
/// need.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use tongxun::sse::{SseConfig, SubscribeAuth};
///
/// let mut config = SseConfig::default();
/// config.retry = Duration::from_secs(1);
/// config.publish_token = Some("publisher-secret".into());
/// config.subscribe_auth = SubscribeAuth::Token("reader-secret".into());
/// assert_eq!(config.path, "/events");
/// assert_eq!(config.history_len, 1_000);
/// assert_eq!(config.max_live_topics, 10_000);
/// assert_eq!(config.topic_idle_timeout, Duration::from_secs(600));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SseConfig {
    /// Path of the endpoint: `GET` subscribes, `POST` publishes.
    /// Defaults to [`DEFAULT_PATH`] (`/events`).
    pub path: String,
    /// Reconnection delay sent to every client when its stream opens (the `retry` field).
    /// Defaults to [`DEFAULT_RETRY`] (3 s).
    pub retry: Duration,
    /// Interval between keep-alive comments on a stream that has sent nothing for that long;
    /// zero turns them off. Defaults to [`DEFAULT_KEEP_ALIVE`] (15 s).
    pub keep_alive: Duration,
    /// Events each topic keeps so that reconnecting clients can resume; a client that was away
    /// for more events than this receives the `resync` event instead. The hub-wide
    /// [`max_history_bytes`](Self::max_history_bytes) may keep fewer.
    /// Defaults to [`DEFAULT_HISTORY_LEN`] (1,000).
    pub history_len: usize,
    /// Largest number of bytes the history of all topics may hold together, counting each
    /// event's encoded `event:`/`data:` lines plus about 100 bytes of bookkeeping. An event that
    /// does not fit makes room by dropping the oldest events *of its own topic* (so one busy
    /// topic cannot empty the others' history); when its topic has none left, the event is still
    /// delivered live but not kept. A client resuming from before a dropped event receives
    /// `resync`. Applies to the in-memory history only (with
    /// [`Config::redis_url`](crate::Config::redis_url) the history is in Redis, bounded by
    /// `history_len` per topic). Defaults to [`DEFAULT_MAX_HISTORY_BYTES`] (64 MiB).
    pub max_history_bytes: usize,
    /// Largest number of live topics in the hub: topics that hold history or have subscribers.
    /// When it is reached, publishing to a new topic fails with
    /// [`PublishError::TooManyTopics`](super::PublishError::TooManyTopics) (`503` over HTTP),
    /// and a stream asking for a new topic ends at once with a `: too many topics on this
    /// server, retry later` comment (its browser retries after [`retry`](Self::retry)); topics
    /// that exist already keep working. Defaults to [`DEFAULT_MAX_LIVE_TOPICS`] (10,000).
    pub max_live_topics: usize,
    /// A topic with no subscribers and no publish for this long is forgotten with its history;
    /// a client resuming into it later receives `resync`. A sweep that runs every quarter of
    /// this (at least every minute, at most every 10 ms) finds such topics, so a topic goes
    /// within this time plus one sweep interval. With
    /// [`Config::redis_url`](crate::Config::redis_url) the topic's Redis stream also expires
    /// this long after its last publish. Defaults to [`DEFAULT_TOPIC_IDLE_TIMEOUT`]
    /// (10 minutes).
    pub topic_idle_timeout: Duration,
    /// Events that may wait for one subscriber; a subscriber that falls this far behind is
    /// disconnected, and its client reconnects and resumes from history. Values below 1 count
    /// as 1. Defaults to [`DEFAULT_SUBSCRIBER_QUEUE`] (256).
    pub subscriber_queue: usize,
    /// Largest number of topics one stream may subscribe to; more is answered with `400`.
    /// Defaults to [`DEFAULT_MAX_TOPICS`] (32).
    pub max_topics: usize,
    /// Largest size of one event's data in bytes (after JSON-encoding non-string data sent over
    /// HTTP). Larger events are refused. A `POST` body may be up to twice this plus 1 KiB, which
    /// leaves room for JSON escaping. Defaults to [`DEFAULT_MAX_DATA_LEN`] (64 KiB).
    pub max_data_len: usize,
    /// Bearer token that authorizes publishing with `POST {path}`; `None` refuses every `POST`
    /// with `403`. Defaults to [`DEFAULT_PUBLISH_TOKEN`] (none).
    pub publish_token: Option<String>,
    /// Who may subscribe. Defaults to [`DEFAULT_SUBSCRIBE_AUTH`] ([`SubscribeAuth::Open`]).
    pub subscribe_auth: SubscribeAuth,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_PATH.to_owned(),
            retry: DEFAULT_RETRY,
            keep_alive: DEFAULT_KEEP_ALIVE,
            history_len: DEFAULT_HISTORY_LEN,
            max_history_bytes: DEFAULT_MAX_HISTORY_BYTES,
            max_live_topics: DEFAULT_MAX_LIVE_TOPICS,
            topic_idle_timeout: DEFAULT_TOPIC_IDLE_TIMEOUT,
            subscriber_queue: DEFAULT_SUBSCRIBER_QUEUE,
            max_topics: DEFAULT_MAX_TOPICS,
            max_data_len: DEFAULT_MAX_DATA_LEN,
            publish_token: DEFAULT_PUBLISH_TOKEN.map(str::to_owned),
            subscribe_auth: DEFAULT_SUBSCRIBE_AUTH,
        }
    }
}

impl fmt::Debug for SseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseConfig")
            .field("path", &self.path)
            .field("retry", &self.retry)
            .field("keep_alive", &self.keep_alive)
            .field("history_len", &self.history_len)
            .field("max_history_bytes", &self.max_history_bytes)
            .field("max_live_topics", &self.max_live_topics)
            .field("topic_idle_timeout", &self.topic_idle_timeout)
            .field("subscriber_queue", &self.subscriber_queue)
            .field("max_topics", &self.max_topics)
            .field("max_data_len", &self.max_data_len)
            .field(
                "publish_token",
                &self.publish_token.as_ref().map(|_| "<redacted>"),
            )
            .field("subscribe_auth", &self.subscribe_auth)
            .finish()
    }
}

/// The signature of a custom subscribe check, see [`SubscribeAuth::custom`].
type CheckFn = dyn Fn(&SubscribeRequest<'_>) -> Result<(), SubscribeRejection> + Send + Sync;

/// Who may open a stream.
///
/// A client presents its token in the `token` query parameter (a browser's `EventSource` cannot
/// set headers) or in an `Authorization: Bearer <token>` header.
///
/// # Examples
/// ```
/// use tongxun::sse::{SubscribeAuth, SubscribeRejection};
///
/// // Only readers with this token.
/// let shared = SubscribeAuth::Token("reader-secret".into());
///
/// // Your own rule: admins see everything, others only `public/...` topics.
/// let custom = SubscribeAuth::custom(|req| match req.token() {
///     Some("admin") => Ok(()),
///     Some("signed-out") => Err(SubscribeRejection::Stop),
///     Some(_) if req.topics().iter().all(|t| t.starts_with("public/")) => Ok(()),
///     Some(_) => Err(SubscribeRejection::Forbidden),
///     None => Err(SubscribeRejection::Unauthorized),
/// });
/// # let _ = (shared, custom);
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum SubscribeAuth {
    /// Anyone may subscribe to any topic.
    #[default]
    Open,
    /// Only clients presenting this token; others get `401`.
    Token(String),
    /// Your own check, see [`SubscribeAuth::custom`].
    Custom(Arc<CheckFn>),
}

impl SubscribeAuth {
    /// A check of your own, run before each stream opens. It must not block: it runs on the
    /// request's task.
    pub fn custom<F>(check: F) -> Self
    where
        F: Fn(&SubscribeRequest<'_>) -> Result<(), SubscribeRejection> + Send + Sync + 'static,
    {
        Self::Custom(Arc::new(check))
    }

    pub(crate) fn check(&self, request: &SubscribeRequest<'_>) -> Result<(), SubscribeRejection> {
        match self {
            Self::Open => Ok(()),
            Self::Token(expected) => match request.token() {
                Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
                _ => Err(SubscribeRejection::Unauthorized),
            },
            Self::Custom(check) => check(request),
        }
    }
}

impl fmt::Debug for SubscribeAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open => f.write_str("Open"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// What a subscribe check sees of a request.
#[derive(Debug)]
pub struct SubscribeRequest<'a> {
    pub(crate) token: Option<&'a str>,
    pub(crate) topics: &'a [String],
    pub(crate) headers: &'a HeaderMap,
}

impl<'a> SubscribeRequest<'a> {
    /// The token from the `token` query parameter, or else from an `Authorization: Bearer`
    /// header.
    pub fn token(&self) -> Option<&'a str> {
        self.token
    }

    /// The topics the client asks for, already validated and without duplicates.
    pub fn topics(&self) -> &'a [String] {
        self.topics
    }

    /// The request's headers, such as `Cookie` or `Origin`.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }
}

/// Why a subscribe check refused a stream; each maps to the status code a browser's
/// `EventSource` understands.
///
/// Browsers never reconnect after any of these, so choose [`Stop`](Self::Stop) to end a client
/// deliberately, and the 4xx variants for clients that are wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeRejection {
    /// The token is missing or wrong: `401 Unauthorized`.
    Unauthorized,
    /// The token is valid but not for these topics: `403 Forbidden`.
    Forbidden,
    /// The client should stop for good, for example because its user signed out:
    /// `204 No Content`, which a browser's `EventSource` takes as "do not reconnect".
    Stop,
}

/// How often the hub looks for idle topics: a quarter of the idle timeout, between 10 ms and
/// one minute.
pub(crate) fn sweep_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(60))
}

/// Compares two secrets in time that depends on their lengths only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_needs_every_byte() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn debug_hides_secrets() {
        let config = SseConfig {
            publish_token: Some("p-secret".into()),
            subscribe_auth: SubscribeAuth::Token("s-secret".into()),
            ..SseConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}
