//! The WebSocket hub over real sockets: a tongxun server on `127.0.0.1:0` and tokio-tungstenite
//! clients.

#![cfg(feature = "ws")]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tongxun::ws::{
    ClientId, OverflowPolicy, WsAuth, WsClient, WsConfig, WsDisconnectReason, WsHub, WsHubBuilder,
    WsMessage, WsSendError,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Time any single step may take before the test is reported as hung (real or paused time).
const STEP: Duration = Duration::from_secs(30);

#[path = "support/serve.rs"]
mod serve;
use serve::Running;

/// Awaits `fut`, failing the test when it takes longer than [`STEP`].
async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("step timed out")
}

/// A tongxun server with one hub on a free loopback port.
struct TestServer {
    addr: SocketAddr,
    hub: WsHub,
    running: Running,
}

impl TestServer {
    async fn start(hub: WsHub) -> Self {
        let running = Running::start(tongxun::Server::builder().ws(hub.clone()).build()).await;
        Self {
            addr: running.addr,
            hub,
            running,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("ws://{}{path_and_query}", self.addr)
    }

    async fn connect(&self) -> Ws {
        self.connect_to("/ws").await
    }

    async fn connect_to(&self, path_and_query: &str) -> Ws {
        within(connect_async(self.url(path_and_query)))
            .await
            .expect("connect")
            .0
    }

    /// Connects a client and reads the `welcome <id>` its `on_connect` sends: once it arrived,
    /// the client is registered.
    async fn join(&self) -> (Ws, ClientId) {
        let mut ws = self.connect().await;
        let id = welcome(&mut ws).await;
        (ws, id)
    }

    /// Disconnects the test's clients (without a close handshake: they are done reading), then
    /// shuts down. A client left connected but not reading would make the shutdown wait for its
    /// close frame until the close timeout.
    async fn finish<const N: usize>(self, clients: [Ws; N]) {
        drop(clients);
        self.shutdown().await;
    }

    /// Triggers graceful shutdown and waits until `serve` returned.
    async fn shutdown(self) {
        self.running.stop().await;
    }
}

/// Reads the `welcome <id>` message and returns the id.
async fn welcome(ws: &mut Ws) -> ClientId {
    let text = next_text(ws).await;
    text.strip_prefix("welcome ")
        .expect("a welcome")
        .parse()
        .unwrap()
}

/// The next data message, skipping pings and pongs.
async fn next_message(ws: &mut Ws) -> Message {
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(message)) => return message,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn next_text(ws: &mut Ws) -> String {
    match next_message(ws).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Reads until the server's close frame and returns it; the client answers it.
async fn close_frame(ws: &mut Ws) -> CloseFrame {
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Close(Some(frame)))) => return frame,
            Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Asserts the connection ends cleanly (the close handshake is complete).
async fn assert_ended(ws: &mut Ws) {
    match within(ws.next()).await {
        None => {}
        other => panic!("expected the end of the connection, got {other:?}"),
    }
}

/// The status and body of a refused upgrade.
async fn refused(request: http::Request<()>) -> (StatusCode, String) {
    match within(connect_async(request)).await {
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .clone()
                .map(|b| String::from_utf8(b).unwrap())
                .unwrap_or_default();
            (response.status(), body)
        }
        Ok(_) => panic!("the upgrade was accepted"),
        Err(other) => panic!("unexpected error {other}"),
    }
}

fn request(url: &str, headers: &[(&'static str, &'static str)]) -> http::Request<()> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    request
}

/// A hub whose `on_connect` says `welcome <id>`, whose `on_message` echoes, and whose
/// `on_disconnect` reports to the returned channel.
fn echo_hub(
    config: WsConfig,
) -> (
    WsHub,
    mpsc::UnboundedReceiver<(ClientId, WsDisconnectReason)>,
) {
    with_reports(
        WsHub::builder()
            .config(config)
            .on_message(|client: WsClient, message: WsMessage| async move { client.send(message) }),
    )
}

fn with_reports(
    builder: WsHubBuilder,
) -> (
    WsHub,
    mpsc::UnboundedReceiver<(ClientId, WsDisconnectReason)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let hub = builder
        .on_connect(
            |client: WsClient| async move { client.send(format!("welcome {}", client.id())) },
        )
        .on_disconnect(move |client: WsClient, reason: WsDisconnectReason| {
            let tx = tx.clone();
            async move {
                tx.send((client.id(), reason)).ok();
            }
        })
        .build();
    (hub, rx)
}

fn quiet_config() -> WsConfig {
    let mut config = WsConfig::default();
    // Tests that are not about the heartbeat run in real time; keep pings out of their way.
    config.ping_interval = Duration::ZERO;
    config
}

#[tokio::test]
async fn text_and_binary_messages_come_back_as_sent() {
    let (hub, _) = echo_hub(quiet_config());
    let server = TestServer::start(hub).await;
    let (mut ws, _) = server.join().await;

    ws.send(Message::text("héllo")).await.unwrap();
    assert_eq!(next_message(&mut ws).await, Message::text("héllo"));
    let binary = Bytes::from_static(&[0, 159, 146, 150, 255]);
    ws.send(Message::Binary(binary.clone())).await.unwrap();
    assert_eq!(next_message(&mut ws).await, Message::Binary(binary));
    // Text that happens to be bytes and bytes that happen to be text keep their kind.
    ws.send(Message::Binary(Bytes::from_static(b"plain")))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut ws).await,
        Message::Binary(Bytes::from_static(b"plain"))
    );
    ws.send(Message::text("")).await.unwrap();
    assert_eq!(next_message(&mut ws).await, Message::text(""));
    server.finish([ws]).await;
}

#[tokio::test]
async fn broadcast_reaches_everyone_and_broadcast_others_skips_the_sender() {
    let (hub, _) = with_reports(WsHub::builder().config(quiet_config()).on_message(
        |client: WsClient, message: WsMessage| async move {
            if message.as_text().is_some_and(|t| t.starts_with("all:")) {
                client.hub().broadcast(message);
            } else {
                client.broadcast_others(message);
            }
        },
    ));
    let server = TestServer::start(hub).await;
    let (mut a, _) = server.join().await;
    let (mut b, _) = server.join().await;
    let (mut c, _) = server.join().await;

    a.send(Message::text("others: from a")).await.unwrap();
    a.send(Message::text("all: from a")).await.unwrap();
    // The sender's first message back is the broadcast to all: it never saw its own "others".
    assert_eq!(next_text(&mut a).await, "all: from a");
    for ws in [&mut b, &mut c] {
        assert_eq!(next_text(ws).await, "others: from a");
        assert_eq!(next_text(ws).await, "all: from a");
    }
    b.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(next_message(&mut a).await, Message::binary(vec![1, 2, 3]));
    assert_eq!(next_message(&mut c).await, Message::binary(vec![1, 2, 3]));
    // And b got nothing: the next thing it sees is this.
    server.hub.broadcast("end");
    assert_eq!(next_text(&mut b).await, "end");
    server.finish([a, b, c]).await;
}

#[tokio::test]
async fn a_broadcast_sent_once_the_upgrade_is_answered_reaches_the_new_client() {
    // A client that has its 101 is connected as far as it can tell, so what is broadcast from
    // then on is for it, however late its connection task starts. This layer broadcasts after
    // the hub produced the 101 and before it is written, when that task cannot have started
    // yet: it waits for the upgraded connection, which only exists once the 101 is written.
    let (hub, _) = echo_hub(quiet_config());
    let announcer = hub.clone();
    let broadcast_with_the_101 = axum::middleware::map_response(move |response: Response| {
        let hub = announcer.clone();
        async move {
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                hub.broadcast("sent with the 101");
            }
            response
        }
    });
    let server = tongxun::Server::builder()
        .ws(hub.clone())
        .layer(broadcast_with_the_101)
        .build();
    let running = Running::start(server).await;
    let server = TestServer {
        addr: running.addr,
        hub,
        running,
    };

    let mut ws = server.connect().await;
    // `on_connect` queues the welcome after the broadcast was published: it comes second.
    assert_eq!(next_text(&mut ws).await, "sent with the 101");
    welcome(&mut ws).await;
    server.finish([ws]).await;
}

#[tokio::test]
async fn topics_are_joined_with_commands_and_published_from_rust() {
    let (hub, _) = echo_hub(quiet_config());
    let server = TestServer::start(hub).await;
    let (mut a, _) = server.join().await;
    let (mut b, b_id) = server.join().await;

    a.send(Message::text(r#"{"subscribe":"news"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut a).await, r#"{"subscribed":"news"}"#);
    assert_eq!(server.hub.subscriber_count("news"), 1);
    assert_eq!(server.hub.publish("news", "headline"), 1);
    assert_eq!(
        server.hub.publish("news", Bytes::from_static(b"\x00bin")),
        1
    );
    assert_eq!(next_text(&mut a).await, "headline");
    assert_eq!(next_message(&mut a).await, Message::binary(&b"\x00bin"[..]));

    // A Rust handle subscribes too.
    server.hub.client(b_id).unwrap().subscribe("news").unwrap();
    assert_eq!(server.hub.publish("news", "second"), 2);
    assert_eq!(next_text(&mut a).await, "second");
    assert_eq!(next_text(&mut b).await, "second");

    a.send(Message::text(r#"{"unsubscribe":"news"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut a).await, r#"{"unsubscribed":"news"}"#);
    assert_eq!(server.hub.publish("news", "third"), 1);
    assert_eq!(next_text(&mut b).await, "third");

    // An invalid topic is answered with an error; a frame that is not a command is a message.
    a.send(Message::text(r#"{"subscribe":""}"#)).await.unwrap();
    assert_eq!(
        next_text(&mut a).await,
        r#"{"error":"invalid topic","subscribe":""}"#
    );
    a.send(Message::text(r#"{"subscribe":"news","x":1}"#))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut a).await,
        r#"{"subscribe":"news","x":1}"#,
        "echoed as a message"
    );
    server.finish([a, b]).await;
}

#[tokio::test]
async fn topic_commands_can_be_turned_off() {
    let mut config = quiet_config();
    config.topic_commands = false;
    let (hub, _) = echo_hub(config);
    let server = TestServer::start(hub).await;
    let (mut a, _) = server.join().await;
    a.send(Message::text(r#"{"subscribe":"news"}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut a).await, r#"{"subscribe":"news"}"#);
    assert_eq!(server.hub.subscriber_count("news"), 0);
    server.finish([a]).await;
}

#[tokio::test]
async fn send_to_reaches_one_client_and_fails_for_a_gone_one() {
    let (hub, mut gone) = echo_hub(quiet_config());
    let server = TestServer::start(hub).await;
    let (mut a, a_id) = server.join().await;
    let (mut b, b_id) = server.join().await;
    server.hub.send_to(b_id, "for b").unwrap();
    assert_eq!(next_text(&mut b).await, "for b");

    a.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "leaving".into(),
    }))
    .await
    .unwrap();
    assert_eq!(close_frame(&mut a).await.code, CloseCode::Away);
    assert_ended(&mut a).await;
    assert_eq!(within(gone.recv()).await.unwrap().0, a_id);
    assert_eq!(
        server.hub.send_to(a_id, "too late"),
        Err(WsSendError::Closed)
    );
    assert_eq!(server.hub.client_ids(), vec![b_id]);
    server.finish([a, b]).await;
}

#[tokio::test]
async fn a_token_is_required_from_the_query_or_the_authorization_header() {
    let mut config = quiet_config();
    config.auth = WsAuth::token("s3cret");
    let (hub, _) = echo_hub(config);
    let server = TestServer::start(hub).await;

    let (status, body) = refused(request(&server.url("/ws"), &[])).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "missing credentials")
    );
    let (status, body) = refused(request(&server.url("/ws?token=wrong"), &[])).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid credentials")
    );
    let (status, _) = refused(request(
        &server.url("/ws"),
        &[("authorization", "Bearer wrong")],
    ))
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut ws = server.connect_to("/ws?token=s3cret").await;
    welcome(&mut ws).await;
    drop(ws);
    let (mut ws, _) = within(connect_async(request(
        &server.url("/ws"),
        &[("authorization", "Bearer s3cret")],
    )))
    .await
    .unwrap();
    welcome(&mut ws).await;
    assert_eq!(server.hub.stats().upgrades_refused, 3);
    server.finish([ws]).await;
}

#[tokio::test]
async fn a_custom_auth_check_sees_the_request_and_the_client_keeps_it() {
    let mut config = quiet_config();
    config.auth = WsAuth::custom(|request: tongxun::ws::WsRequest| async move {
        match request.query("user").as_deref() {
            Some("ann") => Ok(()),
            _ => Err(tongxun::ws::AuthError::Refused("unknown user".into())),
        }
    });
    let hub = WsHub::builder()
        .config(config)
        .on_connect(|client: WsClient| async move {
            client.send(format!(
                "hi {}",
                client.request().query("user").unwrap_or_default()
            ))
        })
        .build();
    let server = TestServer::start(hub).await;
    let (status, body) = refused(request(&server.url("/ws?user=bob"), &[])).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "unknown user")
    );
    let mut ws = server.connect_to("/ws?user=ann").await;
    assert_eq!(next_text(&mut ws).await, "hi ann");
    server.finish([ws]).await;
}

#[tokio::test]
async fn an_origin_outside_the_allowlist_is_refused_with_403() {
    let mut config = quiet_config();
    config.allowed_origins = vec!["https://app.example".to_owned()];
    let (hub, _) = echo_hub(config);
    let server = TestServer::start(hub).await;
    let (status, body) = refused(request(
        &server.url("/ws"),
        &[("origin", "https://evil.example")],
    ))
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, "origin not allowed")
    );
    let (mut ws, _) = within(connect_async(request(
        &server.url("/ws"),
        &[("origin", "https://app.example")],
    )))
    .await
    .unwrap();
    welcome(&mut ws).await;
    drop(ws);
    // Not a browser: no Origin header, not affected.
    let (mut ws, _) = server.join().await;
    ws.send(Message::text("ok")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "ok");
    server.finish([ws]).await;
}

#[tokio::test]
async fn the_first_supported_subprotocol_the_client_offers_is_selected() {
    let mut config = quiet_config();
    config.subprotocols = vec!["chat.v2".to_owned(), "chat.v1".to_owned()];
    let hub = WsHub::builder()
        .config(config)
        .on_connect(|client: WsClient| async move {
            client.send(client.protocol().unwrap_or("none").to_owned())
        })
        .build();
    let server = TestServer::start(hub).await;

    let offer = request(
        &server.url("/ws"),
        &[("sec-websocket-protocol", "chat.v1, chat.v2")],
    );
    let (mut ws, response) = within(connect_async(offer)).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");
    assert_eq!(next_text(&mut ws).await, "chat.v2");
    drop(ws);

    let (mut ws, response) = within(connect_async(server.url("/ws"))).await.unwrap();
    assert!(!response.headers().contains_key("sec-websocket-protocol"));
    assert_eq!(next_text(&mut ws).await, "none");
    server.finish([ws]).await;
}

#[tokio::test]
async fn a_plain_http_request_is_told_to_upgrade() {
    let (hub, _) = echo_hub(quiet_config());
    let server = TestServer::start(hub).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    within(stream.read_to_string(&mut response)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("upgrade: websocket"),
        "{response}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009_and_spares_the_others() {
    let mut config = quiet_config();
    config.max_message_size = 1024;
    let (hub, mut gone) = echo_hub(config);
    let server = TestServer::start(hub).await;
    let (mut big, big_id) = server.join().await;
    let (mut other, _) = server.join().await;

    big.send(Message::binary(vec![7u8; 1024])).await.unwrap();
    assert_eq!(
        next_message(&mut big).await,
        Message::binary(vec![7u8; 1024]),
        "the limit itself passes"
    );
    big.send(Message::binary(vec![7u8; 64 * 1024]))
        .await
        .unwrap();
    let frame = close_frame(&mut big).await;
    assert_eq!(frame.code, CloseCode::Size);
    assert_ended(&mut big).await;
    assert_eq!(
        within(gone.recv()).await.unwrap(),
        (big_id, WsDisconnectReason::MessageTooBig)
    );
    assert_eq!(server.hub.stats().oversized_messages, 1);

    other.send(Message::text("still here")).await.unwrap();
    assert_eq!(next_text(&mut other).await, "still here");
    server.finish([big, other]).await;
}

#[tokio::test]
async fn a_fragmented_message_over_the_limit_closes_with_1009() {
    let mut config = quiet_config();
    config.max_message_size = 1024;
    let (hub, _) = echo_hub(config);
    let server = TestServer::start(hub).await;
    let (mut ws, _) = server.join().await;
    let first = Frame::message(vec![1u8; 800], OpCode::Data(Data::Binary), false);
    let second = Frame::message(vec![2u8; 800], OpCode::Data(Data::Continue), true);
    ws.send(Message::Frame(first)).await.unwrap();
    ws.send(Message::Frame(second)).await.unwrap();
    assert_eq!(close_frame(&mut ws).await.code, CloseCode::Size);
    server.finish([ws]).await;
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007_and_a_protocol_violation_with_1002() {
    let (hub, mut gone) = echo_hub(quiet_config());
    let server = TestServer::start(hub).await;

    let (mut ws, id) = server.join().await;
    let invalid = Frame::message(vec![0x68, 0xff, 0xfe], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(invalid)).await.unwrap();
    assert_eq!(close_frame(&mut ws).await.code, CloseCode::Invalid);
    assert_ended(&mut ws).await;
    assert_eq!(
        within(gone.recv()).await.unwrap(),
        (id, WsDisconnectReason::ProtocolError { code: 1007 })
    );
    drop(ws);

    let (mut ws, id) = server.join().await;
    let mut reserved = Frame::message(vec![1], OpCode::Data(Data::Binary), true);
    reserved.header_mut().rsv2 = true;
    ws.send(Message::Frame(reserved)).await.unwrap();
    assert_eq!(close_frame(&mut ws).await.code, CloseCode::Protocol);
    assert_ended(&mut ws).await;
    assert_eq!(
        within(gone.recv()).await.unwrap(),
        (id, WsDisconnectReason::ProtocolError { code: 1002 })
    );
    assert_eq!(server.hub.stats().protocol_errors, 2);
    server.finish([ws]).await;
}

#[tokio::test]
async fn a_client_close_is_answered_and_reported() {
    let (hub, mut gone) = echo_hub(quiet_config());
    let server = TestServer::start(hub).await;
    let (mut ws, id) = server.join().await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let reply = close_frame(&mut ws).await;
    assert_eq!(
        (reply.code, reply.reason.as_str()),
        (CloseCode::Normal, "bye")
    );
    assert_ended(&mut ws).await;
    let reason = within(gone.recv()).await.unwrap();
    assert_eq!(
        reason,
        (
            id,
            WsDisconnectReason::ClientClosed {
                code: 1000,
                reason: "bye".into()
            }
        )
    );
    assert_eq!(server.hub.client_count(), 0);
    server.finish([ws]).await;
}

#[tokio::test]
async fn the_app_closes_a_client_after_its_queued_messages() {
    let (hub, mut gone) = with_reports(WsHub::builder().config(quiet_config()).on_message(
        |client: WsClient, message: WsMessage| async move {
            if message.as_text() == Some("kick me") {
                client.send("last words").ok();
                client.close(4001, "kicked");
                // Nothing goes out after the close.
                assert_eq!(client.send("too late"), Err(WsSendError::Closed));
            }
        },
    ));
    let server = TestServer::start(hub).await;
    let (mut ws, id) = server.join().await;
    ws.send(Message::text("kick me")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "last words");
    let frame = close_frame(&mut ws).await;
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (4001, "kicked")
    );
    assert_ended(&mut ws).await;
    let expected = WsDisconnectReason::ClosedByServer {
        code: 4001,
        reason: "kicked".into(),
    };
    assert_eq!(within(gone.recv()).await.unwrap(), (id, expected));
    server.finish([ws]).await;
}

#[tokio::test]
async fn a_panicking_handler_closes_its_client_with_1011_and_spares_the_others() {
    let (hub, mut gone) = with_reports(WsHub::builder().config(quiet_config()).on_message(
        |client: WsClient, message: WsMessage| async move {
            assert_ne!(message.as_text(), Some("panic"), "the app's bug");
            client.send(message)
        },
    ));
    let server = TestServer::start(hub).await;
    let (mut bad, bad_id) = server.join().await;
    let (mut good, _) = server.join().await;
    bad.send(Message::text("panic")).await.unwrap();
    assert_eq!(close_frame(&mut bad).await.code, CloseCode::Error);
    assert_ended(&mut bad).await;
    assert_eq!(
        within(gone.recv()).await.unwrap(),
        (bad_id, WsDisconnectReason::HandlerPanicked)
    );
    good.send(Message::text("fine")).await.unwrap();
    assert_eq!(next_text(&mut good).await, "fine");
    server.finish([bad, good]).await;
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001() {
    let (hub, mut gone) = echo_hub(quiet_config());
    let server = TestServer::start(hub.clone()).await;
    let (mut a, _) = server.join().await;
    let (mut b, _) = server.join().await;
    hub.broadcast("before shutdown");
    let url = server.url("/ws");
    let stopping = tokio::spawn(server.shutdown());
    for ws in [&mut a, &mut b] {
        assert_eq!(
            next_text(ws).await,
            "before shutdown",
            "queued messages go out first"
        );
        let frame = close_frame(ws).await;
        assert_eq!(
            (frame.code, frame.reason.as_str()),
            (CloseCode::Away, "server shutting down")
        );
        assert_ended(ws).await;
    }
    within(stopping).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            within(gone.recv()).await.unwrap().1,
            WsDisconnectReason::ServerShutdown
        );
    }
    assert_eq!(hub.client_count(), 0);
    assert!(connect_async(url).await.is_err(), "the server is gone");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_answers_pings_is_torn_down_and_counted() {
    let mut config = WsConfig::default();
    config.ping_interval = Duration::from_secs(10);
    config.pong_deadline = Duration::from_secs(5);
    let (hub, mut gone) = echo_hub(config);
    let server = TestServer::start(hub).await;
    let start = tokio::time::Instant::now();

    // The live client reads all the time (and so answers pings); the dead one never reads.
    let (live, _) = server.join().await;
    let (mut live_tx, mut live_rx) = live.split();
    let (echoes_tx, mut echoes) = mpsc::unbounded_channel();
    let pings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = pings.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = live_rx.next().await {
            match message {
                Message::Ping(_) => {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                other => echoes_tx.send(other).unwrap(),
            }
        }
    });
    let (mut dead, dead_id) = server.join().await;

    // Paused time moves on by itself while everyone waits.
    let (id, reason) = within(gone.recv()).await.unwrap();
    assert_eq!((id, reason), (dead_id, WsDisconnectReason::PingTimeout));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(15) && elapsed < Duration::from_secs(16),
        "torn down after {elapsed:?}, expected the ping interval plus the deadline"
    );
    assert_eq!(server.hub.stats().dead_peers, 1);
    // The dead client sees its pings, then the connection ends without a close frame.
    loop {
        match within(dead.next()).await {
            Some(Ok(Message::Ping(_))) => {}
            Some(Ok(other)) => panic!("unexpected {other:?}"),
            Some(Err(_)) | None => break,
        }
    }

    // The live client stays through many more rounds.
    tokio::time::sleep(Duration::from_secs(100)).await;
    live_tx.send(Message::text("still alive")).await.unwrap();
    assert_eq!(
        within(echoes.recv()).await.unwrap(),
        Message::text("still alive")
    );
    assert!(pings.load(std::sync::atomic::Ordering::SeqCst) >= 8);
    assert_eq!(server.hub.client_count(), 1);
    assert_eq!(server.hub.stats().dead_peers, 1);
    server.shutdown().await;
}

/// Index carried in the first 4 bytes of each slow-consumer test message.
fn index_of(message: &Message) -> u32 {
    match message {
        Message::Binary(bytes) => u32::from_be_bytes(bytes[..4].try_into().unwrap()),
        other => panic!("unexpected {other:?}"),
    }
}

/// A fast reader: checks that it receives every index in order, publishes its progress, and
/// hands its connection back at the end.
fn fast_reader(mut ws: Ws, count: u32) -> (watch::Receiver<u32>, tokio::task::JoinHandle<Ws>) {
    let (progress_tx, progress) = watch::channel(0u32);
    let task = tokio::spawn(async move {
        for expected in 0..count {
            let message = next_message(&mut ws).await;
            assert_eq!(
                index_of(&message),
                expected,
                "a fast client missed a message"
            );
            progress_tx.send(expected + 1).unwrap();
        }
        ws
    });
    (progress, task)
}

/// What a slow-consumer run leaves behind.
struct SlowRun {
    slow: Ws,
    slow_id: ClientId,
    /// The fast clients, still connected.
    fast: [Ws; 2],
    /// The largest total of queued messages seen in the hub during the run.
    max_queued: usize,
}

/// One slow client stops reading while `count` broadcasts of `size` bytes go out; two fast
/// clients are never more than `WINDOW` messages behind, and receive every message in order.
async fn run_slow_consumer(server: &TestServer, count: u32, size: usize) -> SlowRun {
    const WINDOW: u32 = 8;
    let (slow, slow_id) = server.join().await;
    let (a, _) = server.join().await;
    let (b, _) = server.join().await;
    let (mut progress_a, task_a) = fast_reader(a, count);
    let (mut progress_b, task_b) = fast_reader(b, count);

    let mut max_queued = 0;
    for i in 0..count {
        let mut payload = vec![0u8; size];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        server.hub.broadcast(WsMessage::binary(payload));
        max_queued = max_queued.max(server.hub.stats().queued_messages);
        if i >= WINDOW {
            let behind = i - WINDOW;
            within(progress_a.wait_for(|&n| n > behind)).await.unwrap();
            within(progress_b.wait_for(|&n| n > behind)).await.unwrap();
        }
    }
    let fast = [within(task_a).await.unwrap(), within(task_b).await.unwrap()];
    SlowRun {
        slow,
        slow_id,
        fast,
        max_queued,
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_oldest_messages_and_never_holds_back_the_others() {
    const CAPACITY: usize = 32;
    const COUNT: u32 = 1000;
    let mut config = quiet_config();
    config.queue_capacity = CAPACITY;
    config.overflow_policy = OverflowPolicy::DropOldest;
    let (hub, _) = echo_hub(config);
    let server = TestServer::start(hub).await;

    // 1000 x 16 KiB = 16 MB: several times what the loopback socket buffers of a client that
    // does not read hold (about 4 MB here).
    let mut run = run_slow_consumer(&server, COUNT, 16 * 1024).await;
    assert!(
        run.max_queued <= 3 * CAPACITY,
        "queues grew past their bound: {}",
        run.max_queued
    );

    // Reading again, the slow client gets increasing indices ending with the newest message;
    // what it missed is counted as it gets there.
    let mut last = None;
    let mut received = 0;
    while last != Some(COUNT - 1) {
        let index = index_of(&next_message(&mut run.slow).await);
        assert!(
            last.is_none_or(|last| index > last),
            "out of order: {index} after {last:?}"
        );
        last = Some(index);
        received += 1;
    }
    let stats = server.hub.stats();
    assert!(received < COUNT, "the slow client never fell behind");
    assert_eq!(
        stats.messages_dropped,
        u64::from(COUNT - received),
        "{stats:?}"
    );
    assert_eq!(stats.slow_clients_closed, 0);
    assert_eq!(server.hub.client_count(), 3);
    let [a, b] = run.fast;
    server.finish([run.slow, a, b]).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_1013_and_never_holds_back_the_others() {
    const CAPACITY: usize = 32;
    let mut config = quiet_config();
    config.queue_capacity = CAPACITY;
    config.overflow_policy = OverflowPolicy::Close;
    // Long enough for the slow client to read its way to the close frame.
    config.close_timeout = Duration::from_secs(60);
    let (hub, mut gone) = echo_hub(config);
    let server = TestServer::start(hub).await;

    let mut run = run_slow_consumer(&server, 1000, 16 * 1024).await;
    let stats = server.hub.stats();
    assert_eq!(stats.slow_clients_closed, 1, "{stats:?}");
    assert_eq!(stats.messages_dropped, 0);
    assert!(
        run.max_queued <= 3 * CAPACITY,
        "queues grew past their bound: {}",
        run.max_queued
    );

    // Reading again, the slow client finds what was already on its way, then the close frame.
    let frame = close_frame(&mut run.slow).await;
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::Again, "client too slow")
    );
    assert_ended(&mut run.slow).await;
    assert_eq!(
        within(gone.recv()).await.unwrap(),
        (run.slow_id, WsDisconnectReason::SlowConsumer)
    );
    assert_eq!(server.hub.client_count(), 2);
    let [a, b] = run.fast;
    server.finish([run.slow, a, b]).await;
}

#[tokio::test]
async fn a_client_that_closes_and_stops_reading_is_dropped_after_the_close_timeout() {
    let mut config = quiet_config();
    config.overflow_policy = OverflowPolicy::DropOldest;
    config.queue_capacity = 32;
    config.close_timeout = Duration::from_millis(300);
    let (hub, mut gone) = echo_hub(config);
    let server = TestServer::start(hub).await;
    let (mut ws, id) = server.join().await;

    // Fill the socket buffers towards the client, which does not read: the hub's answer to its
    // close frame cannot be written.
    for _ in 0..1000 {
        server
            .hub
            .broadcast(WsMessage::binary(vec![0u8; 16 * 1024]));
        tokio::task::yield_now().await;
    }
    assert_eq!(
        server.hub.stats().queued_messages,
        32,
        "the buffers never filled up: the writer is not a whole log behind"
    );
    ws.send(Message::Close(None)).await.unwrap();

    let (gone_id, reason) = within(gone.recv()).await.unwrap();
    assert_eq!((gone_id, reason), (id, WsDisconnectReason::ConnectionLost));
    assert_eq!(server.hub.client_count(), 0);
    server.finish([ws]).await;
}
