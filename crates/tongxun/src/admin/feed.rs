//! What the Admin UI is told, and when.
//!
//! The socket side calls the [`Feed`]'s hooks as things happen: each costs an atomic count, and
//! in development mode a non-blocking send into a bounded queue. One [`Runner`] task per node
//! reads that queue, keeps what it last told the UI about each local socket (its rooms and
//! transport), and emits to the admin namespace, which on Redis reaches the UI on every node.
//! Every 2 s it sends the node's `server_stats` and compares the local sockets with what it
//! told, so that rooms changed by a broadcast or another node, and polling clients that
//! upgraded, are noticed too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use socketioxide_core::Value as RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::serialize::{self, transport_name};
use super::{ADMIN_QUEUE, Admin, Mode, iso_time};
use crate::{DisconnectReason, Io, Sid, Socket};

/// How often each node sends its `server_stats`, as Node's admin side.
const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// Something the UI is told about.
enum Note {
    Connected(Socket),
    Disconnected {
        socket: Socket,
        reason: DisconnectReason,
        at: SystemTime,
    },
    /// The socket's rooms may have changed.
    Rooms(Socket),
    /// Any local socket's rooms may have changed (after a command of the UI).
    Look,
    Received {
        nsp: String,
        id: Sid,
        value: RawValue,
        at: SystemTime,
    },
    Sent {
        nsp: String,
        id: Sid,
        args: Value,
        at: SystemTime,
    },
    /// The app broadcast an event: each recipient, on every node, is told about.
    Broadcast {
        to: Box<socketioxide::operators::BroadcastOperators<crate::io::RawAdapter>>,
        args: Value,
        at: SystemTime,
    },
}

/// The counts behind the dashboard's charts (the UI's `aggregatedEvents`).
#[derive(Debug, Default)]
struct Counts {
    connections: AtomicU64,
    disconnections: AtomicU64,
    packets_in: AtomicU64,
    packets_out: AtomicU64,
}

/// The hooks the socket side calls.
#[derive(Debug)]
pub(crate) struct Feed {
    mode: Mode,
    /// The admin namespace, whose own traffic is not reported.
    namespace: String,
    notes: mpsc::Sender<Note>,
    counts: Counts,
    /// Notifications lost to a full queue, logged by the runner.
    lost: AtomicU64,
}

/// The task that tells the UI; started with the server.
pub(crate) struct Runner {
    notes: mpsc::Receiver<Note>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Note")
    }
}

impl Feed {
    pub(crate) fn new(mode: Mode, namespace: String) -> (Feed, Runner) {
        let (notes, rx) = mpsc::channel(ADMIN_QUEUE);
        let feed = Feed {
            mode,
            namespace,
            notes,
            counts: Counts::default(),
            lost: AtomicU64::new(0),
        };
        let runner = Runner { notes: rx };
        (feed, runner)
    }

    /// Notifications lost to a full queue.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn verbose(&self) -> bool {
        self.mode == Mode::Development
    }

    fn note(&self, note: Note) {
        if self.notes.try_send(note).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A socket joined its namespace (before the app's connect handler runs).
    pub(crate) fn connected(&self, socket: &Socket) {
        self.counts.connections.fetch_add(1, Ordering::Relaxed);
        if self.verbose() {
            self.note(Note::Connected(socket.clone()));
        }
    }

    /// A socket left, after its disconnect listeners ran.
    pub(crate) fn disconnected(&self, socket: &Socket, reason: DisconnectReason) {
        self.counts.disconnections.fetch_add(1, Ordering::Relaxed);
        if self.verbose() {
            self.note(Note::Disconnected {
                socket: socket.clone(),
                reason,
                at: SystemTime::now(),
            });
        }
    }

    /// A socket joined or left rooms.
    pub(crate) fn rooms_changed(&self, socket: &Socket) {
        if self.verbose() {
            self.note(Note::Rooms(socket.clone()));
        }
    }

    /// Rooms may have changed anywhere on this node.
    pub(crate) fn look(&self) {
        if self.verbose() {
            self.note(Note::Look);
        }
    }

    /// An event arrived from a client, as socketioxide parsed it.
    pub(crate) fn received(&self, nsp: &str, id: Sid, value: &RawValue) {
        self.counts.packets_in.fetch_add(1, Ordering::Relaxed);
        if self.verbose() {
            self.note(Note::Received {
                nsp: nsp.to_owned(),
                id,
                value: value.clone(),
                at: SystemTime::now(),
            });
        }
    }

    /// The app emitted `event` to one socket.
    pub(crate) fn sent<T: serde::Serialize + ?Sized>(
        &self,
        socket: &Socket,
        event: &str,
        data: &T,
    ) {
        self.counts.packets_out.fetch_add(1, Ordering::Relaxed);
        if self.verbose()
            && socket.ns() != self.namespace
            && let Some(args) = event_args(event, data)
        {
            self.note(Note::Sent {
                nsp: socket.ns().to_owned(),
                id: socket.id(),
                args,
                at: SystemTime::now(),
            });
        }
    }

    /// The app broadcast `event` to the sockets `to` selects.
    pub(crate) fn broadcast<T: serde::Serialize + ?Sized>(
        &self,
        to: &socketioxide::operators::BroadcastOperators<crate::io::RawAdapter>,
        event: &str,
        data: &T,
    ) {
        self.counts.packets_out.fetch_add(1, Ordering::Relaxed);
        if self.verbose()
            && to.ns_path() != self.namespace
            && let Some(args) = event_args(event, data)
        {
            self.note(Note::Broadcast {
                to: Box::new(to.clone()),
                args,
                at: SystemTime::now(),
            });
        }
    }
}

/// An event's name and arguments as the UI shows them: `()` is no argument, a tuple's
/// arguments are one array.
fn event_args<T: serde::Serialize + ?Sized>(event: &str, data: &T) -> Option<Value> {
    let mut args = vec![Value::from(event)];
    if std::mem::size_of_val(data) > 0 {
        args.push(serde_json::to_value(data).ok()?);
    }
    Some(Value::Array(args))
}

/// What the runner last told the UI about a local socket.
struct Told {
    rooms: BTreeSet<String>,
    transport: &'static str,
}

impl Runner {
    /// Tells the UI until `stop` is cancelled.
    pub(crate) async fn run(mut self, io: Io, admin: Arc<Admin>, stop: CancellationToken) {
        #[cfg(feature = "redis")]
        if let Some(bus) = admin.bus.get().cloned() {
            super::cluster::answer_requests(bus, io.clone(), admin.clone(), stop.clone()).await;
        }
        let mut told: HashMap<(String, Sid), Told> = HashMap::new();
        let mut tick = tokio::time::interval(STATS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lost_logged = 0;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                note = self.notes.recv() => match note {
                    Some(note) => tell(&io, &admin, &mut told, note).await,
                    None => return,
                },
                _ = tick.tick() => {
                    if admin.feed.verbose() {
                        compare(&io, &admin, &mut told).await;
                    }
                    send_stats(&io, &admin).await;
                    let lost = admin.feed.lost.load(Ordering::Relaxed);
                    if lost > lost_logged {
                        tracing::warn!(lost = lost - lost_logged, "Admin UI notifications lost to a full queue");
                        lost_logged = lost;
                    }
                }
            }
        }
    }
}

/// Emits `event` with `args` to every admin socket, on every node.
async fn to_admins<T: serde::Serialize + ?Sized>(io: &Io, admin: &Admin, event: &str, args: &T) {
    let Some(admins) = io.of(&admin.ui.namespace) else {
        return;
    };
    if let Err(e) = admins.emit(event, args).await {
        tracing::debug!(event, "Admin UI notification not sent: {e}");
    }
}

fn rooms_of(socket: &Socket) -> BTreeSet<String> {
    socket.rooms().into_iter().collect()
}

async fn tell(io: &Io, admin: &Admin, told: &mut HashMap<(String, Sid), Told>, note: Note) {
    match note {
        Note::Connected(socket) => {
            let at = iso_time(socket.handshake().issued());
            to_admins(
                io,
                admin,
                "socket_connected",
                &(serialize::socket(&socket), &at),
            )
            .await;
            told.insert(
                (socket.ns().to_owned(), socket.id()),
                Told {
                    rooms: rooms_of(&socket),
                    transport: transport_name(socket.transport()),
                },
            );
        }
        Note::Disconnected { socket, reason, at } => {
            let (nsp, id) = (socket.ns().to_owned(), socket.id());
            let at = iso_time(at);
            let reason = node_reason(reason);
            to_admins(
                io,
                admin,
                "socket_disconnected",
                &(&nsp, id.as_str(), &reason, &at),
            )
            .await;
            // As Node's adapter does when a socket leaves all its rooms.
            if let Some(was) = told.remove(&(nsp.clone(), id)) {
                for room in was.rooms {
                    to_admins(io, admin, "room_left", &(&nsp, &room, id.as_str(), &at)).await;
                }
            }
        }
        Note::Rooms(socket) => {
            if socket.connected() {
                update(io, admin, told, &socket).await;
            }
        }
        Note::Look => compare(io, admin, told).await,
        Note::Received { nsp, id, value, at } => {
            if nsp == admin.ui.namespace {
                return;
            }
            let Some(args) = readable(&value) else {
                return;
            };
            to_admins(
                io,
                admin,
                "event_received",
                &(&nsp, id.as_str(), args, iso_time(at)),
            )
            .await;
        }
        Note::Sent { nsp, id, args, at } => {
            to_admins(
                io,
                admin,
                "event_sent",
                &(&nsp, id.as_str(), args, iso_time(at)),
            )
            .await;
        }
        Note::Broadcast { to, args, at } => {
            // Who it reached: asked after the fact, of every node (what joined or left since
            // is the only difference).
            let nsp = to.ns_path().to_owned();
            let meters = io.shared.meters.of_path(&nsp);
            let recipients = crate::Broadcast::new(*to, io.shared.clone(), meters)
                .fetch_sockets()
                .await;
            let at = iso_time(at);
            for socket in recipients.unwrap_or_default() {
                let id = socket.data().id;
                to_admins(io, admin, "event_sent", &(&nsp, id.as_str(), &args, &at)).await;
            }
        }
    }
}

/// Tells the UI what changed in `socket`'s rooms and transport since it was last told.
async fn update(io: &Io, admin: &Admin, told: &mut HashMap<(String, Sid), Told>, socket: &Socket) {
    let Some(was) = told.get_mut(&(socket.ns().to_owned(), socket.id())) else {
        return;
    };
    let (nsp, id) = (socket.ns(), socket.id());
    let now = rooms_of(socket);
    let at = iso_time(SystemTime::now());
    for room in now.difference(&was.rooms) {
        to_admins(io, admin, "room_joined", &(nsp, room, id.as_str(), &at)).await;
    }
    for room in was.rooms.difference(&now) {
        to_admins(io, admin, "room_left", &(nsp, room, id.as_str(), &at)).await;
    }
    was.rooms = now;
    let transport = transport_name(socket.transport());
    if transport != was.transport {
        was.transport = transport;
        let update = json!({ "id": id.as_str(), "nsp": nsp, "transport": transport });
        to_admins(io, admin, "socket_updated", &update).await;
    }
}

/// Looks at every local socket the UI was told about, and forgets those that are gone (their
/// disconnect may have been lost to a full queue).
async fn compare(io: &Io, admin: &Admin, told: &mut HashMap<(String, Sid), Told>) {
    let sockets = local_sockets(io);
    for socket in &sockets {
        update(io, admin, told, socket).await;
    }
    let live: HashSet<(&str, Sid)> = sockets.iter().map(|s| (s.ns(), s.id())).collect();
    told.retain(|(ns, id), _| live.contains(&(ns.as_str(), *id)));
}

/// Every socket of this node, in every namespace.
pub(super) fn local_sockets(io: &Io) -> Vec<Socket> {
    io.raw()
        .nsps()
        .into_iter()
        .flat_map(|ns| ns.sockets())
        .filter_map(|raw| crate::io::socket_of(&raw))
        .collect()
}

/// A disconnect reason as Node's server names it (what the UI shows).
fn node_reason(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::TransportError => "transport error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::MultipleHttpPollingError | DisconnectReason::PacketParsingError => {
            "parse error"
        }
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
    }
}

/// An event's name and arguments as JSON, binary attachments left as their placeholders.
fn readable(value: &RawValue) -> Option<Value> {
    match value {
        RawValue::Str(text, _) => serde_json::from_str(text.as_str()).ok(),
        // MessagePack: read by its parser, which the admin side does not hold.
        RawValue::Bytes(_) => None,
    }
}

/// This node's `server_stats`.
async fn send_stats(io: &Io, admin: &Admin) {
    let sockets = local_sockets(io);
    let mut clients = HashSet::new();
    let mut polling = HashSet::new();
    for socket in &sockets {
        let client = crate::io::ClientShare::of(socket.raw()).id;
        clients.insert(client);
        if socket.transport() == crate::TransportType::Polling {
            polling.insert(client);
        }
    }
    let namespaces: Vec<Value> = io
        .raw()
        .nsps()
        .into_iter()
        .map(|ns| json!({ "name": ns.ns_path(), "socketsCount": ns.sockets().len() }))
        .collect();
    let stats = json!({
        "serverId": admin.server_id,
        "hostname": super::hostname(),
        "pid": std::process::id(),
        "uptime": admin.started.elapsed().as_secs_f64(),
        "clientsCount": clients.len(),
        "pollingClientsCount": polling.len(),
        "aggregatedEvents": aggregated(&admin.feed.counts),
        "namespaces": namespaces,
    });
    to_admins(io, admin, "server_stats", &stats).await;
}

/// The counts since the last stats, as the UI's per-second buckets (this one).
fn aggregated(counts: &Counts) -> Vec<Value> {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() * 1000);
    [
        ("rawConnection", &counts.connections),
        ("rawDisconnection", &counts.disconnections),
        ("packetsIn", &counts.packets_in),
        ("packetsOut", &counts.packets_out),
    ]
    .into_iter()
    .filter_map(|(kind, count)| {
        let count = count.swap(0, Ordering::Relaxed);
        (count > 0).then(|| json!({ "timestamp": now, "type": kind, "count": count }))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_past_the_queue_are_dropped_and_counted_never_waited_for() {
        let (feed, runner) = Feed::new(Mode::Development, "/admin".to_owned());
        for _ in 0..ADMIN_QUEUE + 10 {
            feed.look();
        }
        assert_eq!(feed.lost.load(Ordering::Relaxed), 10);
        assert_eq!(runner.notes.len(), ADMIN_QUEUE);
    }

    #[test]
    fn production_mode_queues_nothing_and_only_counts() {
        let (feed, runner) = Feed::new(Mode::Production, "/admin".to_owned());
        feed.look();
        feed.received("/chat", Sid::new(), &RawValue::Str("[\"a\"]".into(), None));
        assert_eq!(runner.notes.len(), 0);
        assert_eq!(feed.counts.packets_in.load(Ordering::Relaxed), 1);
    }
}
