//! Authentication at upgrade: a refused request is answered with 401 before any 101.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::request::WsRequest;

/// Query parameter read by [`WsAuth::token`] and [`WsRequest::token`]: `token`.
pub const TOKEN_QUERY_PARAM: &str = "token";

type CheckFn = dyn Fn(WsRequest) -> BoxFuture<'static, Result<(), AuthError>> + Send + Sync;

/// How a client proves who it is before its connection is upgraded.
///
/// The check runs on the upgrade request; when it fails, the client gets
/// `401 Unauthorized` (with `WWW-Authenticate: Bearer` and the error's message as body) and no
/// WebSocket. A browser `WebSocket` cannot set headers, so it sends its token in the query
/// (`new WebSocket("wss://host/ws?token=...")`); other clients may use either.
///
/// # Examples
/// ```
/// use tongxun::ws::{AuthError, WsAuth, WsConfig, WsRequest};
///
/// let mut config = WsConfig::default();
/// // `?token=s3cret` or `Authorization: Bearer s3cret`:
/// config.auth = WsAuth::token("s3cret");
///
/// // Or any async check, such as a session lookup:
/// config.auth = WsAuth::custom(|request: WsRequest| async move {
///     match request.token().as_deref() {
///         None => Err(AuthError::Missing),
///         Some("alice-token") | Some("bob-token") => Ok(()),
///         Some(_) => Err(AuthError::Invalid),
///     }
/// });
/// ```
#[derive(Clone, Default)]
pub struct WsAuth {
    kind: AuthKind,
}

#[derive(Clone, Default)]
enum AuthKind {
    #[default]
    None,
    Token(Arc<str>),
    Custom(Arc<CheckFn>),
}

impl fmt::Debug for WsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            AuthKind::None => f.write_str("WsAuth::None"),
            AuthKind::Token(_) => f.write_str("WsAuth::Token(\"***\")"),
            AuthKind::Custom(_) => f.write_str("WsAuth::Custom(..)"),
        }
    }
}

impl WsAuth {
    /// Everyone may connect (the default).
    ///
    /// # Examples
    /// ```
    /// let auth = tongxun::ws::WsAuth::none();
    /// ```
    pub fn none() -> Self {
        Self {
            kind: AuthKind::None,
        }
    }

    /// Clients must present this shared token, in the `token` query parameter or as
    /// `Authorization: Bearer <token>`. The comparison takes the same time wherever the
    /// presented token differs.
    ///
    /// # Examples
    /// ```
    /// let auth = tongxun::ws::WsAuth::token("s3cret");
    /// ```
    ///
    /// # Panics
    /// When `token` is empty.
    pub fn token(token: impl Into<String>) -> Self {
        let token: String = token.into();
        assert!(
            !token.is_empty(),
            "the websocket auth token must not be empty"
        );
        Self {
            kind: AuthKind::Token(token.into()),
        }
    }

    /// Clients are checked by `check`, which sees the upgrade request and returns `Ok(())` to
    /// let the client in.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{AuthError, WsAuth, WsRequest};
    ///
    /// let auth = WsAuth::custom(|request: WsRequest| async move {
    ///     if request.headers().contains_key("x-api-key") {
    ///         Ok(())
    ///     } else {
    ///         Err(AuthError::Missing)
    ///     }
    /// });
    /// ```
    pub fn custom<F, Fut>(check: F) -> Self
    where
        F: Fn(WsRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), AuthError>> + Send + 'static,
    {
        Self {
            kind: AuthKind::Custom(Arc::new(move |request| Box::pin(check(request)))),
        }
    }

    /// Runs the check on an upgrade request.
    pub(crate) async fn check(&self, request: &WsRequest) -> Result<(), AuthError> {
        match &self.kind {
            AuthKind::None => Ok(()),
            AuthKind::Token(expected) => match request.token() {
                None => Err(AuthError::Missing),
                Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
                Some(_) => Err(AuthError::Invalid),
            },
            AuthKind::Custom(check) => check(request.clone()).await,
        }
    }
}

/// Why a client was refused at upgrade. Its message is the body of the 401 response.
///
/// # Examples
/// ```
/// use tongxun::ws::AuthError;
///
/// assert_eq!(AuthError::Missing.to_string(), "missing credentials");
/// assert_eq!(AuthError::Refused("account suspended".into()).to_string(), "account suspended");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carries no credentials.
    #[error("missing credentials")]
    Missing,
    /// The credentials are not valid.
    #[error("invalid credentials")]
    Invalid,
    /// Refused for the reason given, which is sent to the client.
    #[error("{0}")]
    Refused(String),
}

/// Compares two byte strings in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, authorization: Option<&str>) -> WsRequest {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        }
        WsRequest::new(uri.parse().unwrap(), headers)
    }

    #[tokio::test]
    async fn a_token_is_accepted_from_the_query_or_the_header() {
        let auth = WsAuth::token("s3cret");
        assert!(auth.check(&request("/ws?token=s3cret", None)).await.is_ok());
        assert!(
            auth.check(&request("/ws", Some("Bearer s3cret")))
                .await
                .is_ok()
        );
        assert!(matches!(
            auth.check(&request("/ws", None)).await,
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            auth.check(&request("/ws?token=s3creT", None)).await,
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            auth.check(&request("/ws", Some("Basic s3cret"))).await,
            Err(AuthError::Missing)
        ));
    }

    #[tokio::test]
    async fn a_custom_check_sees_the_request() {
        let auth = WsAuth::custom(|request: WsRequest| async move {
            match request.query("user").as_deref() {
                Some("ann") => Ok(()),
                _ => Err(AuthError::Refused("unknown user".into())),
            }
        });
        assert!(auth.check(&request("/ws?user=ann", None)).await.is_ok());
        let err = auth
            .check(&request("/ws?user=bob", None))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown user");
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn debug_hides_the_token() {
        assert_eq!(
            format!("{:?}", WsAuth::token("s3cret")),
            "WsAuth::Token(\"***\")"
        );
    }
}
