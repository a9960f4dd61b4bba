//! The HTTP side: checks an upgrade request (handshake, Origin, auth, subprotocol), answers
//! 101 or refuses it, and starts the connection task.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::auth::AuthError;
use super::connection;
use super::outbox::ClientShared;
use super::registry::HubInner;
use super::request::WsRequest;
use super::stats::Counters;

/// Why an upgrade request was refused.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("server is shutting down")]
    ShuttingDown,
    #[error("expected a websocket upgrade request")]
    NotUpgrade,
    #[error("unsupported websocket version")]
    Version,
    #[error("missing or invalid sec-websocket-key")]
    Key,
    #[error("origin not allowed")]
    Origin,
    #[error(transparent)]
    Unauthorized(AuthError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match &self {
            Refusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::NotUpgrade | Refusal::Version => StatusCode::UPGRADE_REQUIRED,
            Refusal::Key => StatusCode::BAD_REQUEST,
            Refusal::Origin => StatusCode::FORBIDDEN,
            Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        };
        let mut response = (status, self.to_string()).into_response();
        let headers = response.headers_mut();
        match self {
            Refusal::NotUpgrade => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            }
            Refusal::Version => {
                headers.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            Refusal::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// Answers a `GET` on the hub's path.
pub(crate) async fn handle(hub: Arc<HubInner>, request: Request) -> Response {
    match accept(&hub, request).await {
        Ok(response) => response,
        Err(refusal) => {
            let total = Counters::bump(&hub.counters.upgrades_refused);
            match &refusal {
                Refusal::ShuttingDown => {
                    tracing::debug!("websocket upgrade refused: shutting down")
                }
                refusal => {
                    tracing::warn!(%refusal, upgrades_refused = total, "websocket upgrade refused")
                }
            }
            refusal.into_response()
        }
    }
}

async fn accept(hub: &Arc<HubInner>, mut request: Request) -> Result<Response, Refusal> {
    if hub.is_shutting_down() {
        return Err(Refusal::ShuttingDown);
    }
    let headers = request.headers();
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(Refusal::NotUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(Refusal::Version);
    }
    let accept_key = match headers.get(header::SEC_WEBSOCKET_KEY) {
        // A base64-encoded 16-byte nonce is 24 characters long.
        Some(key) if key.len() == 24 => derive_accept_key(key.as_bytes()),
        _ => return Err(Refusal::Key),
    };
    let config = &hub.config;
    if !config.origin_allowed(headers.get(header::ORIGIN).map(HeaderValue::as_bytes)) {
        return Err(Refusal::Origin);
    }
    let protocol = select_protocol(&config.subprotocols, headers);
    let remote_addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let ws_request = WsRequest::with_remote_addr(
        request.uri().clone(),
        request.headers().clone(),
        remote_addr,
    );
    config
        .auth
        .check(&ws_request)
        .await
        .map_err(Refusal::Unauthorized)?;

    let on_upgrade = hyper::upgrade::on(&mut request);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    response_headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    // Base64 and a name copied from the request's own header: both valid header values.
    if let Ok(value) = HeaderValue::from_str(&accept_key) {
        response_headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Some(value) = protocol
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        response_headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }

    // The client's place in the broadcast log is taken now, before the 101 goes out: once the
    // client has its 101 it may tell others it is connected, and what is broadcast from then on
    // is for it, however late this connection's task gets to run (the task waits for the
    // upgraded connection, so for the 101 to be written, and then for a thread).
    let client = Arc::new(ClientShared::new(hub.next_id(), ws_request, protocol));
    let (broadcasts, bytes) = hub.broadcasts.reader();
    client.attach_log(broadcasts, bytes);
    let hub = hub.clone();
    let tasks = hub.tasks.clone();
    tasks.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "websocket upgrade did not complete");
                return;
            }
        };
        let socket = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(hub.config.protocol_config()),
        )
        .await;
        connection::run(hub, client, socket).await;
    });
    Ok(response)
}

/// Whether a comma-separated header contains `token` (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// The first of the hub's subprotocols that the client offers.
fn select_protocol(supported: &[String], headers: &HeaderMap) -> Option<String> {
    if supported.is_empty() {
        return None;
    }
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    supported
        .iter()
        .find(|p| offered.contains(&p.as_str()))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn header_tokens_are_matched_in_lists_and_without_case() {
        let h = headers(&[("connection", "keep-alive, Upgrade")]);
        assert!(has_token(&h, header::CONNECTION, "upgrade"));
        assert!(!has_token(&h, header::CONNECTION, "close"));
    }

    #[test]
    fn the_servers_preference_picks_the_subprotocol() {
        let supported = vec!["chat.v2".to_owned(), "chat.v1".to_owned()];
        let h = headers(&[("sec-websocket-protocol", "chat.v1, chat.v2")]);
        assert_eq!(select_protocol(&supported, &h).as_deref(), Some("chat.v2"));
        let h = headers(&[("sec-websocket-protocol", "other")]);
        assert_eq!(select_protocol(&supported, &h), None);
        assert_eq!(select_protocol(&[], &h), None);
    }
}
