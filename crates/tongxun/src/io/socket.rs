//! The socket handle handlers receive: who it is, its listeners, what it emits. Its rooms and
//! the broadcasts it starts are in `rooms.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide::extract::SocketRef;
use socketioxide::socket::{DisconnectReason, Sid};

use super::args::Outgoing;
use super::handler::{EventHandler, boxed};
use super::handshake::Handshake;
use super::listeners::{DisconnectFuture, ListenerId};
use super::socket_state::SocketState;
use super::store::Store;
use super::{Io, RawAdapter};
use crate::error::{AckError, SendError};
use crate::meters::{AckOutcome, Target};
use socketioxide::handler::FromMessageParts;

pub(crate) type RawSocket = socketioxide::socket::Socket<RawAdapter>;

/// Whether `room` has the shape of a socket id, and so is private to the socket of that id.
pub(crate) fn is_id_shaped(room: &str) -> bool {
    room.parse::<Sid>().is_ok()
}

/// A client connected to a namespace: register listeners, emit, acknowledge, join rooms and
/// keep per-socket data.
///
/// Cheap to clone; every clone is the same socket.
///
/// # Examples
/// ```
/// use tongxun::{Ack, Data, Socket};
///
/// async fn on_chat(socket: Socket) {
///     socket.on("say", |socket: Socket, Data(text): Data<String>, ack: Ack| async move {
///         socket.emit("echo", &text)?;
///         ack.send(&"delivered")
///     });
///     socket.once("hello", |socket: Socket| async move {
///         socket.emit("welcome", &()).ok();
///     });
/// }
/// # let _ = tongxun::Server::builder().namespace("/chat", on_chat);
/// ```
#[derive(Clone)]
pub struct Socket {
    pub(super) raw: Arc<RawSocket>,
    pub(super) state: Arc<SocketState>,
    /// What [`Socket::timeout`] set for the acknowledgements this handle asks for.
    ack_timeout: Option<Duration>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.raw.id)
            .field("ns", &self.raw.ns())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.raw, &other.raw)
    }
}

impl Socket {
    pub(crate) fn new(raw: Arc<RawSocket>, state: Arc<SocketState>) -> Self {
        Self {
            raw,
            state,
            ack_timeout: None,
        }
    }

    pub(crate) fn raw(&self) -> &Arc<RawSocket> {
        &self.raw
    }

    /// The socket's id. Every socket is also in a room of that name, so
    /// `io.of("/chat").unwrap().to(id)` reaches exactly this socket.
    pub fn id(&self) -> Sid {
        self.raw.id
    }

    /// The namespace path this socket is connected to, such as `/chat` or `/tenant/42`.
    pub fn ns(&self) -> &str {
        self.raw.ns()
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.raw.connected()
    }

    /// The HTTP request that opened the connection (headers, URI with its query).
    pub fn req_parts(&self) -> &http::request::Parts {
        self.raw.req_parts()
    }

    /// The transport in use (`Polling` or `Websocket`).
    pub fn transport(&self) -> socketioxide::TransportType {
        self.raw.transport_type()
    }

    /// The socket's key/value storage.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Data, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.store().set("nick", "anonymous").ok();
    ///     socket.on("nick", |socket: Socket, Data(nick): Data<String>| async move {
    ///         socket.store().set("nick", &nick)
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    // ---- listeners ----

    /// Adds a listener for `event`. Several listeners of one event all run, in registration order.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Ack, Data, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("add", |Data((a, b)): Data<(i64, i64)>, ack: Ack| async move {
    ///         ack.send(&(a + b))
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn on<H, T>(&self, event: impl AsRef<str>, handler: H) -> ListenerId
    where
        H: EventHandler<T>,
        T: 'static,
    {
        self.state
            .add_listener(Some(event.as_ref()), false, boxed(handler))
    }

    /// Adds a middleware that sees every event of this socket before its listeners (Node's
    /// `socket.use`): a place for per-event authorization or rate limiting. It takes the same
    /// arguments as a listener; when it returns an error (or its arguments do not extract), the
    /// event is refused: no listener runs, and the client's acknowledgement, if it asked for one,
    /// is answered `{"error": "<message>"}`. Middleware runs in the order it was added.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Event, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     let admin = false;
    ///     socket.middleware(move |Event(name): Event| async move {
    ///         if name.starts_with("admin:") && !admin {
    ///             return Err(format!("\"{name}\" needs an admin"));
    ///         }
    ///         Ok(())
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn middleware<H, T>(&self, handler: H)
    where
        H: EventHandler<T>,
        T: 'static,
    {
        self.state.add_middleware(boxed(handler));
    }

    /// Adds a listener for `event` that is removed after it ran once.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn on_connect(socket: Socket) {
    ///     // Only the first `hello` is answered.
    ///     socket.once("hello", |socket: Socket| async move { socket.emit("welcome", &()) });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn once<H, T>(&self, event: impl AsRef<str>, handler: H) -> ListenerId
    where
        H: EventHandler<T>,
        T: 'static,
    {
        self.state
            .add_listener(Some(event.as_ref()), true, boxed(handler))
    }

    /// Adds a catch-all listener: it sees every incoming event, before that event's own
    /// listeners (Node's `socket.onAny`). Take [`Event`](super::Event) for the name and
    /// [`Args`](super::Args) or [`Data`](super::Data) for the arguments.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Args, Event, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on_any(|Event(name): Event, args: Args| async move {
    ///         tracing::info!(%name, args = ?args.values(), "event received");
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn on_any<H, T>(&self, handler: H) -> ListenerId
    where
        H: EventHandler<T>,
        T: 'static,
    {
        self.state.add_listener(None, false, boxed(handler))
    }

    /// Adds a listener for the `message` event, which clients send with `socket.send(...)`.
    pub fn on_message<H, T>(&self, handler: H) -> ListenerId
    where
        H: EventHandler<T>,
        T: 'static,
    {
        self.on("message", handler)
    }

    /// Removes every listener of `event`; returns how many there were.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("typing", |socket: Socket| async move {
    ///         socket.broadcast().emit("typing", &socket.id().to_string()).await
    ///     });
    ///     socket.on("mute", |socket: Socket| async move {
    ///         socket.off("typing"); // this socket's `typing` goes nowhere from now on
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn off(&self, event: impl AsRef<str>) -> usize {
        self.state.remove_event(event.as_ref())
    }

    /// Removes one listener (of an event or a catch-all); returns whether it existed.
    pub fn off_listener(&self, id: ListenerId) -> bool {
        self.state.remove_listener(id)
    }

    /// Removes every catch-all listener; returns how many there were.
    pub fn off_any(&self) -> usize {
        self.state.remove_any()
    }

    /// How many listeners `event` has (catch-all listeners not counted).
    pub fn listener_count(&self, event: impl AsRef<str>) -> usize {
        self.state.listener_count(event.as_ref())
    }

    /// Adds a listener run when the socket disconnects, with the reason. The store and rooms are
    /// still readable there; the store is emptied after the last disconnect listener returned.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{DisconnectReason, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on_disconnect(|socket: Socket, reason: DisconnectReason| async move {
    ///         let nick: String = socket.store().get("nick").unwrap_or_default();
    ///         tracing::info!(%nick, %reason, "left");
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.state
            .add_disconnect(Arc::new(move |socket, reason| -> DisconnectFuture {
                Box::pin(handler(socket, reason))
            }));
    }

    // ---- emitting ----

    /// Sends `event` to this client. A tuple sends several arguments; [`bytes::Bytes`] values
    /// travel as binary attachments.
    ///
    /// # Errors
    /// When the payload cannot be serialized, the socket is closed, or its queue is full.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.emit("welcome", "hello").ok(); // one argument
    ///     socket.emit("position", &(12.5, -3.0)).ok(); // a tuple is two arguments
    ///     socket.emit("ready", &()).ok(); // no argument
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        event: impl AsRef<str>,
        data: &T,
    ) -> Result<(), SendError> {
        self.sent(event.as_ref(), data);
        self.state.ns.meters.emitted(Target::Socket);
        self.raw
            .emit(event, &Outgoing::of(data))
            .map_err(SendError::from)
    }

    /// Tells the Admin UI, when it is on, that the app emitted `event`.
    #[inline]
    #[cfg_attr(not(feature = "admin-ui"), allow(clippy::unused_self))]
    fn sent<T: Serialize + ?Sized>(&self, _event: &str, _data: &T) {
        #[cfg(feature = "admin-ui")]
        if let Some(feed) = self.state.ns.server.admin_feed() {
            feed.sent(self, _event, _data);
        }
    }

    /// Sends a `message` event (the client's `socket.on("message", ...)`).
    ///
    /// # Errors
    /// As [`emit`](Self::emit).
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.send("hello").ok(); // the client's `socket.on("message", ...)`
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), SendError> {
        self.emit("message", data)
    }

    /// The same socket, whose [`emit_with_ack`](Self::emit_with_ack) waits at most `timeout`
    /// (Node's `socket.timeout(ms)`; [`Broadcast::timeout`](super::Broadcast::timeout) is its counterpart for broadcasts).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use tongxun::Socket;
    ///
    /// async fn ask_name(socket: Socket) -> Result<String, tongxun::AckError> {
    ///     socket.timeout(Duration::from_millis(500)).emit_with_ack("name?", &()).await
    /// }
    /// ```
    #[must_use]
    pub fn timeout(&self, timeout: Duration) -> Socket {
        Socket {
            ack_timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// Sends `event` and waits for the client's acknowledgement, decoded as `R` (a tuple for
    /// several arguments), for at most [`timeout`](Self::timeout) or, without one, the
    /// configured `ack_timeout`.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn ask_name(socket: Socket) -> Result<String, tongxun::AckError> {
    ///     // JS: socket.on("name?", (cb) => cb("Ada"));
    ///     socket.emit_with_ack("name?", &()).await
    /// }
    /// ```
    ///
    /// # Errors
    /// [`AckError::Timeout`], [`AckError::Disconnected`], [`AckError::Decode`] when the answer is
    /// not an `R`, [`AckError::Send`] when the event could not be sent.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the answer; the event may already have been sent.
    pub async fn emit_with_ack<T, R>(&self, event: impl AsRef<str>, data: &T) -> Result<R, AckError>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let timeout = self
            .ack_timeout
            .unwrap_or(self.state.ns.server.config.ack_timeout);
        self.sent(event.as_ref(), data);
        let meters = &self.state.ns.meters;
        meters.emitted(Target::Socket);
        let wait = meters.ack_wait();
        let answer = match self
            .raw
            .timeout(timeout)
            .emit_with_ack::<_, R>(event, &Outgoing::of(data))
        {
            Ok(answer) => answer,
            Err(e) => {
                let e = match SendError::from(e) {
                    SendError::Closed => AckError::Disconnected,
                    e => AckError::Send(e),
                };
                wait.ended(AckOutcome::of(&e));
                return Err(e);
            }
        };
        // socketioxide leaves an abandoned acknowledgement to its timeout; end it on disconnect.
        let answer = tokio::select! {
            answer = answer => answer.map_err(AckError::from),
            () = self.state.closed() => Err(AckError::Disconnected),
        };
        wait.ended(match &answer {
            Ok(_) => AckOutcome::Answered,
            Err(e) => AckOutcome::of(e),
        });
        answer
    }

    /// What the client sent when it joined: its `auth` payload, the request's headers, query
    /// and URL, its address and when it connected (Node's `socket.handshake`).
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn on_connect(socket: Socket) {
    ///     let handshake = socket.handshake();
    ///     let lang = handshake.query("lang").unwrap_or_else(|| "en".to_owned());
    ///     socket.emit("hello", &format!("hello in {lang}")).ok();
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn handshake(&self) -> Handshake {
        Handshake::new(self.raw.clone(), self.state.clone())
    }

    /// Bytes of this client's received events that wait for, or run in, their handlers, over
    /// every namespace its connection joined; at most `Config::max_pending_bytes` (or one event,
    /// when that event alone is larger).
    pub fn pending_bytes(&self) -> usize {
        self.state.seat.client().pending_bytes()
    }

    /// Typed values this socket holds for the app, one per type, for as long as it is
    /// connected to its namespace: handlers take them as [`Extension`](crate::Extension).
    /// Where [`store`](Self::store) keeps JSON under string keys (readable by other sockets
    /// and across nodes with `fetch_sockets`), extensions keep any `Clone` Rust value on this
    /// node.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Ack, Extension, Socket};
    ///
    /// #[derive(Clone)]
    /// struct User(String);
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.extensions().insert(User("ada".to_owned()));
    ///     socket.on("whoami", |Extension(User(name)): Extension<User>, ack: Ack| async move {
    ///         ack.send(&name)
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn extensions(&self) -> &crate::Extensions {
        &self.raw.extensions
    }

    /// The server's handle, to reach other namespaces.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn on_connect(socket: Socket) {
    ///     let io = socket.io();
    ///     if let Some(admin) = io.of("/admin") {
    ///         admin.emit("joined", &socket.id().to_string()).await.ok();
    ///     }
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn io(&self) -> Io {
        let mut empty = socketioxide_core::Value::Str(String::new().into(), None);
        let raw = socketioxide::SocketIo::from_message_parts(&self.raw, &mut empty, &None)
            .unwrap_or_else(|never| match never {});
        Io {
            raw,
            shared: self.state.ns.server.clone(),
        }
    }

    /// Sends `event` to this client without caring whether it arrives (a typing indicator): a
    /// newer volatile event replaces one not sent yet. See [`Broadcast::volatile`](super::Broadcast::volatile).
    pub fn emit_volatile<T: Serialize + ?Sized>(&self, event: impl AsRef<str>, data: &T) {
        self.sent(event.as_ref(), data);
        self.raw.volatile().emit(event, &Outgoing::of(data)).ok();
    }

    /// Disconnects the socket from its namespace; the client sees `io server disconnect` and
    /// does not reconnect by itself.
    ///
    /// # Errors
    /// [`SendError::Closed`] when it was already disconnected.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("quit", |socket: Socket| async move {
    ///         socket.disconnect() // the client sees "io server disconnect"
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn disconnect(&self) -> Result<(), SendError> {
        SocketRef::from(self.raw.clone())
            .disconnect()
            .map_err(SendError::from)
    }
}
