//! What one client may make the Socket.IO side hold: namespaces and pending event bytes.
//!
//! Every Engine.IO connection gets a [`ClientShare`] at its handshake, carried in the request
//! extensions that Engine.IO keeps for the whole session, so that every namespace the client
//! joins draws on one budget. Every socket holds a [`Seat`]: its place in the per-client
//! namespace count and, for a child of a dynamic pattern, in the [`DynamicNamespaces`] registry,
//! which removes a child namespace once its last socket left.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use socketioxide_core::Value;

use super::RawAdapter;
use super::socket::RawSocket;
use crate::lock;

type RawIo = socketioxide::SocketIo<RawAdapter>;

/// What an event costs in the pending budget beyond its payload: the queue entry, the socket
/// handle and the acknowledgement slot that travel with it.
pub(crate) const EVENT_OVERHEAD: usize = 128;

/// The bytes a received event holds while it waits for, or runs in, its handlers.
pub(crate) fn event_cost(value: &Value) -> usize {
    let payload = match value {
        Value::Str(text, bins) => {
            text.len() + bins.iter().flatten().map(|b| b.len()).sum::<usize>()
        }
        Value::Bytes(bytes) => bytes.len(),
    };
    payload + EVENT_OVERHEAD
}

/// One Engine.IO connection's share of the server: what all its namespace sockets hold.
#[derive(Debug, Default)]
pub(crate) struct ClientShare {
    /// Names the connection among this node's (the Admin UI groups sockets by it); not a secret,
    /// unlike Engine.IO's own session id.
    #[cfg_attr(not(feature = "admin-ui"), allow(dead_code))]
    pub(crate) id: u64,
    /// Bytes of events received and not yet handled, over every namespace.
    pending_bytes: AtomicUsize,
    /// Namespaces joined.
    namespaces: AtomicUsize,
    /// The client is past a pending bound and was logged for it; cleared once every event of
    /// it was handled, so that it is logged once per episode.
    overflowing: AtomicBool,
    /// The client was refused a namespace and logged for it.
    refused_namespace: AtomicBool,
}

impl ClientShare {
    /// The share of the connection `raw` belongs to.
    pub(crate) fn of(raw: &RawSocket) -> Arc<ClientShare> {
        raw.req_parts()
            .extensions
            .get::<Arc<ClientShare>>()
            .cloned()
            // A socket served without tongxun's router (no handshake middleware) gets a budget
            // of its own.
            .unwrap_or_default()
    }

    /// Gives every Engine.IO handshake request a fresh share.
    pub(crate) fn attach(req: &mut http::Request<axum::body::Body>) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        req.extensions_mut().insert(Arc::new(ClientShare {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            ..ClientShare::default()
        }));
    }

    /// Takes `cost` bytes unless that would pass `max` while something is already pending.
    pub(crate) fn try_charge(&self, cost: usize, max: usize) -> bool {
        let mut pending = self.pending_bytes.load(Ordering::Relaxed);
        loop {
            if pending > 0 && pending.saturating_add(cost) > max {
                return false;
            }
            match self.pending_bytes.compare_exchange_weak(
                pending,
                pending + cost,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => pending = now,
            }
        }
    }

    /// Gives back what [`try_charge`](Self::try_charge) took. A client whose events are all
    /// handled has caught up: its overflow episode, if any, ends.
    pub(crate) fn refund(&self, cost: usize) {
        if self.pending_bytes.fetch_sub(cost, Ordering::Relaxed) == cost {
            self.overflowing.store(false, Ordering::Relaxed);
        }
    }

    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending_bytes.load(Ordering::Relaxed)
    }

    /// Marks the client as past a pending bound; true for the first refusal of an episode.
    pub(crate) fn start_overflow(&self) -> bool {
        !self.overflowing.swap(true, Ordering::Relaxed)
    }

    /// True the first time the client is refused a namespace, so that it is logged once.
    pub(crate) fn first_namespace_refusal(&self) -> bool {
        !self.refused_namespace.swap(true, Ordering::Relaxed)
    }
}

/// Why a client may not join a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    NameTooLong,
    TooManyNamespaces,
    TooManyForClient,
    /// The child namespace this socket was routed to was removed meanwhile (its last socket
    /// left as this one arrived); connecting again creates it anew.
    Removed,
}

impl Refusal {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::NameTooLong => "namespace name too long",
            Refusal::TooManyNamespaces => "too many namespaces",
            Refusal::TooManyForClient => "too many namespaces for this connection",
            Refusal::Removed => "namespace was removed, connect again",
        }
    }
}

/// The live children of every dynamic pattern of one server, with their socket counts.
#[derive(Debug)]
pub(crate) struct DynamicNamespaces {
    live: Mutex<HashMap<Box<str>, usize>>,
    max: usize,
    max_len: usize,
}

impl DynamicNamespaces {
    pub(crate) fn new(max: usize, max_len: usize) -> Self {
        Self {
            live: Mutex::default(),
            max,
            max_len,
        }
    }

    /// How many child namespaces have sockets.
    pub(crate) fn len(&self) -> usize {
        lock(&self.live).len()
    }

    /// Counts `raw` in its child namespace, or refuses it. A refused socket's namespace is
    /// removed if no other socket holds it, so that a refusal leaves nothing behind.
    fn enter(&self, io: &RawIo, raw: &RawSocket) -> Result<(), Refusal> {
        let path = raw.ns();
        let mut live = lock(&self.live);
        // socketioxide routes a connect to the namespace it has for the path before tongxun
        // sees it; that namespace may have been removed since. Its path buffer tells them apart.
        let current = io
            .of(path)
            .is_some_and(|ns| std::ptr::eq(ns.ns_path().as_ptr(), path.as_ptr()));
        if !current {
            return Err(Refusal::Removed);
        }
        let refusal = if path.len() > self.max_len {
            Refusal::NameTooLong
        } else if let Some(count) = live.get_mut(path) {
            *count += 1;
            return Ok(());
        } else if live.len() >= self.max {
            Refusal::TooManyNamespaces
        } else {
            live.insert(path.into(), 1);
            return Ok(());
        };
        drop(live);
        io.delete_ns(path);
        Err(refusal)
    }

    /// Removes a socket from its child namespace's count, and the namespace when it was the last.
    fn leave(&self, io: &RawIo, path: &str) {
        let mut live = lock(&self.live);
        let Some(count) = live.get_mut(path) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            live.remove(path);
            // Under the lock: a socket arriving now finds the namespace gone and is refused
            // rather than counted in a namespace being removed.
            io.delete_ns(path);
        }
    }
}

/// A socket's place in the namespace counts, given back once when it leaves (or, should it
/// never disconnect, when it is dropped).
pub(crate) struct Seat {
    client: Arc<ClientShare>,
    /// Boxed: only the sockets of dynamic namespaces have one.
    dynamic: Option<Box<DynamicSeat>>,
    released: AtomicBool,
}

struct DynamicSeat {
    registry: Arc<DynamicNamespaces>,
    io: RawIo,
    path: Box<str>,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat")
            .field("dynamic", &self.dynamic.as_ref().map(|d| &d.path))
            .finish_non_exhaustive()
    }
}

impl Seat {
    /// Takes a seat for `raw` in `registry` (when its namespace is a dynamic child), within the
    /// per-client bound `max_per_client`.
    pub(crate) fn take(
        raw: &Arc<RawSocket>,
        client: Arc<ClientShare>,
        max_per_client: usize,
        registry: Option<&Arc<DynamicNamespaces>>,
    ) -> Result<Seat, Refusal> {
        let dynamic = match registry {
            Some(registry) => {
                let io = raw_io(raw);
                registry.enter(&io, raw)?;
                Some(Box::new(DynamicSeat {
                    registry: registry.clone(),
                    io,
                    path: raw.ns().into(),
                }))
            }
            None => None,
        };
        let seat = Seat {
            client,
            dynamic,
            released: AtomicBool::new(false),
        };
        if seat.client.namespaces.fetch_add(1, Ordering::Relaxed) >= max_per_client {
            seat.release();
            return Err(Refusal::TooManyForClient);
        }
        Ok(seat)
    }

    pub(crate) fn client(&self) -> &Arc<ClientShare> {
        &self.client
    }

    /// Gives the seat back; only the first call counts.
    pub(crate) fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        self.client.namespaces.fetch_sub(1, Ordering::Relaxed);
        if let Some(seat) = &self.dynamic {
            seat.registry.leave(&seat.io, &seat.path);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if self.released.load(Ordering::Acquire) {
            return;
        }
        // A socket dropped without disconnecting (its CONNECT could not be sent). Removing a
        // namespace takes socketioxide's namespace lock, which the thread dropping this socket
        // may hold: do it from a task.
        self.client.namespaces.fetch_sub(1, Ordering::Relaxed);
        self.released.store(true, Ordering::Release);
        if let Some(seat) = self.dynamic.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { seat.registry.leave(&seat.io, &seat.path) });
        }
    }
}

fn raw_io(raw: &Arc<RawSocket>) -> RawIo {
    use socketioxide::handler::FromMessageParts;
    let mut empty = Value::Str(String::new().into(), None);
    socketioxide::SocketIo::from_message_parts(raw, &mut empty, &None)
        .unwrap_or_else(|never| match never {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_takes_one_event_of_any_size_when_nothing_is_pending() {
        let share = ClientShare::default();
        assert!(share.try_charge(1_000, 100));
        assert!(!share.try_charge(1, 100));
        share.refund(1_000);
        assert!(share.try_charge(60, 100));
        assert!(share.try_charge(40, 100));
        assert!(!share.try_charge(1, 100));
        assert_eq!(share.pending_bytes(), 100);
    }

    #[test]
    fn an_overflow_episode_lasts_until_the_client_caught_up() {
        let share = ClientShare::default();
        assert!(share.try_charge(10, 15));
        assert!(share.try_charge(5, 15));
        assert!(share.start_overflow());
        assert!(!share.start_overflow());
        share.refund(10);
        assert!(!share.start_overflow(), "still behind");
        share.refund(5);
        assert!(share.start_overflow(), "a new episode");
    }
}
