//! The app's handlers as the hub stores them.
//!
//! Generic over what each handler is given, so that this file needs nothing of the hub: the
//! registry stores `Handlers<ClientParts>` (the hub and the client's state), and the builder's
//! wrappers turn those parts into the [`WsClient`](super::WsClient) the app's handler takes.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::close::WsDisconnectReason;
use super::message::WsMessage;

/// A handler's run: its error, if any, as text to log.
pub(crate) type HandlerResult = BoxFuture<'static, Result<(), String>>;

type ConnectHandler<C> = Arc<dyn Fn(C) -> HandlerResult + Send + Sync>;
type MessageHandler<C> = Arc<dyn Fn(C, WsMessage) -> HandlerResult + Send + Sync>;
type DisconnectHandler<C> = Arc<dyn Fn(C, WsDisconnectReason) -> HandlerResult + Send + Sync>;

/// The handlers of one hub, each given a `C` for the client it runs for.
pub(crate) struct Handlers<C> {
    pub(crate) on_connect: Option<ConnectHandler<C>>,
    pub(crate) on_message: Option<MessageHandler<C>>,
    pub(crate) on_disconnect: Option<DisconnectHandler<C>>,
}

impl<C> Default for Handlers<C> {
    fn default() -> Self {
        Self {
            on_connect: None,
            on_message: None,
            on_disconnect: None,
        }
    }
}

impl<C> fmt::Debug for Handlers<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("on_connect", &self.on_connect.is_some())
            .field("on_message", &self.on_message.is_some())
            .field("on_disconnect", &self.on_disconnect.is_some())
            .finish()
    }
}
