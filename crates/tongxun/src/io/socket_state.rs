//! What tongxun keeps for each socket ([`SocketState`]): its listeners, storage, the flags of
//! its life and the queue of its waiting events, which `dispatch.rs` runs.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use socketioxide_core::Value;
use tokio::sync::Notify;

use super::dispatch::Queue;
use super::handler::BoxedHandler;
use super::limits::Seat;
use super::listeners::{BoxedDisconnect, ListenerId, Listeners};
use super::namespace::NamespaceShared;
use super::socket::RawSocket;
use super::store::Store;

/// What tongxun keeps for each socket: listeners, storage and the event queue.
pub(crate) struct SocketState {
    /// The socketioxide socket, held weakly: it owns this state through its extensions.
    pub(crate) raw: std::sync::Weak<RawSocket>,
    pub(crate) store: Store,
    pub(crate) ns: Arc<NamespaceShared>,
    /// The socket's place in its client's namespace count (and its dynamic namespace's).
    pub(crate) seat: Seat,
    /// The `auth` payload of the client's CONNECT, for [`Handshake`](super::Handshake); boxed,
    /// as most clients send none.
    pub(crate) auth: Option<Box<Value>>,
    /// When the socket joined its namespace.
    pub(crate) connected_at: std::time::SystemTime,
    listeners: RwLock<Listeners>,
    queue: Mutex<Queue>,
    /// The rooms the socket was in when it disconnected. socketioxide may drop them before the
    /// disconnect listeners ran (when a client's namespace DISCONNECT and its transport close
    /// race); the listeners read this copy instead.
    rooms_at_disconnect: OnceLock<Box<[String]>>,
    /// [`HAS_MIDDLEWARE`], [`CLOSED`] and [`OPENED`].
    flags: AtomicU8,
    closed_notify: Notify,
}

/// Whether [`Listeners::middleware`] has any, read without the lock for every event.
pub(super) const HAS_MIDDLEWARE: u8 = 1;
/// Set when the socket disconnects, to end waits on its acknowledgements at once.
const CLOSED: u8 = 2;
/// Set when the socket joined its namespace (its connect was not refused), so that its
/// disconnect is counted once, and only then.
pub(super) const OPENED: u8 = 4;

impl std::fmt::Debug for SocketState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketState")
            .field("ns", &self.ns.path)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl SocketState {
    pub(crate) fn new(
        ns: Arc<NamespaceShared>,
        raw: &Arc<RawSocket>,
        seat: Seat,
        auth: Option<Value>,
    ) -> Arc<Self> {
        Arc::new(Self {
            raw: Arc::downgrade(raw),
            store: Store::new(ns.server.live_stores.clone()),
            ns,
            seat,
            auth: auth.map(Box::new),
            connected_at: std::time::SystemTime::now(),
            listeners: RwLock::default(),
            queue: Mutex::default(),
            rooms_at_disconnect: OnceLock::new(),
            flags: AtomicU8::new(0),
            closed_notify: Notify::new(),
        })
    }

    /// Sets `flag`; whether it was set already.
    pub(super) fn set_flag(&self, flag: u8) -> bool {
        self.flags.fetch_or(flag, Ordering::AcqRel) & flag != 0
    }

    /// Clears `flag`; whether it was set.
    pub(super) fn clear_flag(&self, flag: u8) -> bool {
        self.flags.fetch_and(!flag, Ordering::AcqRel) & flag != 0
    }

    pub(super) fn has_flag(&self, flag: u8) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    pub(super) fn listeners(&self) -> std::sync::RwLockWriteGuard<'_, Listeners> {
        self.listeners.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Completes once the socket disconnected.
    pub(crate) async fn closed(&self) {
        let notified = self.closed_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.has_flag(CLOSED) {
            notified.await;
        }
    }

    pub(crate) fn rooms_at_disconnect(&self) -> Option<Vec<String>> {
        self.rooms_at_disconnect.get().map(|rooms| rooms.to_vec())
    }

    pub(super) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add_listener(
        &self,
        event: Option<&str>,
        once: bool,
        handler: BoxedHandler,
    ) -> ListenerId {
        let event = event.map(|event| self.ns.event_names.get(event));
        self.listeners().add(event, once, handler)
    }

    pub(crate) fn remove_event(&self, event: &str) -> usize {
        self.listeners().remove_event(event)
    }

    pub(crate) fn remove_any(&self) -> usize {
        self.listeners().remove_any()
    }

    pub(crate) fn remove_listener(&self, id: ListenerId) -> bool {
        self.listeners().remove(id)
    }

    pub(crate) fn listener_count(&self, event: &str) -> usize {
        self.listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .count(event)
    }

    pub(crate) fn add_middleware(&self, handler: BoxedHandler) {
        self.listeners().middleware.push(handler);
        self.set_flag(HAS_MIDDLEWARE);
    }

    pub(crate) fn add_disconnect(&self, handler: BoxedDisconnect) {
        self.listeners().disconnect.push(handler);
    }

    /// Called when the socket joined its namespace, for the metrics.
    pub(crate) fn mark_connected(&self, raw: &RawSocket) {
        if !self.set_flag(OPENED) {
            self.ns.meters.connected(raw.transport_type().into());
        }
    }

    /// Frees the listener table's spare room, once the connect handler registered its listeners.
    pub(crate) fn trim_listeners(&self) {
        self.listeners().shrink();
    }

    /// Marks the socket as disconnecting, once: keeps its rooms for the disconnect listeners
    /// (socketioxide drops them when the socket leaves its namespace) and ends the waits on its
    /// acknowledgements. Returns whether this was the first call.
    pub(crate) fn begin_disconnect(&self, raw: &RawSocket) -> bool {
        if self.set_flag(CLOSED) {
            return false;
        }
        let rooms = raw.rooms().into_iter().map(|r| r.to_string()).collect();
        self.rooms_at_disconnect.set(rooms).ok();
        self.closed_notify.notify_waiters();
        true
    }
}
