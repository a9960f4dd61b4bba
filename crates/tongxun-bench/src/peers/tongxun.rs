//! The tongxun peer: the two handlers on tongxun's Socket.IO layer, with its default config
//! (and, for the two-node peer, `Config::redis_url`).
//!
//! The room broadcast (scenario `redis-broadcast`) picks its clients by their handshake query,
//! so that the other scenarios' sockets carry nothing more: `?role=receiver` joins room
//! [`ROOM`] at connect, `?role=sender` gets a `room` handler that sends its argument to that
//! room as `tick`.

use serde_json::Value;
use tokio::net::TcpListener;
use tongxun::{Ack, Data, Server, Socket};

/// The room of the room broadcast.
pub(crate) const ROOM: &str = "bench";

async fn on_connect(socket: Socket) {
    socket.on("echo", |Data(v): Data<Value>, ack: Ack| async move {
        ack.send(&v)
    });
    socket.on("bcast", |socket: Socket, Data(v): Data<Value>| async move {
        socket.broadcast().emit("tick", &v).await
    });
    match role(&socket) {
        Some("receiver") => socket.join(ROOM).expect("not shaped like a socket id"),
        Some("sender") => {
            socket.on("room", |socket: Socket, Data(v): Data<Value>| async move {
                socket.to(ROOM).emit("tick", &v).await
            });
        }
        _ => {}
    }
}

/// The `role` of the handshake query, if any.
fn role(socket: &Socket) -> Option<&str> {
    let query = socket.req_parts().uri.query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("role="))
}

/// Serves until the process ends; with `redis_url`, as one node of several sharing that Redis.
pub(crate) async fn serve(listener: TcpListener, redis_url: Option<String>) -> anyhow::Result<()> {
    let mut builder = Server::builder();
    if let Some(url) = redis_url {
        let mut config = tongxun::Config::default();
        config.redis_url = Some(url);
        builder = builder.config(config);
    }
    let server = builder.namespace("/", on_connect).try_build()?;
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
