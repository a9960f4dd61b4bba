//! A socket's listener table: the handlers of each event, the catch-all ones, the middleware and
//! the disconnect listeners, which the dispatcher (`dispatch.rs`) reads for every event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use smallvec::SmallVec;
use socketioxide::socket::DisconnectReason;

use super::handler::BoxedHandler;
use super::socket::Socket;

/// Identifies one registered listener, so that it can be removed with
/// [`Socket::off_listener`](super::Socket::off_listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

static NEXT_LISTENER_ID: AtomicU64 = AtomicU64::new(1);

impl ListenerId {
    fn next() -> Self {
        ListenerId(NEXT_LISTENER_ID.fetch_add(1, Ordering::Relaxed))
    }
}

struct Listener {
    id: ListenerId,
    once: bool,
    handler: BoxedHandler,
}

pub(crate) type DisconnectFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
pub(crate) type BoxedDisconnect =
    Arc<dyn Fn(Socket, DisconnectReason) -> DisconnectFuture + Send + Sync>;

/// The handlers one event reaches; one or two without an allocation.
pub(super) type Handlers = SmallVec<[BoxedHandler; 2]>;

#[derive(Default)]
pub(super) struct Listeners {
    by_event: HashMap<Arc<str>, Vec<Listener>>,
    any: Vec<Listener>,
    pub(super) disconnect: Vec<BoxedDisconnect>,
    /// Run before the listeners of every event; the first that fails refuses the event.
    pub(super) middleware: Vec<BoxedHandler>,
}

impl Listeners {
    /// The handlers an event reaches: catch-all listeners first, as in Node, then the event's.
    /// `once` listeners are removed here, so they fire once even when events run in parallel.
    /// Also returns the event's name as the listener table holds it, when it has listeners, so
    /// that dispatching does not allocate it again.
    pub(super) fn take_for(&mut self, event: &str) -> (Option<Arc<str>>, Handlers) {
        fn pick(list: &mut Vec<Listener>, out: &mut Handlers) {
            out.extend(list.iter().map(|l| l.handler.clone()));
            list.retain(|l| !l.once);
        }
        let mut handlers = Handlers::new();
        pick(&mut self.any, &mut handlers);
        let name = self
            .by_event
            .get_key_value(event)
            .map(|(key, _)| key.clone());
        if let Some(list) = self.by_event.get_mut(event) {
            pick(list, &mut handlers);
            if list.is_empty() {
                self.by_event.remove(event);
            }
        }
        (name, handlers)
    }

    /// Registers `handler` for `event`, or for every event when `event` is `None`.
    pub(super) fn add(
        &mut self,
        event: Option<&str>,
        once: bool,
        handler: BoxedHandler,
    ) -> ListenerId {
        let id = ListenerId::next();
        let listener = Listener { id, once, handler };
        match event {
            Some(event) => self
                .by_event
                .entry(Arc::from(event))
                .or_default()
                .push(listener),
            None => self.any.push(listener),
        }
        id
    }

    /// Removes the listeners of `event`; how many there were.
    pub(super) fn remove_event(&mut self, event: &str) -> usize {
        self.by_event.remove(event).map_or(0, |l| l.len())
    }

    /// Removes the catch-all listeners; how many there were.
    pub(super) fn remove_any(&mut self) -> usize {
        std::mem::take(&mut self.any).len()
    }

    /// Removes the listener `id`; whether it was there.
    pub(super) fn remove(&mut self, id: ListenerId) -> bool {
        for list in self
            .by_event
            .values_mut()
            .chain(std::iter::once(&mut self.any))
        {
            if let Some(pos) = list.iter().position(|l| l.id == id) {
                list.remove(pos);
                return true;
            }
        }
        false
    }

    /// How many listeners `event` has.
    pub(super) fn count(&self, event: &str) -> usize {
        self.by_event.get(event).map_or(0, Vec::len)
    }
}
