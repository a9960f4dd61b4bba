//! The Socket.IO layer over socketioxide: namespaces, sockets, event dispatch, storage and
//! broadcasting.

#[cfg(feature = "redis")]
pub(crate) mod adapter;
mod args;
mod broadcast;
mod dispatch;
mod extract;
mod handler;
mod handshake;
mod limits;
mod listeners;
mod namespace;
mod rooms;
mod socket;
mod socket_state;
mod state;
mod store;

use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use broadcast::{Broadcast, BroadcastError, RemoteSocket};
pub use extract::{Ack, Args, Bin, Data, Event, EventContext, ExtractError, FromEvent, TryData};
pub use handler::{EventHandler, HandlerError, IntoHandlerResult};
pub use handshake::Handshake;
pub use listeners::ListenerId;
pub use namespace::{ConnectError, Dispatch, Namespace};
pub use socket::Socket;
pub(crate) use socket::is_id_shaped;
pub(crate) use state::States;
pub use state::{Extension, State};
pub use store::{Store, StoreError};

pub(crate) use limits::{ClientShare, Refusal};
pub(crate) use namespace::ServerShared;
use socket_state::SocketState;

/// The adapter socketioxide runs with.
#[cfg(not(feature = "redis"))]
pub(crate) type RawAdapter = socketioxide::adapter::LocalAdapter;
/// The adapter socketioxide runs with: in memory or through Redis, chosen by `Config::redis_url`.
#[cfg(feature = "redis")]
pub(crate) type RawAdapter = adapter::TongxunAdapter;

/// A handle on the Socket.IO side of a server, usable anywhere: an axum route, a timer, a task.
///
/// Cheap to clone.
///
/// # Examples
/// A timer that tells every client of `/` the time, and of `/chat` how many are there:
/// ```
/// use std::time::Duration;
///
/// let server = tongxun::Server::builder().namespace("/chat", |_| async {}).build();
/// let io = server.io();
/// # let _ = async move {
/// loop {
///     tokio::time::sleep(Duration::from_secs(1)).await;
///     io.main().emit("tick", &std::time::SystemTime::now()).await.ok();
///     let online = io.sockets("/chat").unwrap_or_default().len();
///     if let Some(chat) = io.of("/chat") {
///         chat.emit("online", &online).await.ok();
///     }
/// }
/// # };
/// ```
#[derive(Clone)]
pub struct Io {
    pub(crate) raw: socketioxide::SocketIo<RawAdapter>,
    pub(crate) shared: Arc<ServerShared>,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").finish_non_exhaustive()
    }
}

impl Io {
    /// The app's state of type `T`, as given to
    /// [`ServerBuilder::state`](crate::ServerBuilder::state), for connect handlers, routes
    /// and tasks (handlers take it as [`State`]).
    ///
    /// # Examples
    /// ```
    /// #[derive(Clone)]
    /// struct Motd(&'static str);
    ///
    /// let server = tongxun::Server::builder().state(Motd("welcome")).build();
    /// let motd: Option<Motd> = server.io().state();
    /// assert_eq!(motd.map(|m| m.0), Some("welcome"));
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.shared.states.get()
    }

    /// The sockets of namespace `path` connected to this node, or `None` if no such namespace
    /// exists.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// fn count(io: &Io) -> usize {
    ///     io.sockets("/chat").map_or(0, |sockets| sockets.len())
    /// }
    /// ```
    pub fn sockets(&self, path: &str) -> Option<Vec<Socket>> {
        let ns = self.raw.of(path)?;
        Some(
            ns.sockets()
                .into_iter()
                .filter_map(|s| socket_of(&s))
                .collect(),
        )
    }

    /// Every socket of namespace `path` (Node's `io.of(path)`), or `None` if no such namespace
    /// exists; narrow it with [`Broadcast::to`] and the like.
    ///
    /// # Examples
    /// ```
    /// use axum::{Router, extract::State, routing::post};
    /// use tongxun::Io;
    ///
    /// // An HTTP route that broadcasts to the `/chat` namespace's `general` room.
    /// async fn announce(State(io): State<Io>, text: String) -> &'static str {
    ///     match io.of("/chat") {
    ///         Some(chat) => match chat.to("general").emit("announcement", &text).await {
    ///             Ok(()) => "sent",
    ///             Err(_) => "failed",
    ///         },
    ///         None => "no chat",
    ///     }
    /// }
    ///
    /// let server = tongxun::Server::builder().namespace("/chat", |_| async {}).build();
    /// let routes = Router::new().route("/announce", post(announce)).with_state(server.io());
    /// let server = server.merge(routes);
    /// ```
    pub fn of(&self, path: &str) -> Option<Broadcast> {
        let ops = self.raw.of(path)?;
        let meters = self.shared.meters.of_path(path);
        Some(Broadcast::new(ops, self.shared.clone(), meters))
    }

    /// Every socket of the main namespace `/` (Node's `io.emit`, `io.to(room)`).
    ///
    /// # Panics
    /// When the main namespace was switched off (`Config::default_namespace`) and not
    /// registered.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn shout(io: Io) {
    ///     io.main().emit("shout", "hello, everyone on /").await.ok();
    /// }
    /// ```
    pub fn main(&self) -> Broadcast {
        self.of("/").expect("the main namespace `/` exists")
    }

    /// The server's Prometheus metrics, for a route that serves them.
    ///
    /// # Examples
    /// ```
    /// let server = tongxun::Server::builder()
    ///     .routes_with(|io| io.metrics().router("/metrics"))
    ///     .build();
    /// # let _ = server;
    /// ```
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> crate::metrics::Metrics {
        crate::metrics::Metrics::new(self.shared.meters.clone())
    }

    /// How many deliveries were dropped because a recipient's outgoing queue was full.
    pub fn dropped_deliveries(&self) -> u64 {
        self.shared.dropped_deliveries.load(Ordering::Relaxed)
    }

    /// How many child namespaces of dynamic patterns (such as `/tenant/42` of `/tenant/{id}`)
    /// exist: each exists while a socket is connected to it, at most
    /// [`Config::max_dynamic_namespaces`](crate::Config::max_dynamic_namespaces) at once.
    pub fn dynamic_namespaces(&self) -> usize {
        self.shared.dynamic.len()
    }

    /// How many namespaces exist, static and dynamic.
    pub fn namespace_count(&self) -> usize {
        self.raw.nsps().len()
    }

    /// How many per-socket stores are alive: a store is freed when its socket is gone, so after
    /// every client left this returns to zero.
    pub fn live_stores(&self) -> usize {
        self.shared.live_stores.load(Ordering::Relaxed)
    }

    /// Disconnects every socket of this node as the server shuts down: each one's disconnect
    /// listeners run with [`DisconnectReason::ClosingServer`](crate::DisconnectReason), all at
    /// once, after the events it had already sent; then the transports close. Waits for both.
    pub(crate) async fn close(&self) {
        let closing = self.raw.nsps().into_iter().flat_map(|ns| {
            ns.sockets().into_iter().filter_map(|raw| {
                let state = raw.extensions.get::<Arc<SocketState>>()?;
                let raw = state.raw.upgrade()?;
                Some(state.close_for_shutdown(raw))
            })
        });
        futures_util::future::join_all(closing).await;
        self.raw.close().await;
    }

    /// The Admin UI's side, when it is on.
    #[cfg(all(feature = "admin-ui", feature = "redis"))]
    pub(crate) fn admin(&self) -> Option<&Arc<crate::admin::Admin>> {
        self.shared.admin.as_ref()
    }

    /// The underlying socketioxide handle, for what tongxun does not wrap.
    pub fn raw(&self) -> &socketioxide::SocketIo<RawAdapter> {
        &self.raw
    }
}

/// The tongxun socket behind a socketioxide socket reference.
pub(crate) fn socket_of(raw: &socketioxide::extract::SocketRef<RawAdapter>) -> Option<Socket> {
    let state = raw.extensions.get::<Arc<SocketState>>()?;
    let raw = state.raw.upgrade()?;
    Some(Socket::new(raw, state))
}
