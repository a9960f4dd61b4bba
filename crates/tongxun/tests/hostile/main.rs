//! The hostile-client suite: raw Engine.IO, Socket.IO, WebSocket and HTTP frames over real
//! sockets, trying to make the server hold what it must not. Every test asserts on state the
//! library exposes (counts, bytes, close codes), never on wall-clock timing or RSS. Each limit is
//! described in `docs/security.md`.

#[path = "../support/mod.rs"]
mod support;

// One module per area of the server.
mod http;
mod socketio;
mod sse;
mod ws;
