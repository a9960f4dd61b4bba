//! The WebSocket hub the `ws` client and browser tests use, at `/ws`.
//!
//! - Auth: `?token=fixture-token` or `Authorization: Bearer fixture-token`, else 401.
//! - Origin: browsers must come from `https://app.example` (the browser test serves its page
//!   there); clients without an `Origin` header are not affected.
//! - Subprotocols `chat.v2` then `chat.v1`; messages over 64 KiB close with 1009; a ping every
//!   250 ms, and a client silent for 1 s after one is torn down.
//! - On connect the client gets `welcome <id>`. A text message `all:...` goes to every client,
//!   `others:...` to every other client, any other text and every binary message back to the
//!   sender, as sent.
//!
//! With `TONGXUN_FIXTURE_WS=echo` in the environment the hub is instead a plain echo endpoint
//! with wide limits and no auth, for the Autobahn conformance run (`scripts/autobahn.sh`).

use std::time::Duration;

use tongxun::ws::{WsAuth, WsClient, WsConfig, WsHub, WsMessage};

/// Token the tests present.
const TOKEN: &str = "fixture-token";
/// Origin of the browser test's page.
const ALLOWED_ORIGIN: &str = "https://app.example";

pub(crate) fn hub() -> WsHub {
    if std::env::var("TONGXUN_FIXTURE_WS").as_deref() == Ok("echo") {
        return echo_hub();
    }
    let mut config = WsConfig::default();
    config.auth = WsAuth::token(TOKEN);
    config.allowed_origins = vec![ALLOWED_ORIGIN.to_owned()];
    config.subprotocols = vec!["chat.v2".to_owned(), "chat.v1".to_owned()];
    config.max_message_size = 64 * 1024;
    config.ping_interval = Duration::from_millis(250);
    config.pong_deadline = Duration::from_secs(1);
    WsHub::builder()
        .config(config)
        .on_connect(
            |client: WsClient| async move { client.send(format!("welcome {}", client.id())) },
        )
        .on_message(|client: WsClient, message: WsMessage| async move {
            match message.as_text() {
                Some(text) if text.starts_with("all:") => {
                    client.hub().broadcast(message);
                }
                Some(text) if text.starts_with("others:") => {
                    client.broadcast_others(message);
                }
                _ => client.send(message)?,
            }
            Ok::<_, tongxun::ws::WsSendError>(())
        })
        .build()
}

/// Echoes every message to its sender, as RFC 6455 test suites expect.
fn echo_hub() -> WsHub {
    let mut config = WsConfig::default();
    // Autobahn sends messages up to 16 MiB, and unsolicited pings would disturb its cases.
    config.max_message_size = 64 * 1024 * 1024;
    config.ping_interval = Duration::ZERO;
    config.topic_commands = false;
    WsHub::builder()
        .config(config)
        .on_message(|client: WsClient, message: WsMessage| async move { client.send(message) })
        .build()
}
