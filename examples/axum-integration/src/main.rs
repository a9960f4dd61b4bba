//! Run with `cargo run -p example-axum-integration`
//!
//! Socket.IO beside ordinary axum routes, as the seed does with Express: clients join rooms of
//! the `/chat` namespace, and `POST /announce` broadcasts to them from plain HTTP.
//!
//! ```sh
//! curl -X POST localhost:3000/announce -H 'content-type: application/json' \
//!      -d '{"room": "general", "text": "maintenance at noon"}'
//! ```

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tongxun::{Ack, Data, Io, Server, Socket};

async fn on_chat(socket: Socket) {
    socket.on(
        "join",
        |socket: Socket, Data(room): Data<String>, ack: Ack| async move {
            match socket.join(room) {
                Ok(()) => ack.send(&socket.rooms()),
                Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
            }
        },
    );
}

#[derive(Deserialize)]
struct Announcement {
    /// A room of `/chat`; everyone in `/chat` when absent.
    room: Option<String>,
    text: String,
}

/// Broadcasts an announcement; answers how many sockets of this node received it.
async fn announce(
    State(io): State<Io>,
    Json(announcement): Json<Announcement>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    if announcement.text.trim().is_empty() {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "text must not be empty".to_owned(),
        ));
    }
    let chat = io.of("/chat").ok_or((
        StatusCode::SERVICE_UNAVAILABLE,
        "no chat namespace".to_owned(),
    ))?;
    let chat = match announcement.room {
        Some(room) => chat.to(room),
        None => chat,
    };
    let recipients = chat.clone().sockets().len();
    chat.emit("announcement", &announcement.text)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(serde_json::json!({ "recipients": recipients })))
}

fn app() -> Server {
    let server = Server::builder().namespace("/chat", on_chat).build();
    let routes = Router::new()
        .route(
            "/",
            get(|| async { "POST /announce {\"room\"?: string, \"text\": string}\n" }),
        )
        .route("/announce", post(announce))
        .with_state(server.io());
    server.merge(routes)
}

/// Socket.IO and HTTP routes on one server.
#[derive(clap::Parser)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tongxun=info,socketioxide=info".into()),
        )
        .init();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    app()
        .serve(listener, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}
