//! The SSE hub the `eventsource` client tests use, and test-only routes around it.
//!
//! - subscribe with `?token=test-subscribe-token`; `?token=test-stop-token` is answered with
//!   `204` (and counted), anything else with `401`;
//! - publish with `POST /events`, `Authorization: Bearer test-publish-token`;
//! - history keeps 20 events per topic so that tests can exceed it, or as many as the number in
//!   `TONGXUN_SSE_HISTORY` (the resume test keeps 1,000 to outlast a node's death); `retry` is
//!   300 ms so that reconnections are quick;
//! - `POST /test/sse/drop` ends every open stream (clients reconnect and resume);
//! - `GET /test/sse/stats` answers the hub's counters as JSON;
//! - `GET /test/sse/page` is an empty same-origin page for the browser test.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use tongxun::Server;
use tongxun::sse::{SseConfig, SseHub, SubscribeAuth, SubscribeRejection};

const SUBSCRIBE_TOKEN: &str = "test-subscribe-token";
const STOP_TOKEN: &str = "test-stop-token";
const PUBLISH_TOKEN: &str = "test-publish-token";

/// Subscribe attempts answered with `204`: a client that obeys makes exactly one.
static STOPPED: AtomicUsize = AtomicUsize::new(0);
static HUB: OnceLock<SseHub> = OnceLock::new();

/// The fixture's hub (one per process, shared with [`routes`]).
pub(crate) fn hub() -> SseHub {
    HUB.get_or_init(|| {
        let mut config = SseConfig::default();
        config.retry = Duration::from_millis(300);
        config.history_len = history_len();
        config.publish_token = Some(PUBLISH_TOKEN.to_owned());
        config.subscribe_auth = SubscribeAuth::custom(|request| match request.token() {
            Some(SUBSCRIBE_TOKEN) => Ok(()),
            Some(STOP_TOKEN) => {
                STOPPED.fetch_add(1, Ordering::Relaxed);
                Err(SubscribeRejection::Stop)
            }
            _ => Err(SubscribeRejection::Unauthorized),
        });
        SseHub::new(config)
    })
    .clone()
}

/// Events kept per topic: `TONGXUN_SSE_HISTORY` when set (a number), else 20.
fn history_len() -> usize {
    match std::env::var("TONGXUN_SSE_HISTORY") {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("TONGXUN_SSE_HISTORY={value}: expected a number")),
        Err(_) => 20,
    }
}

/// Adds the test-only routes.
pub(crate) fn routes(server: Server) -> Server {
    let drop_hub = hub();
    let stats_hub = hub();
    server.merge(
        Router::new()
            .route(
                "/test/sse/drop",
                post(move || {
                    let streams = drop_hub.disconnect_all();
                    async move { streams.to_string() }
                }),
            )
            .route(
                "/test/sse/stats",
                get(move || {
                    let stats = stats_hub.stats();
                    async move {
                        axum::Json(serde_json::json!({
                            "subscribers": stats.subscribers,
                            "published": stats.published,
                            "lagged": stats.lagged,
                            "resyncs": stats.resyncs,
                            "stopped": STOPPED.load(Ordering::Relaxed),
                        }))
                    }
                }),
            )
            .route(
                "/test/sse/page",
                get(|| async { Html("<!doctype html><meta charset=utf-8><title>sse</title>") }),
            ),
    )
}
