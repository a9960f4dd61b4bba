//! The names a hub takes: topics (Socket.IO rooms with narrower rules) and event names.

use super::{HubError, RESERVED_EVENTS};

/// Longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 64;

/// Checks a topic name: 1 to [`MAX_TOPIC_LEN`] bytes of ASCII letters, digits, `-`, `_`, `.`,
/// `/` and `:`, and not of the shape of a socket id (16 letters, digits, `-` or `_`, such as
/// `temperature_room`).
///
/// A hub topic is a Socket.IO room name with narrower rules. A room may be any string; a topic
/// also appears inside SSE event ids, which use `;` and `,` as separators (and end each
/// position with `:` and a number, so a `:` inside a name reads back correctly), hence the
/// characters. And the room named by a socket's id is private to that socket, which may
/// connect later or on another node, hence the shape.
///
/// # Errors
/// [`HubError::InvalidTopic`] telling what is wrong.
///
/// # Examples
/// ```
/// use tongxun::hub::check_topic;
///
/// assert!(check_topic("prices").is_ok());
/// assert!(check_topic("chat:general").is_ok());
/// assert!(check_topic("a,b").is_err()); // a separator of SSE ids
/// assert!(check_topic("temperature_room").is_err()); // the shape of a socket id
/// ```
pub fn check_topic(topic: &str) -> Result<(), HubError> {
    if let Some(why) = topic_problem(topic) {
        return Err(HubError::InvalidTopic(why.into()));
    }
    if crate::io::is_id_shaped(topic) {
        return Err(HubError::InvalidTopic(
            "16 letters, digits, '-' or '_' is the shape of a socket id, whose room is private"
                .into(),
        ));
    }
    Ok(())
}

/// What is wrong with `topic` under the rules it follows on every transport (length and
/// characters); the SSE hub, which has no socket rooms, checks only these.
pub(crate) fn topic_problem(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        return Some("it is empty");
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Some("it is longer than 64 bytes");
    }
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':');
    if !topic.bytes().all(allowed) {
        return Some("only ASCII letters, digits, '-', '_', '.', '/' and ':' are allowed");
    }
    None
}

pub(crate) fn check_event(event: &str) -> Result<(), HubError> {
    if event.is_empty() || event.len() > 64 || event.chars().any(char::is_control) {
        return Err(HubError::InvalidEvent(
            "1 to 64 bytes without control characters".into(),
        ));
    }
    if RESERVED_EVENTS.contains(&event) {
        return Err(HubError::InvalidEvent(format!("\"{event}\" is reserved")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_1_to_64_bytes_of_a_few_ascii_characters() {
        let longest = "t".repeat(MAX_TOPIC_LEN);
        for ok in [
            "prices",
            "A-b_c.d/e",
            "chat:general",
            "rooms/42.chat",
            "temperature_room:1",
            &longest,
        ] {
            assert!(check_topic(ok).is_ok(), "{ok}");
        }
        let too_long = "t".repeat(MAX_TOPIC_LEN + 1);
        for bad in ["", "a b", "a,b", "a;b", "é", &too_long] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topics_of_a_socket_id_shape_are_refused_whether_or_not_that_socket_exists() {
        for id_shaped in ["temperature_room", "AbCdEfGhIjKlMnOp", "0123456789-_abcd"] {
            assert!(check_topic(id_shaped).is_err(), "{id_shaped}");
        }
        assert!(check_topic(crate::Sid::new().as_str()).is_err());
    }

    #[test]
    fn reserved_events_are_refused() {
        assert!(check_event("tick").is_ok());
        for bad in ["", "connect", "disconnect", "ready", "resync", "a\nb"] {
            assert!(check_event(bad).is_err(), "{bad:?}");
        }
    }
}
