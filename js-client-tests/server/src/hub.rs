//! The cross-transport hub the `hub` tests use: Socket.IO namespace `/live`, the fixture's
//! WebSocket and SSE hubs, and `POST /publish` with `Authorization: Bearer test-hub-token`.

use tongxun::Server;
use tongxun::hub::Hub;
use tongxun::sse::SseHub;
use tongxun::ws::WsHub;

const TOKEN: &str = "test-hub-token";

/// The namespace whose clients subscribe to hub topics.
pub(crate) const NAMESPACE: &str = "/live";

pub(crate) fn routes(server: Server, ws: WsHub, sse: SseHub) -> Server {
    let hub = Hub::builder()
        .socketio(server.io(), [NAMESPACE])
        .ws(ws)
        .sse(sse)
        .publish_token(TOKEN)
        .build();
    server.merge(hub.router())
}
