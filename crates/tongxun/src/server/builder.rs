//! [`ServerBuilder`]: configuration, namespaces, hubs, routes and what wraps them, checked
//! and assembled into a [`Server`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::Route;
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

use super::{AllowFuture, Server, Wrapping};
use crate::config::Parser;
use crate::error::BuildError;
#[cfg(feature = "redis")]
use crate::io::RawAdapter;
use crate::io::{Io, Namespace, ServerShared, Socket};
use crate::{ClientBundle, Config};

enum NamespaceKind {
    Static,
    Dynamic,
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
    #[cfg(feature = "admin-ui")]
    admin_ui: Option<crate::admin::AdminUi>,
    shared_state: Option<crate::shared::SharedState>,
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
    pub(super) fn new() -> Self {
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
            #[cfg(feature = "admin-ui")]
            admin_ui: None,
            shared_state: None,
        }
    }

    /// Replaces the configuration (by default [`Config::default`]).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use tongxun::{Config, Server};
    ///
    /// let mut config = Config::default();
    /// config.ping_interval = Duration::from_secs(10);
    /// config.max_payload = 64 * 1024;
    /// let server = Server::builder().config(config).build();
    /// ```
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Gives every handler the app's `state` of type `T`, as the [`State`](crate::State)
    /// extractor, and every part of the app as [`Io::state`](crate::Io::state): one value per
    /// type (a second of the same type replaces the first). Clone is called for each handler
    /// that asks: put what must be shared behind an `Arc`.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use tongxun::{Ack, Server, Socket, State};
    ///
    /// #[derive(Clone)]
    /// struct Motd(Arc<str>);
    ///
    /// let server = Server::builder()
    ///     .state(Motd("welcome".into()))
    ///     .namespace("/", |socket: Socket| async move {
    ///         socket.on("motd", |State(Motd(text)): State<Motd>, ack: Ack| async move {
    ///             ack.send(&*text)
    ///         });
    ///     })
    ///     .build();
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.states.insert(state);
        self
    }

    /// Adds namespace `path` (such as `/chat`); each socket that joins it is handed to
    /// `on_connect`.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Server, Socket};
    ///
    /// let server = Server::builder()
    ///     .namespace("/", |_: Socket| async {})
    ///     .namespace("/chat", |socket: Socket| async move {
    ///         socket.join("lobby").ok();
    ///     })
    ///     .build();
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Namespace, Server, Socket};
    ///
    /// let tenants = Namespace::new(|socket: Socket| async move {
    ///     let tenant = socket.ns().trim_start_matches("/tenant/").to_owned();
    ///     socket.emit("tenant", &tenant).ok();
    /// });
    /// let server = Server::builder().dynamic_namespace("/tenant/{id}", tenants).build();
    /// ```
    pub fn dynamic_namespace(mut self, pattern: impl Into<String>, namespace: Namespace) -> Self {
        self.namespaces
            .push((pattern.into(), namespace, NamespaceKind::Dynamic));
        self
    }

    /// The app's own axum routes, served beside Socket.IO, as an Express app serves its routes
    /// beside Node's `socket.io`.
    ///
    /// # Examples
    /// ```
    /// use axum::{Router, routing::get};
    /// use tongxun::Server;
    ///
    /// let server = Server::builder()
    ///     .routes(Router::new().route("/health", get(|| async { "ok" })))
    ///     .build();
    /// ```
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

    /// Shares `state` with the other nodes: in Redis when [`Config::redis_url`] is set, in
    /// memory otherwise (see [`crate::shared`]).
    ///
    /// # Examples
    /// ```
    /// let shared = tongxun::shared::SharedState::new();
    /// let server = tongxun::Server::builder().shared_state(shared.clone()).state(shared).build();
    /// ```
    pub fn shared_state(mut self, state: crate::shared::SharedState) -> Self {
        self.shared_state = Some(state);
        self
    }

    /// Serves the official Socket.IO Admin UI's namespace (see [`crate::admin`]).
    ///
    /// # Examples
    /// ```
    /// use tongxun::admin::AdminUi;
    ///
    /// let hash = "$2a$10$HXTz5fMnYUtnfvMQ6iQKJeP6RO38rOMnX6ozxHhQEbzXO19w/l3sq";
    /// let server = tongxun::Server::builder().admin_ui(AdminUi::basic_auth("admin", hash)).build();
    /// ```
    #[cfg(feature = "admin-ui")]
    pub fn admin_ui(mut self, admin: crate::admin::AdminUi) -> Self {
        self.admin_ui = Some(admin);
        self
    }

    /// Builds the server.
    ///
    /// # Panics
    /// Where [`try_build`](Self::try_build) returns an error: for a mistake in the program
    /// (a namespace registered twice, a pattern that is not valid), or a configuration read at
    /// run time that is wrong. Use `try_build` for configuration that comes from outside.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Server, Socket};
    ///
    /// let server = Server::builder().namespace("/", |_: Socket| async {}).build();
    /// let router = server.into_router(); // or `server.serve(listener, shutdown)`
    /// ```
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
        #[cfg_attr(not(feature = "admin-ui"), allow(unused_mut))]
        let mut shared = ServerShared::new(config.clone(), self.states);
        #[cfg(feature = "admin-ui")]
        let admin = match self.admin_ui {
            Some(ui) => {
                ui.check()?;
                let (admin, runner) = crate::admin::Admin::new(ui);
                shared.admin = Some(admin.clone());
                Some((admin, runner))
            }
            None => None,
        };
        let shared = Arc::new(shared);
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
                crate::bus::RedisBus::new(url, config.redis_cluster)
                    .map_err(|e| BuildError::InvalidRedisUrl(Box::new(e)))?,
            ),
            None => None,
        };
        #[cfg(feature = "redis")]
        let builder =
            builder.with_adapter::<RawAdapter>(crate::io::adapter::AdapterState::new(bus.as_ref()));
        let (layer, raw) = builder.build_layer();

        let mut namespaces = self.namespaces;
        #[cfg(feature = "admin-ui")]
        if let Some((admin, _)) = &admin {
            namespaces.push((
                admin.ui.namespace.clone(),
                admin.namespace(),
                NamespaceKind::Static,
            ));
            #[cfg(feature = "redis")]
            if let Some(bus) = &bus {
                admin.bus.set(bus.clone()).ok();
            }
        }
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
        #[cfg(feature = "redis")]
        if let (Some(state), Some(bus)) = (&self.shared_state, &bus) {
            state.share_through(bus);
        }

        #[cfg(feature = "metrics")]
        shared.meters.collect(crate::meters::Sources {
            server: Arc::downgrade(&shared),
            #[cfg(feature = "ws")]
            ws: self.ws.clone(),
            #[cfg(feature = "sse")]
            sse: self.sse.clone(),
            #[cfg(feature = "redis")]
            bus: bus.clone(),
        });
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
            #[cfg(feature = "admin-ui")]
            admin: admin
                .map(|(admin, runner)| (admin, runner, tokio_util::sync::CancellationToken::new())),
        })
    }
}

/// Refuses settings that ask for a cargo feature that is off.
pub(super) fn check_features(config: &Config) -> Result<(), BuildError> {
    let needs = [
        (
            config.redis_url.is_some(),
            "Config::redis_url",
            "redis",
            cfg!(feature = "redis"),
        ),
        (
            config.redis_cluster,
            "Config::redis_cluster",
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
        let redis_cluster = Config {
            redis_cluster: true,
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
            (redis_cluster, "redis", cfg!(feature = "redis")),
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
