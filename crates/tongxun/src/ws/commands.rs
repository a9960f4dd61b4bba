//! Topic commands a plain client sends as JSON text frames:
//! `{"subscribe":"topic"}` and `{"unsubscribe":"topic"}`.

use serde::Deserialize;
use serde_json::json;

use super::client::WsClient;
use super::config::MAX_TOPIC_LEN;
use super::message::WsMessage;

/// Frames longer than this are never commands (a command is a short JSON object).
const MAX_COMMAND_LEN: usize = MAX_TOPIC_LEN + 32;

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Command {
    Subscribe(String),
    Unsubscribe(String),
}

/// The command a text frame holds, if it is exactly one (anything else goes to the app).
pub(crate) fn parse(text: &str) -> Option<Command> {
    if text.len() > MAX_COMMAND_LEN
        || !text.trim_start().starts_with('{')
        || !text.contains("subscribe")
    {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Applies a command and answers it: `{"subscribed":"t"}`, `{"unsubscribed":"t"}`, or
/// `{"error":"...","subscribe":"t"}`.
pub(crate) fn apply(client: &WsClient, command: Command) {
    let reply = match command {
        Command::Subscribe(topic) => match client.subscribe(&topic) {
            Ok(_) => json!({ "subscribed": topic }),
            Err(error) => {
                tracing::debug!(client = %client.id(), topic, %error, "websocket subscribe refused");
                json!({ "error": error.to_string(), "subscribe": topic })
            }
        },
        Command::Unsubscribe(topic) => {
            client.unsubscribe(&topic);
            json!({ "unsubscribed": topic })
        }
    };
    // A client too slow for its own replies meets the overflow policy like any other message.
    client.send(WsMessage::text(reply.to_string())).ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_single_key_objects() {
        assert_eq!(
            parse(r#"{"subscribe":"news"}"#),
            Some(Command::Subscribe("news".into()))
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
