//! Two nodes on a real Redis Cluster of three masters (started by each test): Socket.IO rooms and
//! acks, the WebSocket hub and the SSE hub's history all cross between them as on one Redis, a
//! cluster that goes away is reported as Redis away, and a channel whose slot moves to another
//! master follows it.

// The SSE helpers bring their own copy of `support/serve.rs`, beside the one of the Socket.IO
// helpers, as in `hostile/sse.rs`: two small copies of a test server, no shared state.
#[expect(
    clippy::duplicate_mod,
    reason = "the SSE and Socket.IO helpers each include serve.rs"
)]
#[path = "support/sse.rs"]
mod sse_support;
mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::redis::RedisCluster;
use support::within;
use tokio_tungstenite::tungstenite::Message;
use tongxun::sse::{SseConfig, SseEvent, SseHub};
use tongxun::ws::{WsClient, WsConfig, WsHub};
use tongxun::{Ack, Config, Data, Server, Socket};
use tongxun_test::{TestClient, TestServer};

/// One node: a namespace whose sockets join rooms on request, a WebSocket hub that greets each
/// client (so the test knows it is registered) and an SSE hub.
struct Node {
    server: TestServer,
    ws: WsHub,
    sse: SseHub,
}

async fn node(cluster: &RedisCluster) -> Node {
    support::init_tracing();
    let mut config = Config::default();
    config.redis_url = Some(cluster.url());
    config.redis_cluster = true;
    let mut ws_config = WsConfig::default();
    ws_config.ping_interval = Duration::ZERO;
    let ws = WsHub::builder()
        .config(ws_config)
        .on_connect(|client: WsClient| async move { client.send("welcome") })
        .build();
    let sse = SseHub::new(SseConfig::default());
    let server = Server::builder()
        .config(config)
        .namespace("/", |socket: Socket| async move {
            socket.on(
                "join",
                |socket: Socket, Data(room): Data<String>, ack: Ack| async move {
                    socket.join(room).expect("a valid room");
                    ack.send(&())
                },
            );
        })
        .ws(ws.clone())
        .sse(sse.clone())
        .build();
    let server = TestServer::start(server).await.expect("a loopback port");
    Node { server, ws, sse }
}

async fn client(node: &Node) -> TestClient {
    within(node.server.connect("/")).await.expect("connected")
}

#[tokio::test]
async fn two_nodes_on_a_redis_cluster_share_rooms_acks_websocket_publishes_and_sse_history() {
    let cluster = RedisCluster::start().await;
    let (a, b) = (node(&cluster).await, node(&cluster).await);

    // Socket.IO: a broadcast to a room on node A reaches the room's client on node B.
    let mut there = client(&b).await;
    let () = within(there.emit_with_ack("join", "tea")).await.unwrap();
    let _here = client(&a).await;
    within(a.server.io().main().to("tea").emit("news", "brewed"))
        .await
        .expect("shared with the other node");
    let news = within(there.wait_for("news")).await.unwrap();
    assert_eq!(news.data::<String>().unwrap(), "brewed");

    // An aggregated ack from node A gets the answer of node B's client: the server count
    // (PUBSUB NUMSUB, added up over the cluster's nodes) says there are two nodes.
    let io = a.server.io().clone();
    let asked = tokio::spawn(async move {
        io.main()
            .to("tea")
            .timeout(Duration::from_secs(5))
            .emit_with_ack::<_, String>("who?", &())
            .await
            .unwrap()
    });
    within(there.wait_for("who?"))
        .await
        .unwrap()
        .ack("from b")
        .unwrap();
    let answers = within(asked).await.unwrap();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0.to_string(), there.id());
    assert_eq!(answers[0].1.as_ref().unwrap(), "from b");

    // WebSocket hub: a broadcast on node A reaches a client of node B.
    let url = format!("ws://{}/ws", b.server.addr());
    let (mut ws, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    let mut next_text = async || loop {
        match within(ws.next()).await {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    };
    assert_eq!(next_text().await, "welcome");
    a.ws.broadcast("across the cluster");
    assert_eq!(next_text().await, "across the cluster");

    // SSE: events published on node A are in the cluster's history, so a client resuming on
    // node B with Last-Event-ID gets those after its id, then live ones.
    let first = a.sse.publish("prices", SseEvent::new("1")).await.unwrap();
    for data in ["2", "3"] {
        a.sse.publish("prices", SseEvent::new(data)).await.unwrap();
    }
    let mut resumed = sse_support::subscribe(
        b.server.addr(),
        "/events?topic=prices",
        &[("Last-Event-ID", &first.to_string())],
    )
    .await;
    resumed.ready().await;
    assert_eq!(resumed.next_event().await.data(), "2");
    assert_eq!(resumed.next_event().await.data(), "3");
    a.sse.publish("prices", SseEvent::new("4")).await.unwrap();
    assert_eq!(resumed.next_event().await.data(), "4");
    drop(resumed);

    // The history is where the hash tag puts it: every key of the hub on one master.
    let stream = "tongxun:sse:{/events}:log:prices";
    assert_eq!(cluster.cli(&["XLEN", stream]), "4");
    let holders: Vec<String> = cluster
        .cli_each(&["EXISTS", stream])
        .into_iter()
        .filter(|n| n == "1")
        .collect();
    assert_eq!(holders.len(), 1, "one master holds the stream");

    drop(ws);
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// The bus behaves on a cluster as on one Redis when it goes away: told at once, every time,
/// and cross-node delivery resumes when it is back.
#[tokio::test]
async fn while_the_cluster_is_away_a_broadcast_says_it_reached_this_node_only_then_it_is_shared_again()
 {
    let mut cluster = RedisCluster::start().await;
    let (a, b) = (node(&cluster).await, node(&cluster).await);
    let (mut here, mut there) = (client(&a).await, client(&b).await);
    within(a.server.io().main().emit("news", "both"))
        .await
        .unwrap();
    within(there.wait_for("news")).await.unwrap();
    within(here.wait_for("news")).await.unwrap();

    cluster.kill();
    let away = within(a.server.io().main().emit("news", "only here")).await;
    assert!(
        matches!(away, Err(tongxun::BroadcastError::ThisNodeOnly)),
        "{away:?}"
    );
    let news = within(here.wait_for("news")).await.unwrap();
    assert_eq!(news.data::<String>().unwrap(), "only here");
    for _ in 0..3 {
        let away = within(a.server.io().main().emit("ignored", &())).await;
        assert!(
            matches!(away, Err(tongxun::BroadcastError::ThisNodeOnly)),
            "known away: {away:?}"
        );
    }

    cluster.restart().await;
    // Each attempt waits for the other node's client to hear it, at most half a second, as
    // tests/broadcast.rs does on one Redis.
    let mut back = false;
    for _ in 0..40 {
        let sent = a.server.io().main().emit("back", &()).await;
        let heard = tokio::time::timeout(Duration::from_millis(500), there.wait_for("back"));
        if heard.await.is_ok() {
            assert!(
                sent.is_ok(),
                "what reached the other node is reported as shared: {sent:?}"
            );
            back = true;
            break;
        }
    }
    assert!(
        back,
        "cross-node delivery resumed once the cluster was back"
    );
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// Sharded pub/sub follows a channel to its new master: the old one drops the channel's
/// subscriptions when its slot moves, each node subscribes again on the new one, and messages
/// cross again, once.
#[tokio::test]
async fn a_channel_whose_slot_moves_to_another_master_still_crosses_once() {
    let cluster = RedisCluster::start().await;
    let (a, b) = (node(&cluster).await, node(&cluster).await);
    let url = format!("ws://{}/ws", a.server.addr());
    let (mut ws, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    let mut next_text = async || loop {
        match within(ws.next()).await {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    };
    assert_eq!(next_text().await, "welcome");
    b.ws.broadcast("before");
    assert_eq!(next_text().await, "before");

    let channel = "tongxun:ws:/ws";
    let (slot, from) = cluster.slot_of(channel);
    let to = (from + 1) % 3;
    cluster.move_empty_slot(slot, to);
    let subscribers = |master: usize| {
        let answer = cluster.cli_on(master, &["PUBSUB", "SHARDNUMSUB", channel]);
        answer.lines().nth(1).unwrap().to_owned()
    };
    let moved = tokio::time::timeout(support::STEP, async {
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            poll.tick().await;
            if subscribers(to) == "2" {
                return;
            }
        }
    });
    moved
        .await
        .expect("both nodes subscribe on the new master in time");
    assert_eq!(cluster.master_of(slot), to);
    for master in [from, 3 - from - to] {
        assert_eq!(subscribers(master), "0", "no subscription is left behind");
    }

    b.ws.broadcast("after");
    b.ws.broadcast("end");
    assert_eq!(next_text().await, "after");
    assert_eq!(next_text().await, "end", "the message came once");
    drop(ws);
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}
