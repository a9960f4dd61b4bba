//! Building a hub: its configuration and its handlers.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::client::WsClient;
use super::close::WsDisconnectReason;
use super::config::WsConfig;
use super::handlers::Handlers;
use super::hub::WsHub;
use super::message::WsMessage;
use super::registry::{ClientParts, HubInner};
use crate::handler::IntoHandlerResult;

/// Builds a [`WsHub`] with its configuration and handlers.
///
/// Handlers are async closures or functions returning `()` or `Result<(), E: Display>` (an
/// error is logged). The messages of one client are handled one at a time, in order; while
/// `on_message` runs, that client's further frames wait (only that client's), which is its
/// backpressure. A handler that panics is logged as an error and its client closed with 1011.
///
/// # Examples
/// ```
/// use tongxun::ws::{WsClient, WsDisconnectReason, WsHub, WsMessage};
///
/// let hub = WsHub::builder()
///     .on_connect(|client: WsClient| async move { client.send("hello") })
///     .on_message(|client: WsClient, message: WsMessage| async move {
///         client.send(message) // echo
///     })
///     .on_disconnect(|client: WsClient, reason: WsDisconnectReason| async move {
///         tracing::info!(client = %client.id(), ?reason, "gone");
///     })
///     .build();
/// ```
#[must_use]
pub struct WsHubBuilder {
    config: WsConfig,
    handlers: Handlers<ClientParts>,
}

impl fmt::Debug for WsHubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsHubBuilder")
            .field("config", &self.config)
            .field("on_connect", &self.handlers.on_connect.is_some())
            .field("on_message", &self.handlers.on_message.is_some())
            .field("on_disconnect", &self.handlers.on_disconnect.is_some())
            .finish()
    }
}

// Beside what it starts, so that `hub.rs` needs nothing of this file.
impl WsHub {
    /// Starts building a hub with handlers.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsClient, WsHub, WsMessage};
    ///
    /// let hub = WsHub::builder()
    ///     .on_message(|client: WsClient, message: WsMessage| async move { client.send(message) })
    ///     .build();
    /// ```
    pub fn builder() -> WsHubBuilder {
        WsHubBuilder {
            config: WsConfig::default(),
            handlers: Handlers::default(),
        }
    }
}

impl WsHubBuilder {
    /// Replaces the configuration (by default [`WsConfig::default`]).
    ///
    /// # Examples
    /// ```
    /// let mut config = tongxun::ws::WsConfig::default();
    /// config.path = "/live".to_owned();
    /// let hub = tongxun::ws::WsHub::builder().config(config).build();
    /// assert_eq!(hub.config().path, "/live");
    /// ```
    pub fn config(mut self, config: WsConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs `handler` for each new client, once it is registered and before its first message
    /// is handled; messages sent from it are queued in order.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{SubscribeError, WsClient, WsHub};
    ///
    /// let hub = WsHub::builder()
    ///     .on_connect(async |client: WsClient| -> Result<(), SubscribeError> {
    ///         if let Some(room) = client.request().query("room") {
    ///             client.subscribe(&room)?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .build();
    /// ```
    pub fn on_connect<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(WsClient) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.handlers.on_connect = Some(Arc::new(move |client| {
            let fut = handler(WsClient::from_parts(client));
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Runs `handler` for each text or binary message a client sends (topic commands excepted,
    /// see [`WsConfig::topic_commands`]). Without it, messages are ignored.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsClient, WsHub, WsMessage};
    ///
    /// let hub = WsHub::builder()
    ///     .on_message(|client: WsClient, message: WsMessage| async move {
    ///         match message {
    ///             WsMessage::Text(text) => client.broadcast_others(text),
    ///             WsMessage::Binary(bytes) => client.broadcast_others(bytes),
    ///         };
    ///     })
    ///     .build();
    /// ```
    pub fn on_message<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(WsClient, WsMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.handlers.on_message = Some(Arc::new(move |client, message| {
            let fut = handler(WsClient::from_parts(client), message);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Runs `handler` once a client's connection is over and the client has left the hub and
    /// its topics.
    ///
    /// # Examples
    /// ```
    /// use tongxun::ws::{WsClient, WsDisconnectReason, WsHub};
    ///
    /// let hub = WsHub::builder()
    ///     .on_disconnect(|client: WsClient, reason: WsDisconnectReason| async move {
    ///         client.hub().broadcast(format!("{} left ({reason})", client.id()));
    ///     })
    ///     .build();
    /// ```
    pub fn on_disconnect<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(WsClient, WsDisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.handlers.on_disconnect = Some(Arc::new(move |client, reason| {
            let fut = handler(WsClient::from_parts(client), reason);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Builds the hub.
    ///
    /// # Examples
    /// ```
    /// let hub = tongxun::ws::WsHub::builder().build();
    /// assert_eq!(hub.config().path, "/ws");
    /// ```
    pub fn build(self) -> WsHub {
        WsHub::from_inner(Arc::new(HubInner::new(self.config, self.handlers)))
    }
}
