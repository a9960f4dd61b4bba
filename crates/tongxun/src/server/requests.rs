//! What the server does to a request before socketioxide sees it: the app's `allow_request`,
//! refusing Engine.IO 3 unless allowed, and giving a handshake's head allocations of its own.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use super::AllowRequest;

/// Whether `uri` is an Engine.IO handshake: a request under the Socket.IO path that names no
/// session.
pub(super) fn is_handshake(uri: &http::Uri, path: &str) -> bool {
    uri.path().starts_with(path)
        && !uri
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sid=")))
}

/// What [`check_handshake`] needs.
#[derive(Clone)]
pub(super) struct Gate {
    pub(super) path: Arc<str>,
    pub(super) allow: AllowRequest,
    pub(super) meters: crate::meters::Meters,
}

/// Runs the app's `allow_request` on each handshake; a refusal is Node's `403`, code 4.
pub(super) async fn check_handshake(
    axum::extract::State(gate): axum::extract::State<Gate>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if !is_handshake(req.uri(), &gate.path) {
        return next.run(req).await;
    }
    let (head, body) = req.into_parts();
    if let Err(message) = (gate.allow)(head.clone()).await {
        tracing::debug!(uri = %head.uri, %message, "handshake refused by allow_request");
        gate.meters
            .handshake_refused(crate::meters::Refusal::AllowRequest);
        let body = serde_json::json!({ "code": 4, "message": message });
        return (http::StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    next.run(Request::from_parts(head, body)).await
}

/// Answers a request of an Engine.IO 3 client as engineioxide does when it is built without
/// Engine.IO 3 (and as Node does without `allowEIO3`).
#[cfg(feature = "eio3")]
pub(super) async fn refuse_eio3(
    axum::extract::State(path): axum::extract::State<Arc<str>>,
    req: axum::extract::Request,
) -> Result<axum::extract::Request, axum::response::Response> {
    use axum::response::IntoResponse;
    let uri = req.uri();
    // The first `EIO=` pair is the one engineioxide reads.
    let eio3 = uri.path().starts_with(&*path)
        && uri
            .query()
            .is_some_and(|q| q.split('&').find(|pair| pair.starts_with("EIO=")) == Some("EIO=3"));
    if !eio3 {
        return Ok(req);
    }
    Err((
        http::StatusCode::BAD_REQUEST,
        [(http::header::CONTENT_TYPE, "application/json")],
        r#"{"code":"5","message":"Unsupported protocol version"}"#,
    )
        .into_response())
}

/// Gives the head of an Engine.IO handshake request (one without a `sid`) allocations of its own.
///
/// hyper parses a request head in place: the URI and every header value are slices of the
/// connection's read buffer, which has grown to 16 KiB by then. Engine.IO keeps the handshake's
/// request parts for the whole session (`Socket::req_parts`), and with them that buffer: 16 KiB
/// held by every connected client for a few hundred bytes of head. Copying the head here lets
/// hyper's buffer go once the connection is upgraded.
pub(super) async fn detach_handshake_head(
    axum::extract::State(path): axum::extract::State<Arc<str>>,
    mut req: axum::extract::Request,
) -> axum::extract::Request {
    if !is_handshake(req.uri(), &path) {
        return req;
    }
    let uri = req.uri();
    if let Ok(copy) =
        http::Uri::from_maybe_shared(bytes::Bytes::copy_from_slice(uri.to_string().as_bytes()))
    {
        // axum keeps a clone of the URI in the extensions, which Engine.IO keeps too.
        if let Some(original) = req.extensions_mut().get_mut::<axum::extract::OriginalUri>() {
            original.0 = copy.clone();
        }
        *req.uri_mut() = copy;
    }
    for value in req.headers_mut().values_mut() {
        if let Ok(copy) = http::HeaderValue::from_bytes(value.as_bytes()) {
            let sensitive = value.is_sensitive();
            *value = copy;
            value.set_sensitive(sensitive);
        }
    }
    // What every namespace the client joins draws on: Engine.IO keeps these extensions for the
    // whole session.
    crate::io::ClientShare::attach(&mut req);
    req
}
