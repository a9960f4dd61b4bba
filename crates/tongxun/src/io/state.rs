//! Typed values handlers take as arguments: the app's state, shared by every handler
//! ([`State`]), and a socket's own extensions ([`Extension`]).

use std::any::{Any, TypeId};
use std::collections::HashMap;

use super::extract::{EventContext, ExtractError, FromEvent};

/// The app's states, one per type, given to the builder with
/// [`ServerBuilder::state`](crate::ServerBuilder::state).
#[derive(Default)]
pub(crate) struct States(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("States")
            .field("count", &self.0.len())
            .finish()
    }
}

impl States {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, state: T) {
        self.0.insert(TypeId::of::<T>(), Box::new(state));
    }

    pub(crate) fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|state| state.downcast_ref::<T>())
            .cloned()
    }
}

/// The app's state of type `T`, as given to
/// [`ServerBuilder::state`](crate::ServerBuilder::state): axum's `State` for event handlers.
/// Each handler gets a clone, so share what must be shared behind an `Arc` (a database pool, a
/// registry). A handler asking for a type that was never given is not called, and its ack is
/// answered with an error.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tongxun::{Ack, Server, Socket, State};
///
/// #[derive(Clone, Default)]
/// struct Counter(Arc<AtomicU64>);
///
/// async fn on_connect(socket: Socket) {
///     socket.on("count", |State(counter): State<Counter>, ack: Ack| async move {
///         ack.send(&(counter.0.fetch_add(1, Ordering::Relaxed) + 1))
///     });
/// }
///
/// let server = Server::builder()
///     .state(Counter::default())
///     .namespace("/", on_connect)
///     .build();
/// ```
#[derive(Debug, Clone)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for State<T> {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        ctx.socket()
            .io()
            .state::<T>()
            .map(State)
            .ok_or(ExtractError::MissingState(std::any::type_name::<T>()))
    }
}

/// A value of type `T` that this socket holds in its extensions
/// ([`Socket::extensions`](super::Socket::extensions)), typically set by its connect handler:
/// typed per-socket data, where [`Store`](super::Store) holds JSON under string keys. A handler
/// asking for a type the socket does not hold is not called, and its ack is answered with an
/// error.
///
/// # Examples
/// ```
/// use tongxun::{Ack, Extension, Socket};
///
/// #[derive(Clone)]
/// struct User { id: u64 }
///
/// async fn on_connect(socket: Socket) {
///     socket.extensions().insert(User { id: 7 });
///     socket.on("whoami", |Extension(user): Extension<User>, ack: Ack| async move {
///         ack.send(&user.id)
///     });
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[derive(Debug, Clone)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for Extension<T> {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        ctx.socket()
            .extensions()
            .get::<T>()
            .map(Extension)
            .ok_or(ExtractError::MissingExtension(std::any::type_name::<T>()))
    }
}
