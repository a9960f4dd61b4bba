//! An admin socket: what it is sent when it logs in, and the UI's commands (`emit`, `join`,
//! `leave`, `_disconnect`), each applied on every node as Node's `io.of(nsp).in(filter)` is.

use std::sync::Arc;

use serde::ser::{Serialize, SerializeTuple, Serializer};
use serde_json::{Value, json};

use super::feed::local_sockets;
use super::{Admin, Mode, serialize};
use crate::{Args, Broadcast, Io, Socket};

/// Several event arguments, as a tuple is sent.
struct Several<'a>(&'a [Value]);

impl Serialize for Several<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for value in self.0 {
            tuple.serialize_element(value)?;
        }
        tuple.end()
    }
}

/// An admin socket logged in.
pub(super) async fn connected(admin: Arc<Admin>, socket: Socket) {
    if let Some(session) = admin.logins.take_session(socket.id()) {
        socket.emit("session", &session).ok();
    }
    if !admin.ui.readonly {
        listen(&socket, &admin);
    }
    let config = json!({ "supportedFeatures": admin.ui.features() });
    socket.emit("config", &config).ok();
    if admin.ui.mode == Mode::Development {
        let io = socket.io();
        let sockets: Vec<Value> = local_sockets(&io).iter().map(serialize::socket).collect();
        socket.emit("all_sockets", &sockets).ok();
        #[cfg(feature = "redis")]
        super::cluster::ask_for_sockets(&io, socket.id()).await;
    }
}

fn listen(socket: &Socket, admin: &Arc<Admin>) {
    socket.on("emit", |socket: Socket, args: Args| async move {
        let [nsp, filter, event, rest @ ..] = args.values() else {
            return;
        };
        if let Some(to) = selection(&socket.io(), nsp, Some(filter))
            && let Some(event) = event.as_str()
        {
            to.emit(event, &Several(rest)).await.ok();
        }
    });
    for (command, join) in [("join", true), ("leave", false)] {
        let admin = admin.clone();
        socket.on(command, move |socket: Socket, args: Args| {
            let admin = admin.clone();
            async move { move_sockets(&socket, &admin, args.values(), join).await }
        });
    }
    socket.on("_disconnect", |socket: Socket, args: Args| async move {
        let [nsp, close, filter @ ..] = args.values() else {
            return;
        };
        let io = socket.io();
        // `close`: the whole connection, every namespace of it, as far as this node holds it.
        if close.as_bool() == Some(true) {
            close_connections(&io, nsp, filter.first());
        }
        if let Some(to) = selection(&io, nsp, filter.first()) {
            to.disconnect().await.ok();
        }
    });
}

/// `join(nsp, room, filter)` or `leave(nsp, room, filter)`: the selected sockets of every node
/// join or leave `room`.
async fn move_sockets(socket: &Socket, admin: &Admin, args: &[Value], join: bool) {
    let [nsp, room, filter @ ..] = args else {
        return;
    };
    let (Some(to), Some(room)) = (selection(&socket.io(), nsp, filter.first()), room.as_str())
    else {
        return;
    };
    let moved = match join {
        true => to.join(room.to_owned()).await,
        false => to.leave(room.to_owned()).await,
    };
    if let Err(e) = moved {
        tracing::debug!(room, "admin command not applied: {e}");
    }
    admin.feed.look();
}

/// The sockets of namespace `nsp` in room `filter` (a socket id names its own room), or all of
/// them when there is no filter.
fn selection(io: &Io, nsp: &Value, filter: Option<&Value>) -> Option<Broadcast> {
    let ns = io.of(nsp.as_str()?)?;
    match filter.and_then(Value::as_str) {
        Some(room) if !room.is_empty() => Some(ns.to(room.to_owned())),
        _ => Some(ns),
    }
}

/// Disconnects the other namespaces of the local connections selected by `nsp` and `filter`.
fn close_connections(io: &Io, nsp: &Value, filter: Option<&Value>) {
    let Some(selected) = selection(io, nsp, filter) else {
        return;
    };
    let clients: std::collections::HashSet<String> = selected
        .local()
        .sockets()
        .iter()
        .map(serialize::client_id)
        .collect();
    for socket in local_sockets(io) {
        if clients.contains(&serialize::client_id(&socket)) {
            socket.disconnect().ok();
        }
    }
}
