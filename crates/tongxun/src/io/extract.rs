//! Extractors: the arguments an event handler can ask for.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide::extract::AckSender;
use socketioxide::handler::FromMessageParts;
use socketioxide_core::Value;

use super::socket::Socket;
use crate::error::SendError;

/// Everything known about one received event, from which handler arguments are extracted
/// (see [`FromEvent`]).
#[derive(Debug)]
pub struct EventContext {
    pub(crate) socket: Socket,
    pub(crate) event: Arc<str>,
    pub(crate) value: Value,
    pub(crate) ack: Arc<AckSlot>,
}

impl EventContext {
    /// The socket the event came from.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The event's name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The event's arguments decoded into `T`, as [`Data`] decodes them: a tuple takes every
    /// argument, any other type the first.
    ///
    /// # Errors
    /// [`ExtractError::Decode`] when they do not decode into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ExtractError> {
        decode(self)
    }

    /// Whether the client asked for an acknowledgement.
    pub fn ack_requested(&self) -> bool {
        self.ack.requested
    }
}

/// Why a handler argument could not be extracted from an event. The handler is not called, and
/// the client's acknowledgement, if it asked for one, gets the message (with its sources).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The payload did not decode into the requested type.
    #[error("invalid payload for event \"{event}\"")]
    Decode {
        /// The event's name.
        event: String,
        /// What did not match.
        #[source]
        source: crate::BoxError,
    },
    /// An extractor of the app's refused the event.
    #[error("{0}")]
    Refused(String),
    /// A [`State`](crate::State) of a type the builder was not given.
    #[error("no state of type {0}: give it to ServerBuilder::state")]
    MissingState(&'static str),
    /// An [`Extension`](crate::Extension) of a type the socket does not hold.
    #[error("the socket holds no extension of type {0}")]
    MissingExtension(&'static str),
}

impl ExtractError {
    /// An extractor's refusal with this message, which the client's acknowledgement receives.
    pub fn refused(message: impl Into<String>) -> Self {
        ExtractError::Refused(message.into())
    }
}

/// A handler argument that can be extracted from a received event.
///
/// Implemented by [`Socket`], [`Data`], [`TryData`], [`Event`], [`Ack`], [`Args`] and [`Bin`].
pub trait FromEvent: Sized {
    /// Extracts the argument. An error stops the handler; the client's ack (if requested) is
    /// answered with `{"error": "<message>"}`.
    ///
    /// # Errors
    /// When the event does not carry what the argument needs.
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError>;
}

impl FromEvent for Socket {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(ctx.socket.clone())
    }
}

impl FromEvent for crate::Io {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(ctx.socket.io())
    }
}

/// The event's arguments, decoded with serde.
///
/// A tuple type takes every argument the client sent (`socket.emit("move", x, y)` decodes into
/// `Data<(i32, i32)>`); any other type takes the first argument. Binary arguments (an
/// `ArrayBuffer`, a `Buffer`) decode into [`Bytes`] fields byte for byte.
///
/// When the payload does not decode, the handler is not called: tongxun logs a warning and
/// answers the client's acknowledgement, if it asked for one, with `{"error": "..."}`. Use
/// [`TryData`] to handle the error yourself.
///
/// # Examples
/// ```
/// use bytes::Bytes;
/// use tongxun::{Data, Socket};
///
/// async fn on_connect(socket: Socket) {
///     socket.on("move", |Data((x, y)): Data<(i32, i32)>| async move {
///         println!("moved to {x},{y}");
///     });
///     socket.on("upload", |Data((name, file)): Data<(String, Bytes)>| async move {
///         println!("{name}: {} bytes", file.len());
///     });
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[derive(Debug, Clone)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned> FromEvent for Data<T> {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        decode(ctx).map(Data)
    }
}

/// Like [`Data`], but hands a payload that does not decode to the handler as an error.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, ExtractError>);

impl<T: DeserializeOwned> FromEvent for TryData<T> {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(TryData(decode(ctx)))
    }
}

fn decode<T: DeserializeOwned>(ctx: &EventContext) -> Result<T, ExtractError> {
    let mut value = ctx.value.clone();
    let socketioxide::extract::TryData(decoded) =
        socketioxide::extract::TryData::<T>::from_message_parts(
            ctx.socket.raw(),
            &mut value,
            &None,
        )
        .unwrap_or_else(|never| match never {});
    decoded.map_err(|e| ExtractError::Decode {
        event: ctx.event.to_string(),
        source: Box::new(e),
    })
}

/// The name of the received event; most useful in a catch-all handler.
#[derive(Debug, Clone)]
pub struct Event(pub String);

impl FromEvent for Event {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(Event(ctx.event.to_string()))
    }
}

/// Every argument of the event, whatever their types, with their binary attachments: sent back
/// (`socket.emit(event, &args)`, `ack.send(&args)`) they are the same arguments, a `Buffer`
/// still a `Buffer`, as a Node echo sends them.
///
/// [`values`](Self::values) shows them as JSON, where a binary argument is its placeholder
/// `{"_placeholder": true, "num": N}` and its bytes are [`bins`](Self::bins)`[N]`.
///
/// # Examples
/// ```
/// use tongxun::{Ack, Args, Socket};
///
/// async fn on_connect(socket: Socket) {
///     // An echo: every argument comes back as it was sent, binary included.
///     socket.on("echo", |args: Args, ack: Ack| async move { ack.send(&args) });
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: Vec<serde_json::Value>,
    bins: Vec<Bytes>,
}

impl Args {
    /// The arguments as JSON values; a binary argument is its placeholder.
    pub fn values(&self) -> &[serde_json::Value] {
        &self.values
    }

    /// The arguments as JSON values, binary ones as placeholders.
    pub fn into_values(self) -> Vec<serde_json::Value> {
        self.values
    }

    /// The binary attachments, in the order the client sent them.
    pub fn bins(&self) -> &[Bytes] {
        &self.bins
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl FromEvent for Args {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        let text = match &ctx.value {
            Value::Str(text, _) => text.as_str(),
            // MessagePack: binary data is inline, where a placeholder stands in the JSON.
            Value::Bytes(_) => return decode::<Args>(ctx),
        };
        let mut values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| ExtractError::Decode {
                event: ctx.event.to_string(),
                source: Box::new(e),
            })?;
        if !values.is_empty() {
            values.remove(0); // the event name
        }
        let Bin(bins) = Bin::from_event(ctx)?;
        Ok(Args { values, bins })
    }
}

/// Sends the arguments as they came: several arguments, binary placeholders replaced by their
/// bytes (which the Socket.IO serializer sends as attachments again).
impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(self.values.len())?;
        for value in &self.values {
            tuple.serialize_element(&WithBins(value, &self.bins))?;
        }
        tuple.end()
    }
}

/// A JSON value whose binary placeholders serialize as the bytes they stand for.
struct WithBins<'a>(&'a serde_json::Value, &'a [Bytes]);

impl Serialize for WithBins<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        use serde_json::Value as Json;
        let WithBins(value, bins) = *self;
        match value {
            Json::Object(map) => {
                let placeholder = map.len() == 2
                    && map.get("_placeholder") == Some(&Json::Bool(true))
                    && map.get("num").and_then(Json::as_u64).is_some();
                if placeholder
                    && let Some(bytes) = map
                        .get("num")
                        .and_then(Json::as_u64)
                        .and_then(|n| bins.get(usize::try_from(n).ok()?))
                {
                    return serializer.serialize_bytes(bytes);
                }
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (key, value) in map {
                    out.serialize_entry(key, &WithBins(value, bins))?;
                }
                out.end()
            }
            Json::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&WithBins(item, bins))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// The binary attachments of the event, in the order the client sent them.
#[derive(Debug, Clone)]
pub struct Bin(pub Vec<Bytes>);

impl FromEvent for Bin {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        let bins = match &ctx.value {
            Value::Str(_, Some(bins)) => bins.iter().cloned().collect(),
            Value::Str(_, None) => Vec::new(),
            Value::Bytes(_) => decode::<Args>(ctx)?.bins,
        };
        Ok(Bin(bins))
    }
}

/// Decodes arguments from any serde format (MessagePack events take this path): each binary
/// value becomes a placeholder in [`Args::values`] and its bytes go to [`Args::bins`], in the
/// order they appear, the order a JSON client sends its attachments in.
impl<'de> serde::Deserialize<'de> for Args {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A tuple, so that socketioxide hands over every argument rather than the first.
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

struct ArgsVisitor;

impl<'de> serde::de::Visitor<'de> for ArgsVisitor {
    type Value = Args;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the arguments of an event")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Args, A::Error> {
        let mut args = Args::default();
        while let Some(value) = seq.next_element_seed(Placeholding(&mut args.bins))? {
            args.values.push(value);
        }
        Ok(args)
    }
}

/// Deserializes any value as JSON, turning binary data into placeholders that index `.0`.
struct Placeholding<'a>(&'a mut Vec<Bytes>);

impl<'de> serde::de::DeserializeSeed<'de> for Placeholding<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Placeholding<'_> {
    fn placeholder(self, bytes: Bytes) -> serde_json::Value {
        let num = self.0.len();
        self.0.push(bytes);
        serde_json::json!({ "_placeholder": true, "num": num })
    }
}

impl<'de> serde::de::Visitor<'de> for Placeholding<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // NaN and infinities have no JSON form; JSON.stringify writes them as null too.
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(self.placeholder(Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(self.placeholder(Bytes::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(Placeholding(&mut *self.0))? {
            items.push(item);
        }
        Ok(items.into())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Placeholding(&mut *self.0))?;
            object.insert(key, value);
        }
        Ok(object.into())
    }
}

/// Answers the client's acknowledgement callback (`socket.emit("event", data, (answer) => ...)`
/// or `await socket.emitWithAck(...)` in JavaScript).
///
/// An acknowledgement is answered at most once: when several listeners of one event take an
/// `Ack`, the first `send` wins. If the handler fails (its payload does not decode, it returns an
/// error, or it panics) before answering, tongxun answers `{"error": "<message>"}` so that the
/// client's callback is never left waiting.
///
/// # Examples
/// ```
/// use tongxun::{Ack, Data, Socket};
///
/// async fn on_connect(socket: Socket) {
///     // JS: const total = await socket.emitWithAck("sum", [1, 2, 3]);
///     socket.on("sum", |Data(numbers): Data<Vec<i64>>, ack: Ack| async move {
///         ack.send(&numbers.iter().sum::<i64>())
///     });
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[derive(Debug, Clone)]
pub struct Ack {
    slot: Arc<AckSlot>,
}

impl Ack {
    /// Whether the client asked for an acknowledgement.
    pub fn requested(&self) -> bool {
        self.slot.requested
    }

    /// Sends the answer. A tuple sends several arguments to the client's callback.
    /// When the client asked for no acknowledgement this does nothing.
    ///
    /// # Errors
    /// [`SendError::AlreadyAcknowledged`] when the acknowledgement was already answered, and the
    /// errors of sending any message.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), SendError> {
        self.slot.send(data)
    }
}

impl FromEvent for Ack {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(Ack {
            slot: ctx.ack.clone(),
        })
    }
}

/// The one-shot acknowledgement of an event, shared by every listener of that event.
pub(crate) struct AckSlot {
    requested: bool,
    meters: crate::meters::NsMeters,
    sender: Mutex<Option<AckSender<crate::io::RawAdapter>>>,
}

impl std::fmt::Debug for AckSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckSlot")
            .field("requested", &self.requested)
            .finish_non_exhaustive()
    }
}

impl AckSlot {
    pub(crate) fn new(socket: &Socket, ack_id: Option<i64>) -> Self {
        let sender = ack_id.map(|_| {
            let mut empty = Value::Str(String::new().into(), None);
            AckSender::from_message_parts(socket.raw(), &mut empty, &ack_id)
                .unwrap_or_else(|never| match never {})
        });
        Self {
            requested: ack_id.is_some(),
            meters: socket.state.ns.meters.clone(),
            sender: Mutex::new(sender),
        }
    }

    pub(crate) fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), SendError> {
        if !self.requested {
            return Ok(());
        }
        let sender = self.take().ok_or(SendError::AlreadyAcknowledged)?;
        let sent = sender
            .send(&super::args::Outgoing::of(data))
            .map_err(SendError::from);
        if sent.is_ok() {
            self.meters.ack_answered(true);
        }
        sent
    }

    /// Answers `{"error": message}` if the acknowledgement is still open; returns whether it did.
    pub(crate) fn fail(&self, message: &str) -> bool {
        match self.take() {
            Some(sender) => {
                let sent = sender
                    .send(&serde_json::json!({ "error": message }))
                    .is_ok();
                if sent {
                    self.meters.ack_answered(false);
                }
                sent
            }
            None => false,
        }
    }

    fn take(&self) -> Option<AckSender<crate::io::RawAdapter>> {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
