//! Run with `./scripts/dashboard.sh` (or `cargo run -p example-live-dashboard` once the bundle is
//! installed)
//!
//! One publish, three transports: a Rust timer publishes a sample to the topic `metrics` twice a
//! second, and the page at `/` shows it through Socket.IO, a plain WebSocket and an
//! EventSource, side by side. `POST /publish` (with the bearer token) publishes too:
//!
//! ```sh
//! curl -X POST localhost:3000/publish -H 'authorization: Bearer dev-token' \
//!      -H 'content-type: application/json' \
//!      -d '{"topic": "metrics", "event": "sample", "data": {"seq": 0, "value": 50}}'
//! ```
//!
//! # Resume
//! Every event has one id on all three transports, `<epoch>;metrics:<seq>`, where `seq` numbers
//! the topic's events 1, 2, 3, ... (see `tongxun::hub`). When a connection comes back, each
//! panel resumes: it hands the server the id of the last event it got (Socket.IO in its
//! handshake's `auth.since`, the WebSocket in `{"subscribe": "metrics", "since": ...}`, the
//! EventSource in `Last-Event-ID`, by itself), and the server replays what it missed, in
//! order, before going on live. Each panel shows the event number and counts what would betray
//! a broken resume: gaps (a number skipped), duplicates (a number seen again) and resyncs (the
//! server's word that its history no longer reaches back to the id). `docs/resume.md` explains
//! the protocol and the client code; `static/dashboard.js` is that code, for one topic.
//!
//! To see it, start the dashboard with its history in Redis, so that it outlives the process,
//! open the page, kill the server and start it again:
//!
//! ```sh
//! ./scripts/dashboard.sh --redis-url redis://127.0.0.1:6379   # Ctrl-C, or kill -9 its pid
//! ./scripts/dashboard.sh --redis-url redis://127.0.0.1:6379   # the same page catches up
//! ```
//!
//! Every panel reconnects, catches up and stays at 0 gaps, 0 duplicates, 0 resyncs. Without
//! `--redis-url` the history is in memory and dies with the process: after a restart each panel
//! counts one resync and goes on live with the new numbering.
//!
//! The official Socket.IO Admin UI is at `/admin/ui/` (login `admin`, development password
//! `tongxun-dev`, as the chat's).
//! `GET /metrics` is the Prometheus scrape of all three transports (see `docs/operations.md`).

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::header;
use axum::routing::get;
use serde::Serialize;
use tongxun::admin::{AdminUi, UiFiles};
use tongxun::hub::Hub;
use tongxun::sse::{SseConfig, SseHub};
use tongxun::ws::WsHub;
use tongxun::{BuildError, ClientBundle, Config, Server};

/// Where `npm ci --prefix examples/live-dashboard` puts the browser bundle.
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

/// The bcrypt hash of the development password `tongxun-dev`.
const DEVELOPMENT_PASSWORD_HASH: &str =
    "$2a$10$HXTz5fMnYUtnfvMQ6iQKJeP6RO38rOMnX6ozxHhQEbzXO19w/l3sq";

/// One published sample.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    /// This process's count of samples, from 1 at each start (the hub's id numbers the
    /// topic's events across restarts).
    seq: u64,
    /// Milliseconds since the Unix epoch.
    at: u64,
    /// A value between 0 and 100 that wanders.
    value: f64,
}

/// The server, and the hub its timer publishes to.
///
/// # Errors
/// When `--redis-url` is not a Redis URL.
fn app(bundle: ClientBundle, args: &Args) -> Result<(Server, Hub), BuildError> {
    let mut config = Config::default();
    // The SSE history, the log of all three transports: in Redis with --redis-url, so that it
    // outlives this process and the panels resume from it after a restart.
    config.redis_url = args.redis_url.clone();
    let ws = WsHub::default();
    let sse = SseHub::new(SseConfig::default());
    let server = Server::builder()
        .config(config)
        .namespace_with("/live", Hub::namespace())
        .client_bundle(bundle)
        .ws(ws.clone())
        .sse(sse.clone())
        .admin_ui(AdminUi::basic_auth("admin", DEVELOPMENT_PASSWORD_HASH))
        .try_build()?;
    let hub = Hub::builder()
        .socketio(server.io(), ["/live"])
        .ws(ws)
        .sse(sse)
        .publish_token(&args.token)
        .build();
    let page = Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    include_str!("../static/index.html"),
                )
            }),
        )
        .route(
            "/dashboard.js",
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/javascript; charset=utf-8",
                    )],
                    include_str!("../static/dashboard.js"),
                )
            }),
        )
        .route(
            "/dashboard.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    include_str!("../static/dashboard.css"),
                )
            }),
        );
    let admin = UiFiles::new(ADMIN_UI_FILES)
        .icons(ADMIN_UI_ICONS)
        .router("/admin/ui");
    // Prometheus metrics of all three transports (docs/operations.md).
    let metrics = server.metrics().router("/metrics");
    let server = server.merge(hub.router()).merge(page);
    Ok((server.merge(admin).merge(metrics), hub))
}

/// Publishes a sample every `every` until the hub is shut down.
async fn ticker(hub: Hub, every: Duration) {
    let mut value = 50.0_f64;
    let mut state = 0x2545_f491_4f6c_dd1d_u64; // xorshift: a wandering value without a dependency
    let mut interval = tokio::time::interval(every);
    for seq in 1.. {
        interval.tick().await;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let step = (state % 2001) as f64 / 100.0 - 10.0;
        value = (value + step).clamp(0.0, 100.0);
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        if let Err(e) = hub
            .publish("metrics", "sample", &Sample { seq, at, value })
            .await
        {
            tracing::warn!("sample not published: {e}");
        }
    }
}

/// Metrics on Socket.IO, WebSocket and SSE at once.
#[derive(clap::Parser)]
struct Args {
    /// Port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// The bearer token of `POST /publish`.
    #[arg(long, default_value = "dev-token")]
    token: String,
    /// Milliseconds between two samples.
    #[arg(long, default_value_t = 500)]
    every_ms: u64,
    /// The `dist/` folder of the installed socket.io-client package.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    bundle: std::path::PathBuf,
    /// Keep the event history in this Redis (`redis://127.0.0.1:6379`), so that it survives a
    /// restart of the dashboard and the panels resume where they were; in memory without it.
    #[arg(long)]
    redis_url: Option<String>,
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
    let bundle = ClientBundle::from_dir(&args.bundle).map_err(|e| {
        anyhow::anyhow!("the socket.io-client bundle is missing ({e}): run npm ci --prefix examples/live-dashboard")
    })?;
    let (server, hub) =
        app(bundle, &args).context("cannot start the dashboard: check --redis-url")?;
    tokio::spawn(ticker(hub, Duration::from_millis(args.every_ms.max(10))));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    server
        .serve(listener, async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}
