//! Per-socket key/value storage (Socket.IO 0.9's `socket.set(name, value)` / `socket.get(name)`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

type Entries = HashMap<String, serde_json::Value>;

/// Why a stored value could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Nothing is stored under this key.
    #[error("no value stored under \"{0}\"")]
    NotFound(String),
    /// The stored value does not decode into the requested type.
    #[error("value under \"{key}\" is not of the requested type")]
    WrongType {
        /// The key.
        key: String,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },
    /// The value could not be serialized.
    #[error("value for \"{key}\" cannot be stored")]
    Encode {
        /// The key.
        key: String,
        /// Why serialization failed.
        #[source]
        source: serde_json::Error,
    },
}

/// A socket's key/value storage: string keys, any serde value.
///
/// It lives as long as the socket: readable in the disconnect handler, emptied after it. Other
/// sockets' stores are readable through [`Socket::store`](super::Socket::store) on the sockets a
/// namespace or room lists. Every call takes a short lock that is never held across an await.
///
/// # Examples
/// ```
/// use tongxun::Socket;
///
/// async fn on_connect(socket: Socket) {
///     socket.store().set("nick", "anonymous").unwrap();
///     let nick: String = socket.store().get("nick").unwrap_or_default();
///     assert_eq!(nick, "anonymous");
///     // A type mismatch is an error, not a panic.
///     assert!(socket.store().get::<u32>("nick").is_err());
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[derive(Debug)]
pub struct Store {
    /// Allocated with the first entry: most sockets store nothing.
    entries: Mutex<Option<Box<Entries>>>,
    live: Arc<AtomicUsize>,
}

impl Store {
    pub(crate) fn new(live: Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self {
            entries: Mutex::default(),
            live,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Option<Box<Entries>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `read` on the entries, none when nothing was ever stored.
    fn read<R>(&self, read: impl FnOnce(Option<&Entries>) -> R) -> R {
        read(self.entries().as_deref())
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// # Errors
    /// [`StoreError::Encode`] when the value cannot be serialized.
    ///
    /// # Examples
    /// ```
    /// use tongxun::Socket;
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.store().set("visits", &1u32).ok();
    ///     let visits: u32 = socket.store().get("visits").unwrap_or(0);
    ///     socket.store().set("visits", &(visits + 1)).ok();
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn set<T: Serialize + ?Sized>(
        &self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), StoreError> {
        let key = key.into();
        let value = serde_json::to_value(value).map_err(|source| StoreError::Encode {
            key: key.clone(),
            source,
        })?;
        self.entries().get_or_insert_default().insert(key, value);
        Ok(())
    }

    /// Reads the value under `key` as a `T`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when nothing is stored there, [`StoreError::WrongType`] when the
    /// value does not decode into `T`.
    ///
    /// # Examples
    /// ```
    /// use tongxun::{Ack, HandlerError, Socket};
    ///
    /// async fn on_connect(socket: Socket) {
    ///     socket.on("whoami", async |socket: Socket, ack: Ack| -> Result<(), HandlerError> {
    ///         let nick: String = socket.store().get("nick")?; // StoreError::NotFound when unset
    ///         ack.send(&nick)?;
    ///         Ok(())
    ///     });
    /// }
    /// # let _ = tongxun::Server::builder().namespace("/", on_connect);
    /// ```
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, StoreError> {
        let value = self
            .read(|entries| entries?.get(key).cloned())
            .ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
        serde_json::from_value(value).map_err(|source| StoreError::WrongType {
            key: key.to_owned(),
            source,
        })
    }

    /// Removes the value under `key`, returning it as JSON if there was one.
    pub fn remove(&self, key: &str) -> Option<serde_json::Value> {
        self.entries().as_mut()?.remove(key)
    }

    /// Whether a value is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.read(|entries| entries.is_some_and(|e| e.contains_key(key)))
    }

    /// The keys in use, in no particular order.
    pub fn keys(&self) -> Vec<String> {
        self.read(|entries| entries.map(|e| e.keys().cloned().collect()))
            .unwrap_or_default()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        *self.entries() = None;
    }

    /// A copy of every entry, as JSON.
    pub fn snapshot(&self) -> HashMap<String, serde_json::Value> {
        self.read(|entries| entries.cloned()).unwrap_or_default()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}
