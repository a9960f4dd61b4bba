//! Serving the stock `socket.io-client` browser bundle at `/socket.io/socket.io.js`, as Node's
//! server does, from an npm-installed copy.

use std::path::Path;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

/// The files of the bundle, as `socket.io-client` ships them in `dist/`.
const FILES: [&str; 6] = [
    "socket.io.js",
    "socket.io.min.js",
    "socket.io.esm.min.js",
    "socket.io.js.map",
    "socket.io.min.js.map",
    "socket.io.esm.min.js.map",
];

/// The `socket.io-client` browser bundle, read once from an npm install, served from memory
/// under the Socket.IO path (`/socket.io/socket.io.js`, `/socket.io/socket.io.min.js`, ...).
///
/// No third-party JavaScript is compiled into tongxun: the app points at the `dist/` folder of
/// a `socket.io-client` it installed with npm at a pinned version.
///
/// # Examples
/// ```no_run
/// use tongxun::{ClientBundle, Server};
///
/// # fn run() -> std::io::Result<()> {
/// let bundle = ClientBundle::from_dir("node_modules/socket.io-client/dist")?;
/// let server = Server::builder().client_bundle(bundle).build();
/// // <script src="/socket.io/socket.io.js"></script> now works.
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBundle {
    files: Vec<(&'static str, Bytes, HeaderValue)>,
}

impl ClientBundle {
    /// Reads the bundle from `dir` (a `socket.io-client/dist` folder). Files the folder lacks
    /// are answered 404, except `socket.io.js` and `socket.io.min.js`, which must be there.
    ///
    /// # Errors
    /// When `socket.io.js` or `socket.io.min.js` cannot be read.
    pub fn from_dir(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        for name in FILES {
            match std::fs::read(dir.join(name)) {
                Ok(content) => {
                    let content = Bytes::from(content);
                    files.push((name, content.clone(), etag(&content)));
                }
                Err(e) if name.ends_with(".map") || name.contains("esm") => {
                    tracing::debug!(%name, "client bundle file not served: {e}");
                }
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("{}: {e}", dir.join(name).display()),
                    ));
                }
            }
        }
        Ok(Self { files })
    }

    /// The routes serving the bundle under `base` (the Socket.IO path).
    pub(crate) fn router(&self, base: &str) -> Router {
        let base = base.trim_end_matches('/');
        let mut router = Router::new();
        for (name, content, etag) in &self.files {
            let (content, etag) = (content.clone(), etag.clone());
            let kind = if name.ends_with(".map") {
                "application/json"
            } else {
                "application/javascript; charset=utf-8"
            };
            router = router.route(
                &format!("{base}/{name}"),
                get(move |headers: HeaderMap| {
                    let (content, etag) = (content.clone(), etag.clone());
                    async move { serve(&headers, content, etag, kind) }
                }),
            );
        }
        router
    }
}

fn serve(request: &HeaderMap, content: Bytes, etag: HeaderValue, kind: &'static str) -> Response {
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, must-revalidate"),
    );
    if request.get(header::IF_NONE_MATCH) == Some(&etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), cache]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::ETAG, etag),
            cache,
        ],
        content,
    )
        .into_response()
}

/// A strong ETag from the content: its length and a 64-bit FNV-1a hash.
fn etag(content: &[u8]) -> HeaderValue {
    let hash = content.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    HeaderValue::from_str(&format!("\"{:x}-{hash:016x}\"", content.len()))
        .expect("an ETag is ASCII")
}
