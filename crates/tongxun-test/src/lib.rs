//! Test your [`tongxun`] handlers in Rust, the way a client sees them.
//!
//! [`TestServer`] serves a [`tongxun::Server`] on a free loopback port; [`TestClient`] is a
//! Socket.IO client that speaks Engine.IO 4 over a WebSocket or HTTP long-polling, as
//! `socket.io-client` 4 does. No Node, no hand-written frames: a test emits, waits for
//! acknowledgements and events, answers the server's acknowledgements, sends binary, joins
//! namespaces with an auth payload, and reads `connect_error`.
//!
//! # Testing your handlers
//! ```
//! use serde_json::json;
//! use tongxun::{Ack, ConnectError, Data, Handshake, Namespace, Server, Socket};
//! use tongxun_test::{HandshakeError, TestServer};
//!
//! /// The app under test: `/chat` wants a token, and greets by name.
//! fn app() -> Server {
//!     let chat = Namespace::new(|socket: Socket| async move {
//!         socket.on("greet", |Data(name): Data<String>, ack: Ack| async move {
//!             ack.send(&format!("hello, {name}"))
//!         });
//!     })
//!     .auth(|handshake: Handshake| async move {
//!         match handshake.auth::<serde_json::Value>() {
//!             Ok(auth) if auth["token"] == "secret" => Ok(()),
//!             _ => Err(ConnectError::new("bad token")),
//!         }
//!     });
//!     Server::builder().namespace_with("/chat", chat).build()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In your tests: #[tokio::test] async fn greets() { ... }
//! let server = TestServer::start(app()).await?;
//!
//! let client = server
//!     .client()
//!     .namespace("/chat")
//!     .auth(json!({ "token": "secret" }))
//!     .connect()
//!     .await?;
//! let answer: String = client.emit_with_ack("greet", "ada").await?;
//! assert_eq!(answer, "hello, ada");
//!
//! let refused = server.client().namespace("/chat").connect().await;
//! assert!(matches!(refused, Err(HandshakeError::Refused { message, .. }) if message == "bad token"));
//!
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! A test that wants to see what travels on the wire (to check a byte-level detail of the
//! protocol) still opens a socket and writes frames itself; everything a client observes
//! through `socket.io-client` is here.

mod builder;
mod client;
mod engine;
mod error;
mod event;
mod packet;
mod server;

pub use builder::{ClientBuilder, DEFAULT_TIMEOUT, Transport};
pub use client::{Closed, TestClient};
pub use error::{BoxError, ClientError, HandshakeError};
pub use event::Event;
pub use server::TestServer;
