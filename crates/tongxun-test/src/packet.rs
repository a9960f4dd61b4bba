//! Payloads in and out, with socketioxide's own parser: tuples as several arguments, `Bytes` as
//! binary attachments, `()` as no argument.

use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide_core::Value;
use socketioxide_core::packet::Packet;
use socketioxide_core::parser::Parse;
use socketioxide_parser_common::CommonParser;

use crate::engine::{Frame, Outgoing};
use crate::error::ClientError;

/// The arguments of a payload (after the event's name when `with_event`) decoded as `T`. No
/// argument at all decodes as JSON `null` would: `()`, or `None`.
pub(crate) fn decode<T: DeserializeOwned>(
    value: &Value,
    with_event: bool,
) -> Result<T, ClientError> {
    let mut value = value.clone();
    CommonParser
        .decode_value(&mut value, with_event)
        .or_else(|error| {
            let Value::Str(text, _) = &value else {
                return Err(error);
            };
            let args: Vec<serde_json::Value> =
                serde_json::from_str(text.as_str()).unwrap_or_default();
            if args.len() == usize::from(with_event) {
                T::deserialize(serde_json::Value::Null).map_err(|_| error)
            } else {
                Err(error)
            }
        })
        .map_err(|e| ClientError::Decode(Box::new(e)))
}

/// `data` as a packet payload, with `event` first when it is an event. `()` is no argument at
/// all, as `socket.emit("ping")` sends, and as tongxun's own emits treat it.
pub(crate) fn encode<T: Serialize + ?Sized>(
    data: &T,
    event: Option<&str>,
) -> Result<Value, ClientError> {
    let encoded = if is_unit(data) {
        CommonParser.encode_value(&NoArguments, event)
    } else {
        CommonParser.encode_value(data, event)
    };
    encoded.map_err(|e| ClientError::Encode(Box::new(e)))
}

/// Whether `data` is `()` or a unit struct: of no size, and serialized as nothing.
fn is_unit<T: Serialize + ?Sized>(data: &T) -> bool {
    std::mem::size_of_val(data) == 0
        && matches!(serde_json::to_value(data), Ok(serde_json::Value::Null))
}

/// An empty argument list: a tuple of no elements.
struct NoArguments;

impl Serialize for NoArguments {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        serializer.serialize_tuple(0)?.end()
    }
}

/// Queues `packet` and its attachments; `false` once the session has ended.
pub(crate) fn send(out: &Outgoing, packet: Packet) -> bool {
    let Value::Str(text, attachments) = CommonParser.encode(packet) else {
        return false; // the common parser writes text packets only
    };
    out.send(Frame::Text(text.as_str().to_owned()))
        && attachments
            .into_iter()
            .flatten()
            .all(|data| out.send(Frame::Binary(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire<T: Serialize + ?Sized>(data: &T, event: Option<&str>) -> String {
        match encode(data, event).unwrap() {
            Value::Str(text, _) => text.as_str().to_owned(),
            Value::Bytes(_) => unreachable!("the common parser writes text"),
        }
    }

    #[test]
    fn unit_is_no_argument_a_tuple_is_several_and_anything_else_is_one() {
        assert_eq!(wire(&(), Some("ping")), r#"["ping"]"#);
        assert_eq!(wire(&(), None), "[]");
        assert_eq!(wire(&(1, "a"), Some("e")), r#"["e",1,"a"]"#);
        assert_eq!(wire(&vec![1, 2], Some("e")), r#"["e",[1,2]]"#);
        // serde writes an array as a tuple: several arguments, as the server's emit sends it.
        assert_eq!(wire(&[1, 2], Some("e")), r#"["e",1,2]"#);
        assert_eq!(wire(&None::<u8>, Some("e")), r#"["e",null]"#);
    }
}
