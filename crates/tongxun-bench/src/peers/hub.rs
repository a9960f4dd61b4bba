//! The tongxun hub peer: one `tongxun::hub::Hub` over the three transports, in memory (no
//! Redis), each with its default config: Socket.IO namespace `/` is `Hub::namespace()` (its
//! clients `subscribe` to topics), a `WsHub` (clients send `{"subscribe":"topic"}`) and an
//! `SseHub` (`GET /events?topic=...`). The bench publishes with the hub's HTTP endpoint,
//! `POST /publish` with the bearer token [`PUBLISH_TOKEN`].
//!
//! This is the code the bench runs as `serve --peer tongxun-hub`, and what `--peer-bin` starts
//! from another build of the bench to compare two commits of tongxun side by side.

use tokio::net::TcpListener;
use tongxun::Server;
use tongxun::hub::Hub;
use tongxun::sse::{SseConfig, SseHub};
use tongxun::ws::WsHub;

use crate::sse_client::PUBLISH_TOKEN;

/// The Socket.IO namespace bound to the hub.
pub(crate) const NAMESPACE: &str = "/";

/// Serves until the process ends.
pub(crate) async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let ws = WsHub::default();
    let sse = SseHub::new(SseConfig::default());
    let server = Server::builder()
        .namespace_with(NAMESPACE, Hub::namespace())
        .ws(ws.clone())
        .sse(sse.clone())
        .build();
    let hub = Hub::builder()
        .socketio(server.io(), [NAMESPACE])
        .ws(ws)
        .sse(sse)
        .publish_token(PUBLISH_TOKEN)
        .build();
    let server = server.merge(hub.router());
    server.serve(listener, std::future::pending()).await?;
    Ok(())
}
