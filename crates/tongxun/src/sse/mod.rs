//! The Server-Sent Events hub (placeholder until the hub lands).

use axum::Router;

/// Configuration of a [`SseHub`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SseConfig {}

/// A plain Server-Sent Events hub mounted beside Socket.IO.
#[derive(Debug, Clone, Default)]
pub struct SseHub {}

impl SseHub {
    /// A hub with this configuration.
    pub fn new(_config: SseConfig) -> Self {
        Self {}
    }

    /// The routes of the hub.
    pub fn router(&self) -> Router {
        Router::new()
    }

    /// Closes every client.
    pub async fn shutdown(&self) {}
}
