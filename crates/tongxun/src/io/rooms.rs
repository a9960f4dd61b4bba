//! A socket's rooms, and the broadcasts it starts: to its namespace, to rooms, to all but
//! itself.

use socketioxide_core::adapter::RoomParam;

use super::RawAdapter;
use super::broadcast::Broadcast;
use super::socket::{Socket, is_id_shaped};
use crate::error::JoinError;

impl Socket {
    // ---- rooms ----

    /// Joins one room or several (`"general"`, `["a", "b"]`, a `Vec<String>`).
    ///
    /// # Errors
    /// [`JoinError::Reserved`] when a room has the shape of a socket id other than this
    /// socket's own: that room is private to its socket. Nothing is joined then.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Data, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("join", |socket: Socket, Data(room): Data<String>| async move {
    ///         socket.join(room)
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn join(&self, rooms: impl RoomParam) -> Result<(), JoinError> {
        let rooms: Vec<_> = rooms.into_room_iter().collect();
        let own = self.raw.id.as_str();
        if let Some(room) = rooms.iter().find(|r| r.as_ref() != own && is_id_shaped(r)) {
            return Err(JoinError::Reserved(room.to_string()));
        }
        self.raw.join(rooms);
        self.rooms_changed();
        Ok(())
    }

    /// Tells the Admin UI, when it is on, to look at this socket's rooms.
    #[inline]
    #[cfg_attr(not(feature = "admin-ui"), allow(clippy::unused_self))]
    fn rooms_changed(&self) {
        #[cfg(feature = "admin-ui")]
        if let Some(feed) = self.state.ns.server.admin_feed() {
            feed.rooms_changed(self);
        }
    }

    /// Leaves one room or several.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Data, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("switch", |socket: Socket, Data(room): Data<String>| async move {
    ///         socket.leave_all(); // except its own-id room, which it never leaves
    ///         socket.join(room)
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn leave(&self, rooms: impl RoomParam) {
        self.raw.leave(rooms);
        self.rooms_changed();
    }

    /// Leaves every room, including the one named by its own id.
    pub fn leave_all(&self) {
        self.raw.leave_all();
        self.rooms_changed();
    }

    /// The rooms this socket is in, including the one named by its id. In a disconnect
    /// listener: the rooms it was in when it disconnected.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Ack, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.join(["news", "sport"]).ok();
    ///     socket.on("rooms", |socket: Socket, ack: Ack| async move { ack.send(&socket.rooms()) });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn rooms(&self) -> Vec<String> {
        if let Some(rooms) = self.state.rooms_at_disconnect() {
            return rooms;
        }
        self.raw
            .rooms()
            .into_iter()
            .map(|r| r.to_string())
            .collect()
    }

    // ---- broadcasting ----

    fn selection(&self, ops: socketioxide::operators::BroadcastOperators<RawAdapter>) -> Broadcast {
        Broadcast::new(
            ops,
            self.state.ns.server.clone(),
            self.state.ns.meters.clone(),
        )
    }

    /// Every socket of this socket's namespace, this one included (Node's `socket.nsp`).
    ///
    /// # Panics
    /// When the app deleted the namespace through socketioxide (`SocketIo::delete_ns`).
    pub fn namespace(&self) -> Broadcast {
        self.io()
            .of(self.ns())
            .expect("a connected socket's namespace exists")
    }

    /// Every other socket of the namespace (Node's `socket.broadcast`).
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Data, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("say", |socket: Socket, Data(text): Data<String>| async move {
    ///         socket.broadcast().emit("said", &text).await // everyone in `/` but the sender
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn broadcast(&self) -> Broadcast {
        self.selection(self.raw.broadcast())
    }

    /// The sockets in `rooms`, except this one (Node's `socket.to(room)`).
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Data, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("say", |socket: Socket, Data((room, text)): Data<(String, String)>| async move {
    ///         socket.to(room).emit("said", &text).await // the room, but not the sender
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn to(&self, rooms: impl RoomParam) -> Broadcast {
        self.selection(self.raw.to(rooms))
    }

    /// The sockets in `rooms`, this one included if it is in them (Node's `io.in(room)`).
    pub fn within(&self, rooms: impl RoomParam) -> Broadcast {
        self.selection(self.raw.within(rooms))
    }

    /// Every other socket of the namespace, except those in `rooms`.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Data, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("alert", |socket: Socket, Data(text): Data<String>| async move {
    ///         socket.except("muted").emit("alert", &text).await
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn except(&self, rooms: impl RoomParam) -> Broadcast {
        self.selection(self.raw.except(rooms))
    }
}
