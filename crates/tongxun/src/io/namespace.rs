//! Namespaces: their connect handler, auth at connect, and dispatch mode.

use std::fmt::{self, Display};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::task::{Context, Poll, Waker};

use futures_util::FutureExt;
use serde::Serialize;
use socketioxide::handler::ConnectHandler;
use socketioxide_core::Value;
use tokio_util::task::TaskTracker;

use super::RawAdapter;
use super::dispatch::{Dispatcher, panic_message};
use super::handshake::Handshake;
use super::limits::{ClientShare, DynamicNamespaces, Seat};
use super::socket::{RawSocket, Socket};
use super::socket_state::SocketState;
use crate::Config;

/// What every namespace of one server shares.
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) config: Config,
    pub(crate) tasks: TaskTracker,
    pub(crate) live_stores: Arc<AtomicUsize>,
    pub(crate) dropped_deliveries: AtomicU64,
    /// Broadcast deliveries lost to full queues, logged at most once per interval.
    pub(crate) drop_log: super::broadcast::DropLog,
    /// The live children of the dynamic namespace patterns.
    pub(crate) dynamic: Arc<DynamicNamespaces>,
    /// The app's states ([`State`](crate::State)).
    pub(crate) states: super::States,
    /// The Admin UI's side, when the app asked for it.
    #[cfg(feature = "admin-ui")]
    pub(crate) admin: Option<Arc<crate::admin::Admin>>,
    /// What the server counts for its metrics.
    pub(crate) meters: crate::meters::Meters,
    /// The feeds of the cross-transport hubs bound to this server's namespaces.
    #[cfg(feature = "sse")]
    pub(crate) hub_feeds: std::sync::RwLock<Vec<crate::hub::feed::Feed>>,
}

impl ServerShared {
    pub(crate) fn new(config: Config, states: super::States) -> Self {
        Self {
            states,
            meters: crate::meters::Meters::new(),
            tasks: TaskTracker::new(),
            live_stores: Arc::new(AtomicUsize::new(0)),
            dropped_deliveries: AtomicU64::new(0),
            drop_log: super::broadcast::DropLog::default(),
            dynamic: Arc::new(DynamicNamespaces::new(
                config.max_dynamic_namespaces,
                config.max_namespace_len,
            )),
            config,
            #[cfg(feature = "admin-ui")]
            admin: None,
            #[cfg(feature = "sse")]
            hub_feeds: std::sync::RwLock::default(),
        }
    }

    /// The Admin UI's hooks, when it is on.
    #[cfg(feature = "admin-ui")]
    pub(crate) fn admin_feed(&self) -> Option<&crate::admin::Feed> {
        self.admin.as_deref().map(|admin| &admin.feed)
    }
}

/// What every socket of one namespace shares.
#[derive(Debug)]
pub(crate) struct NamespaceShared {
    pub(crate) path: String,
    pub(crate) dispatch: Dispatch,
    /// Registered as a pattern (`/tenant/{id}`): its children come and go with their sockets.
    pub(crate) dynamic: bool,
    pub(crate) server: Arc<ServerShared>,
    /// The namespace's metric handles, labelled with `path` (the pattern of a dynamic one).
    pub(crate) meters: crate::meters::NsMeters,
    /// The event names its sockets listen to.
    pub(crate) event_names: super::listeners::EventNames,
}

type ConnectFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type BoxedConnect = Arc<dyn Fn(Socket) -> ConnectFuture + Send + Sync>;
type AuthFuture = Pin<Box<dyn Future<Output = Result<(), ConnectError>> + Send>>;
type BoxedAuth = Arc<dyn Fn(Handshake) -> AuthFuture + Send + Sync>;

/// A namespace's connect handler, with an optional auth step and its dispatch mode.
///
/// # Examples
/// ```
/// use tongxun::{ConnectError, Handshake, Namespace, Socket};
///
/// #[derive(serde::Deserialize)]
/// struct Auth { token: String }
///
/// async fn check(handshake: Handshake) -> Result<(), ConnectError> {
///     let auth: Auth = handshake.auth().map_err(|_| ConnectError::new("missing token"))?;
///     if auth.token != "s3cret" {
///         return Err(ConnectError::new("invalid token"));
///     }
///     handshake.store().set("user", "ada").ok();
///     Ok(())
/// }
///
/// async fn on_admin(socket: Socket) { /* register listeners */ }
///
/// let server = tongxun::Server::builder()
///     .namespace_with("/admin", Namespace::new(on_admin).auth(check))
///     .build();
/// ```
#[derive(Clone)]
pub struct Namespace {
    on_connect: BoxedConnect,
    auth: Option<BoxedAuth>,
    dispatch: Dispatch,
}

/// How the events of one socket are handed to their handlers: the trade between ordering and
/// concurrency, chosen per namespace with [`Namespace::dispatch`].
///
/// | | a handler starts | the next event waits for | Node |
/// | --- | --- | --- | --- |
/// | [`Ordered`](Self::Ordered) | in arrival order | the previous handler to finish | — |
/// | [`OrderedStart`](Self::OrderedStart) | in arrival order | the previous handler's first `.await` | yes |
/// | [`Parallel`](Self::Parallel) | in any order | nothing | — |
///
/// None of them can deadlock on the socket's own acknowledgements: the client's answers to
/// `emit_with_ack` bypass the event queue. A handler that waits for *another event* of its own
/// socket does deadlock under `Ordered`: use `OrderedStart` or `Parallel` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dispatch {
    /// Each event's handlers finish before the next event's start, even when they await: what
    /// a handler writes is there for the next one, and replies leave in order. The default.
    #[default]
    Ordered,
    /// Handlers start in arrival order and run until their first `.await` before the next event
    /// is looked at, then go on concurrently, as in Node: a slow handler (a database call, an
    /// `emit_with_ack`) does not hold back the socket's next events, but their replies may
    /// overtake its own.
    OrderedStart,
    /// Every event is handled in a task of its own, in any order.
    Parallel,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("auth", &self.auth.is_some())
            .field("dispatch", &self.dispatch)
            .finish_non_exhaustive()
    }
}

impl Namespace {
    /// A namespace whose connected sockets are handed to `on_connect`.
    ///
    /// Events a client sends while `on_connect` still runs wait for it, so listeners registered
    /// there see every event, even when `on_connect` awaits.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Namespace, Server, Socket};
    ///
    /// async fn on_chat(socket: Socket) {
    ///     socket.join("lobby").ok();
    /// }
    ///
    /// let server = Server::builder().namespace_with("/chat", Namespace::new(on_chat)).build();
    /// ```
    pub fn new<F, Fut>(on_connect: F) -> Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            on_connect: Arc::new(move |socket| -> ConnectFuture { Box::pin(on_connect(socket)) }),
            auth: None,
            dispatch: Dispatch::Ordered,
        }
    }

    /// Runs `auth` before a client joins: `Err` refuses it with `connect_error`, whose message
    /// the client sees as `err.message` (and the client does not retry on its own).
    ///
    /// # Examples
    /// ```
    /// use tongxun::{ConnectError, Handshake, Namespace, Server, Socket};
    ///
    /// async fn check(handshake: Handshake) -> Result<(), ConnectError> {
    ///     match handshake.auth::<serde_json::Value>() {
    ///         Ok(auth) if auth["token"] == "secret" => Ok(()),
    ///         _ => Err(ConnectError::new("bad token")), // the client's `connect_error`
    ///     }
    /// }
    ///
    /// let admin = Namespace::new(|_: Socket| async {}).auth(check);
    /// let server = Server::builder().namespace_with("/admin", admin).build();
    /// ```
    pub fn auth<F, Fut>(mut self, auth: F) -> Self
    where
        F: Fn(Handshake) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.auth = Some(Arc::new(move |handshake| -> AuthFuture {
            Box::pin(auth(handshake))
        }));
        self
    }

    /// Chooses how the events of one socket reach their handlers (see [`Dispatch`]). Defaults
    /// to [`Dispatch::Ordered`].
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Dispatch, Namespace, Socket};
    ///
    /// async fn on_feed(socket: Socket) { /* listeners that await a database */ }
    ///
    /// let server = tongxun::Server::builder()
    ///     .namespace_with("/feed", Namespace::new(on_feed).dispatch(Dispatch::OrderedStart))
    ///     .build();
    /// ```
    pub fn dispatch(mut self, dispatch: Dispatch) -> Self {
        self.dispatch = dispatch;
        self
    }

    /// Handles each event in a task of its own: [`dispatch`](Self::dispatch) with
    /// [`Dispatch::Parallel`].
    pub fn parallel(self) -> Self {
        self.dispatch(Dispatch::Parallel)
    }

    pub(crate) fn into_handler(
        self,
        path: &str,
        dynamic: bool,
        server: Arc<ServerShared>,
    ) -> NamespaceHandler {
        NamespaceHandler {
            shared: Arc::new(NamespaceShared {
                path: path.to_owned(),
                dispatch: self.dispatch,
                dynamic,
                meters: server.meters.namespace(path),
                event_names: super::listeners::EventNames::default(),
                server,
            }),
            on_connect: self.on_connect,
            auth: self.auth,
        }
    }
}

/// A refusal at connect. The client receives it as a `connect_error` and sees the message as
/// `err.message`.
///
/// socketioxide 0.18 sends only a message, not Node's `err.data`. When data is attached with
/// [`with_data`](Self::with_data), `err.message` is the JSON text
/// `{"message": "...", "data": ...}`, which the client can `JSON.parse` (see
/// `docs/compatibility.md`).
///
/// # Examples
/// ```
/// use tongxun::ConnectError;
///
/// let plain = ConnectError::new("invalid token");
/// assert_eq!(plain.to_string(), "invalid token");
///
/// let detailed = ConnectError::new("banned").with_data(&serde_json::json!({ "until": 1700000000 }));
/// assert_eq!(detailed.to_string(), r#"{"data":{"until":1700000000},"message":"banned"}"#);
/// ```
#[derive(Debug, Clone)]
pub struct ConnectError {
    message: String,
    data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// Attaches structured data. A value that does not serialize is sent as `null`.
    pub fn with_data<T: Serialize + ?Sized>(mut self, data: &T) -> Self {
        self.data = Some(serde_json::to_value(data).unwrap_or_default());
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.data {
            None => f.write_str(&self.message),
            Some(data) => {
                let text = serde_json::json!({ "message": self.message, "data": data });
                write!(f, "{text}")
            }
        }
    }
}

impl std::error::Error for ConnectError {}

/// The socketioxide connect handler of a tongxun namespace.
#[derive(Clone)]
pub(crate) struct NamespaceHandler {
    shared: Arc<NamespaceShared>,
    on_connect: BoxedConnect,
    auth: Option<BoxedAuth>,
}

type MiddlewareFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), Box<dyn Display + Send>>> + Send + 'a>>;

/// Once the connect handler returned (or panicked): the socket's queued events may run.
fn connected(
    state: &Arc<SocketState>,
    sid: socketioxide::socket::Sid,
    outcome: std::thread::Result<()>,
) {
    if let Err(panic) = outcome {
        let ns = &state.ns.path;
        tracing::error!(%sid, %ns, panic = %panic_message(panic), "connect handler panicked");
    }
    state.trim_listeners();
    state.mark_ready();
}

impl ConnectHandler<RawAdapter, NamespaceHandler> for NamespaceHandler {
    fn call(&self, s: Arc<RawSocket>, _: Option<Value>) {
        let Some(state) = s.extensions.get::<Arc<SocketState>>() else {
            tracing::error!(sid = %s.id, ns = s.ns(), "socket connected without its state");
            return;
        };
        tracing::debug!(sid = %s.id, ns = s.ns(), "socket connected");
        state.mark_connected(&s);
        let socket = Socket::new(s, state.clone());
        #[cfg(feature = "admin-ui")]
        if let Some(feed) = self.shared.server.admin_feed() {
            feed.connected(&socket);
        }
        // The connect handler runs here up to its first `.await` that is not ready, and usually
        // to its end (it registers listeners): only one that waits goes on in a task, polled
        // again at once there, so that the wake-up registered with the no-op waker is not lost.
        let sid = socket.id();
        let mut connecting = AssertUnwindSafe((self.on_connect)(socket)).catch_unwind();
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut connecting).poll(&mut cx) {
            Poll::Ready(outcome) => connected(&state, sid, outcome),
            Poll::Pending => {
                self.shared.server.tasks.spawn(async move {
                    let outcome = connecting.await;
                    connected(&state, sid, outcome);
                });
            }
        }
    }

    fn call_middleware<'a>(
        &'a self,
        s: Arc<RawSocket>,
        auth: &'a Option<Value>,
    ) -> MiddlewareFuture<'a> {
        // Everything an event or a disconnect needs is in place before socketioxide sends the
        // CONNECT packet: the client may answer it with an event at once, and that event is read
        // on another thread, possibly before `call` runs (socketioxide drops an event that no
        // handler takes).
        let server = &self.shared.server;
        let client = ClientShare::of(&s);
        let registry = self.shared.dynamic.then_some(&server.dynamic);
        let seat = match Seat::take(
            &s,
            client.clone(),
            server.config.max_namespaces_per_client,
            registry,
        ) {
            Ok(seat) => seat,
            Err(refusal) => {
                let meters = &self.shared.meters;
                meters.refused(refusal.into());
                if let Some(limit) = crate::meters::Limit::of_refusal(refusal) {
                    meters.limit_hit(limit);
                }
                if client.first_namespace_refusal() {
                    tracing::warn!(sid = %s.id, ns = s.ns(), reason = refusal.message(), "client refused a namespace");
                }
                let refusal = ConnectError::new(refusal.message());
                return Box::pin(std::future::ready(Err(
                    Box::new(refusal) as Box<dyn Display + Send>
                )));
            }
        };
        let state = SocketState::new(self.shared.clone(), &s, seat, auth.clone());
        s.extensions.insert(state.clone());
        s.on_fallback(Dispatcher(state.clone()));
        s.on_disconnect(Dispatcher(state.clone()));
        s.join(s.id.to_string());
        let Some(check) = &self.auth else {
            return Box::pin(std::future::ready(Ok(())));
        };
        let (sid, ns) = (s.id, s.ns().to_owned());
        let meters = self.shared.meters.clone();
        let handshake = Handshake::new(s, state.clone());
        let fut = check(handshake);
        Box::pin(async move {
            let refusal = match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(refusal)) => {
                    tracing::debug!(%sid, %ns, %refusal, "connection refused");
                    meters.refused(crate::meters::Refusal::Auth);
                    refusal
                }
                Err(panic) => {
                    meters.refused(crate::meters::Refusal::AuthPanicked);
                    tracing::error!(%sid, %ns, panic = %panic_message(panic), "auth handler panicked");
                    ConnectError::new("internal server error")
                }
            };
            state.seat.release();
            Err(Box::new(refusal) as Box<dyn Display + Send>)
        })
    }
}
