//! How clients subscribe to hub topics: the `subscribe` and `unsubscribe` events of a
//! Socket.IO namespace, the `since` of a handshake's `auth`, and the WebSocket hub's topic
//! commands, all resuming from an id when the hub has a history.

#[cfg(feature = "sse")]
use std::sync::Arc;

use serde::Deserialize;

use super::{HubError, check_topic};
use crate::io::{Ack, Data, Socket};

/// Topics one `since` may resume at once: the ids of a client's topics.
pub const MAX_SINCE_TOPICS: usize = 32;

/// Adds the `subscribe` and `unsubscribe` listeners of [`Hub::namespace`](super::Hub::namespace)
/// to a socket, and resumes the topics of its handshake's `auth.since`.
///
/// # Examples
/// ```
/// use tongxun::Socket;
///
/// async fn on_connect(socket: Socket) {
///     tongxun::hub::subscriptions(&socket);
///     // ... the app's own listeners
/// }
/// # let _ = tongxun::Server::builder().namespace("/live", on_connect);
/// ```
pub fn subscriptions(socket: &Socket) {
    socket.on(
        "subscribe",
        |socket: Socket, Data(request): Data<Request>, ack: Ack| async move {
            match subscribe(&socket, request).await {
                Ok(topics) => ack.send(&serde_json::json!({ "ok": topics })),
                Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
            }
        },
    );
    socket.on(
        "unsubscribe",
        |socket: Socket, Data(request): Data<Request>, ack: Ack| async move {
            match request.topics.checked() {
                Ok(topics) => {
                    for topic in &topics {
                        unsubscribe(&socket, topic);
                    }
                    ack.send(&serde_json::json!({ "ok": topics }))
                }
                Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
            }
        },
    );
    #[cfg(feature = "sse")]
    resume_from_auth(socket);
}

/// What `subscribe` and `unsubscribe` take: a topic, a list of them, or
/// `{"topics": ..., "since": <id or ids>}`.
#[derive(Deserialize)]
#[serde(from = "RequestShape")]
struct Request {
    topics: Topics,
    #[cfg_attr(not(feature = "sse"), allow(dead_code))]
    since: Option<Since>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RequestShape {
    Topics(Topics),
    Resume {
        topics: Topics,
        since: Option<Since>,
    },
}

impl From<RequestShape> for Request {
    fn from(shape: RequestShape) -> Self {
        match shape {
            RequestShape::Topics(topics) => Request {
                topics,
                since: None,
            },
            RequestShape::Resume { topics, since } => Request { topics, since },
        }
    }
}

/// One topic or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Topics {
    One(String),
    Many(Vec<String>),
}

impl Topics {
    fn checked(self) -> Result<Vec<String>, HubError> {
        let topics = match self {
            Topics::One(topic) => vec![topic],
            Topics::Many(topics) => topics,
        };
        for topic in &topics {
            check_topic(topic)?;
        }
        Ok(topics)
    }
}

/// One id or a list of them, each an SSE hub id (one topic's, or a stream's of several).
#[derive(Deserialize)]
#[serde(untagged)]
#[cfg_attr(not(feature = "sse"), allow(dead_code))]
pub(crate) enum Since {
    One(String),
    Many(Vec<String>),
}

#[cfg(feature = "sse")]
impl Since {
    /// The positions the ids record, at most [`MAX_SINCE_TOPICS`]; `None` when one is not an
    /// id of this format.
    pub(crate) fn positions(&self) -> Option<Vec<super::feed::Position>> {
        let ids = match self {
            Since::One(id) => std::slice::from_ref(id),
            Since::Many(ids) => ids.as_slice(),
        };
        let mut positions: Vec<super::feed::Position> = Vec::new();
        for id in ids {
            let parsed = crate::sse::ParsedId::parse(id)?;
            let epoch: Arc<str> = parsed.epoch.into();
            for (topic, seq) in parsed.positions {
                check_topic(topic).ok()?;
                if let Some(known) = positions.iter_mut().find(|p| &*p.topic == topic) {
                    known.seq = known.seq.max(seq);
                    continue;
                }
                if positions.len() >= MAX_SINCE_TOPICS {
                    return None;
                }
                positions.push(super::feed::Position {
                    topic: topic.into(),
                    epoch: epoch.clone(),
                    seq,
                });
            }
        }
        Some(positions)
    }
}

/// The feed of the hub bound to this socket's namespace, if it has a history.
#[cfg(feature = "sse")]
fn feed_of(socket: &Socket) -> Option<super::feed::Feed> {
    let shared = &socket.io().shared;
    let feeds = crate::sync::read(&shared.hub_feeds);
    feeds.iter().find(|feed| feed.serves(socket.ns())).cloned()
}

async fn subscribe(socket: &Socket, request: Request) -> Result<Vec<String>, HubError> {
    let topics = request.topics.checked()?;
    #[cfg(feature = "sse")]
    if let Some(feed) = feed_of(socket) {
        return subscribe_fed(socket, &feed, topics, request.since).await;
    }
    socket
        .join(topics.clone())
        .map_err(|e| HubError::InvalidTopic(e.to_string()))?;
    Ok(topics)
}

/// Subscribes through the feed: each topic with a position in `since` is replayed from there
/// (before the acknowledgement), the others start live.
#[cfg(feature = "sse")]
async fn subscribe_fed(
    socket: &Socket,
    feed: &super::feed::Feed,
    topics: Vec<String>,
    since: Option<Since>,
) -> Result<Vec<String>, HubError> {
    use super::feed::Subscribed;
    use super::target::Target;

    let target = Target::Socket(socket.clone());
    let positions = match since.as_ref().map(Since::positions) {
        Some(Some(positions)) => positions,
        Some(None) => {
            for topic in &topics {
                target.resync(&topic.as_str().into(), crate::sse::ResyncReason::UnknownId);
            }
            Vec::new()
        }
        None => Vec::new(),
    };
    let mut resumes = Vec::new();
    for topic in &topics {
        let name: Arc<str> = topic.as_str().into();
        let position = positions.iter().find(|p| p.topic == name);
        match feed.subscribe(&target, &name, position) {
            Ok(Subscribed::Resuming) => resumes.extend(position.cloned()),
            Ok(_) => {}
            Err(e) => return Err(HubError::InvalidTopic(e)),
        }
    }
    for position in resumes {
        feed.resume(target.clone(), position).await;
    }
    Ok(topics)
}

fn unsubscribe(socket: &Socket, topic: &str) {
    #[cfg(feature = "sse")]
    if let Some(feed) = feed_of(socket) {
        return feed.unsubscribe(&super::target::Target::Socket(socket.clone()), topic);
    }
    socket.leave(topic.to_owned());
}

/// Resumes the topics of the handshake's `auth.since`: registered now, before the socket's
/// first event, so that a `subscribe` of the same topic right after connecting changes nothing;
/// replayed in a task of its own.
#[cfg(feature = "sse")]
fn resume_from_auth(socket: &Socket) {
    use super::feed::Subscribed;
    use super::target::Target;

    #[derive(Deserialize)]
    struct Auth {
        since: Option<Since>,
    }
    let Ok(Auth { since: Some(since) }) = socket.handshake().auth::<Auth>() else {
        return;
    };
    let Some(feed) = feed_of(socket) else {
        return;
    };
    let target = Target::Socket(socket.clone());
    let Some(positions) = since.positions() else {
        tracing::debug!(sid = %socket.id(), "auth.since is not an id of this hub, asking to resync");
        socket
            .emit(
                "resync",
                &serde_json::json!({ "topics": [], "reason": "unknown_id" }),
            )
            .ok();
        return;
    };
    for position in positions {
        match feed.subscribe(&target, &position.topic, Some(&position)) {
            Ok(Subscribed::Resuming) => {
                let (feed, target) = (feed.clone(), target.clone());
                tokio::spawn(async move { feed.resume(target, position).await });
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(sid = %socket.id(), topic = %position.topic, "auth.since topic refused: {e}")
            }
        }
    }
}

/// The WebSocket hub's topic commands, taken by the feed.
#[cfg(all(feature = "sse", feature = "ws"))]
impl crate::ws::TopicCommands for super::feed::Feed {
    fn subscribe(
        &self,
        client: &crate::ws::WsClient,
        topic: &str,
        since: Option<&str>,
    ) -> Result<Option<crate::ws::CommandReplay>, String> {
        use super::feed::Subscribed;
        use super::target::Target;

        let target = Target::Ws(client.clone());
        let name: Arc<str> = topic.into();
        let position = match since.map(|id| Since::One(id.to_owned()).positions()) {
            None => None,
            Some(Some(positions)) => positions.into_iter().find(|p| p.topic == name),
            Some(None) => {
                target.resync(&name, crate::sse::ResyncReason::UnknownId);
                None
            }
        };
        match (self.subscribe(&target, &name, position.as_ref())?, position) {
            (Subscribed::Resuming, Some(position)) => {
                let feed = self.clone();
                Ok(Some(Box::pin(async move {
                    feed.resume(target, position).await;
                })))
            }
            _ => Ok(None),
        }
    }

    fn unsubscribe(&self, client: &crate::ws::WsClient, topic: &str) {
        self.unsubscribe(&super::target::Target::Ws(client.clone()), topic);
    }
}
