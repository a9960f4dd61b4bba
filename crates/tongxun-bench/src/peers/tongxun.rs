//! The tongxun peer: the two handlers on tongxun's Socket.IO layer, with its default config.

use serde_json::Value;
use tokio::net::TcpListener;
use tongxun::{Ack, Data, Server, Socket};

async fn on_connect(socket: Socket) {
    socket.on("echo", |Data(v): Data<Value>, ack: Ack| async move {
        ack.send(&v)
    });
    socket.on("bcast", |socket: Socket, Data(v): Data<Value>| async move {
        socket.broadcast().emit("tick", &v).await
    });
}

/// Serves until the process ends.
pub(crate) async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let server = Server::builder().namespace("/", on_connect).build();
    server.serve(listener, std::future::pending()).await?;
    Ok(())
}
