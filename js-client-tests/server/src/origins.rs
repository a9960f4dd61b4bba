//! Who may open a session, and from which page: CORS for pages served from `127.0.0.2`,
//! `allow_request` refusing handshakes that ask for it, and the page the browser test loads
//! from another origin.

use axum::response::Html;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The header a cross-origin page sends, which makes its browser ask first (a preflight).
pub(crate) const CLIENT_HEADER: &str = "x-tongxun-client";

/// Pages of `http://127.0.0.2:<any port>` may call the server with credentials and
/// [`CLIENT_HEADER`]; other origins get no CORS header, so their browser refuses.
pub(crate) fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(|origin, _| {
            origin
                .to_str()
                .is_ok_and(|origin| origin.starts_with("http://127.0.0.2:"))
        }))
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers([http::HeaderName::from_static(CLIENT_HEADER)])
        .allow_credentials(true)
}

/// Refuses a handshake whose query has `refuse=<message>`, with that message.
pub(crate) async fn allow_request(head: http::request::Parts) -> Result<(), String> {
    let query = head.uri.query().unwrap_or_default();
    match query
        .split('&')
        .find_map(|pair| pair.strip_prefix("refuse="))
    {
        Some(message) => Err(message.replace('+', " ")),
        None => Ok(()),
    }
}

/// `GET /cross-origin.html`: `connectTo(url)` joins `url`'s `/` namespace over long polling
/// with [`CLIENT_HEADER`] and resolves with what its handshake looked like to the server, or
/// with the `connect_error`.
pub(crate) fn routes() -> axum::Router {
    axum::Router::new().route(
        "/cross-origin.html",
        axum::routing::get(|| async {
            Html(format!(
                r#"<!doctype html>
<meta charset="utf-8">
<script src="/socket.io/socket.io.js"></script>
<script>
window.connectTo = (url) => new Promise((resolve) => {{
  const socket = io(url, {{
    transports: ["polling"],
    withCredentials: true,
    extraHeaders: {{ "{CLIENT_HEADER}": "browser" }},
    reconnection: false,
  }});
  socket.on("connect_error", (err) => resolve({{ error: err.message }}));
  socket.on("connect", async () => {{
    const handshake = await socket.emitWithAck("handshake");
    socket.disconnect();
    resolve({{ handshake }});
  }});
}});
</script>"#
            ))
        }),
    )
}
