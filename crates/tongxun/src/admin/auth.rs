//! Logging in to the admin namespace: a username and a password checked against a bcrypt hash,
//! or a session id this node handed out at an earlier login, as Node's admin side does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{Login, MAX_LOGINS_AT_ONCE, MAX_SESSIONS};
use crate::{ConnectError, Handshake, Sid, lock};

/// What the UI sends as its `auth`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    session_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The login, the sessions handed out and the bound on bcrypt's work.
pub(crate) struct Logins {
    login: Option<Login>,
    sessions: Mutex<Sessions>,
    checks: Arc<Semaphore>,
    /// Logins refused because `MAX_LOGINS_AT_ONCE` checks were running.
    busy: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Sessions {
    /// Oldest first.
    known: VecDeque<String>,
    /// Sessions created at a login, sent to the socket once it is connected.
    to_send: HashMap<Sid, String>,
}

impl Sessions {
    /// Keeps `session` for `sid` to be sent, and known for later logins, forgetting the oldest
    /// past `max`.
    fn remember(&mut self, sid: Sid, session: String, max: usize) {
        while self.known.len() >= max {
            self.known.pop_front();
        }
        self.known.push_back(session.clone());
        // A login whose socket never connected leaves its entry: at most `max` of those too.
        if self.to_send.len() >= max {
            self.to_send.clear();
        }
        self.to_send.insert(sid, session);
    }
}

impl std::fmt::Debug for Logins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logins")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// Node's answer to a wrong login, which the UI recognizes.
const INVALID: &str = "invalid credentials";

impl Logins {
    pub(crate) fn new(login: Option<Login>) -> Self {
        Logins {
            login,
            sessions: Mutex::default(),
            checks: Arc::new(Semaphore::new(MAX_LOGINS_AT_ONCE)),
            busy: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Lets the socket in, or refuses it with `invalid credentials`.
    pub(crate) async fn check(&self, handshake: &Handshake) -> Result<(), ConnectError> {
        let Some(login) = &self.login else {
            return Ok(());
        };
        let credentials: Credentials = handshake.auth().unwrap_or_default();
        if let Some(session) = &credentials.session_id
            && !session.is_empty()
            && lock(&self.sessions).known.contains(session)
        {
            return Ok(());
        }
        let (Some(username), Some(password)) = (credentials.username, credentials.password) else {
            return Err(ConnectError::new(INVALID));
        };
        if username != login.username {
            return Err(ConnectError::new(INVALID));
        }
        // bcrypt is slow on purpose: a few checks at a time, off the runtime's threads.
        let Ok(permit) = self.checks.clone().try_acquire_owned() else {
            self.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                "admin login refused: {MAX_LOGINS_AT_ONCE} password checks already running"
            );
            return Err(ConnectError::new("too many login attempts"));
        };
        let hash = login.hash.clone();
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !matches {
            tracing::info!(sid = %handshake.id(), "admin login refused: wrong password");
            return Err(ConnectError::new(INVALID));
        }
        let Some(session) = new_session_id() else {
            return Ok(());
        };
        lock(&self.sessions).remember(handshake.id(), session, MAX_SESSIONS);
        Ok(())
    }

    /// Logins refused because the password checks were all busy.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn refused_busy(&self) -> u64 {
        self.busy.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The session created when `sid` logged in, to hand to it.
    pub(crate) fn take_session(&self, sid: Sid) -> Option<String> {
        lock(&self.sessions).to_send.remove(&sid)
    }
}

/// 128 random bits from the operating system, in hex; none without randomness (the UI then
/// asks for the password again when it reconnects).
fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_the_oldest_is_forgotten_first() {
        let mut sessions = Sessions::default();
        for n in 0..=MAX_SESSIONS {
            sessions.remember(Sid::new(), format!("s{n}"), MAX_SESSIONS);
        }
        assert_eq!(sessions.known.len(), MAX_SESSIONS);
        assert!(!sessions.known.contains(&"s0".to_owned()));
        assert!(sessions.known.contains(&format!("s{MAX_SESSIONS}")));
        assert!(sessions.to_send.len() <= MAX_SESSIONS);
    }

    #[test]
    fn session_ids_are_128_random_bits() {
        let (a, b) = (new_session_id().unwrap(), new_session_id().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
