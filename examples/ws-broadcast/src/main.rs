//! Run with `cargo run -p example-ws-broadcast` (add `-- --port 4000` for another port)
//!
//! The seed's `ws` example on a tongxun WebSocket hub at `ws://127.0.0.1:3001/ws`:
//! - what a client sends goes to every *other* client, text or binary as sent;
//! - the server tells *all* clients, the newcomer included, when someone joins or leaves;
//! - a client that sends `{"subscribe":"clock"}` also gets the time every second, published
//!   from a plain tokio task.
//!
//! ```sh
//! websocat ws://127.0.0.1:3001/ws      # in two terminals: type in one, read in the other
//! ```
//! ```js
//! const ws = new WebSocket("ws://127.0.0.1:3001/ws");
//! ws.onmessage = (event) => console.log(event.data);
//! ws.onopen = () => ws.send(JSON.stringify({ subscribe: "clock" }));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tongxun::Server;
use tongxun::ws::{WsClient, WsDisconnectReason, WsHub, WsMessage};

#[derive(Parser)]
#[command(about = "Broadcast to all, and to everyone else, over plain WebSockets")]
struct Args {
    /// Port to listen on, on 127.0.0.1.
    #[arg(long, default_value_t = 3001)]
    port: u16,
}

/// The server and its hub.
fn app() -> (Server, WsHub) {
    let hub = WsHub::builder()
        .on_connect(|client: WsClient| async move {
            let hub = client.hub();
            // Broadcast to all: every client, this one included.
            hub.broadcast(format!(
                "client {} joined ({} online)",
                client.id(),
                hub.client_count()
            ));
        })
        .on_message(|client: WsClient, message: WsMessage| async move {
            // Broadcast to everyone else, exactly as sent.
            client.broadcast_others(message);
        })
        .on_disconnect(|client: WsClient, reason: WsDisconnectReason| async move {
            let hub = client.hub();
            hub.broadcast(format!(
                "client {} left: {reason} ({} online)",
                client.id(),
                hub.client_count()
            ));
        })
        .build();
    let server = Server::builder().ws(hub.clone()).build();
    (server, hub)
}

/// Publishes `{"clock":<unix seconds>}` to the topic `clock` every second.
async fn clock(hub: WsHub) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        hub.publish("clock", format!(r#"{{"clock":{now}}}"#));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tongxun=info,socketioxide=info".into()),
        )
        .init();
    let (server, hub) = app();
    tokio::spawn(clock(hub));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    server
        .serve(listener, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    use super::app;

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn next(ws: &mut Ws) -> Message {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a message in time")
                .expect("an open connection")
                .expect("a valid message");
            if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
                return message;
            }
        }
    }

    #[tokio::test]
    async fn messages_go_to_everyone_else_and_announcements_to_all() {
        let (server, _hub) = app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(listener, async {
            stopped.await.ok();
        }));

        let (mut a, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        assert_eq!(
            next(&mut a).await,
            Message::text("client 1 joined (1 online)")
        );
        let (mut b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        for ws in [&mut a, &mut b] {
            assert_eq!(next(ws).await, Message::text("client 2 joined (2 online)"));
        }

        a.send(Message::text("hello from a")).await.unwrap();
        assert_eq!(next(&mut b).await, Message::text("hello from a"));
        b.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        // a's next message is b's: its own text never came back to it.
        assert_eq!(next(&mut a).await, Message::binary(vec![1, 2, 3]));

        b.close(None).await.unwrap();
        let left = next(&mut a).await;
        assert!(
            left.to_text().unwrap().starts_with("client 2 left"),
            "{left:?}"
        );
        assert!(left.to_text().unwrap().ends_with("(1 online)"), "{left:?}");

        // On shutdown, every client is closed with 1001 (going away).
        stop.send(()).unwrap();
        match next(&mut a).await {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected a close frame, got {other:?}"),
        }
        assert!(a.next().await.is_none(), "the close handshake completes");
        serving.await.unwrap().unwrap();
    }
}
