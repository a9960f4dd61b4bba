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
//!
//! The log also counts the bytes it carries: each broadcast records where its payload ends in
//! the hub's running total, so that how many bytes a writer is behind is one subtraction, and a
//! writer that stops reading is held to
//! [`WsConfig::max_queued_bytes`](super::WsConfig::max_queued_bytes) like its queue. A value stays
//! in the log until every reader has taken it (or it is overwritten), so the part of the log a
//! writer has not read yet is what it alone keeps alive once the others have moved on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::client_id::ClientId;
use super::message::WsMessage;
use crate::sync::lock;

/// One broadcast as it sits in the log.
#[derive(Clone)]
pub(crate) struct Broadcast {
    /// Its place among the hub's broadcasts, from 1.
    pub(crate) index: u64,
    /// The client it is not for.
    pub(crate) except: Option<ClientId>,
    /// The hub's running total of broadcast bytes, this one's payload included.
    pub(crate) end: u64,
    pub(crate) message: WsMessage,
}

/// The hub's broadcast log.
pub(crate) struct Broadcasts {
    log: broadcast::Sender<Broadcast>,
    /// Broadcasts published so far: the index of the last one.
    published: AtomicU64,
    /// Payload bytes published so far: the `end` of the last broadcast.
    published_bytes: AtomicU64,
    /// Keeps indexes in the log's order when several threads publish at once; holds the bytes
    /// published since the last byte check (see [`Broadcasts::publish`]).
    order: Mutex<u64>,
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
            published_bytes: AtomicU64::new(0),
            order: Mutex::new(0),
        }
    }

    /// Appends `message` for every reader but `except`'s; returns its index.
    ///
    /// Before the append, once at least `check_every` bytes (counting this message) went into
    /// the log since the last time, calls `check` with the bytes published so far: the hub then
    /// looks at how far behind each writer is. No other broadcast is published meanwhile.
    pub(crate) fn publish(
        &self,
        message: WsMessage,
        except: Option<ClientId>,
        check_every: u64,
        check: impl FnOnce(u64),
    ) -> u64 {
        let mut unchecked = lock(&self.order);
        let len = message.len() as u64;
        let bytes = self.published_bytes.load(Ordering::Relaxed);
        if *unchecked + len >= check_every {
            *unchecked = 0;
            check(bytes);
        } else {
            *unchecked += len;
        }
        let index = self.published.load(Ordering::Relaxed) + 1;
        let end = bytes + len;
        // Counted before the append, so that a reader never takes a broadcast that ends past
        // the published total.
        self.published_bytes.store(end, Ordering::Release);
        // No reader at all is not an error: nobody is connected.
        self.log
            .send(Broadcast {
                index,
                except,
                end,
                message,
            })
            .ok();
        // Released only once the broadcast is in the log: a message queued after reading this
        // waits for a broadcast its writer can take.
        self.published.store(index, Ordering::Release);
        index
    }

    /// Payload bytes of every broadcast published so far.
    pub(crate) fn published_bytes(&self) -> u64 {
        self.published_bytes.load(Ordering::Acquire)
    }

    /// The index of the last broadcast published.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// A reader that starts after the last broadcast published, and the bytes published
    /// before it.
    pub(crate) fn reader(&self) -> (Reader, u64) {
        let _order = lock(&self.order);
        let reader = Reader {
            log: self.log.subscribe(),
            taken: self.published.load(Ordering::Relaxed),
            closed: false,
        };
        (reader, self.published_bytes.load(Ordering::Relaxed))
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

    fn publish(log: &Broadcasts, text: &str, except: Option<ClientId>) -> u64 {
        log.publish(WsMessage::text(text.to_owned()), except, u64::MAX, |_| {})
    }

    #[test]
    fn the_byte_check_runs_once_enough_bytes_went_by() {
        let log = Broadcasts::new(8);
        let checks = std::cell::RefCell::new(Vec::new());
        for _ in 0..5 {
            log.publish(WsMessage::text("xxxx"), None, 10, |b| {
                checks.borrow_mut().push(b)
            });
        }
        // 4 + 4 = 8 < 10; the third message would make 12: checked before it goes in.
        assert_eq!(*checks.borrow(), [8]);
    }

    fn text(taken: Taken) -> Option<String> {
        match taken {
            Taken::Broadcast(b) => Some(b.message.as_text().unwrap().to_owned()),
            _ => None,
        }
    }

    #[test]
    fn readers_take_what_was_published_after_they_joined() {
        let log = Broadcasts::new(4);
        publish(&log, "before", None);
        let (mut reader, bytes) = log.reader();
        assert_eq!((reader.taken(), bytes), (1, 6));
        publish(&log, "a", None);
        publish(&log, "b", Some(ClientId::new(7)));
        assert_eq!((log.published(), log.published_bytes()), (3, 8));
        assert_eq!(text(reader.try_take()).as_deref(), Some("a"));
        match reader.try_take() {
            Taken::Broadcast(b) => {
                assert_eq!((b.index, b.except), (3, Some(ClientId::new(7))));
                assert_eq!(b.end, 8);
            }
            _ => panic!("expected the second broadcast"),
        }
        assert!(matches!(reader.try_take(), Taken::Nothing));
        assert_eq!(reader.taken(), 3);
    }

    #[test]
    fn a_reader_too_far_behind_learns_how_many_it_missed() {
        let log = Broadcasts::new(2);
        let (mut reader, _) = log.reader();
        for n in 1..=5 {
            publish(&log, &n.to_string(), None);
        }
        assert!(matches!(reader.try_take(), Taken::Missed(3)));
        assert_eq!(reader.taken(), 3);
        assert_eq!(text(reader.try_take()).as_deref(), Some("4"));
        assert_eq!(text(reader.try_take()).as_deref(), Some("5"));
        assert_eq!(reader.taken(), 5);
    }
}
