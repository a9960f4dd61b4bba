//! The server: Socket.IO (and the WebSocket and SSE hubs) on an axum `Router`, served with
//! graceful shutdown. [`ServerBuilder`] (in `builder.rs`) assembles it; `requests.rs` holds
//! what is done to a request before socketioxide sees it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use socketioxide::layer::SocketIoLayer;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;

use crate::error::ServeError;
use crate::io::{Io, RawAdapter};

mod builder;
mod requests;

pub use builder::ServerBuilder;
#[cfg(feature = "eio3")]
use requests::refuse_eio3;
use requests::{Gate, check_handshake, detach_handshake_head};

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
    /// The Admin UI's task, started with the router, and what stops it.
    #[cfg(feature = "admin-ui")]
    admin: Option<(
        Arc<crate::admin::Admin>,
        crate::admin::Runner,
        tokio_util::sync::CancellationToken,
    )>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// Starts building a server.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Server, Socket};
    ///
    /// let server = Server::builder()
    ///     .namespace("/", |socket: Socket| async move {
    ///         socket.emit("hello", "world").ok();
    ///     })
    ///     .build();
    /// ```
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The handle to broadcast and inspect sockets from anywhere.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use tongxun::Server;
    /// let server = Server::builder().build();
    /// let io = server.io(); // keep it to broadcast from outside handlers
    /// tokio::spawn(async move {
    ///     io.main().emit("tick", &1).await.ok();
    /// });
    /// # let _ = server;
    /// # }
    /// ```
    pub fn io(&self) -> Io {
        self.io.clone()
    }

    /// The server's Prometheus metrics (as [`Io::metrics`]): render them, mount them at a path
    /// of the app's, add the app's own.
    ///
    /// # Examples
    /// ```
    /// let server = tongxun::Server::builder().build();
    /// let metrics = server.metrics();
    /// let server = server.merge(metrics.router("/metrics"));
    /// # let _ = server;
    /// ```
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> crate::metrics::Metrics {
        self.io.metrics()
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
    /// also disconnects clients cleanly on shutdown and bounds slow and idle connections.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let router = tongxun::Server::builder().build().into_router();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(listener, router).await?;
    /// # Ok(()) }
    /// ```
    pub fn into_router(self) -> Router {
        #[cfg(feature = "redis")]
        for init in self.inits {
            socketioxide_core::adapter::Spawnable::spawn(init);
        }
        #[cfg(feature = "admin-ui")]
        if let Some((admin, runner, stop)) = self.admin {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(runner.run(self.io.clone(), admin, stop));
                }
                Err(_) => tracing::warn!("no Tokio runtime: the Admin UI is told nothing"),
            }
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
                Gate {
                    path,
                    allow,
                    meters: self.io.shared.meters.clone(),
                },
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
    /// # Examples
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = tongxun::Server::builder().namespace("/chat", |_| async {}).build();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// // Until Ctrl-C, then every client is disconnected cleanly.
    /// server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
    /// # Ok(()) }
    /// ```
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
        #[cfg(feature = "admin-ui")]
        let admin_stop = self.admin.as_ref().map(|(_, _, stop)| stop.clone());
        let app = self.into_router();

        let graceful = async move {
            shutdown.await;
            tracing::info!("shutting down");
            #[cfg(feature = "admin-ui")]
            if let Some(stop) = admin_stop {
                stop.cancel();
            }
            // Both hubs close their clients at once; each waits, bounded, for its connections.
            let ws_closed = async {
                #[cfg(feature = "ws")]
                if let Some(hub) = ws {
                    hub.shutdown().await;
                }
            };
            let sse_closed = async {
                #[cfg(feature = "sse")]
                if let Some(hub) = sse {
                    hub.shutdown().await;
                }
            };
            tokio::join!(ws_closed, sse_closed);
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
