//! Run with ./scripts/chat.sh (or cargo run -p example-chat once the bundle is installed)
//!
//! A chat on the Socket.IO namespace `/chat`, with its web page at `/`: rooms, nicknames kept in
//! each socket's extensions, messages acknowledged as delivered, a typing indicator, member lists,
//! private messages and the last 50 messages of a room for whoever joins. The page is plain
//! HTML, CSS and JavaScript using the stock `socket.io-client` browser bundle, which this server
//! hands out from `examples/chat/node_modules` (see `web.rs`). The protocol is described in
//! `chat.rs`, its rules in `nick.rs`, `rooms.rs` and `messages.rs`.
//!
//! ```js
//! const socket = io("http://localhost:3000/chat");
//! await socket.emitWithAck("nick", "ada");                        // { ok: "ada" }
//! const { members, history } = await socket.emitWithAck("join", "general");
//! socket.on("message", ({ from, text }) => console.log(`${from}: ${text}`));
//! await socket.emitWithAck("message", { room: "general", text: "hello" }); // { ok: true, id, at }
//! ```
//!
//! `GET /metrics` is the Prometheus scrape of the server (see `docs/operations.md`).

mod chat;
mod error;
mod messages;
mod nick;
mod payloads;
mod rooms;
mod web;

use std::path::PathBuf;

use anyhow::Context as _;
use tongxun::sse::SseHub;
use tongxun::{BuildError, ClientBundle, Config, Server};

/// Where `npm ci --prefix examples/chat` puts the browser bundle.
const DEFAULT_BUNDLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/node_modules/socket.io-client/dist"
);

/// The chat server: the `/chat` namespace and the page that uses it.
///
/// # Errors
/// When `redis_url` is not a Redis URL.
fn app(bundle: ClientBundle, redis_url: Option<String>) -> Result<Server, BuildError> {
    let mut config = Config::default();
    config.redis_url = redis_url;
    let feed = SseHub::default();
    Server::builder()
        .config(config)
        .state(chat::Chat::new(feed.clone()))
        .namespace("/chat", chat::connect)
        .sse(feed)
        .client_bundle(bundle)
        .routes(web::routes())
        // Prometheus metrics for the operator (docs/operations.md).
        .routes_with(|io| io.metrics().router("/metrics"))
        .try_build()
}

/// A Socket.IO chat with its web page.
#[derive(clap::Parser)]
struct Args {
    /// Port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// The `dist/` folder of the installed socket.io-client package, whose browser bundle the
    /// page loads.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    bundle: PathBuf,
    /// Share rooms and messages with other chat nodes through this Redis
    /// (`redis://127.0.0.1:6379`); see docs/scaling.md.
    #[arg(long)]
    redis_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "example_chat=info,tongxun=info,socketioxide=info".into()),
        )
        .init();
    let bundle = match ClientBundle::from_dir(&args.bundle) {
        Ok(bundle) => bundle,
        Err(e) => {
            // The user's next step, without a backtrace in the way.
            eprintln!(
                "error: the socket.io-client browser bundle is missing ({e}): install it with \
                 ./scripts/chat.sh or npm ci --prefix examples/chat (or point --bundle at the \
                 dist/ folder of socket.io-client)"
            );
            std::process::exit(1);
        }
    };
    tracing::info!(path = %args.bundle.display(), "serving the socket.io-client bundle");
    let app = app(bundle, args.redis_url).context("cannot start the chat: check --redis-url")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    app.serve(listener, async {
        tokio::signal::ctrl_c().await.ok();
    })
    .await?;
    Ok(())
}
