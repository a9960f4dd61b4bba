//! What a client sent when it joined a namespace (Node's `socket.handshake`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use socketioxide::handler::FromConnectParts;
use socketioxide::socket::Sid;

use super::extract::ExtractError;
use super::socket::RawSocket;
use super::socket_state::SocketState;
use super::store::Store;

/// What a client sent when it joined a namespace: its `auth` payload, the HTTP request that
/// opened its connection, its address and when it connected (Node's `socket.handshake`).
///
/// An auth step receives it ([`Namespace::auth`](super::Namespace::auth)), and every socket
/// keeps it ([`Socket::handshake`](super::Socket::handshake)).
///
/// # Examples
/// ```
/// use tongxun::{Ack, Socket};
///
/// async fn on_connect(socket: Socket) {
///     let handshake = socket.handshake();
///     let token: Option<String> = handshake.auth::<serde_json::Value>().ok()
///         .and_then(|auth| auth["token"].as_str().map(str::to_owned));
///     let agent = handshake.headers().get("user-agent").cloned();
///     tracing::info!(?token, ?agent, address = ?handshake.address(), "connected");
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[derive(Clone)]
pub struct Handshake {
    raw: Arc<RawSocket>,
    state: Arc<SocketState>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("id", &self.raw.id)
            .field("ns", &self.raw.ns())
            .field("url", &self.url())
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Handshake {
    pub(crate) fn new(raw: Arc<RawSocket>, state: Arc<SocketState>) -> Self {
        Self { raw, state }
    }

    /// The client's `auth` payload (`io(url, { auth: {...} })`) decoded as `T`. A client that
    /// sent none is read as `{}`.
    ///
    /// # Errors
    /// [`ExtractError::Decode`] when the payload does not decode into `T`.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{ConnectError, Handshake, Namespace};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Credentials {
    ///     token: String,
    /// }
    ///
    /// async fn check(handshake: Handshake) -> Result<(), ConnectError> {
    ///     let credentials: Credentials = handshake.auth().map_err(|_| ConnectError::new("no token"))?;
    ///     if credentials.token != "secret" {
    ///         return Err(ConnectError::new("bad token"));
    ///     }
    ///     Ok(())
    /// }
    /// # let _ = Namespace::new(|_: tongxun::Socket| async {}).auth(check);
    /// ```
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, ExtractError> {
        let auth = self.state.auth.as_deref().cloned();
        socketioxide::extract::Data::<T>::from_connect_parts(&self.raw, &auth)
            .map(|data| data.0)
            .map_err(|e| ExtractError::Decode {
                event: "connect".to_owned(),
                source: Box::new(e),
            })
    }

    /// The headers of the HTTP request that opened the connection.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{ConnectError, Handshake, Namespace};
    ///
    /// async fn check(handshake: Handshake) -> Result<(), ConnectError> {
    ///     match handshake.headers().get("x-api-key") {
    ///         Some(key) if key == "k-123" => Ok(()),
    ///         _ => Err(ConnectError::new("missing api key")),
    ///     }
    /// }
    /// # let _ = Namespace::new(|_: tongxun::Socket| async {}).auth(check);
    /// ```
    pub fn headers(&self) -> &http::HeaderMap {
        &self.raw.req_parts().headers
    }

    /// The value of query parameter `name` in the connection URL (`io(url, { query: {...} })`).
    ///
    /// # Examples
    /// ```
    /// use tongxun::{ConnectError, Handshake, Namespace};
    ///
    /// async fn check(handshake: Handshake) -> Result<(), ConnectError> {
    ///     match handshake.query("room") {
    ///         Some(room) => handshake.store().set("room", &room).map_err(|e| ConnectError::new(e.to_string())),
    ///         None => Err(ConnectError::new("which room?")),
    ///     }
    /// }
    /// # let _ = Namespace::new(|_: tongxun::Socket| async {}).auth(check);
    /// ```
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find_map(|(key, value)| (key == name).then_some(value))
    }

    /// Every query parameter of the connection URL, in order, Engine.IO's own (`EIO`,
    /// `transport`) included, as Node's `handshake.query`.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.url()
            .query()
            .and_then(|query| serde_urlencoded::from_str(query).ok())
            .unwrap_or_default()
    }

    /// The URL of the request that opened the connection, such as
    /// `/socket.io/?EIO=4&transport=polling&t=abc` (Node's `handshake.url`).
    pub fn url(&self) -> &http::Uri {
        &self.raw.req_parts().uri
    }

    /// The client's address, when the server was served with connection info
    /// ([`Server::serve`](crate::Server::serve) does), as Node's `handshake.address`.
    pub fn address(&self) -> Option<SocketAddr> {
        self.raw
            .req_parts()
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
    }

    /// When the socket joined its namespace (Node's `handshake.issued`, in milliseconds).
    pub fn issued(&self) -> SystemTime {
        self.state.connected_at
    }

    /// [`issued`](Self::issued) as an HTTP date, such as `Tue, 01 Dec 2026 09:30:00 GMT`
    /// (Node's `handshake.time`, which JavaScript's `Date#toString` formats differently).
    pub fn time(&self) -> String {
        httpdate::fmt_http_date(self.state.connected_at)
    }

    /// Whether the connection was made over TLS, as far as the request tells (an `https` URL).
    /// [`Server::serve`](crate::Server::serve) serves plain TCP: behind a TLS-terminating proxy,
    /// read its `X-Forwarded-Proto` header instead.
    pub fn secure(&self) -> bool {
        self.url().scheme() == Some(&http::uri::Scheme::HTTPS)
    }

    /// Whether the request was cross-origin, that is carried an `Origin` header (Node's
    /// `handshake.xdomain`).
    pub fn xdomain(&self) -> bool {
        self.headers().contains_key(http::header::ORIGIN)
    }

    /// The namespace the client joins, such as `/tenant/42`.
    pub fn ns(&self) -> &str {
        self.raw.ns()
    }

    /// The socket's id.
    pub fn id(&self) -> Sid {
        self.raw.id
    }

    /// The socket's storage: what auth learns (a user id) is there for the handlers.
    pub fn store(&self) -> &Store {
        &self.state.store
    }
}
