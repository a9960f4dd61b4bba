//! The bare socketioxide peer: the same two handlers written directly on socketioxide with its
//! default config, served by axum like tongxun.

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio::net::TcpListener;

fn on_connect(socket: SocketRef) {
    socket.on("echo", async |Data(v): Data<Value>, ack: AckSender| {
        ack.send(&v).ok();
    });
    socket.on("bcast", async |socket: SocketRef, Data(v): Data<Value>| {
        socket.broadcast().emit("tick", &v).await.ok();
    });
}

/// Serves until the process ends.
pub(crate) async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |socket: SocketRef| on_connect(socket));
    let app = axum::Router::new().layer(layer);
    axum::serve(listener, app).await?;
    Ok(())
}
