//! The tongxun WS hub peer: `WsHub` with its default config, where every text message a client
//! sends goes to every other client (`broadcast_except`), as on the WebSocket floor.

use tokio::net::TcpListener;
use tongxun::Server;
use tongxun::ws::{WsClient, WsHub, WsMessage};

/// Serves until the process ends.
pub(crate) async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let hub = WsHub::builder()
        .on_message(|client: WsClient, message: WsMessage| async move {
            if message.is_text() {
                client.hub().broadcast_except(client.id(), message);
            }
        })
        .build();
    let server = Server::builder().ws(hub).build();
    server.serve(listener, std::future::pending()).await?;
    Ok(())
}
