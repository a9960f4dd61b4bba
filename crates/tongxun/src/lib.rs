//! # tongxun
//!
//! Socket.IO, WebSocket and Server-Sent Events from one axum server.
//!
//! The Socket.IO side is built on [socketioxide], so the stock `socket.io-client` works unchanged;
//! tongxun adds the API Rust apps program against: ordered event dispatch, listeners that can be
//! added and removed, acknowledgements that are never left hanging, per-socket storage, and the
//! WebSocket and SSE hubs beside it.
//!
//! # Quick start
//! ```no_run
//! use tongxun::{Ack, Data, Server, Socket};
//!
//! async fn on_connect(socket: Socket) {
//!     socket.on("echo", |Data(text): Data<String>, ack: Ack| async move { ack.send(&text) });
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder().namespace("/", on_connect).build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//!
//! # Namespaces and auth
//! A namespace (`/`, `/chat`, or a pattern such as `/tenant/{id}`) hands each socket that joins
//! it to its connect handler. `/` exists unless [`Config::default_namespace`] is off. An auth
//! step ([`Namespace::auth`]) sees the client's `auth` payload, headers and query in a
//! [`Handshake`]; refusing with a [`ConnectError`] sends the client a `connect_error` whose
//! message it sees as `err.message`. What auth learns goes into the socket's [`Store`].
//!
//! # Events and acknowledgements
//! [`Socket::on`] registers a listener: an async function whose arguments are extractors —
//! [`Socket`], [`Data<T>`](Data) (the arguments decoded with serde: a tuple for several),
//! [`TryData<T>`](TryData), [`Ack`], [`Event`], [`Args`], [`Bin`]. An event may have several
//! listeners; [`Socket::once`] removes itself after one call; [`Socket::off`] and
//! [`Socket::off_listener`] remove listeners; [`Socket::on_any`] sees every event before its own
//! listeners. [`Socket::send`] and [`Socket::on_message`] are the `message` event.
//!
//! ```
//! use tongxun::{Ack, Bin, Data, Socket};
//!
//! async fn on_connect(socket: Socket) {
//!     // JS: socket.emit("resize", 640, 480, (area) => ...)
//!     socket.on("resize", |Data((w, h)): Data<(u32, u32)>, ack: Ack| async move { ack.send(&(w * h)) });
//!     // JS: socket.emit("upload", "a.png", buffer)
//!     socket.on("upload", |Data(name): Data<String>, Bin(files): Bin| async move {
//!         println!("{name}: {} bytes", files.iter().map(|f| f.len()).sum::<usize>());
//!     });
//!     // Server to client, with the client's answer:
//!     socket.on("ready", |socket: Socket| async move {
//!         let name: Result<String, _> = socket.emit_with_ack("name?", &()).await;
//!         println!("{name:?}");
//!     });
//! }
//! # let _ = tongxun::Server::builder().namespace("/", on_connect);
//! ```
//!
//! **Ordering.** Events from one socket are handled one after the other, in arrival order, even
//! when a handler awaits (socketioxide alone runs each in its own task, and they finish out of
//! order). [`Namespace::dispatch`] makes the trade explicit: [`Dispatch::OrderedStart`] orders
//! only the start of handlers, as Node does, so that one awaiting a database or the client does
//! not hold back the next events, and [`Dispatch::Parallel`] orders nothing. No choice deadlocks
//! on the socket's own acknowledgements. Events a client sends while its connect handler still
//! runs wait for it. [`Socket::middleware`] sees every event before its listeners (Node's
//! `socket.use`) and may refuse it.
//!
//! **Failures never leave the client waiting.** When the payload does not decode into the
//! handler's types, the handler returns an error, or it panics, tongxun logs it and answers the
//! client's acknowledgement (if it asked for one and the handler had not answered) with
//! `{"error": "<message>"}`. An event no listener handles, or whose listeners all returned
//! without answering, is left to the client's own timeout, as Node does (so that its
//! `timeout()`, `ackTimeout` and `retries` work); `Config::answer_unhandled_acks` answers those
//! with an error too. Handlers return `()` or
//! `Result<(), E: Display>`; [`HandlerError`] lets `?` mix error types.
//!
//! # Storage
//! [`Socket::store`] holds string keys and serde values for the life of the socket (Socket.IO 0.9's
//! `socket.set(name, value)` / `socket.get(name)`): a typed `get` whose mismatch is an error, not a
//! panic; readable in the socket's disconnect listeners ([`Socket::on_disconnect`]); emptied
//! after them. Other sockets' stores are read through the sockets a selection lists:
//!
//! ```
//! use tongxun::{Ack, Data, Socket};
//!
//! async fn on_connect(socket: Socket) {
//!     socket.on("members", |socket: Socket, Data(room): Data<String>, ack: Ack| async move {
//!         let nicks: Vec<String> = socket
//!             .within(room)
//!             .sockets()
//!             .iter()
//!             .filter_map(|s| s.store().get("nick").ok())
//!             .collect();
//!         ack.send(&nicks)
//!     });
//! }
//! # let _ = tongxun::Server::builder().namespace("/", on_connect);
//! ```
//!
//! Typed values go elsewhere: the app's state, given once to
//! [`ServerBuilder::state`], reaches every handler as [`State<T>`](State), and a socket's own
//! Rust values, set with [`Socket::extensions`], reach its handlers as
//! [`Extension<T>`](Extension). An extractor of your own implements
//! [`extract::FromEvent`].
//!
//! # Rooms and broadcasting
//! Every socket is in a room named by its id, so `to(id)` is a private message;
//! [`Socket::join`], [`Socket::leave`] and [`Socket::leave_all`] manage the others. A
//! [`Broadcast`] selects sockets and sends to them, serialized once for all recipients:
//!
//! | Node | tongxun |
//! | --- | --- |
//! | `io.emit(...)` / `io.of("/chat").emit(...)` | `io.main().emit(...)` / `io.of("/chat")?.emit(...)` |
//! | `socket.broadcast.emit(...)` | `socket.broadcast().emit(...)` |
//! | `socket.to("room").emit(...)` | `socket.to("room").emit(...)` |
//! | `io.in("room").emit(...)` | `socket.within("room").emit(...)` |
//! | `.except("room")`, `.local`, `.volatile`, `.timeout(ms)` | the same methods |
//! | `io.timeout(ms).emitWithAck(...)` | `.timeout(d).emit_with_ack(...)`: one answer or [`AckError`] per socket |
//! | `socket.timeout(ms).emitWithAck(...)` | `socket.timeout(d).emit_with_ack(...)` |
//! | `fetchSockets`, `disconnectSockets`, `socketsJoin`, `socketsLeave` | `fetch_sockets`, `disconnect`, `join`, `leave` |
//!
//! The [`Io`] handle ([`Server::io`], [`Socket::io`], or the `Io` extractor) reaches any
//! namespace from anywhere: an axum route, a timer. A recipient whose outgoing queue is full
//! (a client that stopped reading) misses the message: it is counted
//! ([`Io::dropped_deliveries`]) and logged at most every 10 s, and never holds back the others
//! (see `docs/security.md`).
//!
//! # WebSocket, SSE, and one publish for all three
//! The [`ws`] hub serves plain WebSocket clients and the [`sse`] hub `EventSource` clients on
//! the same server ([`ServerBuilder::ws`], [`ServerBuilder::sse`]). A [`hub::Hub`] ties them
//! to Socket.IO rooms: [`hub::Hub::publish`] reaches every subscriber of a topic, whatever its
//! transport, in the same order.
//!
//! ```
//! # #[cfg(all(feature = "ws", feature = "sse"))] {
//! use tongxun::hub::Hub;
//! use tongxun::{Server, sse::SseHub, ws::WsHub};
//!
//! let (ws, sse) = (WsHub::default(), SseHub::default());
//! let server = Server::builder()
//!     .namespace_with("/live", Hub::namespace()) // clients emit "subscribe" with a topic
//!     .ws(ws.clone())
//!     .sse(sse.clone())
//!     .build();
//! let hub = Hub::builder().socketio(server.io(), ["/live"]).ws(ws).sse(sse).build();
//! // later: hub.publish("prices", "tick", &serde_json::json!({ "eur": 1.08 })).await
//! # }
//! ```
//!
//! # Testing your handlers
//! The `tongxun-test` crate (a dev-dependency) serves a [`Server`] on a free loopback port and
//! connects a Socket.IO client written in Rust, over a WebSocket or long-polling: a test emits,
//! awaits acknowledgements and events, sends binary, and joins namespaces with an auth payload,
//! as `socket.io-client` would, with no Node and no hand-written frames.
//!
//! ```
//! use tongxun::{Ack, Data, Server, Socket};
//! use tongxun_test::TestServer;
//!
//! async fn on_connect(socket: Socket) {
//!     socket.on("add", |Data((a, b)): Data<(i64, i64)>, ack: Ack| async move {
//!         ack.send(&(a + b))
//!     });
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // #[tokio::test]
//! // async fn adds() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start(Server::builder().namespace("/", on_connect).build()).await?;
//! let client = server.connect("/").await?;
//! let sum: i64 = client.emit_with_ack("add", &(2, 3)).await?;
//! assert_eq!(sum, 5);
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # State the nodes share
//! [`shared::SharedState`] holds what an app must agree on across its nodes: names held by one
//! owner (nicknames), groups of members (who is in a room) and bounded logs whose ids increase
//! on every node (a room's history). It lives in memory, and in Redis once the server was given it
//! ([`ServerBuilder::shared_state`]) with [`Config::redis_url`] set; what a node held frees
//! itself when the node dies (see `shared` and `docs/scaling.md`).
//!
//! # Metrics
//! With the `metrics` feature, each [`Server`] keeps Prometheus metrics of every transport in a
//! registry of its own: connections per namespace and transport, events, acknowledgements,
//! handler durations, dropped deliveries, limit hits, the hubs' clients and messages, the Redis
//! bus. The app mounts them where it wants, e.g. `.routes_with(|io| io.metrics().router("/metrics"))`
//! (see `metrics` and `docs/operations.md`). Without the feature the hooks compile to nothing.
//!
//! # The Socket.IO Admin UI
//! With the `admin-ui` feature, `ServerBuilder::admin_ui` serves the admin namespace of the
//! official `@socket.io/admin-ui` (Node's `instrument()`): the UI lists every socket of every
//! node with its rooms, follows events as they happen and can emit, join, leave and disconnect.
//! `tongxun::admin::UiFiles` serves the UI's page itself from its npm package (see `admin` and
//! `docs/operations.md`).
//!
//! # Shutdown
//! [`Server::serve`] runs until its shutdown future completes, then disconnects every client,
//! closes the hubs, and gives in-flight handlers [`Config::shutdown_timeout`] to finish.
//!
//! # Feature flags
//! | feature | default | what |
//! | --- | --- | --- |
//! | `ws` | yes | the plain WebSocket hub ([`ws`]) |
//! | `sse` | yes | the Server-Sent Events hub ([`sse`]) |
//! | `redis` | no | several nodes sharing Socket.IO rooms and broadcasts through Redis or a Redis Cluster (`Config::redis_url`, `Config::redis_cluster`, see `docs/scaling.md`) |
//! | `msgpack` | no | the MessagePack parser for `socket.io-msgpack-parser` clients ([`config::Parser::MsgPack`](config::Parser)) |
//! | `admin-ui` | no | the server side of the official Socket.IO Admin UI (`tongxun::admin`, `docs/operations.md`) |
//! | `metrics` | no | Prometheus metrics of every transport, in a registry each server owns (`tongxun::metrics`, `docs/operations.md`) |
//! | `eio3` | no | `socket.io-client` 2.x (Engine.IO 3, Socket.IO protocol v4), allowed by `Config::allow_eio3` (off by default, as Node's `allowEIO3`; see `docs/compatibility.md`) |

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "admin-ui")]
pub mod admin;
#[cfg(feature = "redis")]
mod bus;
mod client_bundle;
pub mod config;
mod error;
pub mod hub;
mod io;
mod meters;
#[cfg(feature = "metrics")]
pub mod metrics;
mod runtime;
mod serve;
mod server;
pub mod shared;
#[cfg(feature = "sse")]
pub mod sse;
mod sync;
#[cfg(feature = "ws")]
pub mod ws;

/// A random number, different in each call and each process: names for a run of the SSE hub's
/// history and for a node on the Redis bus, not secrets.
#[cfg(any(feature = "sse", feature = "redis"))]
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

pub use client_bundle::ClientBundle;
pub use config::Config;
pub use error::{AckError, BoxError, BuildError, JoinError, SendError, ServeError};
pub use io::{
    Ack, Args, Bin, Broadcast, BroadcastError, ConnectError, Data, Dispatch, Event, Extension,
    HandlerError, Handshake, Io, ListenerId, Namespace, RemoteSocket, Socket, State, Store,
    StoreError, TryData,
};
pub use socketioxide::extensions::Extensions;

/// What handler arguments are extracted from: the extractors (also at the crate root) and the
/// trait and context to write one of your own.
///
/// # Examples
/// An extractor of the nickname a socket stored, refusing the event when it has none:
/// ```
/// use tongxun::extract::{EventContext, ExtractError, FromEvent};
/// use tongxun::{Data, Socket};
///
/// struct Nick(String);
///
/// impl FromEvent for Nick {
///     fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
///         ctx.socket()
///             .store()
///             .get("nick")
///             .map(Nick)
///             .map_err(|_| ExtractError::refused("pick a nickname first"))
///     }
/// }
///
/// async fn on_connect(socket: Socket) {
///     socket.on("say", |Nick(nick): Nick, Data(text): Data<String>| async move {
///         println!("{nick}: {text}");
///     });
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
pub mod extract {
    pub use crate::io::{
        Ack, Args, Bin, Data, Event, EventContext, Extension, ExtractError, FromEvent, State,
        TryData,
    };
}

/// What a handler is: any async function of extractors returning `()` or a `Result`.
pub mod handler {
    pub use crate::io::{EventHandler, HandlerError, IntoHandlerResult};
}
pub use runtime::runtime;
pub use server::{Server, ServerBuilder};
pub use socketioxide::TransportType;
pub use socketioxide::socket::{DisconnectReason, Sid};
pub(crate) use sync::lock;
