//! The server side of the official Socket.IO Admin UI (`@socket.io/admin-ui` 0.5), as Node's
//! `instrument(io, options)`: the UI connects to an admin namespace (`/admin`), logs in, lists
//! every socket of every node with its rooms, follows connections, rooms and events as they
//! happen, and can emit, join, leave and disconnect.
//!
//! ```no_run
//! use tongxun::Server;
//! use tongxun::admin::{AdminUi, UiFiles};
//!
//! // bcrypt hash of the password, as Node's `instrument()` takes it
//! // (node -e "console.log(require('bcryptjs').hashSync('s3cret', 10))").
//! const HASH: &str = "$2a$10$HXTz5fMnYUtnfvMQ6iQKJeP6RO38rOMnX6ozxHhQEbzXO19w/l3sq";
//!
//! let files = UiFiles::new("node_modules/@socket.io/admin-ui/ui/dist")
//!     .icons("node_modules/@mdi/font");
//! let server = Server::builder()
//!     .namespace("/chat", |_| async {})
//!     .admin_ui(AdminUi::basic_auth("admin", HASH).server_id("node-a"))
//!     .routes(files.router("/admin/ui")) // the page at /admin/ui/
//!     .build();
//! ```
//!
//! What the UI shows comes from three places:
//! - **on login**, `config` (what the UI may do) and, in [`Mode::Development`], `all_sockets`:
//!   the sockets of this node, then, on Redis, every other node's as `socket_connected`;
//! - **as it happens** ([`Mode::Development`] only), `socket_connected`,
//!   `socket_disconnected`, `room_joined`, `room_left`, `event_received`, `event_sent` and
//!   `socket_updated` (a polling client upgraded), from every node;
//! - **every 2 s**, each node's `server_stats` (its id, uptime, clients, sockets per
//!   namespace and the counts behind the dashboard's charts).
//!
//! Notifications travel through one bounded queue per node ([`ADMIN_QUEUE`] entries): a burst
//! past it loses notifications (counted in the log), never holds back a client. Rooms joined
//! or left other than through [`Socket::join`](crate::Socket::join) and
//! [`Socket::leave`](crate::Socket::leave) (a broadcast's `join`, another node's command) are
//! noticed at the next 2 s tick.

mod auth;
#[cfg(feature = "redis")]
mod cluster;
mod commands;
mod feed;
mod files;
mod serialize;

use std::sync::Arc;

pub use files::UiFiles;

pub(crate) use feed::{Feed, Runner};

/// How many notifications for the Admin UI one node holds before it drops new ones.
pub const ADMIN_QUEUE: usize = 4096;

/// Sessions a node remembers, so that the UI reconnects without the password; the oldest is
/// forgotten first.
pub const MAX_SESSIONS: usize = 1024;

/// Password checks running at once; a login past them is refused with `too many login
/// attempts` instead of queueing bcrypt's work, so that anonymous clients trying passwords
/// keep at most this many threads busy (a session id logs in again without a check).
pub const MAX_LOGINS_AT_ONCE: usize = 2;

/// What the Admin UI is shown, as Node's `mode` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Every socket, room and event, as it happens (Node's default outside production).
    #[default]
    Development,
    /// Only the counts of `server_stats`: nothing per socket is sent, and nothing per event is
    /// done beyond counting.
    Production,
}

/// The Admin UI's server side: its namespace, login, and what it may do.
///
/// # Examples
/// ```
/// use tongxun::admin::{AdminUi, Mode};
///
/// let admin = AdminUi::basic_auth("admin", "$2a$10$HXTz5fMnYUtnfvMQ6iQKJeP6RO38rOMnX6ozxHhQEbzXO19w/l3sq")
///     .readonly(true)
///     .mode(Mode::Production)
///     .server_id("eu-1");
/// let server = tongxun::Server::builder().admin_ui(admin).build();
/// ```
#[derive(Debug, Clone)]
pub struct AdminUi {
    pub(crate) namespace: String,
    pub(crate) login: Option<Login>,
    pub(crate) readonly: bool,
    pub(crate) mode: Mode,
    pub(crate) server_id: Option<String>,
}

/// A username and the bcrypt hash of its password.
#[derive(Clone)]
pub(crate) struct Login {
    pub(crate) username: String,
    pub(crate) hash: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl AdminUi {
    /// The UI logs in as `username` with the password whose bcrypt hash is `hash` (`$2a$`,
    /// `$2b$` or `$2y$`, as bcryptjs writes it). A hash that is not one is refused by
    /// [`ServerBuilder::try_build`](crate::ServerBuilder::try_build).
    pub fn basic_auth(username: impl Into<String>, hash: impl Into<String>) -> Self {
        Self::with_login(Some(Login {
            username: username.into(),
            hash: hash.into(),
        }))
    }

    /// Anyone who reaches the server may use the UI (Node's `auth: false`): for a server only
    /// reachable from the operator's own machine.
    pub fn without_auth() -> Self {
        Self::with_login(None)
    }

    fn with_login(login: Option<Login>) -> Self {
        AdminUi {
            namespace: "/admin".to_owned(),
            login,
            readonly: false,
            mode: Mode::default(),
            server_id: None,
        }
    }

    /// The admin namespace, `/admin` by default (the UI's "namespace" field).
    pub fn namespace(mut self, path: impl Into<String>) -> Self {
        self.namespace = path.into();
        self
    }

    /// The UI may look but not emit, join, leave or disconnect.
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// What the UI is shown (see [`Mode`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// This node's name in the UI's server list; the host name by default.
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// Checks what can be checked before the server starts.
    pub(crate) fn check(&self) -> Result<(), crate::BuildError> {
        if let Some(login) = &self.login {
            login
                .hash
                .parse::<bcrypt::HashParts>()
                .map_err(|e| crate::BuildError::InvalidAdminPassword(Box::new(e)))?;
        }
        Ok(())
    }

    /// The features the UI is told it may use (its `config` event).
    fn features(&self) -> Vec<&'static str> {
        let mut features = if self.readonly {
            Vec::new()
        } else {
            vec![
                "EMIT",
                "JOIN",
                "LEAVE",
                "DISCONNECT",
                "MJOIN",
                "MLEAVE",
                "MDISCONNECT",
            ]
        };
        features.push("AGGREGATED_EVENTS");
        if self.mode == Mode::Development {
            features.push("ALL_EVENTS");
        }
        features
    }
}

/// Everything one server's Admin UI side shares.
#[derive(Debug)]
pub(crate) struct Admin {
    pub(crate) ui: AdminUi,
    pub(crate) feed: Feed,
    pub(crate) logins: auth::Logins,
    pub(crate) server_id: String,
    pub(crate) started: std::time::Instant,
    /// The node's Redis bus, through which the other nodes are asked for their sockets.
    #[cfg(feature = "redis")]
    pub(crate) bus: std::sync::OnceLock<crate::bus::RedisBus>,
}

impl Admin {
    pub(crate) fn new(ui: AdminUi) -> (Arc<Self>, Runner) {
        let (feed, runner) = Feed::new(ui.mode, ui.namespace.clone());
        let server_id = ui.server_id.clone().unwrap_or_else(hostname);
        let admin = Arc::new(Admin {
            logins: auth::Logins::new(ui.login.clone()),
            ui,
            feed,
            server_id,
            started: std::time::Instant::now(),
            #[cfg(feature = "redis")]
            bus: std::sync::OnceLock::new(),
        });
        (admin, runner)
    }

    /// The admin namespace, ready to register.
    pub(crate) fn namespace(self: &Arc<Self>) -> crate::Namespace {
        let on_connect = {
            let admin = self.clone();
            move |socket: crate::Socket| {
                let admin = admin.clone();
                async move { commands::connected(admin, socket).await }
            }
        };
        let check = {
            let admin = self.clone();
            move |handshake: crate::Handshake| {
                let admin = admin.clone();
                async move { admin.logins.check(&handshake).await }
            }
        };
        crate::Namespace::new(on_connect)
            .auth(check)
            .dispatch(crate::Dispatch::Parallel)
    }
}

/// The machine's host name, as Node's `os.hostname()`.
fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// A time as JavaScript's `Date.prototype.toISOString` writes it (UTC, milliseconds), which is
/// what Node's admin side sends for a `Date`.
pub(crate) fn iso_time(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn times_are_written_as_javascript_writes_them() {
        assert_eq!(iso_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // new Date(1764602852123).toISOString()
        let t = UNIX_EPOCH + Duration::from_millis(1_764_602_852_123);
        assert_eq!(iso_time(t), "2025-12-01T15:27:32.123Z");
        // A leap day: new Date(951782400000).toISOString()
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_000);
        assert_eq!(iso_time(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_password_that_is_not_a_bcrypt_hash_is_refused_at_build() {
        let plain = crate::Server::builder()
            .admin_ui(AdminUi::basic_auth("admin", "s3cret"))
            .try_build();
        assert!(matches!(
            plain,
            Err(crate::BuildError::InvalidAdminPassword(_))
        ));
    }

    #[test]
    fn a_readonly_ui_is_offered_no_command() {
        let ui = AdminUi::without_auth()
            .readonly(true)
            .mode(Mode::Production);
        assert_eq!(ui.features(), ["AGGREGATED_EVENTS"]);
        assert!(AdminUi::without_auth().features().contains(&"MDISCONNECT"));
    }
}
