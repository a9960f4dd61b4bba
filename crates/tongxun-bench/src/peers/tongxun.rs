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
    #[cfg(feature = "metrics")]
    let server = with_metrics(server);
    server.serve(listener, std::future::pending()).await?;
    Ok(())
}

/// Mounts `/metrics` and renders them once a second, as a Prometheus scrape would.
#[cfg(feature = "metrics")]
fn with_metrics(server: Server) -> Server {
    let metrics = server.metrics();
    let scraped = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            every.tick().await;
            std::hint::black_box(scraped.render());
        }
    });
    server.merge(metrics.router("/metrics"))
}
