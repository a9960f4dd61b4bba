//! Messages to every client: one shared log instead of a push into each client's queue.
//!
//! [`WsHub::broadcast`](super::WsHub::broadcast) appends to a `tokio::sync::broadcast` channel,
//! the same work whatever the number of clients, and each client's writer takes from it. Pushing
//! into every queue instead cost the sender about 130 ns per client (1,000 clients: 130 µs per
//! broadcast, all on the sender's task), which capped the hub's fan-out well below a bare
//! tokio-tungstenite relay's.
//!
//! Messages for some clients only (`send_to`, topics) still go through each client's queue, and
//! each records how many broadcasts had been published when it was queued. A writer sends a
//! broadcast only once no queued message is older, so a client receives a broadcast and a
//! message queued after it in that order, as if both had gone through its queue.
//!
//! The log keeps the last [`WsConfig::queue_capacity`](super::WsConfig::queue_capacity)
//! broadcasts. With [`OverflowPolicy::Close`](super::OverflowPolicy::Close) the hub checks how
//! far behind each writer is every eighth of that many broadcasts, and closes with 1013 a client
//! that could otherwise miss one before the next check (so, one more than seven eighths of the
//! capacity behind). With the drop policies a writer that fell too far behind misses the oldest
//! broadcasts, counted as dropped when it gets to them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::client::ClientId;
use super::message::WsMessage;

/// One broadcast as it sits in the log.
#[derive(Clone)]
pub(crate) struct Broadcast {
    /// Its place among the hub's broadcasts, from 1.
    pub(crate) index: u64,
    /// The client it is not for.
    pub(crate) except: Option<ClientId>,
    pub(crate) message: WsMessage,
}

/// The hub's broadcast log.
pub(crate) struct Broadcasts {
    log: broadcast::Sender<Broadcast>,
    /// Broadcasts published so far: the index of the last one.
    published: AtomicU64,
    /// Keeps indexes in the log's order when several threads publish at once.
    order: Mutex<()>,
}

/// What a writer took from the log.
pub(crate) enum Taken {
    Broadcast(Broadcast),
    /// The writer fell this many broadcasts behind; they are gone.
    Missed(u64),
    /// Nothing new.
    Nothing,
}

/// A writer's place in the log.
pub(crate) struct Reader {
    log: broadcast::Receiver<Broadcast>,
    /// The index of the last broadcast taken (or missed).
    taken: u64,
    /// Set once the hub is gone, so that waiting does not spin.
    closed: bool,
}

impl Broadcasts {
    /// A log that keeps the last `capacity` broadcasts for writers that are behind.
    pub(crate) fn new(capacity: usize) -> Self {
        let (log, _) = broadcast::channel(capacity.max(1));
        Self {
            log,
            published: AtomicU64::new(0),
            order: Mutex::new(()),
        }
    }

    /// Appends `message` for every reader but `except`'s; returns its index.
    pub(crate) fn publish(&self, message: WsMessage, except: Option<ClientId>) -> u64 {
        let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let index = self.published.load(Ordering::Relaxed) + 1;
        // No reader at all is not an error: nobody is connected.
        self.log
            .send(Broadcast {
                index,
                except,
                message,
            })
            .ok();
        // Released only once the broadcast is in the log: a message queued after reading this
        // waits for a broadcast its writer can take.
        self.published.store(index, Ordering::Release);
        index
    }

    /// The index of the last broadcast published.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// A reader that starts after the last broadcast published.
    pub(crate) fn reader(&self) -> Reader {
        let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        Reader {
            log: self.log.subscribe(),
            taken: self.published.load(Ordering::Relaxed),
            closed: false,
        }
    }
}

impl Reader {
    /// The index of the last broadcast taken or missed.
    pub(crate) fn taken(&self) -> u64 {
        self.taken
    }

    /// The next broadcast, if one is waiting.
    pub(crate) fn try_take(&mut self) -> Taken {
        match self.log.try_recv() {
            Ok(broadcast) => self.took(broadcast),
            Err(TryRecvError::Lagged(missed)) => self.missed(missed),
            Err(TryRecvError::Empty) => Taken::Nothing,
            Err(TryRecvError::Closed) => {
                self.closed = true;
                Taken::Nothing
            }
        }
    }

    /// Waits for the next broadcast.
    ///
    /// # Cancel safety
    /// Cancel-safe: a broadcast is taken only when the future completes.
    pub(crate) async fn take(&mut self) -> Taken {
        if self.closed {
            return std::future::pending().await;
        }
        match self.log.recv().await {
            Ok(broadcast) => self.took(broadcast),
            Err(RecvError::Lagged(missed)) => self.missed(missed),
            Err(RecvError::Closed) => {
                self.closed = true;
                Taken::Nothing
            }
        }
    }

    fn took(&mut self, broadcast: Broadcast) -> Taken {
        self.taken = broadcast.index;
        Taken::Broadcast(broadcast)
    }

    fn missed(&mut self, missed: u64) -> Taken {
        self.taken += missed;
        Taken::Missed(missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(taken: Taken) -> Option<String> {
        match taken {
            Taken::Broadcast(b) => Some(b.message.as_text().unwrap().to_owned()),
            _ => None,
        }
    }

    #[test]
    fn readers_take_what_was_published_after_they_joined() {
        let log = Broadcasts::new(4);
        log.publish(WsMessage::text("before"), None);
        let mut reader = log.reader();
        assert_eq!(reader.taken(), 1);
        log.publish(WsMessage::text("a"), None);
        log.publish(WsMessage::text("b"), Some(ClientId::new(7)));
        assert_eq!(log.published(), 3);
        assert_eq!(text(reader.try_take()).as_deref(), Some("a"));
        match reader.try_take() {
            Taken::Broadcast(b) => assert_eq!((b.index, b.except), (3, Some(ClientId::new(7)))),
            _ => panic!("expected the second broadcast"),
        }
        assert!(matches!(reader.try_take(), Taken::Nothing));
        assert_eq!(reader.taken(), 3);
    }

    #[test]
    fn a_reader_too_far_behind_learns_how_many_it_missed() {
        let log = Broadcasts::new(2);
        let mut reader = log.reader();
        for n in 1..=5 {
            log.publish(WsMessage::text(n.to_string()), None);
        }
        assert!(matches!(reader.try_take(), Taken::Missed(3)));
        assert_eq!(reader.taken(), 3);
        assert_eq!(text(reader.try_take()).as_deref(), Some("4"));
        assert_eq!(text(reader.try_take()).as_deref(), Some("5"));
        assert_eq!(reader.taken(), 5);
    }
}
