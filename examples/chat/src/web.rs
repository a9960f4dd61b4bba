//! The page at `/` and the stock `socket.io-client` browser bundle it loads.
//!
//! The bundle is not committed: `npm ci --prefix examples/chat` installs the version pinned in
//! `examples/chat/package.json`, and the server reads its `dist/` folder once at startup.
//!
//! # Why `/vendor/` and not `/socket.io/socket.io.js`
//! Node's server hands out the bundle under its Engine.IO path. Here that path belongs to the
//! Socket.IO layer: socketioxide's engine answers every request under `/socket.io/` itself (with
//! a 400 for `/socket.io/socket.io.js`) and never passes it to the app's routes, and tongxun's
//! `Server` applies that layer around every route it serves. Serving the bundle in front of the
//! layer would mean giving up `Server::serve` and its graceful shutdown, so the page loads it
//! from `/vendor/socket.io.min.js` instead, with the same headers Node sends: a JavaScript
//! content type and an `ETag` to revalidate against (answered `304 Not Modified`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

/// The files of the bundle's `dist/` folder the page may load; only the first is required.
const BUNDLE_FILES: [&str; 4] = [
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.js",
    "socket.io.js.map",
];

const JAVASCRIPT: &str = "application/javascript; charset=utf-8";

/// The page's own files, embedded in the binary.
const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// The stock browser bundle, read into memory at startup.
#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    /// The package's version, as its `package.json` says.
    pub(crate) version: String,
    etag: HeaderValue,
    files: HashMap<&'static str, Bytes>,
}

impl Bundle {
    /// Reads the bundle from `dist`, the `dist/` folder of an installed `socket.io-client`.
    ///
    /// # Errors
    /// When `socket.io.min.js` or the package's `package.json` cannot be read, with a message
    /// that says how to install them.
    pub(crate) fn load(dist: &Path) -> anyhow::Result<Self> {
        let install = "install it with ./scripts/chat.sh or npm ci --prefix examples/chat \
                       (or point --bundle at the dist/ folder of socket.io-client)";
        let mut files = HashMap::new();
        for name in BUNDLE_FILES {
            match std::fs::read(dist.join(name)) {
                Ok(bytes) => {
                    files.insert(name, Bytes::from(bytes));
                }
                Err(e) if name == BUNDLE_FILES[0] => {
                    return Err(e).with_context(|| {
                        format!(
                            "the socket.io-client browser bundle is missing ({}): {install}",
                            dist.join(name).display()
                        )
                    });
                }
                Err(_) => {} // source maps and the unminified build are optional
            }
        }
        let manifest = dist.join("..").join("package.json");
        let version = std::fs::read(&manifest)
            .ok()
            .and_then(|text| serde_json::from_slice::<serde_json::Value>(&text).ok())
            .and_then(|json| json.get("version")?.as_str().map(str::to_owned))
            .with_context(|| {
                format!(
                    "cannot read the socket.io-client version from {}: {install}",
                    manifest.display()
                )
            })?;
        let etag = HeaderValue::from_str(&format!("\"socket.io-client-{version}\""))
            .with_context(|| format!("unusable socket.io-client version {version:?}"))?;
        Ok(Self {
            version,
            etag,
            files,
        })
    }
}

/// The routes of the page and the bundle.
pub(crate) fn routes(bundle: Bundle) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route("/app.js", get(|| async { page(JAVASCRIPT, APP_JS) }))
        .route(
            "/style.css",
            get(|| async { page("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/vendor/{file}", get(vendor))
        .with_state(bundle)
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

/// A file of the bundle, or `304 Not Modified` when the browser's copy is current.
async fn vendor(
    State(bundle): State<Bundle>,
    UrlPath(file): UrlPath<String>,
    request: HeaderMap,
) -> Response {
    let Some((name, body)) = bundle.files.get_key_value(file.as_str()) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let content_type = if name.ends_with(".map") {
        "application/json; charset=utf-8"
    } else {
        JAVASCRIPT
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=0"),
        ),
        (header::ETAG, bundle.etag.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if is_current(&request, &bundle.etag) {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, body.clone()).into_response()
    }
}

/// Whether the request's `If-None-Match` names `etag` (weakly or not) or `*`.
fn is_current(request: &HeaderMap, etag: &HeaderValue) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revalidation_matches_the_etag_only() {
        let etag = HeaderValue::from_static("\"socket.io-client-4.8.1\"");
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
            is_current(&headers, &etag)
        };
        assert!(with("\"socket.io-client-4.8.1\""));
        assert!(with("W/\"socket.io-client-4.8.1\""));
        assert!(with("\"other\", \"socket.io-client-4.8.1\""));
        assert!(with("*"));
        assert!(!with("\"socket.io-client-4.8.0\""));
        assert!(!is_current(&HeaderMap::new(), &etag));
    }

    #[test]
    fn a_missing_bundle_says_how_to_install_it() {
        let error = Bundle::load(Path::new("/nonexistent/dist")).unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("/nonexistent/dist/socket.io.min.js"),
            "{message}"
        );
        assert!(message.contains("./scripts/chat.sh"), "{message}");
        assert!(
            message.contains("npm ci --prefix examples/chat"),
            "{message}"
        );
    }
}
