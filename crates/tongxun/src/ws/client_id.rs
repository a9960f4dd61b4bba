//! The id of a client in its hub.

use std::fmt;

/// Identifies a client of one hub; ids are never reused while the hub lives.
///
/// # Examples
/// ```
/// use tongxun::ws::{ClientId, WsClient};
///
/// fn log_id(client: &WsClient) -> ClientId {
///     tracing::info!(client = %client.id(), "hello");
///     client.id()
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(u64);

impl ClientId {
    pub(crate) fn new(id: u64) -> Self {
        Self(id)
    }

    /// The id as a number.
    ///
    /// # Examples
    /// ```
    /// # fn f(client: &tongxun::ws::WsClient) {
    /// let n: u64 = client.id().as_u64();
    /// assert_eq!(n.to_string(), client.id().to_string());
    /// # }
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Parses the form [`Display`](fmt::Display) writes, for ids that went through another
/// system (an admin page, a queue) and come back.
///
/// # Examples
/// ```
/// # fn f(hub: tongxun::ws::WsHub, client: tongxun::ws::WsClient) {
/// let id: tongxun::ws::ClientId = client.id().to_string().parse().unwrap();
/// assert_eq!(id, client.id());
/// # }
/// ```
impl std::str::FromStr for ClientId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}
