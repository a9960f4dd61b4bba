//! Topic commands a plain client sends as JSON text frames:
//! `{"subscribe":"topic"}` (with `"since":"<id>"` to resume, for a hub bound to a
//! cross-transport [`Hub`](crate::hub::Hub)) and `{"unsubscribe":"topic"}`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::client::WsClient;
use super::config::MAX_TOPIC_LEN;
use super::message::WsMessage;

/// Longest `since` a command carries: one event id.
const MAX_SINCE_LEN: usize = 512;
/// Frames longer than this are never commands (a command is a short JSON object).
const MAX_COMMAND_LEN: usize = MAX_TOPIC_LEN + MAX_SINCE_LEN + 48;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Subscribe {
        topic: String,
        since: Option<String>,
    },
    Unsubscribe(String),
}

/// The keys a command may have.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    subscribe: Option<String>,
    unsubscribe: Option<String>,
    since: Option<String>,
}

/// The command a text frame holds, if it is exactly one (anything else goes to the app).
pub(crate) fn parse(text: &str) -> Option<Command> {
    if text.len() > MAX_COMMAND_LEN
        || !text.trim_start().starts_with('{')
        || !text.contains("subscribe")
    {
        return None;
    }
    let keys: Keys = serde_json::from_str(text).ok()?;
    match keys {
        Keys {
            subscribe: Some(topic),
            unsubscribe: None,
            since,
        } if since
            .as_ref()
            .is_none_or(|since| since.len() <= MAX_SINCE_LEN) =>
        {
            Some(Command::Subscribe { topic, since })
        }
        Keys {
            subscribe: None,
            unsubscribe: Some(topic),
            since: None,
        } => Some(Command::Unsubscribe(topic)),
        _ => None,
    }
}

/// What replays a resuming subscriber, started once its `subscribed` answer is queued.
pub(crate) type Replay = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Takes a hub's topic commands instead of the hub itself: the cross-transport hub bound to
/// it, which replays from history.
pub(crate) trait TopicCommands: Send + Sync + 'static {
    /// Subscribes `client` to `topic`, from `since` when given; the replay to run, if any.
    fn subscribe(
        &self,
        client: &WsClient,
        topic: &str,
        since: Option<&str>,
    ) -> Result<Option<Replay>, String>;
    fn unsubscribe(&self, client: &WsClient, topic: &str);
}

/// Applies a command and answers it: `{"subscribed":"t"}`, `{"unsubscribed":"t"}`, or
/// `{"error":"...","subscribe":"t"}`.
pub(crate) fn apply(client: &WsClient, command: Command) {
    let taker: Option<Arc<dyn TopicCommands>> = client.hub.topic_commands.get().cloned();
    let mut replay = None;
    let reply = match command {
        Command::Subscribe { topic, since } => {
            let subscribed = match &taker {
                Some(taker) => taker
                    .subscribe(client, &topic, since.as_deref())
                    .map(|started| replay = started),
                None => client
                    .subscribe(&topic)
                    .map(drop)
                    .map_err(|e| e.to_string()),
            };
            match subscribed {
                Ok(()) => json!({ "subscribed": topic }),
                Err(error) => {
                    tracing::debug!(client = %client.id(), topic, %error, "websocket subscribe refused");
                    json!({ "error": error, "subscribe": topic })
                }
            }
        }
        Command::Unsubscribe(topic) => {
            match &taker {
                Some(taker) => taker.unsubscribe(client, &topic),
                None => {
                    client.unsubscribe(&topic);
                }
            }
            json!({ "unsubscribed": topic })
        }
    };
    // A client too slow for its own replies meets the overflow policy like any other message.
    client.send(WsMessage::text(reply.to_string())).ok();
    if let Some(replay) = replay {
        tokio::spawn(replay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_single_key_objects() {
        assert_eq!(
            parse(r#"{"subscribe":"news"}"#),
            Some(Command::Subscribe {
                topic: "news".into(),
                since: None
            })
        );
        assert_eq!(
            parse(r#"{"subscribe":"news","since":"e1;news:4"}"#),
            Some(Command::Subscribe {
                topic: "news".into(),
                since: Some("e1;news:4".into())
            })
        );
        assert_eq!(
            parse(r#" { "unsubscribe" : "a b" } "#),
            Some(Command::Unsubscribe("a b".into()))
        );
    }

    #[test]
    fn anything_else_is_a_message_for_the_app() {
        for text in [
            r#"{"subscribe":"news","extra":1}"#,
            r#"{"unsubscribe":"news","since":"e1;news:4"}"#,
            r#"{"subscribe":"a","unsubscribe":"b"}"#,
            r#"{"since":"e1;news:4"}"#,
            r#"{"subscribe":42}"#,
            r#"{"Subscribe":"news"}"#,
            r#"["subscribe","news"]"#,
            r#"subscribe news"#,
            r#"{"say":"hi"}"#,
            "",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
        let long = format!(r#"{{"subscribe":"{}"}}"#, "x".repeat(MAX_COMMAND_LEN));
        assert_eq!(parse(&long), None);
    }
}
