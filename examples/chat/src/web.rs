//! The page at `/`: plain HTML, CSS and JavaScript, embedded in the binary.
//!
//! The page loads the stock `socket.io-client` browser bundle from `/socket.io/socket.io.min.js`,
//! which tongxun serves (as Node's server does) from the copy `npm ci --prefix examples/chat`
//! installs at the version pinned in `examples/chat/package.json`; see `main.rs`.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// The routes of the page.
pub(crate) fn routes() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { page("application/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { page("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

/// One of the page's own files; revalidated on every load, so an edit shows on reload.
fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
