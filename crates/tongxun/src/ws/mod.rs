//! A plain WebSocket hub, for clients that do not speak Socket.IO: browsers' `WebSocket`, IoT
//! devices, command-line tools, any RFC 6455 library.
//!
//! Clients connect at [`WsConfig::path`] (`/ws` by default). Text and binary messages are
//! delivered as sent. The app handles connections and messages in Rust, and sends to one
//! client, to a topic or to everyone from anywhere it holds the [`WsHub`].
//!
//! # Quick start
//! ```no_run
//! use tongxun::ws::{WsClient, WsHub, WsMessage};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = WsHub::builder()
//!     .on_connect(|client: WsClient| async move { client.send("welcome") })
//!     .on_message(|client: WsClient, message: WsMessage| async move {
//!         client.broadcast_others(message); // to everyone else, text or binary as sent
//!     })
//!     .build();
//! let server = tongxun::Server::builder().ws(hub.clone()).build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//! ```js
//! const ws = new WebSocket("ws://localhost:3000/ws");
//! ws.onmessage = (event) => console.log(event.data); // "welcome", then what others send
//! ws.onopen = () => ws.send("hello everyone");
//! ```
//!
//! # Sending
//! [`WsHub::broadcast`], [`WsHub::broadcast_except`], [`WsHub::publish`] (a topic),
//! [`WsHub::send_to`] (one client), and from a handler [`WsClient::send`],
//! [`WsClient::broadcast_others`], [`WsClient::publish_others`]. None of them waits: a message
//! for some clients goes into each recipient's outgoing queue, a broadcast is appended once to a
//! log every connection reads, and each connection writes what it has at its own pace. What the
//! hub holds for one client is bounded in messages ([`WsConfig::queue_capacity`]) and in bytes
//! ([`WsConfig::max_queued_bytes`]); a client past either bound meets the
//! [`WsConfig::overflow_policy`] (by default it is closed with 1013). A [`WsMessage`] holds
//! shared bytes: serialize a broadcast once ([`WsMessage::json`]) and every recipient shares the
//! same buffer.
//!
//! # Topics from a client
//! With [`WsConfig::topic_commands`] on (the default), the hub itself handles two JSON text
//! frames, and answers each:
//!
//! | client sends                | hub answers                                        |
//! |-----------------------------|----------------------------------------------------|
//! | `{"subscribe":"news"}`      | `{"subscribed":"news"}`, or `{"error":"too many topics","subscribe":"news"}` |
//! | `{"unsubscribe":"news"}`    | `{"unsubscribed":"news"}`                          |
//! | `{"subscribe":"news","since":"<id>"}` | `{"subscribed":"news"}`, then the events after `<id>`: resume, on a hub bound to a cross-transport [`Hub`](crate::hub::Hub) with a history (see `docs/resume.md`) |
//!
//! Only a JSON object with exactly one of those keys (and `since`, with `subscribe`) and string
//! values is a command; every other frame goes to `on_message`. Topic names are 1 to [`MAX_TOPIC_LEN`] bytes; a client holds at
//! most [`WsConfig::max_topics_per_client`] topics. Clients cannot publish to a topic directly:
//! the app decides, in `on_message`, with [`WsClient::publish_others`] or [`WsHub::publish`].
//! To decide who may subscribe to what, turn the commands off and call
//! [`WsClient::subscribe`] from your handlers.
//!
//! # Admission
//! Before the upgrade, in this order: a request that is not a WebSocket handshake gets 426
//! (or 400); an `Origin` outside [`WsConfig::allowed_origins`] gets 403; a client refused by
//! [`WsConfig::auth`] (a query `token`, an `Authorization: Bearer` header, or any async check,
//! see [`WsAuth`]) gets 401; during shutdown, 503. Then the hub selects a subprotocol from
//! [`WsConfig::subprotocols`] and answers 101.
//!
//! # Liveness, limits and closing
//! | event                                               | what the hub does                            |
//! |-----------------------------------------------------|----------------------------------------------|
//! | no frame within [`WsConfig::pong_deadline`] after a ping | tears the connection down, [`WsStats::dead_peers`] |
//! | a message over [`WsConfig::max_message_size`]       | closes with 1009                               |
//! | invalid UTF-8 text / a protocol violation           | closes with 1007 / 1002                        |
//! | a full outgoing queue ([`WsConfig::queue_capacity`] messages or [`WsConfig::max_queued_bytes`] bytes) | [`OverflowPolicy`]: close with 1013 (default), or drop and count |
//! | a handler panics                                    | logs an error, closes with 1011                |
//! | [`WsClient::close`]                                 | closes with the app's code, after the queued messages |
//! | [`WsHub::shutdown`]                                 | closes every client with 1001                  |
//! | the client closes                                   | answers its close frame, ends the connection   |
//!
//! Closing is a handshake: after sending its close frame the hub keeps reading until the
//! client's reply, for at most [`WsConfig::close_timeout`]. After a protocol error it also
//! reads until the client closes the TCP connection, so that the close frame is not lost to a
//! reset.
//!
//! Counters of all this are in [`WsHub::stats`], and every event is logged with `tracing`
//! (`warn` for a client's misbehaviour, `error` for a bug on the server's side).
//!
//! # Inside
//! The files are layered: each uses only files of the layers before it (tests excepted).
//!
//! 1. Leaves, which use no other file here but leaves: `client_id.rs` ([`ClientId`]),
//!    `message.rs`, `request.rs`, `error.rs`, `stats.rs` ([`WsStats`] and the counters behind
//!    it), `close.rs` ([`WsDisconnectReason`], the close frame), `handlers.rs` (the handlers as
//!    stored, generic over what they are given), `auth.rs` and `config.rs` (with the per-client
//!    limits drawn from it).
//! 2. `broadcasts.rs`, the log every writer reads; `relay.rs`, the link to other nodes and its
//!    wire format (with `redis`).
//! 3. `outbox.rs`, one client's queue and closing state, filled by the hub and drained by its
//!    writer (`outbox/writer.rs`).
//! 4. `registry.rs`, the clients and topics of a hub and the fan-out into their outboxes.
//! 5. `client.rs`, the [`WsClient`] handle over the registry; `commands.rs`, the topic
//!    commands a client sends.
//! 6. `connection.rs`, one connection's reader and writer tasks; `upgrade.rs`, the HTTP
//!    handshake that starts them.
//! 7. `hub.rs`, the [`WsHub`] handle (and [`WsClient::hub`], which returns one); `builder.rs`,
//!    [`WsHubBuilder`] (and [`WsHub::builder`]).

mod auth;
mod broadcasts;
mod builder;
mod client;
mod client_id;
mod close;
mod commands;
mod config;
mod connection;
mod error;
mod handlers;
mod hub;
mod message;
mod outbox;
mod registry;
#[cfg(feature = "redis")]
mod relay;
mod request;
mod stats;
mod upgrade;

pub use auth::{AuthError, TOKEN_QUERY_PARAM, WsAuth};
pub use builder::WsHubBuilder;
pub use client::WsClient;
pub use client_id::ClientId;
pub use close::WsDisconnectReason;
#[cfg(feature = "sse")]
pub(crate) use commands::{Replay as CommandReplay, TopicCommands};
pub use config::{
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_QUEUED_BYTES,
    DEFAULT_MAX_TOPICS_PER_CLIENT, DEFAULT_OVERFLOW_POLICY, DEFAULT_PATH, DEFAULT_PING_INTERVAL,
    DEFAULT_PONG_DEADLINE, DEFAULT_QUEUE_CAPACITY, DEFAULT_READ_BUFFER_SIZE,
    DEFAULT_WRITE_BUFFER_SIZE, MAX_TOPIC_LEN, OverflowPolicy, WsConfig,
};
pub use error::{SubscribeError, WsSendError};
pub use hub::WsHub;
pub use message::{Utf8Bytes, WsMessage};
pub use request::WsRequest;
pub use stats::WsStats;

/// Close codes of RFC 6455, such as [`close_code::POLICY`] (1008), for [`WsClient::close`].
pub use axum::extract::ws::close_code;
