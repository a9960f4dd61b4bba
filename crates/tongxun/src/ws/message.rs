//! The messages the hub carries: text or binary, backed by shared bytes.

use bytes::Bytes;
use tokio_tungstenite::tungstenite;

pub use tungstenite::Utf8Bytes;

/// A WebSocket data message: text or binary, delivered as sent.
///
/// The payload is reference-counted: cloning a message, or sending it to a thousand clients,
/// shares one buffer. Serialize a broadcast once (for instance with [`WsMessage::json`]) and
/// hand the message to [`WsHub::broadcast`](super::WsHub::broadcast) or
/// [`WsHub::publish`](super::WsHub::publish); each client's connection only frames it.
///
/// The enum is exhaustive on purpose: RFC 6455 has exactly these two kinds of data message.
///
/// # Examples
/// ```
/// use tongxun::ws::WsMessage;
///
/// let text = WsMessage::text("hello");
/// let binary = WsMessage::binary(vec![1, 2, 3]);
/// let json = WsMessage::json(&serde_json::json!({ "price": 42 })).unwrap();
///
/// match &json {
///     WsMessage::Text(text) => assert_eq!(text.as_str(), r#"{"price":42}"#),
///     WsMessage::Binary(_) => unreachable!(),
/// }
/// assert_eq!(binary.as_bytes(), &[1, 2, 3]);
/// assert!(text.is_text());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message (valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl WsMessage {
    /// A text message.
    ///
    /// # Examples
    /// ```
    /// let message = tongxun::ws::WsMessage::text(format!("{} joined", "ann"));
    /// assert_eq!(message.as_text(), Some("ann joined"));
    /// ```
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    ///
    /// # Examples
    /// ```
    /// let message = tongxun::ws::WsMessage::binary(bytes::Bytes::from_static(b"\x00\x01"));
    /// assert_eq!(message.len(), 2);
    /// ```
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self::Binary(bytes.into())
    }

    /// A text message holding `value` serialized as JSON.
    ///
    /// # Examples
    /// ```
    /// let message = tongxun::ws::WsMessage::json(&["a", "b"]).unwrap();
    /// assert_eq!(message.as_text(), Some(r#"["a","b"]"#));
    /// ```
    ///
    /// # Errors
    /// When `value` cannot be serialized (a map with non-string keys, a failing `Serialize`).
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Self::text)
    }

    /// Whether this is a text message.
    ///
    /// # Examples
    /// ```
    /// assert!(!tongxun::ws::WsMessage::binary(vec![0]).is_text());
    /// ```
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// The text of a text message.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::ws::WsMessage::text("hi").as_text(), Some("hi"));
    /// assert_eq!(tongxun::ws::WsMessage::binary(&b"hi"[..]).as_text(), None);
    /// ```
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text.as_str()),
            Self::Binary(_) => None,
        }
    }

    /// The payload, whatever the kind.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::ws::WsMessage::text("hi").as_bytes(), b"hi");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// The payload as shared bytes, whatever the kind.
    ///
    /// # Examples
    /// ```
    /// let bytes = tongxun::ws::WsMessage::text("hi").into_bytes();
    /// assert_eq!(&bytes[..], b"hi");
    /// ```
    pub fn into_bytes(self) -> Bytes {
        match self {
            Self::Text(text) => text.into(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// Length of the payload in bytes.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(tongxun::ws::WsMessage::text("héllo").len(), 6);
    /// ```
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    ///
    /// # Examples
    /// ```
    /// assert!(tongxun::ws::WsMessage::text("").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame handed to tungstenite; the payload is shared, not copied.
    pub(crate) fn into_frame(self) -> tungstenite::Message {
        match self {
            Self::Text(text) => tungstenite::Message::Text(text),
            Self::Binary(bytes) => tungstenite::Message::Binary(bytes),
        }
    }
}

impl From<String> for WsMessage {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for WsMessage {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<Utf8Bytes> for WsMessage {
    fn from(text: Utf8Bytes) -> Self {
        Self::Text(text)
    }
}

impl From<Bytes> for WsMessage {
    fn from(bytes: Bytes) -> Self {
        Self::Binary(bytes)
    }
}

impl From<Vec<u8>> for WsMessage {
    fn from(bytes: Vec<u8>) -> Self {
        Self::binary(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_payload() {
        let message = WsMessage::text("x".repeat(1000));
        let copy = message.clone();
        assert_eq!(message.as_bytes().as_ptr(), copy.as_bytes().as_ptr());
        let frame = copy.into_frame();
        assert_eq!(frame.into_data().as_ptr(), message.as_bytes().as_ptr());
    }

    #[test]
    fn conversions_keep_the_kind() {
        assert!(WsMessage::from("a").is_text());
        assert!(WsMessage::from(String::from("a")).is_text());
        assert!(!WsMessage::from(vec![1u8]).is_text());
        assert!(!WsMessage::from(Bytes::from_static(b"a")).is_text());
    }
}
