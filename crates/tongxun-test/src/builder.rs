//! Options for a client, and its way in: the Engine.IO session, then the namespace's answer to
//! CONNECT.

use std::net::SocketAddr;
use std::time::Duration;

use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_core::{Str, Value};
use socketioxide_parser_common::CommonParser;

use crate::client::TestClient;
use crate::engine::{Engine, Frame, Incoming};
use crate::error::HandshakeError;
use crate::packet::send;

/// How long a client waits for a connection, an acknowledgement or an event, unless
/// [`ClientBuilder::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the client reaches the server, as `socket.io-client`'s `transports` option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// One WebSocket. Defaults to this.
    #[default]
    WebSocket,
    /// HTTP long-polling only (no upgrade), as a client behind a proxy that drops WebSockets.
    Polling,
}

/// Options for a [`TestClient`]: the namespace, the auth payload, the transport.
///
/// # Examples
/// ```
/// use serde_json::json;
/// use tongxun::{Server, Socket};
/// use tongxun_test::{Transport, TestServer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::builder().namespace("/chat", |_: Socket| async {}).build();
/// let server = TestServer::start(server).await?;
/// let client = server
///     .client()
///     .namespace("/chat")
///     .auth(json!({ "token": "secret" }))
///     .transport(Transport::Polling)
///     .connect()
///     .await?;
/// assert!(client.connected());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect`"]
pub struct ClientBuilder {
    addr: SocketAddr,
    namespace: String,
    auth: Option<serde_json::Value>,
    transport: Transport,
    path: String,
    query: Vec<(String, String)>,
    timeout: Duration,
}

impl ClientBuilder {
    /// A client of the server at `addr`, for the `/` namespace over a WebSocket.
    pub fn new(addr: SocketAddr) -> Self {
        ClientBuilder {
            addr,
            namespace: "/".to_owned(),
            auth: None,
            transport: Transport::default(),
            path: "/socket.io".to_owned(),
            query: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The namespace to join, such as `/chat`. Defaults to `/`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        self.namespace = if namespace.starts_with('/') {
            namespace
        } else {
            format!("/{namespace}")
        };
        self
    }

    /// The auth payload of the CONNECT packet, as `socket.io-client`'s `auth` option.
    pub fn auth(mut self, auth: serde_json::Value) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The transport. Defaults to [`Transport::WebSocket`].
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The server's Socket.IO path. Defaults to `/socket.io`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into().trim_end_matches('/').to_owned();
        self
    }

    /// A query parameter added to the handshake request, as `socket.io-client`'s `query`.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// How long the client waits for the connection, for an acknowledgement
    /// ([`TestClient::emit_with_ack`]) and for an event ([`TestClient::next_event`]).
    /// Defaults to [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens an Engine.IO session and joins the namespace.
    ///
    /// # Errors
    /// [`HandshakeError::Refused`] when the namespace answers with `connect_error` (with its
    /// message and data); the other variants when the session could not be opened.
    pub async fn connect(self) -> Result<TestClient, HandshakeError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.connect_now())
            .await
            .map_err(|_| HandshakeError::Timeout)?
    }

    async fn connect_now(self) -> Result<TestClient, HandshakeError> {
        let mut query = vec![("EIO", "4")];
        query.push((
            "transport",
            match self.transport {
                Transport::WebSocket => "websocket",
                Transport::Polling => "polling",
            },
        ));
        query.extend(self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        let (engine, mut incoming) = match self.transport {
            Transport::WebSocket => {
                Engine::websocket(&format!("ws://{}{}/?{query}", self.addr, self.path)).await?
            }
            Transport::Polling => {
                Engine::polling(&format!("http://{}{}/?{query}", self.addr, self.path)).await?
            }
        };
        let ns = Str::from(self.namespace);
        let out = engine.outgoing();
        let auth = self
            .auth
            .map(|auth| Value::Str(Str::from(auth.to_string()), None));
        send(&out, Packet::connect(ns.clone(), auth));
        let sid = joined(&mut incoming, &ns).await?;
        Ok(TestClient::start(engine, incoming, ns, sid, self.timeout))
    }
}

/// Waits for the namespace's answer to CONNECT: the socket id, or the refusal.
async fn joined(incoming: &mut Incoming, ns: &Str) -> Result<String, HandshakeError> {
    let state = ParserState::default();
    while let Some(frame) = incoming.recv().await {
        let Frame::Text(text) = frame else { continue };
        if let Some(error) = text.strip_prefix('4') {
            // CONNECT_ERROR, which socketioxide's parser (a server's) does not read.
            let payload = if ns.as_str() == "/" {
                Some(error).filter(|p| !p.starts_with('/'))
            } else {
                error.strip_prefix(&format!("{ns},"))
            };
            if let Some(payload) = payload {
                let mut error: serde_json::Value =
                    serde_json::from_str(payload).unwrap_or_default();
                return Err(HandshakeError::Refused {
                    message: error["message"].as_str().unwrap_or_default().to_owned(),
                    data: error.get_mut("data").map(serde_json::Value::take),
                });
            }
            continue;
        }
        let decoded = CommonParser.decode_str(&ParseConfig::default(), &state, Str::from(text));
        if let Ok(Packet {
            inner: PacketData::Connect(Some(Value::Str(data, _))),
            ns: got,
        }) = decoded
            && got == *ns
        {
            let data: serde_json::Value = serde_json::from_str(data.as_str()).unwrap_or_default();
            return Ok(data["sid"].as_str().unwrap_or_default().to_owned());
        }
    }
    Err(HandshakeError::Closed)
}
