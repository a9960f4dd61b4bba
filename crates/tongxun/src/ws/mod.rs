//! The WebSocket hub (placeholder until the hub lands).

use axum::Router;

/// Configuration of a [`WsHub`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WsConfig {}

/// A plain WebSocket hub mounted beside Socket.IO.
#[derive(Debug, Clone, Default)]
pub struct WsHub {}

impl WsHub {
    /// A hub with this configuration.
    pub fn new(_config: WsConfig) -> Self {
        Self {}
    }

    /// The routes of the hub.
    pub fn router(&self) -> Router {
        Router::new()
    }

    /// Closes every client.
    pub async fn shutdown(&self) {}
}
