//! Events, their validation and their wire format (framing).

use bytes::{BufMut, Bytes, BytesMut};

/// Largest length of a topic name, in bytes: the hub's
/// [`MAX_TOPIC_LEN`](crate::hub::MAX_TOPIC_LEN).
pub const MAX_TOPIC_LEN: usize = crate::hub::MAX_TOPIC_LEN;
/// Largest length of an event name, in bytes.
pub const MAX_EVENT_NAME_LEN: usize = 64;
/// Name of the event that opens every stream; reserved.
///
/// Its `id` is the stream's starting position and its data a JSON object listing the topics,
/// such as `{"topics":["a","b"]}`. Browsers take the position from any block with an `id`, but
/// some clients (the npm `eventsource` package among them) only from an event with data; this
/// event makes every client resume from the right place even if the connection drops before
/// the first real event.
pub const READY_EVENT: &str = "ready";
/// Name of the event that tells a client its history is gone; reserved.
///
/// Sent first on a stream that asked to resume (`Last-Event-ID`) from a position the hub can no
/// longer replay: history no longer reaches back that far, or the id belongs to an earlier run
/// of the server, or it is not an id of this hub. Its data is a JSON object such as
/// `{"topics":["a"],"reason":"history_exceeded"}` (`reason` is `history_exceeded` or
/// `unknown_id`). The client should reload the state of the listed topics by other means; the
/// stream then continues live from now.
pub const RESYNC_EVENT: &str = "resync";

/// An event to publish: data and an optional name.
///
/// Line breaks in the data may be `\n`, `\r\n` or `\r`; clients receive `\n`.
///
/// # Examples
/// ```
/// use tongxun::sse::SseEvent;
///
/// // Received by `onmessage` (event type "message").
/// let plain = SseEvent::new("hello");
/// // Received by `addEventListener("price", ...)`, data spanning two lines.
/// let named = SseEvent::new("BTC 64000\r\nETH 3100").event("price");
/// // Any serde value, encoded as JSON.
/// let json = SseEvent::json(&serde_json::json!({"btc": 64000})).unwrap();
/// assert_eq!(json.data(), r#"{"btc":64000}"#);
/// # let _ = (plain, named);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    name: Option<String>,
    data: String,
}

impl SseEvent {
    /// An unnamed event carrying `data`: clients see it as a `message` event.
    ///
    /// # Examples
    /// ```
    /// let event = tongxun::sse::SseEvent::new("hello");
    /// assert_eq!((event.name(), event.data()), (None, "hello"));
    /// ```
    pub fn new(data: impl Into<String>) -> Self {
        Self {
            name: None,
            data: data.into(),
        }
    }

    /// An unnamed event carrying `value` encoded as JSON.
    ///
    /// # Examples
    /// ```
    /// let event = tongxun::sse::SseEvent::json(&serde_json::json!({ "btc": 64000 }))?;
    /// assert_eq!(event.data(), r#"{"btc":64000}"#);
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    ///
    /// # Errors
    /// When `value` cannot be encoded as JSON (for example a map with non-string keys).
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Self::new)
    }

    /// Names the event: clients receive it with `addEventListener(name, ...)`.
    ///
    /// The name is checked when the event is published: 1 to 64 bytes, no control characters,
    /// and neither [`READY_EVENT`] nor [`RESYNC_EVENT`].
    ///
    /// # Examples
    /// ```
    /// let event = tongxun::sse::SseEvent::new("64000").event("price");
    /// assert_eq!(event.name(), Some("price"));
    /// ```
    pub fn event(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The event's name, if any.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::sse::SseEvent::new("x").name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The event's data, as given.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::sse::SseEvent::new("a\r\nb").data(), "a\r\nb");
    /// ```
    pub fn data(&self) -> &str {
        &self.data
    }

    /// Checks the event and writes its wire form, without the `id` line that each stream adds.
    pub(crate) fn encode(&self, max_data_len: usize) -> Result<Bytes, PublishError> {
        if let Some(name) = &self.name {
            check_event_name(name)?;
        }
        if self.data.len() > max_data_len {
            return Err(PublishError::DataTooLarge {
                len: self.data.len(),
                max: max_data_len,
            });
        }
        let mut out = BytesMut::with_capacity(self.data.len() + 32);
        if let Some(name) = &self.name {
            put_field(&mut out, "event", name);
        }
        put_data(&mut out, &self.data);
        out.put_u8(b'\n');
        Ok(out.freeze())
    }
}

/// Why an event could not be published.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The topic name breaks the rules (see [`check_topic`]).
    #[error("invalid topic name: {0}")]
    InvalidTopic(&'static str),
    /// The event name is empty, too long or contains a control character.
    #[error("invalid event name: {0}")]
    InvalidEventName(&'static str),
    /// The event name is one the hub sends itself ([`READY_EVENT`], [`RESYNC_EVENT`]).
    #[error("event name \"{0}\" is reserved by the hub")]
    ReservedEventName(&'static str),
    /// The data is larger than [`SseConfig::max_data_len`](super::SseConfig::max_data_len).
    #[error("data is {len} bytes, more than the limit of {max}")]
    DataTooLarge {
        /// Size of the data, in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The topic is new and the hub already holds
    /// [`SseConfig::max_live_topics`](super::SseConfig::max_live_topics) topics.
    #[error("the hub already holds its maximum of {max} topics")]
    TooManyTopics {
        /// The configured limit.
        max: usize,
    },
    /// The hub was shut down.
    #[error("the hub is shut down")]
    ShutDown,
    /// The hub keeps its history in Redis ([`Config::redis_url`](crate::Config::redis_url)),
    /// which could not record the event: it was sent to nobody.
    #[error("the shared history (Redis) is unreachable: the event was not published")]
    Unavailable,
}

/// Why [`SseHub::forget`](super::SseHub::forget) could not forget a topic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForgetError {
    /// The topic name breaks the rules (see [`check_topic`]).
    #[error("invalid topic name: {0}")]
    InvalidTopic(&'static str),
    /// The hub keeps its history in Redis ([`Config::redis_url`](crate::Config::redis_url)),
    /// which could not delete it. This node forgot the topic; Redis still holds its history
    /// until it expires ([`SseConfig::topic_idle_timeout`](super::SseConfig::topic_idle_timeout)).
    #[error("the shared history (Redis) is unreachable: the topic's history was not deleted there")]
    Unavailable,
}

/// Checks a topic name: 1 to 64 bytes of ASCII letters, digits, `-`, `_`, `.`, `/` and `:`.
///
/// These are the rules of [`hub::check_topic`](crate::hub::check_topic) but its last: with no
/// Socket.IO rooms here, a name of a socket id's shape is allowed. Other characters are kept
/// out because topic names appear inside event ids, which use `;` and `,` as separators.
///
/// # Errors
/// [`PublishError::InvalidTopic`] telling what is wrong.
///
/// # Examples
/// ```
/// use tongxun::sse::check_topic;
///
/// assert!(check_topic("prices").is_ok());
/// assert!(check_topic("rooms/42.chat").is_ok());
/// assert!(check_topic("chat:general").is_ok());
/// assert!(check_topic("").is_err());
/// assert!(check_topic("a,b").is_err());
/// ```
pub fn check_topic(topic: &str) -> Result<(), PublishError> {
    match crate::hub::topic_problem(topic) {
        Some(why) => Err(PublishError::InvalidTopic(why)),
        None => Ok(()),
    }
}

fn check_event_name(name: &str) -> Result<(), PublishError> {
    if name.is_empty() {
        return Err(PublishError::InvalidEventName("it is empty"));
    }
    if name.len() > MAX_EVENT_NAME_LEN {
        return Err(PublishError::InvalidEventName("it is longer than 64 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(PublishError::InvalidEventName(
            "it contains a control character",
        ));
    }
    for reserved in [READY_EVENT, RESYNC_EVENT] {
        if name == reserved {
            return Err(PublishError::ReservedEventName(reserved));
        }
    }
    Ok(())
}

/// Writes `name: value\n`. The value must hold no line break.
pub(crate) fn put_field(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_u8(b'\n');
}

/// Writes one `data:` line per line of `data`, treating `\r\n`, `\r` and `\n` alike.
pub(crate) fn put_data(out: &mut BytesMut, data: &str) {
    for line in lines(data) {
        put_field(out, "data", line);
    }
}

/// Splits on `\r\n`, `\r` and `\n`. Always yields at least one (possibly empty) line, and an
/// empty last line after a trailing break, so that the client rebuilds the same text.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(at) => {
                let skip = if current[at..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[at + skip..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// The comment sent on an idle stream.
pub(crate) const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";
/// The comment sent before a stream ends because the hub shuts down.
pub(crate) const SHUTDOWN_COMMENT: &[u8] = b": server shutting down, reconnect\n\n";
/// Ends a stream that could not read the shared history; the client retries after `retry`.
pub(crate) const UNAVAILABLE_COMMENT: &[u8] = b": history unavailable, reconnect\n\n";
/// Ends a stream that asked for a new topic while the hub holds
/// [`SseConfig::max_live_topics`](super::SseConfig::max_live_topics); the client retries after
/// `retry`.
pub(crate) const TOPIC_LIMIT_COMMENT: &[u8] = b": too many topics on this server, retry later\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(event: SseEvent) -> String {
        String::from_utf8(event.encode(1024).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn plain_event_is_one_data_line() {
        assert_eq!(encoded(SseEvent::new("hello")), "data: hello\n\n");
    }

    #[test]
    fn named_event_comes_before_data() {
        assert_eq!(
            encoded(SseEvent::new("x").event("tick")),
            "event: tick\ndata: x\n\n"
        );
    }

    #[test]
    fn every_line_break_style_becomes_its_own_data_line() {
        assert_eq!(
            encoded(SseEvent::new("a\r\nb\rc\nd")),
            "data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        // A CR LF pair is one break, not two.
        assert_eq!(
            encoded(SseEvent::new("a\r\n\r\nb")),
            "data: a\ndata: \ndata: b\n\n"
        );
    }

    #[test]
    fn empty_and_trailing_lines_survive() {
        assert_eq!(encoded(SseEvent::new("")), "data: \n\n");
        assert_eq!(encoded(SseEvent::new("a\n")), "data: a\ndata: \n\n");
        assert_eq!(encoded(SseEvent::new("\r")), "data: \ndata: \n\n");
    }

    #[test]
    fn leading_spaces_and_colons_are_kept() {
        // The client strips exactly the one space after "data:".
        assert_eq!(encoded(SseEvent::new(" x: y")), "data:  x: y\n\n");
    }

    #[test]
    fn event_names_are_checked() {
        let too_long = "e".repeat(65);
        for (name, expected) in [
            ("", PublishError::InvalidEventName("it is empty")),
            (
                "a\nb",
                PublishError::InvalidEventName("it contains a control character"),
            ),
            (
                "a\rb",
                PublishError::InvalidEventName("it contains a control character"),
            ),
            (
                too_long.as_str(),
                PublishError::InvalidEventName("it is longer than 64 bytes"),
            ),
            ("ready", PublishError::ReservedEventName("ready")),
            ("resync", PublishError::ReservedEventName("resync")),
        ] {
            assert_eq!(
                SseEvent::new("x").event(name).encode(1024),
                Err(expected),
                "{name:?}"
            );
        }
        assert!(
            SseEvent::new("x")
                .event("price update")
                .encode(1024)
                .is_ok()
        );
    }

    #[test]
    fn data_size_is_limited() {
        assert_eq!(
            SseEvent::new("12345").encode(4),
            Err(PublishError::DataTooLarge { len: 5, max: 4 })
        );
        assert!(SseEvent::new("1234").encode(4).is_ok());
    }

    #[test]
    fn topics_may_have_the_shape_of_a_socket_id_as_there_are_no_rooms_here() {
        assert_eq!(check_topic("temperature_room"), Ok(()));
        assert!(crate::hub::check_topic("temperature_room").is_err());
    }
}
