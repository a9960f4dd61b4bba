//! Shared helpers for the integration tests: a server on `127.0.0.1:0` and a minimal
//! Socket.IO v5 client over WebSocket that speaks the wire protocol directly.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tongxun::Server;

#[cfg(feature = "redis")]
#[path = "redis.rs"]
pub mod redis;
#[path = "serve.rs"]
mod serve;
use serve::Running;
#[allow(unused_imports)] // each suite uses some
pub use serve::{init_tracing, logged};

/// Time any single step of a test may take before it is reported as hung.
pub const STEP: Duration = Duration::from_secs(10);

/// A server running on a free loopback port until it is shut down.
pub struct TestServer {
    pub addr: SocketAddr,
    pub io: tongxun::Io,
    running: Running,
}

impl TestServer {
    pub async fn start(server: Server) -> Self {
        let io = server.io();
        let running = Running::start(server).await;
        Self {
            addr: running.addr,
            io,
            running,
        }
    }

    /// Triggers graceful shutdown and waits until `serve` returned.
    pub async fn shutdown(self) {
        self.running.stop().await;
    }

    pub async fn client(&self, ns: &str) -> Client {
        Client::connect(self.addr, ns, None).await.expect("connect")
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`STEP`].
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("step timed out")
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A received Socket.IO packet, decoded enough for assertions.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    Connect(Value),
    ConnectError(Value),
    Disconnect,
    Event {
        event: String,
        args: Vec<Value>,
        ack: Option<u64>,
    },
    Ack {
        id: u64,
        args: Vec<Value>,
    },
}

/// A Socket.IO client on one namespace over a raw WebSocket.
pub struct Client {
    ws: Ws,
    ns: String,
    next_ack: u64,
    pub sid: String,
}

impl Client {
    /// Opens an Engine.IO session and joins `ns` with an optional auth payload; returns the
    /// CONNECT_ERROR payload as `Err` when refused.
    pub async fn connect(addr: SocketAddr, ns: &str, auth: Option<Value>) -> Result<Client, Value> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
        let mut client = Client {
            ws,
            ns: ns.to_owned(),
            next_ack: 0,
            sid: String::new(),
        };
        let open = client.recv_raw().await.expect("open packet");
        assert!(
            open.starts_with('0'),
            "expected an Engine.IO open packet, got {open}"
        );
        let auth = auth.map(|a| a.to_string()).unwrap_or_default();
        client
            .send_raw(format!("40{}{auth}", client.prefix()))
            .await;
        match client.recv().await.expect("connect answer") {
            Packet::Connect(data) => {
                client.sid = data["sid"].as_str().unwrap_or_default().to_owned();
                Ok(client)
            }
            Packet::ConnectError(data) => Err(data),
            other => panic!("unexpected answer to CONNECT: {other:?}"),
        }
    }

    fn prefix(&self) -> String {
        if self.ns == "/" {
            String::new()
        } else {
            format!("{},", self.ns)
        }
    }

    pub async fn send_raw(&mut self, text: String) {
        within(self.ws.send(Message::text(text))).await.unwrap();
    }

    /// The next Engine.IO message text, answering pings; `None` when the connection closed.
    pub async fn recv_raw(&mut self) -> Option<String> {
        loop {
            let msg = within(self.ws.next()).await?;
            match msg {
                Ok(Message::Text(text)) if text.as_str() == "2" => {
                    self.ws.send(Message::text("3")).await.ok();
                }
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next Socket.IO packet of this namespace; `None` when the connection closed.
    pub async fn recv(&mut self) -> Option<Packet> {
        loop {
            let text = self.recv_raw().await?;
            if text == "1" {
                return None; // Engine.IO close
            }
            if let Some(packet) = self.parse(&text) {
                return Some(packet);
            }
        }
    }

    fn parse(&self, text: &str) -> Option<Packet> {
        let body = text.strip_prefix('4')?;
        let kind = body.chars().next()?;
        let mut rest = &body[1..];
        if self.ns != "/" {
            rest = rest.strip_prefix(&format!("{},", self.ns))?;
        } else if rest.starts_with('/') {
            return None; // another namespace
        }
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let id = rest[..digits].parse::<u64>().ok();
        let payload: Value = if rest[digits..].is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&rest[digits..]).ok()?
        };
        Some(match kind {
            '0' => Packet::Connect(payload),
            '1' => Packet::Disconnect,
            '2' => {
                let mut args = payload.as_array().cloned().unwrap_or_default();
                let event = args.remove(0).as_str().unwrap_or_default().to_owned();
                Packet::Event {
                    event,
                    args,
                    ack: id,
                }
            }
            '3' => Packet::Ack {
                id: id?,
                args: payload.as_array().cloned().unwrap_or_default(),
            },
            '4' => Packet::ConnectError(payload),
            _ => return None,
        })
    }

    /// Emits `event` with `args` (a JSON array of arguments).
    pub async fn emit(&mut self, event: &str, args: Value) {
        let mut all = vec![json!(event)];
        all.extend(args.as_array().cloned().unwrap_or_default());
        let text = format!("42{}{}", self.prefix(), Value::Array(all));
        self.send_raw(text).await;
    }

    /// Emits `event` asking for an ack and waits for it, skipping other packets.
    pub async fn emit_with_ack(&mut self, event: &str, args: Value) -> Vec<Value> {
        let id = self.next_ack;
        self.next_ack += 1;
        let mut all = vec![json!(event)];
        all.extend(args.as_array().cloned().unwrap_or_default());
        let text = format!("42{}{id}{}", self.prefix(), Value::Array(all));
        self.send_raw(text).await;
        loop {
            match self
                .recv()
                .await
                .expect("connection closed while waiting for an ack")
            {
                Packet::Ack { id: got, args } if got == id => return args,
                _ => {}
            }
        }
    }

    /// Answers the server's ack `id` with `args`.
    pub async fn ack(&mut self, id: u64, args: Value) {
        let text = format!("43{}{id}{}", self.prefix(), args);
        self.send_raw(text).await;
    }

    /// Waits for the next event named `event`, skipping other packets.
    pub async fn expect_event(&mut self, event: &str) -> (Vec<Value>, Option<u64>) {
        loop {
            match self
                .recv()
                .await
                .expect("connection closed while waiting for an event")
            {
                Packet::Event {
                    event: got,
                    args,
                    ack,
                } if got == event => return (args, ack),
                _ => {}
            }
        }
    }

    /// Leaves the namespace and closes the connection.
    pub async fn close(mut self) {
        self.send_raw(format!("41{}", self.prefix())).await;
        self.ws.close(None).await.ok();
    }
}
