//! Resume on one node, in memory: a hub publish carries the SSE hub's id on Socket.IO and on the
//! WebSocket hub, a client that comes back with its last id is replayed what it missed and then
//! goes on live with nothing twice (also while publishes race with its replay), and one that
//! stayed away longer than the history gets `resync`.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::within;
use tokio_tungstenite::tungstenite::Message;
use tongxun::hub::Hub;
use tongxun::sse::{SseConfig, SseHub};
use tongxun::ws::{WsConfig, WsHub};
use tongxun::{Config, Server};
use tongxun_test::{TestClient, TestServer};

const TOPIC: &str = "prices";

struct Node {
    server: TestServer,
    hub: Hub,
    sse: SseHub,
}

/// A server with `/live` bound to a hub whose SSE history keeps `history` events per topic.
async fn node(history: usize) -> Node {
    node_with(history, Config::default()).await
}

/// The same, with this configuration, and queues for 20,000 events per client.
async fn node_with(history: usize, config: Config) -> Node {
    node_queued(history, config, 20_000).await
}

/// The same, with queues for `queue` events per client.
async fn node_queued(history: usize, mut config: Config, queue: usize) -> Node {
    support::init_tracing();
    let mut ws_config = WsConfig::default();
    ws_config.ping_interval = Duration::ZERO;
    ws_config.queue_capacity = queue;
    ws_config.max_queued_bytes = 64 << 20;
    let ws = WsHub::new(ws_config);
    let mut sse_config = SseConfig::default();
    sse_config.history_len = history;
    let sse = SseHub::new(sse_config);
    config.max_buffer_size = queue;
    let server = Server::builder()
        .config(config)
        .namespace_with("/live", Hub::namespace())
        .ws(ws.clone())
        .sse(sse.clone())
        .build();
    let hub = Hub::builder()
        .socketio(server.io(), ["/live"])
        .ws(ws)
        .sse(sse.clone())
        .build();
    let server = TestServer::start(server).await.expect("a loopback port");
    Node { server, hub, sse }
}

impl Node {
    /// Publishes `n` on the topic; returns its id.
    async fn publish(&self, n: u64) -> String {
        let delivery = self.hub.publish(TOPIC, "tick", &json!({ "n": n })).await;
        let delivery = delivery.expect("published");
        assert_eq!(delivery.sse, delivery.id);
        delivery.id.expect("an id")
    }

    async fn socket(&self, auth: Option<Value>) -> TestClient {
        let mut client = self.server.client().namespace("/live");
        if let Some(auth) = auth {
            client = client.auth(auth);
        }
        within(client.connect()).await.expect("connected")
    }
}

/// The next `tick` of a socket: its `n` and its id.
async fn tick(client: &mut TestClient) -> (u64, String) {
    let event = within(client.wait_for("tick")).await.expect("a tick");
    let (data, meta): (Value, Value) = event.data().expect("two arguments");
    assert_eq!(meta["topic"], TOPIC);
    (
        data["n"].as_u64().unwrap(),
        meta["id"].as_str().unwrap().to_owned(),
    )
}

async fn subscribe(client: &TestClient, request: Value) {
    let answer: Value = within(client.emit_with_ack("subscribe", &request))
        .await
        .expect("answered");
    assert_eq!(answer, json!({ "ok": [TOPIC] }));
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(node: &Node, command: Value) -> Ws {
    let url = format!("ws://{}/ws", node.server.addr());
    let (mut ws, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    ws.send(Message::text(command.to_string())).await.unwrap();
    assert_eq!(frame(&mut ws).await, json!({ "subscribed": TOPIC }));
    ws
}

async fn frame(ws: &mut Ws) -> Value {
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn socketio_and_websocket_carry_the_sse_id_and_resume_from_it() {
    let node = node(100).await;
    let mut socket = node.socket(None).await;
    subscribe(&socket, json!(TOPIC)).await;
    let mut ws_client = ws(&node, json!({ "subscribe": TOPIC })).await;

    let id = node.publish(1).await;
    assert_eq!(tick(&mut socket).await, (1, id.clone()));
    let envelope = frame(&mut ws_client).await;
    assert_eq!(
        envelope,
        json!({ "topic": TOPIC, "event": "tick", "data": { "n": 1 }, "id": id })
    );

    // Both leave; three events go by; both come back with the id of the last one they got.
    socket.disconnect().await;
    drop(ws_client);
    let mut missed = Vec::new();
    for n in 2..=4 {
        missed.push((n, node.publish(n).await));
    }
    let mut socket = node.socket(Some(json!({ "since": id }))).await;
    // The client's usual `subscribe` on connect changes nothing: no event twice.
    subscribe(&socket, json!(TOPIC)).await;
    let mut ws_client = ws(&node, json!({ "subscribe": TOPIC, "since": id })).await;
    let live = node.publish(5).await;
    for expected in missed.iter().cloned().chain([(5, live.clone())]) {
        assert_eq!(tick(&mut socket).await, expected);
        let envelope = frame(&mut ws_client).await;
        assert_eq!(
            (
                envelope["data"]["n"].as_u64().unwrap(),
                envelope["id"].as_str().unwrap()
            ),
            (expected.0, expected.1.as_str())
        );
    }

    // `subscribe` with `since` resumes too, and acknowledges once the replay is sent.
    socket.disconnect().await;
    let after = node.publish(6).await;
    let mut socket = node.socket(None).await;
    subscribe(&socket, json!({ "topics": [TOPIC], "since": live })).await;
    assert_eq!(tick(&mut socket).await, (6, after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_racing_with_publishes_get_every_event_once_in_order() {
    let node = node(10_000).await;
    let first = node.publish(1).await;
    // Publishes go on, one after the other, while the clients connect and are replayed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (publisher, stopped) = (node.hub.clone(), stop.clone());
    let mut publishing = Some(tokio::spawn(async move {
        let mut n = 1;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            publisher
                .publish(TOPIC, "tick", &json!({ "n": n }))
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
        n
    }));
    let mut sockets = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..4 {
        sockets.push(node.socket(Some(json!({ "since": first }))).await);
        clients.push(ws(&node, json!({ "subscribe": TOPIC, "since": first })).await);
    }
    let mut next = [2u64; 8];
    // Every client reads a while before the publisher stops, then up to its last event.
    let mut last = None;
    loop {
        for (i, socket) in sockets.iter_mut().enumerate() {
            assert_eq!(tick(socket).await.0, next[i], "socket {i}");
            next[i] += 1;
        }
        for (i, client) in clients.iter_mut().enumerate() {
            assert_eq!(
                frame(client).await["data"]["n"],
                next[4 + i],
                "ws client {i}"
            );
            next[4 + i] += 1;
        }
        if next[0] > 500
            && let Some(publishing) = publishing.take()
        {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            last = Some(publishing.await.unwrap());
        }
        if last.is_some_and(|last| next.iter().all(|&n| n > last)) {
            break;
        }
    }
}

#[tokio::test]
async fn a_client_away_longer_than_the_history_gets_resync_then_live_events() {
    let node = node(5).await;
    let old = node.publish(1).await;
    for n in 2..=10 {
        node.publish(n).await;
    }
    let mut socket = node.socket(Some(json!({ "since": old }))).await;
    let mut ws_client = ws(&node, json!({ "subscribe": TOPIC, "since": old })).await;
    let resync = json!({ "topics": [TOPIC], "reason": "history_exceeded" });
    let event = within(socket.wait_for("resync")).await.unwrap();
    assert_eq!(event.data::<Value>().unwrap(), resync);
    assert_eq!(
        frame(&mut ws_client).await,
        json!({ "event": "resync", "data": resync })
    );

    node.publish(11).await;
    assert_eq!(tick(&mut socket).await.0, 11);
    assert_eq!(frame(&mut ws_client).await["data"]["n"], 11);

    // An id of another epoch (another life of the history) is unknown.
    let stranger = node
        .socket(Some(json!({ "since": "0000ffff;prices:3" })))
        .await;
    let mut stranger = stranger;
    let event = within(stranger.wait_for("resync")).await.unwrap();
    assert_eq!(
        event.data::<Value>().unwrap(),
        json!({ "topics": [TOPIC], "reason": "unknown_id" })
    );
}

#[tokio::test]
async fn a_feed_that_fell_behind_repairs_the_gap_from_history() {
    let node = node(20_000).await;
    let mut socket = node.socket(None).await;
    subscribe(&socket, json!(TOPIC)).await;
    let mut ws_client = ws(&node, json!({ "subscribe": TOPIC })).await;
    // Published to the SSE hub directly (a hub publish waits for the feed), on this one-thread
    // runtime: the feed cannot run during the loop, and past its tap's 8,192 events the rest
    // reach only the history.
    for n in 1..=10_000 {
        let data = json!({ "n": n }).to_string();
        let event = tongxun::sse::SseEvent::new(data).event("tick");
        node.sse.publish(TOPIC, event).await.unwrap();
    }
    node.publish(10_001).await;
    for n in 1..=10_001 {
        let got = frame(&mut ws_client).await;
        assert_eq!(got["data"]["n"], n, "{got}");
    }
    for n in 1..=10_001 {
        assert_eq!(tick(&mut socket).await.0, n);
    }
}

#[tokio::test]
async fn a_replay_longer_than_the_clients_queues_goes_at_their_pace() {
    // Queues of 100 events; a replay of 2,000.
    let node = node_queued(5_000, Config::default(), 100).await;
    let first = node.publish(0).await;
    for n in 1..=2_000 {
        node.publish(n).await;
    }
    let mut socket = node.socket(Some(json!({ "since": first }))).await;
    let mut ws_client = ws(&node, json!({ "subscribe": TOPIC, "since": first })).await;
    for n in 1..=2_000 {
        assert_eq!(tick(&mut socket).await.0, n);
    }
    for n in 1..=2_000 {
        assert_eq!(frame(&mut ws_client).await["data"]["n"], n);
    }
}

/// A configuration on this Redis.
#[cfg(feature = "redis")]
fn on(redis: &support::redis::RedisServer) -> Config {
    let mut config = Config::default();
    config.redis_url = Some(redis.url());
    config
}

/// Two nodes on one Redis: a client that got its last event on one resumes on the other.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_client_resumes_on_another_node() {
    let redis = support::redis::RedisServer::start().await;
    let on_redis = || on(&redis);
    let (a, b) = (
        node_with(100, on_redis()).await,
        node_with(100, on_redis()).await,
    );
    let mut socket = a.socket(None).await;
    subscribe(&socket, json!(TOPIC)).await;
    let mut ws_client = ws(&a, json!({ "subscribe": TOPIC })).await;
    // Node B's feed takes every event too, from Redis: once a client there has one, both
    // listen on the hub's channel.
    let mut witness = b.socket(None).await;
    subscribe(&witness, json!(TOPIC)).await;
    let id = a.publish(1).await;
    assert_eq!(tick(&mut socket).await, (1, id.clone()));
    assert_eq!(tick(&mut witness).await, (1, id.clone()));
    assert_eq!(frame(&mut ws_client).await["id"], id);

    socket.disconnect().await;
    drop(ws_client);
    let mut missed = Vec::new();
    for n in 2..=4 {
        missed.push((n, a.publish(n).await));
    }
    let mut socket = b.socket(Some(json!({ "since": id }))).await;
    let mut ws_client = ws(&b, json!({ "subscribe": TOPIC, "since": id })).await;
    let live = (5, a.publish(5).await);
    for expected in missed.into_iter().chain([live]) {
        assert_eq!(tick(&mut socket).await, expected);
        let envelope = frame(&mut ws_client).await;
        assert_eq!(envelope["id"], expected.1.as_str());
    }
}

#[tokio::test]
async fn a_since_naming_too_many_topics_or_not_an_id_gets_resync_and_nothing_else() {
    let node = node(100).await;
    let resync = json!({ "topics": [], "reason": "unknown_id" });
    let too_many: Vec<String> = (0..=tongxun::hub::MAX_SINCE_TOPICS)
        .map(|i| format!("0000ffff;made-up-{i}:0"))
        .collect();
    for since in [
        json!(too_many),
        json!("not an id"),
        json!(["0000ffff;a b:1"]),
    ] {
        let mut socket = node.socket(Some(json!({ "since": since }))).await;
        let event = within(socket.wait_for("resync")).await.unwrap();
        assert_eq!(event.data::<Value>().unwrap(), resync, "{since}");
        socket.disconnect().await;
    }
    assert_eq!(node.hub.resuming(), 0, "nothing registered");

    // Sockets resuming into topics nobody publishes to wait for their next event; once they
    // left, a sweep drops them: the count stays within about twice those still connected.
    let mut peak = 0;
    for round in 0..10 {
        let mut sockets = Vec::new();
        for i in 0..40 {
            let id = format!("{};made-up-{round}-{i}:0", epoch_of(&node).await);
            sockets.push(node.socket(Some(json!({ "since": id }))).await);
        }
        // The last one's registration is done once it answers an event after its connect.
        let answer: Value = within(sockets[39].emit_with_ack("unsubscribe", "other"))
            .await
            .unwrap();
        assert_eq!(answer, json!({ "ok": ["other"] }));
        peak = peak.max(node.hub.resuming());
        for socket in sockets {
            socket.disconnect().await;
        }
    }
    assert!(peak <= 2 * 40 + 64, "resuming subscribers held: {peak}");
}

/// The epoch of the node's history, from an event's id.
async fn epoch_of(node: &Node) -> String {
    let id = node
        .hub
        .publish("epoch-probe", "tick", &0)
        .await
        .unwrap()
        .id
        .unwrap();
    id.split(';').next().unwrap().to_owned()
}

/// Redis drops one node's connections while the other one publishes: what the first node's
/// feed missed meanwhile reaches its subscribers once Redis is back, without waiting for a
/// later event; nothing twice, nothing out of order.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_node_cut_off_from_redis_delivers_what_it_missed_once_back() {
    let redis = support::redis::RedisServer::start().await;
    let on_redis = || on(&redis);
    let clients = || -> Vec<String> {
        redis
            .cli(&["CLIENT", "LIST"])
            .lines()
            .filter_map(|line| {
                line.strip_prefix("id=")?
                    .split(' ')
                    .next()
                    .map(str::to_owned)
            })
            .collect()
    };
    let a = node_with(100, on_redis()).await;
    a.hub
        .publish("warm-up", "tick", &0)
        .await
        .expect("A is connected");
    let a_clients = clients();
    let b = node_with(100, on_redis()).await;
    let mut socket = b.socket(None).await;
    subscribe(&socket, json!(TOPIC)).await;
    a.publish(1).await;
    assert_eq!(tick(&mut socket).await.0, 1);

    for id in clients().iter().filter(|id| !a_clients.contains(id)) {
        redis.cli(&["CLIENT", "KILL", "ID", id]);
    }
    for n in 2..=20 {
        a.publish(n).await;
    }
    for n in 2..=20 {
        assert_eq!(tick(&mut socket).await.0, n);
    }
}
