//! Nicknames: their rules, the socket extension holding each one, and the registry that makes
//! claiming one atomic.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tongxun::{Sid, Socket};

use crate::error::ChatError;

/// Longest nickname, in characters.
pub(crate) const MAX_NICK: usize = 24;

/// A socket's nickname, in its extensions once it chose one; member lists read it there.
#[derive(Debug, Clone)]
pub(crate) struct Nick(pub(crate) String);

/// The socket's nickname, if it chose one.
pub(crate) fn nick_of(socket: &Socket) -> Result<String, ChatError> {
    match socket.extensions().get::<Nick>() {
        Some(Nick(nick)) => Ok(nick),
        None => Err(ChatError::NoNick),
    }
}

/// Whether `c` is a Unicode format character (category Cf): invisible, and able to reorder or
/// join the text around it (U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE), so that a
/// nickname could pass for another.
fn is_format_char(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}

/// Checks and normalises a nickname.
pub(crate) fn valid_nick(raw: &str) -> Result<String, ChatError> {
    let nick = raw.trim();
    if nick.is_empty() {
        Err(ChatError::EmptyNick)
    } else if nick.chars().count() > MAX_NICK {
        Err(ChatError::LongNick)
    } else if nick.chars().any(char::is_control) {
        Err(ChatError::ControlInNick)
    } else if nick.chars().any(is_format_char) {
        Err(ChatError::InvisibleInNick)
    } else {
        Ok(nick.to_owned())
    }
}

/// Who holds a nickname.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub(crate) sid: Sid,
    pub(crate) nick: String,
}

/// The nicknames in use, by their lowercase form. Its lock is taken briefly, never across an
/// await.
#[derive(Debug, Default)]
pub(crate) struct Nicknames(Mutex<HashMap<String, Owner>>);

impl Nicknames {
    /// Gives `nick` to socket `sid` in place of its `old` one, unless another socket holds it
    /// in any case.
    pub(crate) fn claim(&self, sid: Sid, nick: &str, old: Option<&str>) -> Result<(), ChatError> {
        let mut nicks = self.lock();
        if nicks
            .get(&nick.to_lowercase())
            .is_some_and(|owner| owner.sid != sid)
        {
            return Err(ChatError::NickTaken(nick.to_owned()));
        }
        if let Some(old) = old {
            nicks.remove(&old.to_lowercase());
        }
        let nick = nick.to_owned();
        nicks.insert(nick.to_lowercase(), Owner { sid, nick });
        Ok(())
    }

    /// Frees `nick` if socket `sid` holds it.
    pub(crate) fn release(&self, sid: Sid, nick: &str) {
        let mut nicks = self.lock();
        let key = nick.to_lowercase();
        if nicks.get(&key).is_some_and(|owner| owner.sid == sid) {
            nicks.remove(&key);
        }
    }

    /// Who holds `nick`, in any case.
    pub(crate) fn owner(&self, nick: &str) -> Option<Owner> {
        self.lock().get(&nick.to_lowercase()).cloned()
    }

    /// Takes the lock, even if a panicking thread poisoned it (the map stays consistent: every
    /// update is a single insert or remove).
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Owner>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusal's message, for comparing.
    fn refusal(raw: &str) -> String {
        valid_nick(raw).expect_err(raw).to_string()
    }

    #[test]
    fn nicknames_are_trimmed_and_bounded() {
        assert_eq!(valid_nick("  ada ").ok().as_deref(), Some("ada"));
        assert_eq!(refusal("   "), "nickname is empty");
        assert_eq!(
            valid_nick(&"é".repeat(MAX_NICK)).ok(),
            Some("é".repeat(MAX_NICK))
        );
        assert_eq!(
            refusal(&"x".repeat(MAX_NICK + 1)),
            "nickname is longer than 24 characters"
        );
        assert!(matches!(valid_nick("a\nb"), Err(ChatError::ControlInNick)));
        for disguised in [
            "ada\u{202E}",
            "a\u{200B}da",
            "\u{2066}ada",
            "ad\u{FEFF}a",
            "a\u{00AD}da",
        ] {
            assert!(
                matches!(valid_nick(disguised), Err(ChatError::InvisibleInNick)),
                "{disguised:?}"
            );
        }
        // Letters of any script stay welcome.
        assert_eq!(valid_nick("أحمد").ok().as_deref(), Some("أحمد"));
        assert_eq!(valid_nick("李雷").ok().as_deref(), Some("李雷"));
    }

    #[test]
    fn a_nickname_is_held_by_one_socket_in_any_case_until_released() {
        let (ada, grace) = (Sid::new(), Sid::new());
        let nicks = Nicknames::default();
        assert!(nicks.claim(ada, "ada", None).is_ok());
        assert!(matches!(
            nicks.claim(grace, "ADA", None),
            Err(ChatError::NickTaken(taken)) if taken == "ADA"
        ));
        // Its owner may change its case; after a change, the old one is free.
        assert!(nicks.claim(ada, "Ada", Some("ada")).is_ok());
        assert_eq!(nicks.owner("ADA").map(|o| o.nick).as_deref(), Some("Ada"));
        assert!(nicks.claim(ada, "lovelace", Some("Ada")).is_ok());
        assert!(nicks.owner("ada").is_none());
        // Only its owner releases it.
        nicks.release(grace, "lovelace");
        assert!(nicks.owner("lovelace").is_some_and(|o| o.sid == ada));
        nicks.release(ada, "lovelace");
        assert!(nicks.owner("lovelace").is_none());
    }
}
