//! The Socket.IO client: one namespace over one Engine.IO session.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_core::{Str, Value};
use socketioxide_parser_common::CommonParser;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::engine::{Engine, Frame, Incoming, Outgoing};
use crate::error::{ClientError, HandshakeError};

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

/// Why the client is no longer connected, as `socket.io-client` reports it to `disconnect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Closed {
    /// The server disconnected the socket from its namespace (`"io server disconnect"`).
    ServerDisconnect,
    /// The session ended under the namespace: the server closed it, or stopped answering
    /// (`"transport close"`).
    TransportClose,
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

        let shared = Arc::new(Shared::default());
        let (deliver, inbox) = mpsc::unbounded_channel();
        let (closing, closed) = watch::channel(None);
        let reader = tokio::spawn(read(
            incoming,
            Reader {
                ns: ns.clone(),
                shared: shared.clone(),
                out: out.clone(),
                deliver,
                closing,
            },
        ));
        Ok(TestClient {
            id: sid,
            ns,
            out,
            shared,
            inbox,
            held: VecDeque::new(),
            closed,
            timeout: self.timeout,
            reader,
            engine: Some(engine),
        })
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

type Handler = Arc<dyn Fn(Event) + Send + Sync>;

/// What the client and its reader task share.
#[derive(Default)]
struct Shared {
    acks: Mutex<HashMap<i64, oneshot::Sender<Value>>>,
    handlers: Mutex<HashMap<String, Handler>>,
    next_ack: AtomicI64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A Socket.IO client connected to one namespace, for tests.
///
/// It speaks Engine.IO 4 and the Socket.IO 5 protocol as `socket.io-client` 4 does, with
/// socketioxide's own packet parser: what a handler's [`Data`](tongxun::Data) would decode,
/// [`Event::data`] decodes, and [`bytes::Bytes`] in a payload travel as binary attachments.
/// Events arrive in order; those no [`on`](Self::on) handler takes wait in the client until
/// [`next_event`](Self::next_event) or [`wait_for`](Self::wait_for) reads them (a test client
/// keeps them all: it has no bound).
///
/// Dropping the client ends its session at once, as a client that vanished;
/// [`disconnect`](Self::disconnect) leaves the namespace first, as `socket.disconnect()`.
///
/// # Examples
/// ```
/// use tongxun::{Data, Server, Socket};
/// use tongxun_test::TestServer;
///
/// async fn on_connect(socket: Socket) {
///     socket.on("shout", |socket: Socket, Data(text): Data<String>| async move {
///         socket.emit("shouted", &text.to_uppercase())
///     });
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = TestServer::start(Server::builder().namespace("/", on_connect).build()).await?;
/// let mut client = server.connect("/").await?;
/// client.emit("shout", "hello")?;
/// let shouted: String = client.wait_for("shouted").await?.data()?;
/// assert_eq!(shouted, "HELLO");
/// # Ok(()) }
/// ```
pub struct TestClient {
    id: String,
    ns: Str,
    out: Outgoing,
    shared: Arc<Shared>,
    inbox: mpsc::UnboundedReceiver<Event>,
    held: VecDeque<Event>,
    closed: watch::Receiver<Option<Closed>>,
    timeout: Duration,
    reader: JoinHandle<()>,
    engine: Option<Engine>,
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient")
            .field("id", &self.id)
            .field("ns", &self.ns)
            .field("connected", &self.connected())
            .finish_non_exhaustive()
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl TestClient {
    /// A builder for a client of the server at `addr`.
    pub fn builder(addr: SocketAddr) -> ClientBuilder {
        ClientBuilder::new(addr)
    }

    /// The socket's id, as the server's [`Socket::id`](tongxun::Socket::id) shows it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The namespace the client joined.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Whether the client is still connected to its namespace.
    pub fn connected(&self) -> bool {
        self.closed.borrow().is_none()
    }

    /// Sends `event` with `data`: one argument, or several as a tuple (`&(1, "a")`), as the
    /// server's [`Socket::emit`](tongxun::Socket::emit) does.
    ///
    /// # Errors
    /// [`ClientError::Encode`] when `data` does not serialize, [`ClientError::Disconnected`]
    /// when the session has ended.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), ClientError> {
        let packet = Packet::event(self.ns.clone(), encode(data, Some(event))?);
        self.send(packet)
    }

    /// Sends `event` with `data` and waits for the server's acknowledgement, decoded as `R`
    /// (one argument as itself, several as a tuple).
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when no answer came within the client's timeout,
    /// [`ClientError::Decode`] when it does not decode as `R`, and the errors of
    /// [`emit`](Self::emit).
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Ack, Data, Server, Socket};
    /// use tongxun_test::TestServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = Server::builder()
    ///     .namespace("/", |socket: Socket| async move {
    ///         socket.on("add", |Data((a, b)): Data<(i64, i64)>, ack: Ack| async move {
    ///             ack.send(&(a + b))
    ///         });
    ///     })
    ///     .build();
    /// let server = TestServer::start(server).await?;
    /// let client = server.connect("/").await?;
    /// let sum: i64 = client.emit_with_ack("add", &(2, 3)).await?;
    /// assert_eq!(sum, 5);
    /// # Ok(()) }
    /// ```
    pub async fn emit_with_ack<T, R>(&self, event: &str, data: &T) -> Result<R, ClientError>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let mut packet = Packet::event(self.ns.clone(), encode(data, Some(event))?);
        let id = self.shared.next_ack.fetch_add(1, Ordering::Relaxed);
        packet.inner.set_ack_id(id);
        let (answer, answered) = oneshot::channel();
        lock(&self.shared.acks).insert(id, answer);
        if let Err(error) = self.send(packet) {
            lock(&self.shared.acks).remove(&id);
            return Err(error);
        }
        match tokio::time::timeout(self.timeout, answered).await {
            Ok(Ok(value)) => decode(&value, false),
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Err(_) => {
                lock(&self.shared.acks).remove(&id);
                Err(ClientError::Timeout)
            }
        }
    }

    /// Calls `handler` for every later `event`, on the client's reader task, instead of
    /// keeping the event for [`next_event`](Self::next_event). A second handler for the same
    /// event replaces the first.
    ///
    /// The handler cannot await; to answer after awaiting, send the [`Event`] to your test
    /// through a channel.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Server, Socket};
    /// use tongxun_test::TestServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = Server::builder()
    ///     .namespace("/", |socket: Socket| async move {
    ///         let answer: String = socket.emit_with_ack("name?", &()).await.unwrap_or_default();
    ///         socket.emit("hello", &answer).ok();
    ///     })
    ///     .build();
    /// let server = TestServer::start(server).await?;
    /// let mut client = server.client().connect().await?;
    /// client.on("name?", |event| {
    ///     event.ack("ada").ok();
    /// });
    /// let hello: String = client.wait_for("hello").await?.data()?;
    /// assert_eq!(hello, "ada");
    /// # Ok(()) }
    /// ```
    pub fn on<F>(&self, event: &str, handler: F)
    where
        F: Fn(Event) + Send + Sync + 'static,
    {
        lock(&self.shared.handlers).insert(event.to_owned(), Arc::new(handler));
    }

    /// The next event no [`on`](Self::on) handler took, of any name.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when none came within the client's timeout,
    /// [`ClientError::Disconnected`] when the client was disconnected and every event it
    /// received has been read.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is either returned or still kept.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        if let Some(event) = self.held.pop_front() {
            return Ok(event);
        }
        match tokio::time::timeout(self.timeout, self.inbox.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(ClientError::Disconnected),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// The next event named `event`; events of other names that arrive first are kept, in
    /// order, for later calls.
    ///
    /// # Errors
    /// As [`next_event`](Self::next_event).
    ///
    /// # Cancel safety
    /// Cancel safe: an event is either returned or still kept.
    pub async fn wait_for(&mut self, event: &str) -> Result<Event, ClientError> {
        if let Some(at) = self.held.iter().position(|held| held.name == event) {
            return Ok(self.held.remove(at).expect("position is in range"));
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                Ok(Some(got)) if got.name == event => return Ok(got),
                Ok(Some(other)) => self.held.push_back(other),
                Ok(None) => return Err(ClientError::Disconnected),
                Err(_) => return Err(ClientError::Timeout),
            }
        }
    }

    /// Waits until the client is no longer connected, and tells why.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when it is still connected after the client's timeout.
    pub async fn closed(&mut self) -> Result<Closed, ClientError> {
        let reason = tokio::time::timeout(self.timeout, self.closed.wait_for(Option::is_some))
            .await
            .map_err(|_| ClientError::Timeout)?;
        Ok(reason
            .ok()
            .and_then(|reason| *reason)
            .unwrap_or(Closed::TransportClose))
    }

    /// Leaves the namespace and closes the session, as `socket.disconnect()`: the server's
    /// disconnect handlers see the client's own disconnect.
    pub async fn disconnect(mut self) {
        let _ = self.send(Packet::disconnect(self.ns.clone()));
        if let Some(engine) = self.engine.take() {
            engine.close(self.timeout).await;
        }
    }

    fn send(&self, packet: Packet) -> Result<(), ClientError> {
        if self.connected() && send(&self.out, packet) {
            Ok(())
        } else {
            Err(ClientError::Disconnected)
        }
    }
}

/// An event the server sent.
pub struct Event {
    name: String,
    data: Value,
    ack: Option<AckTarget>,
}

struct AckTarget {
    id: i64,
    ns: Str,
    out: Outgoing,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("args", &self.args())
            .field("wants_ack", &self.wants_ack())
            .finish()
    }
}

impl Event {
    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event's arguments decoded as `T`: one argument as itself, several as a tuple, the
    /// binary attachments where `T` has [`bytes::Bytes`].
    ///
    /// # Errors
    /// [`ClientError::Decode`] when they do not decode as `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        decode(&self.data, true)
    }

    /// The event's arguments as JSON, binary attachments shown as their placeholders
    /// (`{"_placeholder":true,"num":0}`).
    pub fn args(&self) -> Vec<serde_json::Value> {
        let Value::Str(text, _) = &self.data else {
            return Vec::new();
        };
        let mut args: Vec<serde_json::Value> =
            serde_json::from_str(text.as_str()).unwrap_or_default();
        if !args.is_empty() {
            args.remove(0);
        }
        args
    }

    /// Whether the server waits for an acknowledgement of this event.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Answers the server's acknowledgement request with `data` (several arguments as a
    /// tuple).
    ///
    /// # Errors
    /// [`ClientError::NoAckRequested`] when the server asked for none,
    /// [`ClientError::Encode`] when `data` does not serialize, and
    /// [`ClientError::Disconnected`] when the session has ended.
    pub fn ack<T: Serialize + ?Sized>(self, data: &T) -> Result<(), ClientError> {
        let target = self.ack.ok_or(ClientError::NoAckRequested)?;
        let packet = Packet::ack(target.ns, encode(data, None)?, target.id);
        if send(&target.out, packet) {
            Ok(())
        } else {
            Err(ClientError::Disconnected)
        }
    }
}

/// The arguments of a payload (after the event's name when `with_event`) decoded as `T`. No
/// argument at all decodes as JSON `null` would: `()`, or `None`.
fn decode<T: DeserializeOwned>(value: &Value, with_event: bool) -> Result<T, ClientError> {
    let mut value = value.clone();
    CommonParser
        .decode_value(&mut value, with_event)
        .or_else(|error| {
            let Value::Str(text, _) = &value else {
                return Err(error);
            };
            let args: Vec<serde_json::Value> =
                serde_json::from_str(text.as_str()).unwrap_or_default();
            if args.len() == usize::from(with_event) {
                T::deserialize(serde_json::Value::Null).map_err(|_| error)
            } else {
                Err(error)
            }
        })
        .map_err(|e| ClientError::Decode(Box::new(e)))
}

/// `data` as a packet payload, with `event` first when it is an event. `()` is no argument at
/// all, as `socket.emit("ping")` sends, and as tongxun's own emits treat it.
fn encode<T: Serialize + ?Sized>(data: &T, event: Option<&str>) -> Result<Value, ClientError> {
    let encoded = if is_unit(data) {
        CommonParser.encode_value(&NoArguments, event)
    } else {
        CommonParser.encode_value(data, event)
    };
    encoded.map_err(|e| ClientError::Encode(Box::new(e)))
}

/// Whether `data` is `()` or a unit struct: of no size, and serialized as nothing.
fn is_unit<T: Serialize + ?Sized>(data: &T) -> bool {
    std::mem::size_of_val(data) == 0
        && matches!(serde_json::to_value(data), Ok(serde_json::Value::Null))
}

/// An empty argument list: a tuple of no elements.
struct NoArguments;

impl Serialize for NoArguments {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        serializer.serialize_tuple(0)?.end()
    }
}

/// Queues `packet` and its attachments; `false` once the session has ended.
fn send(out: &Outgoing, packet: Packet) -> bool {
    let Value::Str(text, attachments) = CommonParser.encode(packet) else {
        return false; // the common parser writes text packets only
    };
    out.send(Frame::Text(text.as_str().to_owned()))
        && attachments
            .into_iter()
            .flatten()
            .all(|data| out.send(Frame::Binary(data)))
}

/// What the reader task needs besides the incoming frames.
struct Reader {
    ns: Str,
    shared: Arc<Shared>,
    out: Outgoing,
    deliver: mpsc::UnboundedSender<Event>,
    closing: watch::Sender<Option<Closed>>,
}

/// Reads the session's packets until it ends: acknowledgements go to their waiting
/// [`TestClient::emit_with_ack`], events to their handler or the inbox.
async fn read(mut incoming: Incoming, reader: Reader) {
    let config = ParseConfig::default();
    let state = ParserState::default();
    let reason = loop {
        let Some(frame) = incoming.recv().await else {
            break Closed::TransportClose;
        };
        let decoded = match frame {
            Frame::Text(text) if text.starts_with('4') => continue, // CONNECT_ERROR, once joined
            Frame::Text(text) => CommonParser.decode_str(&config, &state, Str::from(text)),
            Frame::Binary(data) => CommonParser.decode_bin(&config, &state, data),
        };
        // An error is a binary packet still waiting for its attachments, or a packet this
        // client does not read: nothing to deliver yet.
        let Ok(packet) = decoded else { continue };
        if packet.ns != reader.ns {
            continue;
        }
        match packet.inner {
            PacketData::Event(data, ack) | PacketData::BinaryEvent(data, ack) => {
                let Ok(name) = CommonParser.read_event(&data).map(str::to_owned) else {
                    continue;
                };
                let event = Event {
                    name,
                    data,
                    ack: ack.map(|id| AckTarget {
                        id,
                        ns: reader.ns.clone(),
                        out: reader.out.clone(),
                    }),
                };
                let handler = lock(&reader.shared.handlers).get(&event.name).cloned();
                match handler {
                    Some(handler) => handler(event),
                    None => {
                        let _ = reader.deliver.send(event);
                    }
                }
            }
            PacketData::EventAck(data, id) | PacketData::BinaryAck(data, id) => {
                if let Some(waiting) = lock(&reader.shared.acks).remove(&id) {
                    let _ = waiting.send(data);
                }
            }
            PacketData::Disconnect => break Closed::ServerDisconnect,
            _ => {}
        }
    };
    // Waiting acknowledgements learn that none will come.
    lock(&reader.shared.acks).clear();
    reader.closing.send_replace(Some(reason));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire<T: Serialize + ?Sized>(data: &T, event: Option<&str>) -> String {
        match encode(data, event).unwrap() {
            Value::Str(text, _) => text.as_str().to_owned(),
            Value::Bytes(_) => unreachable!("the common parser writes text"),
        }
    }

    #[test]
    fn unit_is_no_argument_a_tuple_is_several_and_anything_else_is_one() {
        assert_eq!(wire(&(), Some("ping")), r#"["ping"]"#);
        assert_eq!(wire(&(), None), "[]");
        assert_eq!(wire(&(1, "a"), Some("e")), r#"["e",1,"a"]"#);
        assert_eq!(wire(&vec![1, 2], Some("e")), r#"["e",[1,2]]"#);
        // serde writes an array as a tuple: several arguments, as the server's emit sends it.
        assert_eq!(wire(&[1, 2], Some("e")), r#"["e",1,2]"#);
        assert_eq!(wire(&None::<u8>, Some("e")), r#"["e",null]"#);
    }
}
