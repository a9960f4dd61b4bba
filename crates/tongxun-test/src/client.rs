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

use crate::builder::ClientBuilder;
use crate::engine::{Engine, Frame, Incoming, Outgoing};
use crate::error::ClientError;
use crate::event::{AckTarget, Event};
use crate::packet::{decode, encode, send};

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
    /// A client joined as `id` to `ns` over `engine`: its reader task starts here.
    pub(crate) fn start(
        engine: Engine,
        incoming: Incoming,
        ns: Str,
        id: String,
        timeout: Duration,
    ) -> TestClient {
        let out = engine.outgoing();
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
        TestClient {
            id,
            ns,
            out,
            shared,
            inbox,
            held: VecDeque::new(),
            closed,
            timeout,
            reader,
            engine: Some(engine),
        }
    }

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
