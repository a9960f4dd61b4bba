//! Event handlers: async functions whose arguments are [extractors](super::extract).

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::extract::{EventContext, FromEvent};

/// Why a handler did not complete normally. Reported to the client through its ack, if any.
#[derive(Debug)]
pub(crate) enum HandlerFailure {
    /// An argument could not be extracted (the payload did not decode into the handler's type).
    Extract(String),
    /// The handler returned an error.
    Returned(String),
}

pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), HandlerFailure>> + Send>>;

/// Something a handler may return: `()`, or `Result<(), E>` where `E` displays a message.
///
/// When a handler returns an error and the client asked for an acknowledgement that the handler
/// did not send, the acknowledgement is answered with `{"error": "<message>"}`.
pub trait IntoHandlerResult {
    /// Turns the handler's output into `Ok(())` or an error message.
    fn into_handler_result(self) -> Result<(), String>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Any error, for handlers that use `?` on several error types.
///
/// Every fallible call a handler makes (emits, acknowledgements, broadcasts, the store, rooms)
/// converts into it with `?`. Its message, the error's own followed by its sources
/// (`failed to serialize the payload: ...`), is what the client's acknowledgement receives as
/// `{"error": "<message>"}`.
///
/// Name it as the return type of an `async fn` handler, or of an async closure: Rust then
/// knows what `?` converts into, without a turbofish on `Ok`.
///
/// # Examples
/// ```
/// use tongxun::{Ack, HandlerError, Socket};
///
/// async fn whoami(socket: Socket, ack: Ack) -> Result<(), HandlerError> {
///     let nick: String = socket.store().get("nick")?; // a StoreError
///     ack.send(&nick)?; // a SendError
///     Ok(())
/// }
///
/// async fn on_connect(socket: Socket) {
///     socket.on("whoami", whoami);
///     socket.on("shout", async |socket: Socket, ack: Ack| -> Result<(), HandlerError> {
///         let nick: String = socket.store().get("nick")?;
///         socket.broadcast().emit("shouted", &nick).await?; // a BroadcastError
///         ack.send("sent")?;
///         Ok(())
///     });
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[derive(Debug)]
pub struct HandlerError(Box<dyn std::error::Error + Send + Sync>);

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(err: E) -> Self {
        HandlerError(Box::new(err))
    }
}

impl Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::error::Chain(&*self.0).fmt(f)
    }
}

impl HandlerError {
    /// An error with this message.
    pub fn msg(message: impl Into<String>) -> Self {
        HandlerError(message.into().into())
    }
}

/// An async function that handles an event.
///
/// It is implemented for every `async fn` and closure returning a future, taking up to eight
/// arguments that implement [`FromEvent`] ([`Socket`](super::Socket), [`Data`](super::Data),
/// [`TryData`](super::TryData), [`Ack`](super::Ack), [`Event`](super::Event),
/// [`Args`](super::Args), [`Bin`](super::Bin)), and returning `()` or `Result<(), E: Display>`.
///
/// # Examples
/// ```
/// use tongxun::{Ack, Data, Socket};
///
/// async fn on_add(Data((a, b)): Data<(i64, i64)>, ack: Ack) {
///     ack.send(&(a + b)).ok();
/// }
///
/// async fn on_connect(socket: Socket) {
///     socket.on("add", on_add);
///     socket.on("shout", |socket: Socket, Data(text): Data<String>| async move {
///         socket.emit("shouted", &text.to_uppercase())
///     });
/// }
/// # let _ = tongxun::Server::builder().namespace("/", on_connect);
/// ```
#[diagnostic::on_unimplemented(
    note = "an event handler is an async fn or closure whose arguments all implement `FromEvent` \
            and which returns `()` or `Result<(), E: Display>`"
)]
#[allow(private_interfaces)] // `call` is tongxun's own business: the trait is not for implementing by hand.
pub trait EventHandler<T>: Clone + Send + Sync + 'static {
    #[doc(hidden)]
    fn call(&self, ctx: EventContext) -> HandlerFuture;
}

/// A type-erased event handler, as stored in a socket's listener table.
pub(crate) type BoxedHandler = Arc<dyn Fn(EventContext) -> HandlerFuture + Send + Sync>;

pub(crate) fn boxed<H, T>(handler: H) -> BoxedHandler
where
    H: EventHandler<T>,
    T: 'static,
{
    Arc::new(move |ctx| handler.call(ctx))
}

macro_rules! impl_event_handler {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_mut, unused_variables, private_interfaces)]
        impl<F, Fut, R, $($ty,)*> EventHandler<($($ty,)*)> for F
        where
            F: FnOnce($($ty,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoHandlerResult,
            $($ty: FromEvent + Send + 'static,)*
        {
            fn call(&self, mut ctx: EventContext) -> HandlerFuture {
                $(
                    let $ty = match $ty::from_event(&mut ctx) {
                        Ok(value) => value,
                        Err(e) => {
                            return Box::pin(std::future::ready(Err(HandlerFailure::Extract(
                                crate::error::Chain(&e).to_string(),
                            ))))
                        }
                    };
                )*
                let fut = (self.clone())($($ty,)*);
                Box::pin(async move { fut.await.into_handler_result().map_err(HandlerFailure::Returned) })
            }
        }
    };
}

impl_event_handler!();
impl_event_handler!(T1);
impl_event_handler!(T1, T2);
impl_event_handler!(T1, T2, T3);
impl_event_handler!(T1, T2, T3, T4);
impl_event_handler!(T1, T2, T3, T4, T5);
impl_event_handler!(T1, T2, T3, T4, T5, T6);
impl_event_handler!(T1, T2, T3, T4, T5, T6, T7);
impl_event_handler!(T1, T2, T3, T4, T5, T6, T7, T8);
