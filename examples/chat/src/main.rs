//! Run with ./scripts/chat.sh (or cargo run -p example-chat once the bundle is installed)
//!
//! A chat on the Socket.IO namespace `/chat`, with its web page at `/`: rooms, nicknames kept in
//! each socket's extensions, messages acknowledged as delivered, a typing indicator, member lists,
//! private messages and the last 50 messages of a room for whoever joins. The page is plain
//! HTML, CSS and JavaScript using the stock `socket.io-client` browser bundle, which this server
//! hands out from `examples/chat/node_modules` (see `web.rs`). The protocol is described in
//! `chat.rs`, its rules in `nick.rs`, `rooms.rs` and `messages.rs`.
//!
//! The page rides out a dropped connection: what is typed offline waits ("not sent yet") until
//! the reconnection has claimed the nickname again and rejoined the rooms, the conversation
//! stays on screen with what was said meanwhile merged in, and a reload of the tab keeps the
//! nickname, rooms and unsent messages (`sessionStorage`) until "Sign out". Below 760 px the
//! member list is a drawer behind the "Members" button.
//!
//! The official Socket.IO Admin UI is at `/admin/ui/` (login `admin`, development password
//! `tongxun-dev`; set your own with `--admin-password-hash`), served from
//! `examples/chat/node_modules/@socket.io/admin-ui`.
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
use tongxun::admin::{AdminUi, UiFiles};
use tongxun::shared::SharedState;
use tongxun::sse::SseHub;
use tongxun::{BuildError, ClientBundle, Config, Server};

/// Where `npm ci --prefix examples/chat` puts the browser bundle.
const DEFAULT_BUNDLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/node_modules/socket.io-client/dist"
);

/// Where it puts the Admin UI's built files and the icon font they use.
const ADMIN_UI_FILES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/node_modules/@socket.io/admin-ui/ui/dist"
);
const ADMIN_UI_ICONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules/@mdi/font");

/// The bcrypt hash of the development password `tongxun-dev`
/// (`node -e "console.log(require('bcryptjs').hashSync('tongxun-dev', 10))"`).
const DEVELOPMENT_PASSWORD_HASH: &str =
    "$2a$10$HXTz5fMnYUtnfvMQ6iQKJeP6RO38rOMnX6ozxHhQEbzXO19w/l3sq";

/// The chat server: the `/chat` namespace, the page that uses it and the Admin UI.
///
/// # Errors
/// When `--redis-url` is not a Redis URL or `--admin-password-hash` not a bcrypt hash.
fn app(bundle: ClientBundle, args: &Args) -> Result<Server, BuildError> {
    let mut config = Config::default();
    config.redis_url = args.redis_url.clone();
    let feed = SseHub::default();
    let mut admin = AdminUi::basic_auth(&args.admin_user, &args.admin_password_hash)
        .readonly(args.admin_readonly);
    if let Some(id) = &args.server_id {
        admin = admin.server_id(id);
    }
    let admin_files = UiFiles::new(ADMIN_UI_FILES).icons(ADMIN_UI_ICONS);
    // Nicknames, presence and history: in Redis with --redis-url, so that every node is one chat.
    let shared = SharedState::new();
    let chat = chat::Chat::new(&shared, feed.clone());
    let server = Server::builder()
        .config(config)
        .shared_state(shared)
        .state(chat.clone())
        .namespace("/chat", chat::connect)
        .sse(feed)
        .client_bundle(bundle)
        .admin_ui(admin)
        .routes(web::routes().merge(admin_files.router("/admin/ui")))
        // Prometheus metrics for the operator (docs/operations.md).
        .routes_with(|io| io.metrics().router("/metrics"))
        .try_build()?;
    tokio::spawn(chat.catch_up(server.io()));
    Ok(server)
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
    /// Be one chat with the other nodes on this Redis (nicknames, members, history, messages)
    /// (`redis://127.0.0.1:6379`); see docs/scaling.md.
    #[arg(long)]
    redis_url: Option<String>,
    /// The Admin UI's login.
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// The bcrypt hash of the Admin UI's password; by default that of the development
    /// password `tongxun-dev`.
    #[arg(long, default_value = DEVELOPMENT_PASSWORD_HASH)]
    admin_password_hash: String,
    /// The Admin UI may look, not act.
    #[arg(long)]
    admin_readonly: bool,
    /// This node's name in the Admin UI (the host name by default).
    #[arg(long)]
    server_id: Option<String>,
}

fn main() -> anyhow::Result<()> {
    // tokio's runtime, tuned so that a busy server serves its connections in turn.
    tongxun::runtime().build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
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
            #[allow(
                clippy::exit,
                reason = "a message for the user, not an error's debug output"
            )]
            std::process::exit(1);
        }
    };
    tracing::info!(path = %args.bundle.display(), "serving the socket.io-client bundle");
    let app = app(bundle, &args)
        .context("cannot start the chat: check --redis-url and --admin-password-hash")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    app.serve(listener, async {
        tokio::signal::ctrl_c().await.ok();
    })
    .await?;
    Ok(())
}
