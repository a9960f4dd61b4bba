//! The Prometheus metrics: a scrape of `/metrics`, parsed by an independent parser
//! (`prometheus-parse`), moves by exactly what the clients did.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tongxun::hub::Hub;
use tongxun::sse::{SseEvent, SseHub};
use tongxun::ws::{WsClient, WsDisconnectReason, WsHub, WsMessage};
use tongxun::{Ack, ConnectError, Data, HandlerError, Handshake, Io, Namespace, Server, Socket};
use tongxun_test::{TestServer, Transport};

/// One scrape: every sample by its name and sorted labels.
#[derive(Debug, Default)]
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("a valid exposition");
        let mut samples = HashMap::new();
        for sample in parsed.samples {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                // Buckets are checked through `_count`.
                _ => continue,
            };
            let mut labels: Vec<_> = sample.labels.iter().collect();
            labels.sort();
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
        }
        Scrape(samples)
    }

    /// A sample's value; a series that is not there is a mistake in the test.
    fn get(&self, key: &str) -> f64 {
        match self.0.get(key) {
            Some(value) => *value,
            None => panic!("no sample {key} in {:#?}", self.0.keys()),
        }
    }

    /// A sample's value, or zero before its series was first written.
    fn get_or_zero(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }
}

/// `GET /metrics` over a plain connection.
async fn scrape(addr: SocketAddr) -> Scrape {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"));
    Scrape::parse(body)
}

async fn check(handshake: Handshake) -> Result<(), ConnectError> {
    match handshake.auth::<serde_json::Value>() {
        Ok(auth) if auth["token"] == "secret" => Ok(()),
        _ => Err(ConnectError::new("bad token")),
    }
}

#[tokio::test]
async fn a_scrape_counts_exactly_what_the_clients_did() {
    let (gone_tx, mut gone) = mpsc::unbounded_channel::<()>();
    let on_chat = move |socket: Socket| {
        let gone_tx = gone_tx.clone();
        async move {
            socket.on("echo", |Data(text): Data<String>, ack: Ack| async move {
                ack.send(&text)
            });
            socket.on("fail", |_: Ack| async move {
                Err::<(), _>(HandlerError::msg("refused"))
            });
            socket.on("ask", |socket: Socket, ack: Ack| async move {
                let answer: Result<String, _> = socket.emit_with_ack("name?", &()).await;
                let ignored: Result<String, _> = socket
                    .timeout(Duration::from_millis(50))
                    .emit_with_ack("ignored", &())
                    .await;
                ack.send(&(answer.is_ok(), ignored.is_err()))
            });
            socket.on_disconnect(move |_: Socket, _| {
                let gone_tx = gone_tx.clone();
                async move {
                    gone_tx.send(()).ok();
                }
            });
        }
    };
    let (ws_gone_tx, mut ws_gone) = mpsc::unbounded_channel::<WsDisconnectReason>();
    let ws = WsHub::builder()
        .on_message(|client: WsClient, message: WsMessage| async move { client.send(message) })
        .on_disconnect(move |_: WsClient, reason: WsDisconnectReason| {
            let ws_gone_tx = ws_gone_tx.clone();
            async move {
                ws_gone_tx.send(reason).ok();
            }
        })
        .build();
    let sse = SseHub::default();
    let server = Server::builder()
        .namespace("/chat", on_chat)
        .namespace_with("/private", Namespace::new(|_: Socket| async {}).auth(check))
        .routes_with(|io: Io| io.metrics().router("/metrics"))
        .ws(ws.clone())
        .sse(sse.clone())
        .build();
    let hub = Hub::builder()
        .socketio(server.io(), ["/chat"])
        .ws(ws)
        .sse(sse.clone())
        .build();
    let server = TestServer::start(server).await.unwrap();
    let addr = server.addr();
    let before = scrape(addr).await;

    // Socket.IO: one client over each transport; two echoes, one failing handler, one server
    // ack answered and one timing out, one refused connect.
    let polling = server
        .client()
        .namespace("/chat")
        .transport(Transport::Polling)
        .connect()
        .await
        .unwrap();
    let mut websocket = server.client().namespace("/chat").connect().await.unwrap();
    websocket.on("name?", |event| {
        event.ack("ada").ok();
    });
    let echoed: String = polling.emit_with_ack("echo", "a").await.unwrap();
    assert_eq!(echoed, "a");
    let echoed: String = websocket.emit_with_ack("echo", "b").await.unwrap();
    assert_eq!(echoed, "b");
    let failed: serde_json::Value = websocket.emit_with_ack("fail", &()).await.unwrap();
    assert_eq!(failed["error"], "refused");
    let asked: (bool, bool) = websocket.emit_with_ack("ask", &()).await.unwrap();
    assert_eq!(asked, (true, true));
    assert_eq!(
        websocket.wait_for("ignored").await.unwrap().name(),
        "ignored"
    );
    let refused = server
        .client()
        .namespace("/private")
        .auth(serde_json::json!({ "token": "wrong" }))
        .connect()
        .await;
    assert!(refused.is_err());

    // The WebSocket hub: one client, one echoed message, a normal close.
    let (mut ws_client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws_client.send(Message::text("hi")).await.unwrap();
    let echo = ws_client.next().await.unwrap().unwrap();
    assert_eq!(echo, Message::text("hi"));

    // SSE: one subscriber, open while the hub publishes to its topic.
    let mut subscriber = TcpStream::connect(addr).await.unwrap();
    subscriber
        .write_all(b"GET /events?topic=t HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0; 4096];
    let n = subscriber.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    let during = scrape(addr).await;
    assert_eq!(
        during.get("tongxun_sse_subscribers{}") - before.get_or_zero("tongxun_sse_subscribers{}"),
        1.0
    );
    assert_eq!(during.get("tongxun_ws_clients{}"), 1.0);
    assert_eq!(
        during.get("tongxun_socketio_connections_open{namespace=/chat}"),
        2.0
    );
    let delivery = hub.publish("t", "tick", &1).await.unwrap();
    assert!(delivery.sse.is_some());
    sse.publish("t", SseEvent::new("direct")).await.unwrap();

    ws_client
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    while ws_client.next().await.is_some() {}
    assert!(matches!(
        ws_gone.recv().await.unwrap(),
        WsDisconnectReason::ClientClosed { code: 1000, .. }
    ));
    polling.disconnect().await;
    gone.recv().await.unwrap();
    websocket.disconnect().await;
    gone.recv().await.unwrap();

    let after = scrape(addr).await;
    let delta = |key: &str| after.get(key) - before.get_or_zero(key);
    let chat = "namespace=/chat";
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_connections_opened_total{{{chat},transport=polling}}"
        )),
        1.0
    );
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_connections_opened_total{{{chat},transport=websocket}}"
        )),
        1.0
    );
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_connections_closed_total{{{chat},reason=client_disconnect,transport=polling}}"
        )) + delta(&format!(
            "tongxun_socketio_connections_closed_total{{{chat},reason=client_disconnect,transport=websocket}}"
        )),
        2.0
    );
    assert_eq!(
        after.get(&format!("tongxun_socketio_connections_open{{{chat}}}")),
        0.0
    );
    assert_eq!(
        delta("tongxun_socketio_handshakes_refused_total{namespace=/private,reason=auth}"),
        1.0
    );
    // echo, echo, fail, ask.
    assert_eq!(
        delta(&format!("tongxun_socketio_events_received_total{{{chat}}}")),
        4.0
    );
    // name? and ignored.
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_events_emitted_total{{{chat},target=socket}}"
        )),
        2.0
    );
    // The topic's two events, the hub's and the one published to the SSE hub directly: the
    // SSE hub is the topic's log, and each event reaches the room once.
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_events_emitted_total{{{chat},target=broadcast}}"
        )),
        2.0
    );
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_acks_total{{{chat},outcome=answered}}"
        )),
        1.0
    );
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_acks_total{{{chat},outcome=timed_out}}"
        )),
        1.0
    );
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_acks_total{{{chat},outcome=failed}}"
        )),
        0.0
    );
    assert_eq!(
        after.get(&format!("tongxun_socketio_acks_pending{{{chat}}}")),
        0.0
    );
    // echo, echo, ask answered; fail answered with an error.
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_acks_answered_total{{{chat},result=ok}}"
        )),
        3.0
    );
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_acks_answered_total{{{chat},result=error}}"
        )),
        1.0
    );
    assert_eq!(
        delta(&format!(
            "tongxun_socketio_handler_duration_seconds_count{{{chat}}}"
        )),
        4.0
    );
    assert_eq!(
        after.get(&format!("tongxun_socketio_dispatch_queue_depth{{{chat}}}")),
        0.0
    );
    assert_eq!(delta("tongxun_socketio_deliveries_dropped_total{}"), 0.0);
    assert_eq!(
        delta("tongxun_limit_hits_total{limit=max_pending_events}"),
        0.0
    );

    assert_eq!(delta("tongxun_ws_connections_total{}"), 1.0);
    assert_eq!(delta("tongxun_ws_messages_received_total{}"), 1.0);
    assert_eq!(delta("tongxun_ws_messages_sent_total{}"), 1.0);
    assert_eq!(delta("tongxun_ws_closes_total{code=1000}"), 1.0);
    assert_eq!(after.get("tongxun_ws_clients{}"), 0.0);

    assert_eq!(delta("tongxun_sse_events_published_total{}"), 2.0);
    assert_eq!(delta("tongxun_sse_events_delivered_total{}"), 2.0);
    assert_eq!(delta("tongxun_sse_resyncs_total{}"), 0.0);
    assert!(after.get("tongxun_sse_history_bytes{}") > 0.0);
    assert_eq!(
        delta("tongxun_hub_publishes_total{transport=socketio}"),
        1.0
    );
    assert_eq!(delta("tongxun_hub_publishes_total{transport=ws}"), 1.0);
    assert_eq!(delta("tongxun_hub_publishes_total{transport=sse}"), 1.0);

    drop(subscriber);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_servers_in_one_process_keep_their_own_counts() {
    let server = Server::builder()
        .namespace("/a", |_: Socket| async {})
        .routes_with(|io: Io| io.metrics().router("/metrics"))
        .build();
    let other = Server::builder()
        .namespace("/a", |_: Socket| async {})
        .build();
    let server = TestServer::start(server).await.unwrap();
    let before = scrape(server.addr()).await;
    let first = server.connect("/a").await.unwrap();
    let second = server.connect("/a").await.unwrap();
    let after = scrape(server.addr()).await;
    let opened = "tongxun_socketio_connections_opened_total{namespace=/a,transport=websocket}";
    assert_eq!(after.get(opened) - before.get_or_zero(opened), 2.0);
    let untouched = Scrape::parse(&other.metrics().render());
    assert_eq!(untouched.get(opened), 0.0);
    first.disconnect().await;
    second.disconnect().await;
    server.shutdown().await.unwrap();
}
