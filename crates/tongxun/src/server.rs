//! The server builder: mounts Socket.IO (and the WebSocket and SSE hubs) on an axum `Router`
//! and serves it with graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use socketioxide::layer::SocketIoLayer;
use tokio::net::TcpListener;
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

use crate::config::Parser;
use crate::error::{BuildError, ServeError};
use crate::io::{Io, Namespace, RawAdapter, ServerShared, Socket};
use crate::{ClientBundle, Config};

enum NamespaceKind {
    Static,
    Dynamic,
}

/// A layer the app wraps the whole service in, applied when the router is assembled.
type RouterLayer = Box<dyn FnOnce(Router) -> Router + Send>;

type AllowFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// The app's check of every handshake request (see [`ServerBuilder::allow_request`]).
type AllowRequest = Arc<dyn Fn(http::request::Parts) -> AllowFuture + Send + Sync>;

/// What the router is wrapped in, outermost last.
#[derive(Default)]
struct Wrapping {
    allow_request: Option<AllowRequest>,
    cors: Option<CorsLayer>,
    layers: Vec<RouterLayer>,
}

/// Builds a [`Server`]: configuration, namespaces, hubs and the app's own routes.
///
/// # Examples
/// ```no_run
/// use tongxun::{Data, Server, Socket};
///
/// async fn on_chat(socket: Socket) {
///     socket.on("say", |socket: Socket, Data(text): Data<String>| async move {
///         socket.emit("said", &text)
///     });
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::builder().namespace("/chat", on_chat).build();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct ServerBuilder {
    config: Config,
    namespaces: Vec<(String, Namespace, NamespaceKind)>,
    routes: Router,
    client_bundle: Option<ClientBundle>,
    wrapping: Wrapping,
    states: crate::io::States,
    routes_with: Vec<Box<dyn FnOnce(Io) -> Router + Send>>,
    #[cfg(feature = "ws")]
    ws: Option<crate::ws::WsHub>,
    #[cfg(feature = "sse")]
    sse: Option<crate::sse::SseHub>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .field(
                "namespaces",
                &self.namespaces.iter().map(|n| &n.0).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Replaces the configuration (by default [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Gives every handler the app's `state` of type `T`, as the [`State`](crate::State)
    /// extractor, and every part of the app as [`Io::state`](crate::Io::state): one value per
    /// type (a second of the same type replaces the first). Clone is called for each handler
    /// that asks: put what must be shared behind an `Arc`.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.states.insert(state);
        self
    }

    /// Adds namespace `path` (such as `/chat`); each socket that joins it is handed to
    /// `on_connect`.
    pub fn namespace<F, Fut>(self, path: impl Into<String>, on_connect: F) -> Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.namespace_with(path, Namespace::new(on_connect))
    }

    /// Adds namespace `path` with its auth step or dispatch mode (see [`Namespace`]).
    pub fn namespace_with(mut self, path: impl Into<String>, namespace: Namespace) -> Self {
        self.namespaces
            .push((path.into(), namespace, NamespaceKind::Static));
        self
    }

    /// Adds namespaces matching `pattern`, such as `/tenant/{id}`: a client may join
    /// `/tenant/42`, and [`Socket::ns`] tells which.
    ///
    /// # Panics
    /// [`build`](Self::build) panics when the pattern is not valid.
    pub fn dynamic_namespace(mut self, pattern: impl Into<String>, namespace: Namespace) -> Self {
        self.namespaces
            .push((pattern.into(), namespace, NamespaceKind::Dynamic));
        self
    }

    /// The app's own axum routes, served beside Socket.IO (the seed's Express integration).
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// Routes that need the server's [`Io`] (to broadcast, list sockets, read the app's
    /// state): `routes` is called with it when the server is built.
    ///
    /// # Examples
    /// ```
    /// use axum::{Router, routing::post};
    /// use tongxun::{Io, Server};
    ///
    /// let server = Server::builder()
    ///     .routes_with(|io: Io| {
    ///         Router::new().route(
    ///             "/announce",
    ///             post(move |text: String| async move {
    ///                 if let Some(all) = io.of("/") {
    ///                     all.emit("announcement", &text).await.ok();
    ///                 }
    ///             }),
    ///         )
    ///     })
    ///     .build();
    /// ```
    pub fn routes_with<F>(mut self, routes: F) -> Self
    where
        F: FnOnce(Io) -> Router + Send + 'static,
    {
        self.routes_with.push(Box::new(routes));
        self
    }

    /// Serves the `socket.io-client` browser bundle at `<path>/socket.io.js` (and
    /// `socket.io.min.js`), as Node's server does.
    pub fn client_bundle(mut self, bundle: ClientBundle) -> Self {
        self.client_bundle = Some(bundle);
        self
    }

    /// Answers cross-origin requests, preflights included, on every path: Node's `cors`
    /// option, with tower-http's [`CorsLayer`]. Without it no CORS header is sent, as in Node,
    /// and a browser page of another origin can reach the server only over WebSocket.
    ///
    /// # Examples
    /// ```
    /// use tower_http::cors::{AllowOrigin, CorsLayer};
    ///
    /// let origin = http::HeaderValue::from_static("https://app.example.com");
    /// let server = tongxun::Server::builder()
    ///     .cors(CorsLayer::new().allow_origin(AllowOrigin::exact(origin)).allow_credentials(true))
    ///     .build();
    /// ```
    pub fn cors(mut self, cors: CorsLayer) -> Self {
        self.wrapping.cors = Some(cors);
        self
    }

    /// Lets `allow` decide whether each Engine.IO handshake request (one that would open a
    /// session, over long polling or WebSocket) goes on: Node's `allowRequest`. An `Err`
    /// carrying a message refuses it with `403 Forbidden` and the body
    /// `{"code":4,"message":<message>}`, as Node does, before any session exists; the client
    /// sees a `connect_error`. Requests of an open session are not checked again.
    ///
    /// # Examples
    /// ```
    /// let server = tongxun::Server::builder()
    ///     .allow_request(|head: http::request::Parts| async move {
    ///         match head.headers.get(http::header::ORIGIN) {
    ///             Some(origin) if origin == "https://app.example.com" => Ok(()),
    ///             _ => Err("unknown origin".to_owned()),
    ///         }
    ///     })
    ///     .build();
    /// ```
    pub fn allow_request<F, Fut>(mut self, allow: F) -> Self
    where
        F: Fn(http::request::Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.wrapping.allow_request = Some(Arc::new(move |head| -> AllowFuture {
            Box::pin(allow(head))
        }));
        self
    }

    /// Wraps the whole service (Socket.IO, the hubs, the bundle and the app's routes) in a
    /// tower layer, such as tower-http's tracing or compression, while [`Server::serve`] keeps
    /// its graceful shutdown and timeouts. Layers added later wrap those added before, and all
    /// of them wrap [`cors`](Self::cors) and [`allow_request`](Self::allow_request).
    ///
    /// # Examples
    /// ```
    /// use tower_http::trace::TraceLayer;
    ///
    /// let server = tongxun::Server::builder().layer(TraceLayer::new_for_http()).build();
    /// ```
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.wrapping
            .layers
            .push(Box::new(move |router: Router| router.layer(layer)));
        self
    }

    /// Mounts a WebSocket hub.
    #[cfg(feature = "ws")]
    pub fn ws(mut self, hub: crate::ws::WsHub) -> Self {
        self.ws = Some(hub);
        self
    }

    /// Mounts a Server-Sent Events hub.
    #[cfg(feature = "sse")]
    pub fn sse(mut self, hub: crate::sse::SseHub) -> Self {
        self.sse = Some(hub);
        self
    }

    /// Builds the server.
    ///
    /// # Panics
    /// Where [`try_build`](Self::try_build) returns an error: for a mistake in the program
    /// (a namespace registered twice, a pattern that is not valid), or a configuration read at
    /// run time that is wrong. Use `try_build` for configuration that comes from outside.
    pub fn build(self) -> Server {
        self.try_build()
            .unwrap_or_else(|e| match std::error::Error::source(&e) {
                Some(source) => panic!("{e}: {source}"),
                None => panic!("{e}"),
            })
    }

    /// Builds the server, or tells why it cannot be built.
    ///
    /// # Errors
    /// See [`BuildError`]: a namespace registered twice, a dynamic pattern that is not valid,
    /// a `Config::redis_url` that is not a Redis URL, or a setting whose cargo feature is off.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{BuildError, Server};
    ///
    /// let twice = Server::builder()
    ///     .namespace("/chat", |_| async {})
    ///     .namespace("/chat", |_| async {})
    ///     .try_build();
    /// assert!(matches!(twice, Err(BuildError::DuplicateNamespace(path)) if path == "/chat"));
    /// ```
    pub fn try_build(self) -> Result<Server, BuildError> {
        let config = self.config;
        check_features(&config)?;
        let shared = Arc::new(ServerShared::new(config.clone(), self.states));
        let builder = socketioxide::SocketIo::builder()
            .req_path(config.path.clone())
            .ping_interval(config.ping_interval)
            .ping_timeout(config.ping_timeout)
            .max_payload(config.max_payload)
            .ws_max_message_size(usize::try_from(config.max_payload).unwrap_or(usize::MAX))
            .connect_timeout(config.connect_timeout)
            .ack_timeout(config.ack_timeout)
            .max_buffer_size(config.max_buffer_size)
            .ws_read_buffer_size(config.ws_read_buffer_size);
        let builder = match config.parser {
            Parser::Common => builder.with_parser(
                socketioxide::ParserConfig::common()
                    .max_incoming_binaries(config.max_binary_attachments)
                    .max_incoming_binary_buf_size(config.max_binary_bytes)
                    .packet_completion_timeout(config.binary_completion_timeout),
            ),
            // No attachments to bound: binary data is inside the packet, within `max_payload`.
            #[cfg(feature = "msgpack")]
            Parser::MsgPack => builder.with_parser(socketioxide::ParserConfig::msgpack()),
            #[cfg(not(feature = "msgpack"))]
            Parser::MsgPack => unreachable!("refused by check_features"),
        };
        #[cfg(feature = "redis")]
        let bus = match config.redis_url.as_deref() {
            Some(url) => Some(
                crate::bus::RedisBus::new(url)
                    .map_err(|e| BuildError::InvalidRedisUrl(Box::new(e)))?,
            ),
            None => None,
        };
        #[cfg(feature = "redis")]
        let builder =
            builder.with_adapter::<RawAdapter>(crate::io::adapter::AdapterState::new(bus.as_ref()));
        let (layer, raw) = builder.build_layer();

        let mut namespaces = self.namespaces;
        if config.default_namespace && !namespaces.iter().any(|(path, ..)| path == "/") {
            namespaces.push((
                "/".to_owned(),
                Namespace::new(|_| async {}),
                NamespaceKind::Static,
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some((path, ..)) = namespaces
            .iter()
            .find(|(path, ..)| !seen.insert(path.clone()))
        {
            return Err(BuildError::DuplicateNamespace(path.clone()));
        }
        #[cfg(feature = "redis")]
        let mut inits = Vec::new();
        for (path, namespace, kind) in namespaces {
            let dynamic = matches!(kind, NamespaceKind::Dynamic);
            let handler = namespace.into_handler(&path, dynamic, shared.clone());
            match kind {
                NamespaceKind::Static => {
                    #[cfg_attr(
                        not(feature = "redis"),
                        allow(unused_variables, clippy::let_unit_value)
                    )]
                    let init = raw.ns(path, handler);
                    #[cfg(feature = "redis")]
                    inits.push(init);
                }
                NamespaceKind::Dynamic => {
                    if let Err(e) = raw.dyn_ns(path.clone(), handler) {
                        return Err(BuildError::InvalidPattern {
                            pattern: path,
                            source: Box::new(e),
                        });
                    }
                }
            }
        }

        let mut routes = self.routes;
        #[cfg(feature = "redis")]
        #[cfg_attr(not(any(feature = "ws", feature = "sse")), allow(unused_mut))]
        let mut hubs_listening = Vec::new();
        #[cfg(feature = "ws")]
        if let Some(hub) = &self.ws {
            #[cfg(feature = "redis")]
            if let Some(bus) = &bus {
                hubs_listening.push(hub.share_through(bus));
            }
            routes = routes.merge(hub.router());
        }
        #[cfg(feature = "sse")]
        if let Some(hub) = &self.sse {
            #[cfg(feature = "redis")]
            if let Some(bus) = &bus {
                hubs_listening.push(hub.share_through(bus));
            }
            routes = routes.merge(hub.router());
        }

        let io = Io { raw, shared };
        for routes_of in self.routes_with {
            routes = routes.merge(routes_of(io.clone()));
        }
        let bundle = self.client_bundle.map(|bundle| bundle.router(&config.path));
        Ok(Server {
            io,
            layer,
            routes,
            bundle,
            wrapping: self.wrapping,
            #[cfg(feature = "redis")]
            inits,
            #[cfg(feature = "redis")]
            hubs_listening,
            #[cfg(feature = "ws")]
            ws: self.ws,
            #[cfg(feature = "sse")]
            sse: self.sse,
        })
    }
}

/// Refuses settings that ask for a cargo feature that is off.
fn check_features(config: &Config) -> Result<(), BuildError> {
    let needs = [
        (
            config.redis_url.is_some(),
            "Config::redis_url",
            "redis",
            cfg!(feature = "redis"),
        ),
        (
            config.parser == Parser::MsgPack,
            "Config::parser = Parser::MsgPack",
            "msgpack",
            cfg!(feature = "msgpack"),
        ),
        (
            config.allow_eio3,
            "Config::allow_eio3",
            "eio3",
            cfg!(feature = "eio3"),
        ),
    ];
    match needs
        .into_iter()
        .find(|&(asked, .., built)| asked && !built)
    {
        Some((_, setting, feature, _)) => Err(BuildError::FeatureDisabled { setting, feature }),
        None => Ok(()),
    }
}

/// A tongxun server: Socket.IO, the hubs and the app's routes on one axum `Router`.
pub struct Server {
    io: Io,
    layer: SocketIoLayer<RawAdapter>,
    routes: Router,
    /// Routes answered before the Socket.IO layer sees the request.
    bundle: Option<Router>,
    wrapping: Wrapping,
    /// Namespaces whose adapter is still setting up (subscribing to Redis).
    #[cfg(feature = "redis")]
    inits: Vec<crate::io::adapter::InitRes>,
    /// Hubs still subscribing to their Redis channel.
    #[cfg(feature = "redis")]
    hubs_listening: Vec<tokio::sync::oneshot::Receiver<()>>,
    #[cfg(feature = "ws")]
    ws: Option<crate::ws::WsHub>,
    #[cfg(feature = "sse")]
    sse: Option<crate::sse::SseHub>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            config: Config::default(),
            namespaces: Vec::new(),
            routes: Router::new(),
            client_bundle: None,
            wrapping: Wrapping::default(),
            states: crate::io::States::default(),
            routes_with: Vec::new(),
            #[cfg(feature = "ws")]
            ws: None,
            #[cfg(feature = "sse")]
            sse: None,
        }
    }

    /// The handle to broadcast and inspect sockets from anywhere.
    pub fn io(&self) -> Io {
        self.io.clone()
    }

    /// Adds routes after the server was built, such as routes that need [`Server::io`].
    ///
    /// # Examples
    /// ```
    /// use axum::{Router, routing::get};
    ///
    /// let server = tongxun::Server::builder().build();
    /// let io = server.io();
    /// let server = server.merge(Router::new().route(
    ///     "/online",
    ///     get(move || { let io = io.clone(); async move { io.sockets("/").unwrap_or_default().len().to_string() } }),
    /// ));
    /// ```
    #[must_use]
    pub fn merge(mut self, routes: Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// The complete `Router`, for serving it yourself. Prefer [`serve`](Self::serve), which
    /// also disconnects clients cleanly on shutdown.
    pub fn into_router(self) -> Router {
        #[cfg(feature = "redis")]
        for init in self.inits {
            socketioxide_core::adapter::Spawnable::spawn(init);
        }
        let config = &self.io.shared.config;
        let path: Arc<str> = config.path.as_str().into();
        let app = self.routes.layer(self.layer);
        // Built in, Engine.IO 3 is accepted by socketioxide as soon as the feature is on: the
        // switch is ours.
        #[cfg(feature = "eio3")]
        let app = match config.allow_eio3 {
            true => app,
            false => app.layer(axum::middleware::map_request_with_state(
                path.clone(),
                refuse_eio3,
            )),
        };
        let mut app = app.layer(axum::middleware::map_request_with_state(
            path.clone(),
            detach_handshake_head,
        ));
        let Wrapping {
            allow_request,
            cors,
            layers,
        } = self.wrapping;
        if let Some(allow) = allow_request {
            app = app.layer(axum::middleware::from_fn_with_state(
                Gate { path, allow },
                check_handshake,
            ));
        }
        let mut app = match self.bundle {
            // The Socket.IO layer answers every request under its path itself: the bundle's
            // routes go in front of it.
            Some(bundle) => bundle.fallback_service(app),
            None => app,
        };
        if let Some(cors) = cors {
            app = app.layer(cors);
        }
        layers.into_iter().fold(app, |app, layer| layer(app))
    }

    /// Serves on `listener` until `shutdown` completes, then shuts down gracefully: every
    /// Socket.IO client is disconnected (it sees a disconnect, not an error), the hubs close
    /// their clients, in-flight handlers get up to `Config::shutdown_timeout` to finish, and
    /// the call returns. Connections still open then get `Config::shutdown_timeout` more to
    /// close before they are no longer waited for.
    ///
    /// Each connection speaks HTTP/1.1 (with upgrades to WebSocket) or HTTP/2 with prior
    /// knowledge. One that takes longer than `Config::header_read_timeout` to send a request
    /// head, or stays that long with no request in flight, is closed; a request being answered
    /// (a long poll, an SSE stream) is never cut. See `docs/security.md`.
    ///
    /// # Errors
    /// None so far: an error accepting a connection (such as running out of file descriptors)
    /// is logged and retried after a short pause, as the listener recovers once descriptors
    /// are released. [`ServeError`] leaves room for errors that end serving.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        self.serve_all([listener], shutdown).await
    }

    /// [`serve`](Self::serve) on several listeners at once, such as an IPv4 and an IPv6 one
    /// (on Linux, `[::]` alone takes IPv4 too, and binding `0.0.0.0` beside it fails):
    /// one set of namespaces, rooms and hubs for the clients of all of them, and one graceful
    /// shutdown.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use tokio::net::TcpListener;
    ///
    /// let server = tongxun::Server::builder().build();
    /// let listeners = [
    ///     TcpListener::bind("127.0.0.1:3000").await?,
    ///     TcpListener::bind("[::1]:3000").await?,
    /// ];
    /// server.serve_all(listeners, async { tokio::signal::ctrl_c().await.ok(); }).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`serve`](Self::serve).
    pub async fn serve_all(
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))] mut self,
        listeners: impl IntoIterator<Item = TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        // Namespaces exist once their adapter is set up: wait for that before accepting.
        #[cfg(feature = "redis")]
        for init in std::mem::take(&mut self.inits) {
            init.wait().await;
        }
        #[cfg(feature = "redis")]
        for listening in std::mem::take(&mut self.hubs_listening) {
            listening.await.ok();
        }
        let io = self.io.clone();
        let config = io.shared.config.clone();
        #[cfg(feature = "ws")]
        let ws = self.ws.clone();
        #[cfg(feature = "sse")]
        let sse = self.sse.clone();
        let grace = config.shutdown_timeout;
        let app = self.into_router();

        let graceful = async move {
            shutdown.await;
            tracing::info!("shutting down");
            #[cfg(feature = "ws")]
            if let Some(hub) = ws {
                hub.shutdown().await;
            }
            #[cfg(feature = "sse")]
            if let Some(hub) = sse {
                hub.shutdown().await;
            }
            // Every socket's disconnect listeners run, bounded by the shutdown timeout.
            if tokio::time::timeout(grace, io.close()).await.is_err() {
                tracing::warn!("disconnect listeners still running after the shutdown timeout");
                io.raw.close().await;
            }
            let tasks = &io.shared.tasks;
            tasks.close();
            if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
                tracing::warn!(
                    pending = tasks.len(),
                    "handlers still running after the shutdown timeout"
                );
            }
        };

        crate::serve::run(listeners.into_iter().collect(), app, &config, graceful).await;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Whether `uri` is an Engine.IO handshake: a request under the Socket.IO path that names no
/// session.
fn is_handshake(uri: &http::Uri, path: &str) -> bool {
    uri.path().starts_with(path)
        && !uri
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sid=")))
}

/// What [`check_handshake`] needs.
#[derive(Clone)]
struct Gate {
    path: Arc<str>,
    allow: AllowRequest,
}

/// Runs the app's `allow_request` on each handshake; a refusal is Node's `403`, code 4.
async fn check_handshake(
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
        let body = serde_json::json!({ "code": 4, "message": message });
        return (http::StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    next.run(Request::from_parts(head, body)).await
}

/// Answers a request of an Engine.IO 3 client as engineioxide does when it is built without
/// Engine.IO 3 (and as Node does without `allowEIO3`).
#[cfg(feature = "eio3")]
async fn refuse_eio3(
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
async fn detach_handshake_head(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_registered_twice_is_an_error_naming_it() {
        let built = Server::builder()
            .namespace("/chat", |_| async {})
            .dynamic_namespace("/chat", Namespace::new(|_| async {}))
            .try_build();
        assert!(matches!(built, Err(BuildError::DuplicateNamespace(p)) if p == "/chat"));
    }

    #[test]
    fn an_invalid_pattern_is_an_error_with_socketioxides_reason() {
        let built = Server::builder()
            .dynamic_namespace("/tenant/{id", Namespace::new(|_| async {}))
            .try_build();
        let Err(e @ BuildError::InvalidPattern { .. }) = built else {
            panic!("expected InvalidPattern");
        };
        assert!(std::error::Error::source(&e).is_some());
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_redis_url_that_is_not_one_is_an_error_with_its_source() {
        let config = Config {
            redis_url: Some("http://not-redis".to_owned()),
            ..Config::default()
        };
        let Err(e @ BuildError::InvalidRedisUrl(_)) = Server::builder().config(config).try_build()
        else {
            panic!("expected InvalidRedisUrl");
        };
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn settings_whose_feature_is_off_are_refused_by_name() {
        let redis = Config {
            redis_url: Some("redis://127.0.0.1:1".to_owned()),
            ..Config::default()
        };
        let msgpack = Config {
            parser: Parser::MsgPack,
            ..Config::default()
        };
        let eio3 = Config {
            allow_eio3: true,
            ..Config::default()
        };
        let cases = [
            (redis, "redis", cfg!(feature = "redis")),
            (msgpack, "msgpack", cfg!(feature = "msgpack")),
            (eio3, "eio3", cfg!(feature = "eio3")),
        ];
        for (config, feature, built_in) in cases {
            match check_features(&config) {
                Ok(()) => assert!(built_in, "{feature} is off but was accepted"),
                Err(BuildError::FeatureDisabled { feature: named, .. }) => {
                    assert!(!built_in, "{feature} is on but was refused");
                    assert_eq!(named, feature);
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}
