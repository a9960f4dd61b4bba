//! One subscriber's stream: the body of a `GET` response.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::event::{KEEP_ALIVE_COMMENT, SHUTDOWN_COMMENT};
use super::history::Stored;
use super::id::put_id_line;
use super::topics::{Topic, Topics};

/// Events taken from the queue per poll: enough to fill a write, few enough to stay fair.
const BATCH: usize = 64;
/// Frames up to this size are copied next to their `id:` line into one buffer (one write for a
/// burst of small events); larger frames are sent as the shared bytes themselves.
const COPY_LIMIT: usize = 1024;

/// The parts of a stream, assembled once by the hub.
pub(crate) struct Opened {
    pub(crate) topics: Arc<Topics>,
    /// Held while the stream is open, for [`SseHub::shutdown`](super::SseHub::shutdown) to
    /// wait on.
    pub(crate) open: TaskTrackerToken,
    pub(crate) id: u64,
    pub(crate) epoch: Arc<str>,
    pub(crate) registered: Vec<Arc<Topic>>,
    pub(crate) positions: Vec<(Arc<str>, u64)>,
    pub(crate) opening: BytesMut,
    pub(crate) replay: Vec<Arc<Stored>>,
    pub(crate) queue: mpsc::Receiver<Arc<Stored>>,
    /// Ends the stream (lagging, forgetting a topic, disconnecting, shutting down).
    pub(crate) cancel: CancellationToken,
    /// The hub's shutdown, to tell it from the other reasons to end.
    pub(crate) shutdown: CancellationToken,
    pub(crate) keep_alive: Duration,
}

/// The body of a subscriber's response. Dropping it (the connection closed) unregisters the
/// subscriber from its topics.
pub(crate) struct SubscriberStream {
    hub_topics: Arc<Topics>,
    /// Released on drop: the stream has ended.
    _open: TaskTrackerToken,
    id: u64,
    /// The epoch of the stream's id.
    epoch: Arc<str>,
    topics: Vec<Arc<Topic>>,
    /// The last sequence number delivered per topic: the stream's id.
    positions: Vec<(Arc<str>, u64)>,
    /// Bytes ready to be written, in order.
    out: VecDeque<Bytes>,
    /// History events still to send before the live queue.
    replay: VecDeque<Arc<Stored>>,
    queue: mpsc::Receiver<Arc<Stored>>,
    batch: Vec<Arc<Stored>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    shutdown: CancellationToken,
    keep_alive_interval: Duration,
    /// `None` when keep-alives are off (a zero interval).
    keep_alive: Option<Pin<Box<Sleep>>>,
    ended: bool,
}

impl SubscriberStream {
    pub(crate) fn new(opened: Opened) -> Self {
        let interval = opened.keep_alive;
        let keep_alive = (!interval.is_zero()).then(|| Box::pin(tokio::time::sleep(interval)));
        Self {
            hub_topics: opened.topics,
            _open: opened.open,
            id: opened.id,
            epoch: opened.epoch,
            topics: opened.registered,
            positions: opened.positions,
            out: VecDeque::from([opened.opening.freeze()]),
            replay: opened.replay.into(),
            queue: opened.queue,
            batch: Vec::with_capacity(BATCH),
            cancelled: Box::pin(opened.cancel.cancelled_owned()),
            shutdown: opened.shutdown,
            keep_alive_interval: interval,
            keep_alive,
            ended: false,
        }
    }

    /// Appends the events in `self.batch` to `self.out`, each after the stream's new id.
    ///
    /// An event the stream already has (replayed, and then queued live while history was read)
    /// is skipped. An event after a gap, or of another epoch, ends the stream instead: the client
    /// reconnects with the id of the last event it got, and resumes from history.
    fn encode_batch(&mut self) {
        let mut buf = BytesMut::new();
        for stored in self.batch.drain(..) {
            let Some(slot) = self.positions.iter().position(|(topic, _)| {
                Arc::ptr_eq(topic, &stored.topic) || **topic == *stored.topic
            }) else {
                tracing::error!(subscriber = self.id, topic = %stored.topic, "event for a topic the stream is not on");
                continue;
            };
            let position = self.positions[slot].1;
            let same_epoch = Arc::ptr_eq(&stored.epoch, &self.epoch) || stored.epoch == self.epoch;
            if same_epoch && stored.seq <= position {
                continue;
            }
            if !same_epoch || stored.seq != position + 1 {
                tracing::debug!(
                    subscriber = self.id,
                    topic = %stored.topic,
                    seq = stored.seq,
                    position,
                    same_epoch,
                    "events missed, ending the stream so that it resumes from history"
                );
                self.ended = true;
                break;
            }
            self.positions[slot].1 = stored.seq;
            put_id_line(&mut buf, &self.epoch, &self.positions);
            if stored.frame.len() <= COPY_LIMIT {
                buf.put_slice(&stored.frame);
            } else {
                self.out.push_back(buf.split().freeze());
                self.out.push_back(stored.frame.clone());
            }
        }
        if !buf.is_empty() {
            self.out.push_back(buf.freeze());
        }
    }

    fn reset_keep_alive(&mut self) {
        if let Some(sleep) = &mut self.keep_alive {
            sleep
                .as_mut()
                .reset(Instant::now() + self.keep_alive_interval);
        }
    }
}

impl Stream for SubscriberStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            if this.cancelled.as_mut().poll(cx).is_ready() {
                this.ended = true;
                if this.shutdown.is_cancelled() {
                    this.out.push_back(Bytes::from_static(SHUTDOWN_COMMENT));
                }
                tracing::debug!(subscriber = this.id, "sse stream ended by the server");
                continue;
            }
            if !this.replay.is_empty() {
                let take = this.replay.len().min(BATCH);
                this.batch.extend(this.replay.drain(..take));
            } else if let Poll::Ready(0) = this.queue.poll_recv_many(cx, &mut this.batch, BATCH) {
                // Every topic dropped this stream without cancelling it; end so that the
                // client reconnects rather than waiting forever.
                this.ended = true;
                continue;
            }
            if !this.batch.is_empty() {
                this.encode_batch();
                if this.ended {
                    tracing::debug!(subscriber = this.id, "sse stream ended by the server");
                }
                this.reset_keep_alive();
                continue;
            }
            let due = match &mut this.keep_alive {
                Some(sleep) => sleep.as_mut().poll(cx).is_ready(),
                None => false,
            };
            if !due {
                return Poll::Pending;
            }
            this.reset_keep_alive();
            this.out.push_back(Bytes::from_static(KEEP_ALIVE_COMMENT));
        }
    }
}

impl Drop for SubscriberStream {
    fn drop(&mut self) {
        for topic in &self.topics {
            self.hub_topics.unsubscribe(topic, self.id);
        }
        tracing::debug!(subscriber = self.id, "sse stream closed");
    }
}
