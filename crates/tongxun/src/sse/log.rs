//! The hub as the log of a cross-transport [`Hub`](crate::hub::Hub): every event, each
//! topic's in order, for the node's feed, and its history read after a position.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::SseHub;
use super::event::PublishError;
use super::history::{Replay, Stored};

impl SseHub {
    /// Where `topic` stands, and what its history holds after position `after` of `epoch`:
    /// the current epoch, the topic's last sequence number, and the replay (meaningful only
    /// when the epochs match).
    ///
    /// # Errors
    /// [`PublishError::Unavailable`] when the history is in Redis and Redis cannot be reached.
    pub(crate) async fn history_after(
        &self,
        topic: &str,
        epoch: &str,
        after: u64,
    ) -> Result<(Arc<str>, u64, Replay), PublishError> {
        let inner = &self.inner;
        #[cfg(feature = "redis")]
        if let Some(shared) = inner.shared.get() {
            let (current, mut reads) = shared
                .read(
                    &[(topic, Some(after))],
                    Some(epoch),
                    &super::hub::new_epoch(),
                )
                .await
                .map_err(|e| {
                    // The caller tries again, and says so once it gives up.
                    tracing::debug!(%topic, "sse history unreachable: {e}");
                    PublishError::Unavailable
                })?;
            let read = reads.pop().ok_or(PublishError::Unavailable)?;
            let replay = read.replay.unwrap_or(Replay::Ahead);
            return Ok((current, read.last, replay));
        }
        let _ = epoch;
        let (last, replay) = inner.topics.replay_after(topic, after);
        Ok((inner.epoch.clone(), last, replay))
    }

    /// Whether the history is in Redis, shared with other nodes.
    #[cfg_attr(not(feature = "redis"), allow(clippy::unused_self))]
    pub(crate) fn is_shared(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.inner.shared.get().is_some() {
            return true;
        }
        false
    }

    /// Every event of every topic from now on, each topic's in order, for one reader: the
    /// [`Hub`](crate::hub::Hub) bound to this hub. `None` when a reader has it already.
    pub(crate) fn tap(&self) -> Option<mpsc::Receiver<Arc<Stored>>> {
        self.inner.topics.open_tap()
    }
}
