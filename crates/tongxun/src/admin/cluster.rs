//! Several nodes on Redis: the Admin UI connected to one node lists the sockets of all.
//!
//! A node that welcomes an admin socket sends it its own sockets (`all_sockets`), then asks the
//! others on the node's Redis bus; each answers by sending its sockets to that admin socket as
//! `socket_connected`, through the Socket.IO adapter, which adds them to the UI's list. What
//! connects or changes afterwards reaches the UI from every node as it happens.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::feed::local_sockets;
use super::{Admin, iso_time, serialize};
use crate::bus::RedisBus;
use crate::{Io, Sid};

/// The bus channel of these requests.
const CHANNEL: &str = "tongxun#admin#sockets";

/// Requests a node holds before it drops new ones (each is answered in turn).
const INBOX: usize = 64;

#[derive(Serialize, Deserialize)]
struct Request {
    /// The asking node, which already sent its own sockets.
    node: u64,
    /// The admin socket to send them to.
    admin: String,
}

/// Asks every other node to send its sockets to the admin socket `admin`.
pub(super) async fn ask_for_sockets(io: &Io, admin: Sid) {
    let Some(bus) = io.admin().and_then(|a| a.bus.get().cloned()) else {
        return;
    };
    let request = Request {
        node: bus.node(),
        admin: admin.to_string(),
    };
    if let Ok(payload) = serde_json::to_vec(&request) {
        bus.publish(CHANNEL, &payload).await;
    }
}

/// Answers the other nodes' requests until `stop` is cancelled.
pub(super) async fn answer_requests(
    bus: RedisBus,
    io: Io,
    admin: Arc<Admin>,
    stop: CancellationToken,
) {
    let mut requests = bus.subscribe(CHANNEL.to_owned(), INBOX).await;
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                message = requests.recv() => match message {
                    Some(message) => message,
                    None => return,
                },
            };
            let Ok(request) = serde_json::from_slice::<Request>(&message.1) else {
                continue;
            };
            if request.node == bus.node() {
                continue;
            }
            for socket in local_sockets(&io) {
                let Some(to) = io.of(&admin.ui.namespace) else {
                    return;
                };
                let at = iso_time(socket.handshake().issued());
                let args = (serialize::socket(&socket), at);
                to.to(request.admin.clone())
                    .emit("socket_connected", &args)
                    .await
                    .ok();
            }
        }
    });
}
