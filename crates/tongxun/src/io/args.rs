//! How Rust values become Socket.IO event arguments.
//!
//! socketioxide sends a tuple as several arguments and anything else as one. tongxun adds one
//! rule: `()` is no argument at all, as `socket.emit("ping")` is in JavaScript. (socketioxide
//! alone sends one `null` argument, which shifts the client's acknowledgement callback to the
//! second parameter.)

use serde::ser::{Serialize, SerializeTuple, Serializer};

/// The arguments of an event or acknowledgement.
pub(crate) enum Args<'a, T: ?Sized> {
    /// No argument.
    None,
    /// A tuple's elements, or a single value.
    Some(&'a T),
}

impl<'a, T: Serialize + ?Sized> Args<'a, T> {
    pub(crate) fn of(data: &'a T) -> Self {
        // `()` carries no lifetime or data: its type name is the one reliable mark it has
        // without requiring `T: 'static` of every payload.
        if std::any::type_name::<T>() == "()" {
            Args::None
        } else {
            Args::Some(data)
        }
    }
}

impl<T: Serialize + ?Sized> Serialize for Args<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Args::None => serializer.serialize_tuple(0)?.end(),
            Args::Some(data) => data.serialize(serializer),
        }
    }
}
