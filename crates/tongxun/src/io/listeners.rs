//! A socket's listener table: the handlers of each event, the catch-all ones, the middleware and
//! the disconnect listeners, which the dispatcher (`dispatch.rs`) reads for every event.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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
    /// `None` for a catch-all listener.
    event: Option<Arc<str>>,
    once: bool,
    handler: BoxedHandler,
}

pub(crate) type DisconnectFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
pub(crate) type BoxedDisconnect =
    Arc<dyn Fn(Socket, DisconnectReason) -> DisconnectFuture + Send + Sync>;

/// The handlers one event reaches; one or two without an allocation.
pub(super) type Handlers = SmallVec<[BoxedHandler; 2]>;

/// A socket usually has a few listeners, so they are kept in one list in registration order
/// rather than in a map by event: looking one up is a scan, and the list costs one allocation,
/// trimmed to its length once the connect handler returned ([`Listeners::shrink`]).
#[derive(Default)]
pub(super) struct Listeners {
    list: Vec<Listener>,
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
        let mut handlers = Handlers::new();
        let mut name = None;
        let mut fired_once = false;
        for l in self.list.iter().filter(|l| l.event.is_none()) {
            handlers.push(l.handler.clone());
            fired_once |= l.once;
        }
        for l in &self.list {
            if let Some(own) = l.event.as_ref().filter(|own| ***own == *event) {
                name.get_or_insert_with(|| own.clone());
                handlers.push(l.handler.clone());
                fired_once |= l.once;
            }
        }
        if fired_once {
            self.list
                .retain(|l| !(l.once && l.event.as_deref().is_none_or(|own| own == event)));
        }
        (name, handlers)
    }

    /// Registers `handler` for `event` (a name from [`EventNames`]), or for every event when
    /// `event` is `None`.
    pub(super) fn add(
        &mut self,
        event: Option<Arc<str>>,
        once: bool,
        handler: BoxedHandler,
    ) -> ListenerId {
        let id = ListenerId::next();
        self.list.push(Listener {
            id,
            event,
            once,
            handler,
        });
        id
    }

    /// Frees the list's spare capacity: called once the connect handler, which registers most
    /// listeners, returned.
    pub(super) fn shrink(&mut self) {
        self.list.shrink_to_fit();
    }

    /// Removes the listeners of `event`; how many there were.
    pub(super) fn remove_event(&mut self, event: &str) -> usize {
        let before = self.list.len();
        self.list.retain(|l| l.event.as_deref() != Some(event));
        before - self.list.len()
    }

    /// Removes the catch-all listeners; how many there were.
    pub(super) fn remove_any(&mut self) -> usize {
        let before = self.list.len();
        self.list.retain(|l| l.event.is_some());
        before - self.list.len()
    }

    /// Removes the listener `id`; whether it was there.
    pub(super) fn remove(&mut self, id: ListenerId) -> bool {
        match self.list.iter().position(|l| l.id == id) {
            Some(pos) => {
                self.list.remove(pos);
                true
            }
            None => false,
        }
    }

    /// How many listeners `event` has.
    pub(super) fn count(&self, event: &str) -> usize {
        self.list
            .iter()
            .filter(|l| l.event.as_deref() == Some(event))
            .count()
    }
}

/// The event names a namespace's sockets listen to, shared between them: every socket of a
/// namespace usually registers the same few names, which then cost no allocation per socket.
/// Holds at most [`EventNames::MAX`] names; a socket registering more gets names of its own.
#[derive(Debug, Default)]
pub(crate) struct EventNames(RwLock<HashSet<Arc<str>>>);

impl EventNames {
    /// How many names a namespace shares.
    pub(crate) const MAX: usize = 1024;

    /// The shared name `event`.
    pub(super) fn get(&self, event: &str) -> Arc<str> {
        if let Some(name) = crate::sync::read(&self.0).get(event) {
            return name.clone();
        }
        let mut names = crate::sync::write(&self.0);
        if let Some(name) = names.get(event) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(event);
        if names.len() < Self::MAX {
            names.insert(name.clone());
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::handler::HandlerFuture;

    fn handler() -> BoxedHandler {
        Arc::new(|_| -> HandlerFuture { Box::pin(std::future::ready(Ok(()))) })
    }

    fn same(got: &Handlers, want: &[&BoxedHandler]) -> bool {
        got.len() == want.len() && got.iter().zip(want).all(|(a, b)| Arc::ptr_eq(a, b))
    }

    #[test]
    fn catch_all_listeners_come_first_then_the_events_in_registration_order() {
        let mut table = Listeners::default();
        let (a, any, b, other) = (handler(), handler(), handler(), handler());
        table.add(Some("tick".into()), false, a.clone());
        table.add(None, false, any.clone());
        table.add(Some("tock".into()), false, other.clone());
        table.add(Some("tick".into()), false, b.clone());
        let (name, handlers) = table.take_for("tick");
        assert!(same(&handlers, &[&any, &a, &b]));
        assert_eq!(name.as_deref(), Some("tick"));
        let (name, handlers) = table.take_for("nothing");
        assert!(same(&handlers, &[&any]));
        assert_eq!(name, None);
        assert_eq!(table.count("tick"), 2);
    }

    #[test]
    fn once_listeners_fire_once_and_only_for_their_event() {
        let mut table = Listeners::default();
        let (once, any_once, keep) = (handler(), handler(), handler());
        table.add(Some("tick".into()), true, once.clone());
        table.add(None, true, any_once.clone());
        table.add(Some("tock".into()), true, keep.clone());
        let (_, handlers) = table.take_for("tick");
        assert!(same(&handlers, &[&any_once, &once]));
        assert!(table.take_for("tick").1.is_empty());
        assert!(same(&table.take_for("tock").1, &[&keep]));
    }

    #[test]
    fn listeners_of_one_event_are_removed_together() {
        let mut table = Listeners::default();
        let first = table.add(Some("tick".into()), false, handler());
        table.add(Some("tick".into()), false, handler());
        table.add(None, false, handler());
        assert!(table.remove(first));
        assert!(!table.remove(first));
        assert_eq!(table.remove_event("tick"), 1);
        assert_eq!(table.remove_any(), 1);
        assert!(table.list.is_empty());
    }

    #[test]
    fn a_namespace_shares_its_event_names_up_to_its_bound() {
        let names = EventNames::default();
        assert!(Arc::ptr_eq(&names.get("tick"), &names.get("tick")));
        for i in 1..EventNames::MAX {
            names.get(&i.to_string());
        }
        assert!(!Arc::ptr_eq(&names.get("past"), &names.get("past")));
        assert!(Arc::ptr_eq(&names.get("tick"), &names.get("tick")));
    }
}
