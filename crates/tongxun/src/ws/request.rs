//! The upgrade request as the auth check and the handlers see it.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Uri, header};

/// The HTTP request that opened a WebSocket connection: its URI (with the query), headers and
/// the peer's address.
///
/// The [auth check](super::WsAuth) receives it before the upgrade, and every
/// [`WsClient`](super::WsClient) keeps it ([`WsClient::request`](super::WsClient::request)).
/// Cloning it is cheap.
///
/// # Examples
/// ```
/// use tongxun::ws::WsRequest;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "Bearer abc".parse().unwrap());
/// let request = WsRequest::new("/ws?room=lobby&name=J%C3%BCrg".parse().unwrap(), headers);
/// assert_eq!(request.query("room").as_deref(), Some("lobby"));
/// assert_eq!(request.query("name").as_deref(), Some("Jürg"));
/// assert_eq!(request.bearer_token(), Some("abc"));
/// ```
#[derive(Debug, Clone)]
pub struct WsRequest {
    inner: Arc<RequestInner>,
}

#[derive(Debug)]
struct RequestInner {
    uri: Uri,
    headers: HeaderMap,
    remote_addr: Option<SocketAddr>,
}

impl WsRequest {
    /// A request with this URI and these headers (for tests of an auth check, for instance).
    ///
    /// # Examples
    /// ```
    /// let request = tongxun::ws::WsRequest::new("/ws?token=t".parse().unwrap(), http::HeaderMap::new());
    /// assert_eq!(request.token().as_deref(), Some("t"));
    /// ```
    pub fn new(uri: Uri, headers: HeaderMap) -> Self {
        Self::with_remote_addr(uri, headers, None)
    }

    pub(crate) fn with_remote_addr(
        uri: Uri,
        headers: HeaderMap,
        remote_addr: Option<SocketAddr>,
    ) -> Self {
        Self {
            inner: Arc::new(RequestInner {
                uri,
                headers,
                remote_addr,
            }),
        }
    }

    /// The request's URI, such as `/ws?token=abc`.
    ///
    /// # Examples
    /// ```
    /// let request = tongxun::ws::WsRequest::new("/ws?a=1".parse().unwrap(), http::HeaderMap::new());
    /// assert_eq!(request.uri().path(), "/ws");
    /// ```
    pub fn uri(&self) -> &Uri {
        &self.inner.uri
    }

    /// The request's headers.
    ///
    /// # Examples
    /// ```
    /// let request = tongxun::ws::WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new());
    /// assert!(request.headers().is_empty());
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The peer's address, when the server was started with connection info (as
    /// [`Server::serve`](crate::Server::serve) does).
    ///
    /// # Examples
    /// ```
    /// let request = tongxun::ws::WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new());
    /// assert_eq!(request.remote_addr(), None);
    /// ```
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr
    }

    /// The first value of query parameter `name`, percent-decoded.
    ///
    /// # Examples
    /// ```
    /// let request = tongxun::ws::WsRequest::new("/ws?q=a+b&q=c".parse().unwrap(), http::HeaderMap::new());
    /// assert_eq!(request.query("q").as_deref(), Some("a b"));
    /// assert_eq!(request.query("missing"), None);
    /// ```
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.inner.uri.query()?;
        let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = serde_urlencoded::from_str(query).ok()?;
        pairs
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    ///
    /// # Examples
    /// ```
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("authorization", "bearer xyz".parse().unwrap());
    /// let request = tongxun::ws::WsRequest::new("/ws".parse().unwrap(), headers);
    /// assert_eq!(request.bearer_token(), Some("xyz"));
    /// ```
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self
            .inner
            .headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }

    /// The client's token: the `token` query parameter (what a browser `WebSocket` can send),
    /// or else the bearer token of the `Authorization` header.
    ///
    /// # Examples
    /// ```
    /// let request = tongxun::ws::WsRequest::new("/ws?token=abc".parse().unwrap(), http::HeaderMap::new());
    /// assert_eq!(request.token().as_deref(), Some("abc"));
    /// ```
    pub fn token(&self) -> Option<String> {
        self.query(super::auth::TOKEN_QUERY_PARAM)
            .or_else(|| self.bearer_token().map(str::to_owned))
    }

    /// The `Origin` header, which browsers always send.
    ///
    /// # Examples
    /// ```
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("origin", "https://example.com".parse().unwrap());
    /// let request = tongxun::ws::WsRequest::new("/ws".parse().unwrap(), headers);
    /// assert_eq!(request.origin(), Some("https://example.com"));
    /// ```
    pub fn origin(&self) -> Option<&str> {
        self.inner.headers.get(header::ORIGIN)?.to_str().ok()
    }
}
