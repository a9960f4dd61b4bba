//! Nicknames: their rules, the socket extension holding each one, and the registry, shared by
//! every node, that makes claiming one atomic.

use tongxun::shared::{Claim, Names, SharedState};
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
    /// The holder's socket id, which is also the name of its own room on every node.
    pub(crate) sid: String,
    pub(crate) nick: String,
}

/// The nicknames in use on every node of the chat, by their lowercase form, in the chat's
/// shared state: claiming one is atomic, in Redis when there are several nodes, and a nickname
/// held by a node that died is free again once its lease lapses.
#[derive(Debug, Clone)]
pub(crate) struct Nicknames(Names);

impl Nicknames {
    /// The nicknames kept in `shared`.
    pub(crate) fn new(shared: &SharedState) -> Self {
        Self(shared.names("chat:nicks"))
    }

    /// Gives `nick` to socket `sid` in place of its `old` one, unless another socket holds it
    /// in any case.
    pub(crate) async fn claim(
        &self,
        sid: Sid,
        nick: &str,
        old: Option<&str>,
    ) -> Result<(), ChatError> {
        let owner = sid.to_string();
        let key = nick.to_lowercase();
        if let Claim::Held(_) = self.0.claim(&key, &owner, nick).await? {
            return Err(ChatError::NickTaken(nick.to_owned()));
        }
        if let Some(old) = old.map(str::to_lowercase).filter(|old| *old != key) {
            // Should this fail, the old nickname is freed when the socket leaves.
            if let Err(e) = self.0.release(&old, &owner).await {
                tracing::warn!(%sid, %old, "previous nickname not released yet: {e}");
            }
        }
        Ok(())
    }

    /// Frees `nick` if socket `sid` holds it.
    pub(crate) async fn release(&self, sid: Sid, nick: &str) {
        if let Err(e) = self.0.release(&nick.to_lowercase(), &sid.to_string()).await {
            tracing::warn!(%sid, %nick, "nickname not released (it frees when this node's lease lapses): {e}");
        }
    }

    /// Who holds `nick`, in any case.
    pub(crate) async fn owner(&self, nick: &str) -> Result<Option<Owner>, ChatError> {
        let holder = self.0.holder(&nick.to_lowercase()).await?;
        Ok(holder.map(|holder| Owner {
            sid: holder.owner,
            nick: holder.value,
        }))
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

    #[tokio::test]
    async fn a_nickname_is_held_by_one_socket_in_any_case_until_released() {
        let (ada, grace) = (Sid::new(), Sid::new());
        let nicks = Nicknames::new(&SharedState::new());
        assert!(nicks.claim(ada, "ada", None).await.is_ok());
        assert!(matches!(
            nicks.claim(grace, "ADA", None).await,
            Err(ChatError::NickTaken(taken)) if taken == "ADA"
        ));
        // Its owner may change its case; after a change, the old one is free.
        assert!(nicks.claim(ada, "Ada", Some("ada")).await.is_ok());
        let owner = nicks.owner("ADA").await.ok().flatten();
        assert_eq!(owner.map(|o| o.nick).as_deref(), Some("Ada"));
        assert!(nicks.claim(ada, "lovelace", Some("Ada")).await.is_ok());
        assert!(nicks.owner("ada").await.ok().flatten().is_none());
        // Only its owner releases it.
        nicks.release(grace, "lovelace").await;
        let owner = nicks.owner("lovelace").await.ok().flatten();
        assert!(owner.is_some_and(|o| o.sid == ada.to_string()));
        nicks.release(ada, "lovelace").await;
        assert!(nicks.owner("lovelace").await.ok().flatten().is_none());
    }
}
