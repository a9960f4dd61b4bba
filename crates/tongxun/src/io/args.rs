//! How Rust values become Socket.IO event arguments (the extractor that reads them is
//! [`Args`](super::Args)).
//!
//! socketioxide sends a tuple as several arguments and anything else as one. tongxun adds one
//! rule: `()` is no argument at all, as `socket.emit("ping")` is in JavaScript. (socketioxide
//! alone sends one `null` argument, which shifts the client's acknowledgement callback to the
//! second parameter.)

use serde::ser::{Serialize, SerializeTuple, Serializer};

/// The arguments of an event or acknowledgement being sent.
pub(crate) enum Outgoing<'a, T: ?Sized> {
    /// No argument.
    None,
    /// A tuple's elements, or a single value.
    Some(&'a T),
}

impl<'a, T: Serialize + ?Sized> Outgoing<'a, T> {
    pub(crate) fn of(data: &'a T) -> Self {
        if is_unit(data) {
            Outgoing::None
        } else {
            Outgoing::Some(data)
        }
    }
}

/// Whether `data` is `()` (or another value of no size that serializes as nothing, such as a
/// unit struct). Only values of no size are serialized to find out, and those cost nothing to
/// serialize; `T: 'static` (for a `TypeId`) is not asked of every payload.
fn is_unit<T: Serialize + ?Sized>(data: &T) -> bool {
    std::mem::size_of_val(data) == 0
        && matches!(serde_json::to_value(data), Ok(serde_json::Value::Null))
}

impl<T: Serialize + ?Sized> Serialize for Outgoing<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Outgoing::None => serializer.serialize_tuple(0)?.end(),
            Outgoing::Some(data) => data.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire<T: Serialize + ?Sized>(data: &T) -> String {
        serde_json::to_string(&Outgoing::of(data)).unwrap()
    }

    #[test]
    fn unit_is_no_argument_and_everything_else_is_sent_as_it_serializes() {
        #[derive(serde::Serialize)]
        struct Ping;
        assert_eq!(wire(&()), "[]");
        assert_eq!(wire(&Ping), "[]");
        // A null of some size is a value the app chose to send.
        assert_eq!(wire(&serde_json::Value::Null), "null");
        assert_eq!(wire(&None::<u8>), "null");
        assert_eq!(wire(&[0u8; 0]), "[]");
        assert_eq!(wire(&(1, "two")), r#"[1,"two"]"#);
        assert_eq!(wire("text"), r#""text""#);
    }
}
