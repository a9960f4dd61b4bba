//! Broadcasting: to a namespace, to rooms, to everyone but the sender, with aggregated acks.

use crate::meters::{AckOutcome, NsMeters, Target};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide::SocketError;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use socketioxide_core::adapter::RoomParam;

use super::args::Outgoing;
use super::namespace::ServerShared;
use super::{RawAdapter, Socket, is_id_shaped, socket_of};
use crate::error::{AckError, BoxError, JoinError};

/// A socket of a namespace, wherever it is connected: this node or, with a cluster adapter,
/// another. Emit to it, move it between rooms or disconnect it.
pub type RemoteSocket = socketioxide::socket::RemoteSocket<RawAdapter>;

/// Why a broadcast failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The payload could not be serialized; nothing was sent.
    #[error("failed to serialize the payload")]
    Encode(#[source] BoxError),
    /// The adapter could not reach other nodes.
    #[error("the adapter failed to reach the other nodes")]
    Adapter(#[source] BoxError),
    /// A room to join is private to one socket ([`JoinError::Reserved`]); nothing was joined.
    #[error("failed to join")]
    Join(#[from] JoinError),
    /// Sent to this node's sockets only: Redis could not be reached, so the sockets of other
    /// nodes did not get it (and will not: nothing is queued for a Redis that is away). Told at
    /// once, without waiting for a connection attempt.
    #[error("delivered on this node only: Redis is unreachable")]
    ThisNodeOnly,
}

/// How often, at most, broadcast deliveries lost to full queues are logged.
pub(crate) const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Logs broadcast deliveries lost to full outgoing queues at most once per
/// [`DROP_LOG_INTERVAL`], with the count since the last line: a client that stops reading must
/// not turn every broadcast into a log line.
#[derive(Debug, Default)]
pub(crate) struct DropLog {
    /// When the last line was written, and the drops since.
    last: Mutex<Option<(Instant, u64)>>,
}

impl DropLog {
    pub(crate) fn record(&self, event: &str, dropped: u64) {
        let now = Instant::now();
        let mut last = crate::lock(&self.last);
        let unlogged = match &mut *last {
            Some((at, since)) if now.duration_since(*at) < DROP_LOG_INTERVAL => {
                *since += dropped;
                return;
            }
            Some((_, since)) => *since,
            None => 0,
        };
        *last = Some((now, 0));
        drop(last);
        tracing::warn!(
            event,
            dropped = dropped + unlogged,
            "recipients' outgoing queues are full: they miss broadcasts (counted in Io::dropped_deliveries; logged at most every 10 s)"
        );
    }
}

/// A selection of sockets to broadcast to: a namespace, narrowed to rooms, widened or not to the
/// sender.
///
/// Obtained from [`Io::of`](super::Io::of) (every socket of a namespace) or from a socket
/// ([`Socket::broadcast`], [`Socket::to`], [`Socket::within`], [`Socket::except`]). Each call
/// narrows the selection and returns it; the last one acts. The payload is serialized once,
/// whatever the number of recipients.
///
/// A recipient whose outgoing queue is full misses the message: it is counted
/// ([`Io::dropped_deliveries`](super::Io::dropped_deliveries)) and logged, and the others still
/// receive it.
///
/// # Examples
/// ```
/// use tongxun::{Data, Socket};
///
/// async fn on_connect(socket: Socket) {
///     socket.on("say", |socket: Socket, Data((room, text)): Data<(String, String)>| async move {
///         // Everyone in the room but the sender:
///         socket.to(room).emit("said", &text).await
///     });
///     socket.on("shout", |socket: Socket, Data(text): Data<String>| async move {
///         // Everyone in the namespace but the sender:
///         socket.broadcast().emit("shouted", &text).await
///     });
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[must_use = "a broadcast does nothing until emitted"]
#[derive(Clone)]
pub struct Broadcast {
    ops: BroadcastOperators<RawAdapter>,
    shared: Arc<ServerShared>,
    /// The metric handles of the namespace the broadcast is in.
    meters: NsMeters,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcast")
            .field("ns", &self.ops.ns_path())
            .finish_non_exhaustive()
    }
}

impl Broadcast {
    pub(crate) fn new(
        ops: BroadcastOperators<RawAdapter>,
        shared: Arc<ServerShared>,
        meters: NsMeters,
    ) -> Self {
        Self {
            ops,
            shared,
            meters,
            timeout: None,
        }
    }

    fn map(
        self,
        f: impl FnOnce(BroadcastOperators<RawAdapter>) -> BroadcastOperators<RawAdapter>,
    ) -> Self {
        Self {
            ops: f(self.ops),
            ..self
        }
    }

    /// Narrows to sockets in any of these rooms. A socket's id is a room of its own, so
    /// `to(id)` reaches exactly that socket.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn announce(io: Io) {
    ///     if let Some(chat) = io.of("/chat") {
    ///         chat.to(["general", "random"]).emit("announcement", "maintenance at noon").await.ok();
    ///     }
    /// }
    /// ```
    pub fn to(self, rooms: impl RoomParam) -> Self {
        self.map(|ops| ops.to(rooms))
    }

    /// Same as [`to`](Self::to), under Node's other name (`io.in(room)`).
    pub fn within(self, rooms: impl RoomParam) -> Self {
        self.map(|ops| ops.within(rooms))
    }

    /// Leaves out sockets in any of these rooms.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn announce(io: Io) {
    ///     io.main().except("muted").emit("announcement", "hello").await.ok();
    /// }
    /// ```
    pub fn except(self, rooms: impl RoomParam) -> Self {
        self.map(|ops| ops.except(rooms))
    }

    /// Only sockets connected to this node (when a cluster adapter spans several).
    pub fn local(self) -> Self {
        self.map(|ops| ops.local())
    }

    /// Sends without caring whether it arrives (typing indicators, cursor positions).
    ///
    /// socketioxide keeps at most one unsent volatile packet per socket, beside the normal queue:
    /// a newer volatile packet replaces one the socket has not sent yet, and a volatile packet
    /// may overtake ordinary packets queued before it. Nothing volatile is counted as dropped.
    pub fn volatile(self) -> Self {
        self.map(|ops| ops.volatile())
    }

    /// The time [`emit_with_ack`](Self::emit_with_ack) waits for answers. Defaults to
    /// `Config::ack_timeout`.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// use std::time::Duration;
    ///
    /// async fn poll(io: Io) {
    ///     let answers = io
    ///         .main()
    ///         .timeout(Duration::from_secs(2))
    ///         .emit_with_ack::<_, String>("status?", &())
    ///         .await;
    ///     for (id, answer) in answers.unwrap_or_default() {
    ///         println!("{id}: {answer:?}"); // Ok(status), or Err(AckError::Timeout)
    ///     }
    /// }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends `event` to every selected socket. A tuple sends several arguments.
    ///
    /// # Errors
    /// [`BroadcastError::Encode`] when the payload cannot be serialized,
    /// [`BroadcastError::Adapter`] when other nodes cannot be reached,
    /// [`BroadcastError::ThisNodeOnly`] when this node's sockets got it but Redis, and so the
    /// other nodes, could not be told (answered at once while Redis is away). Recipients that
    /// miss the message because their queue is full are counted, not reported as an error.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn tick(io: Io, n: u64) -> Result<(), tongxun::BroadcastError> {
    ///     io.main().emit("tick", &n).await?;
    ///     io.main().to("vip").emit("bonus", &(n, "gold")).await // two arguments
    /// }
    /// ```
    pub async fn emit<T: Serialize + ?Sized>(
        self,
        event: impl AsRef<str>,
        data: &T,
    ) -> Result<(), BroadcastError> {
        let event = event.as_ref();
        #[cfg(feature = "admin-ui")]
        if let Some(feed) = self.shared.admin_feed() {
            feed.broadcast(&self.ops, event, data);
        }
        self.meters.emitted(Target::Broadcast);
        let args = Outgoing::of(data);
        let sent = self.ops.emit(event, &args);
        #[cfg(feature = "redis")]
        let (result, shared) = super::adapter::shared_with_others(sent).await;
        #[cfg(not(feature = "redis"))]
        let (result, shared) = (sent.await, true);
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(socketioxide::BroadcastError::Socket(errors)) => {
                // Sockets that closed meanwhile are gone, not slow: only full queues count.
                let dropped = errors
                    .iter()
                    .filter(|e| matches!(e, SocketError::InternalChannelFull))
                    .count();
                if dropped > 0 {
                    self.shared
                        .dropped_deliveries
                        .fetch_add(dropped as u64, Ordering::Relaxed);
                    self.shared.drop_log.record(event, dropped as u64);
                }
                Ok(())
            }
            Err(socketioxide::BroadcastError::Serialize(e)) => {
                Err(BroadcastError::Encode(Box::new(e)))
            }
            Err(socketioxide::BroadcastError::Adapter(e)) => {
                Err(BroadcastError::Adapter(crate::error::unshared(&e)))
            }
        };
        match outcome {
            Ok(()) if !shared => Err(BroadcastError::ThisNodeOnly),
            outcome => outcome,
        }
    }

    /// Sends `event` to every selected socket and collects each one's acknowledgement, decoded
    /// as `R`, within the timeout: one entry per socket, an answer or an error
    /// ([`AckError::Timeout`] for a socket that did not answer in time).
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn poll(io: Io) {
    ///     let Some(chat) = io.of("/chat") else { return };
    ///     // JS: socket.on("vote?", (cb) => cb("yes"));
    ///     let votes = chat.timeout(std::time::Duration::from_secs(2)).emit_with_ack::<_, String>("vote?", &()).await;
    ///     for (id, vote) in votes.unwrap_or_default() {
    ///         println!("{id}: {vote:?}");
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    /// [`BroadcastError::Encode`] when the payload cannot be serialized,
    /// [`BroadcastError::Adapter`] when other nodes cannot be reached.
    pub async fn emit_with_ack<T, R>(
        self,
        event: impl AsRef<str>,
        data: &T,
    ) -> Result<Vec<(Sid, Result<R, AckError>)>, BroadcastError>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let timeout = self.timeout.unwrap_or(self.shared.config.ack_timeout);
        #[cfg(feature = "admin-ui")]
        if let Some(feed) = self.shared.admin_feed() {
            feed.broadcast(&self.ops, event.as_ref(), data);
        }
        let meters = self.meters.clone();
        meters.emitted(Target::Broadcast);
        let stream = self
            .ops
            .timeout(timeout)
            .emit_with_ack::<_, R>(event, &Outgoing::of(data))
            .await
            .map_err(|e| match e {
                socketioxide::EmitWithAckError::Encode(e) => BroadcastError::Encode(Box::new(e)),
                socketioxide::EmitWithAckError::Adapter(e) => {
                    BroadcastError::Adapter(crate::error::unshared(&*e))
                }
            })?;
        Ok(stream
            .map(|(sid, answer)| {
                let answer = answer.map_err(AckError::from);
                meters.ack_ended(match &answer {
                    Ok(_) => AckOutcome::Answered,
                    Err(e) => AckOutcome::of(e),
                });
                (sid, answer)
            })
            .collect()
            .await)
    }

    /// The selected sockets connected to this node, with their stores.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// fn nicks(io: &Io) -> Vec<String> {
    ///     io.main()
    ///         .to("lobby")
    ///         .sockets()
    ///         .iter()
    ///         .filter_map(|socket| socket.store().get("nick").ok())
    ///         .collect()
    /// }
    /// ```
    pub fn sockets(self) -> Vec<Socket> {
        self.ops.sockets().iter().filter_map(socket_of).collect()
    }

    /// The selected sockets on every node.
    ///
    /// # Errors
    /// [`BroadcastError::Adapter`] when other nodes cannot be reached.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn online(io: Io) -> usize {
    ///     // With the `redis` feature, every node's sockets of the room.
    ///     io.main().to("lobby").fetch_sockets().await.map_or(0, |sockets| sockets.len())
    /// }
    /// ```
    pub async fn fetch_sockets(self) -> Result<Vec<RemoteSocket>, BroadcastError> {
        self.ops
            .fetch_sockets()
            .await
            .map_err(|e| BroadcastError::Adapter(crate::error::unshared(&e)))
    }

    /// Disconnects the selected sockets; their clients see `io server disconnect`.
    ///
    /// # Errors
    /// [`BroadcastError::Adapter`] when other nodes cannot be reached.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn close_room(io: Io, room: &str) {
    ///     io.main().to(room.to_owned()).disconnect().await.ok();
    /// }
    /// ```
    pub async fn disconnect(self) -> Result<(), BroadcastError> {
        self.ops
            .disconnect()
            .await
            .map_err(|e| BroadcastError::Adapter(crate::error::unshared(&e)))
    }

    /// Makes the selected sockets join `rooms`.
    ///
    /// # Errors
    /// [`BroadcastError::Join`] when a room has the shape of a socket id (such rooms are
    /// private to their socket), [`BroadcastError::Adapter`] when other nodes cannot be reached.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn promote(io: Io) {
    ///     // Every socket of `trial`, on every node, also joins `members`.
    ///     io.main().to("trial").join("members").await.ok();
    /// }
    /// ```
    pub async fn join(self, rooms: impl RoomParam) -> Result<(), BroadcastError> {
        let rooms: Vec<_> = rooms.into_room_iter().collect();
        if let Some(room) = rooms.iter().find(|r| is_id_shaped(r)) {
            return Err(JoinError::Reserved(room.to_string()).into());
        }
        self.ops
            .join(rooms)
            .await
            .map_err(|e| BroadcastError::Adapter(crate::error::unshared(&e)))
    }

    /// Makes the selected sockets leave `rooms`.
    ///
    /// # Errors
    /// [`BroadcastError::Adapter`] when other nodes cannot be reached.
    pub async fn leave(self, rooms: impl RoomParam) -> Result<(), BroadcastError> {
        self.ops
            .leave(rooms)
            .await
            .map_err(|e| BroadcastError::Adapter(crate::error::unshared(&e)))
    }

    /// The rooms the selected sockets are in.
    ///
    /// # Errors
    /// [`BroadcastError::Adapter`] when other nodes cannot be reached.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Io;
    ///
    /// async fn rooms(io: Io) -> Vec<String> {
    ///     io.main().rooms().await.unwrap_or_default()
    /// }
    /// ```
    pub async fn rooms(self) -> Result<Vec<String>, BroadcastError> {
        let rooms = self
            .ops
            .rooms()
            .await
            .map_err(|e| BroadcastError::Adapter(crate::error::unshared(&e)))?;
        Ok(rooms.into_iter().map(|r| r.to_string()).collect())
    }
}
