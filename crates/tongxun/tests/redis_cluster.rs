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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message, skipping pings and pongs.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Broadcasts `text` on `hub` until `ws`, a client of another node, receives it (see
/// [`until_shared`]: a publish slowed past the bus's deadline stays on its node).
async fn until_heard(hub: &WsHub, ws: &mut Ws, text: &str) {
    for _ in 0..40 {
        hub.broadcast(text);
        let heard = tokio::time::timeout(Duration::from_millis(500), async {
            while next_text(ws).await != text {}
        });
        if heard.await.is_ok() {
            return;
        }
    }
    panic!("no broadcast of {text:?} reached the other node");
}

/// Publishes `data` on the topic `prices` of `hub` until Redis recorded it: while the bus takes
/// Redis for away (see [`until_shared`]), the SSE hub refuses to publish, and nothing was
/// recorded.
async fn recorded(hub: &SseHub, data: &str) -> tongxun::sse::EventId {
    let mut attempts = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..40 {
        attempts.tick().await;
        match hub.publish("prices", SseEvent::new(data)).await {
            Ok(id) => return id,
            Err(tongxun::sse::PublishError::Unavailable) => {}
            Err(e) => panic!("{e}"),
        }
    }
    panic!("Redis never recorded {data:?}");
}

/// Calls `call` until the shared state answers, at most 100 times, 100 ms apart: the first
/// calls may wait for the connection, or find a busy machine slower than the calls' deadline.
async fn answered<T>(mut call: impl AsyncFnMut() -> Result<T, tongxun::shared::SharedError>) -> T {
    let mut attempts = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..100 {
        attempts.tick().await;
        if let Ok(answer) = call().await {
            return answer;
        }
    }
    panic!("the shared state never answered");
}

/// Each test of this file runs three redis-servers and two nodes; one at a time, so that they
/// do not slow each other's publishes past the bus's deadline (40 ms), after which a broadcast
/// honestly says it reached its own node only.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Broadcasts with `emit` until a broadcast says it was shared with the other nodes and `to`
/// heard `event`: a publish that a busy machine slowed past the bus's deadline says
/// `ThisNodeOnly`, and the bus then takes Redis for away until its next heartbeat (a second at
/// most). Each attempt waits for `to` at most half a second, as `tests/broadcast.rs` does.
async fn until_shared<F, Fut>(mut emit: F, to: &mut TestClient, event: &str)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tongxun::BroadcastError>>,
{
    for _ in 0..40 {
        let sent = emit().await;
        let heard = tokio::time::timeout(Duration::from_millis(500), to.wait_for(event)).await;
        if sent.is_ok() && heard.is_ok() {
            return;
        }
    }
    panic!("no broadcast of {event:?} was shared with the other node");
}

#[tokio::test]
async fn two_nodes_on_a_redis_cluster_share_rooms_acks_websocket_publishes_and_sse_history() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start().await;
    let (a, b) = (node(&cluster).await, node(&cluster).await);

    // SSE: events published on node A are in the cluster's history, so a client resuming on
    // node B with Last-Event-ID gets those after its id, then live ones.
    let first = recorded(&a.sse, "1").await;
    for data in ["2", "3"] {
        recorded(&a.sse, data).await;
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
    recorded(&a.sse, "4").await;
    assert_eq!(resumed.next_event().await.data(), "4");
    drop(resumed);

    // Socket.IO: a broadcast to a room on node A reaches the room's client on node B.
    let mut there = client(&b).await;
    let () = within(there.emit_with_ack("join", "tea")).await.unwrap();
    let _here = client(&a).await;
    let to_tea = || a.server.io().main().to("tea").emit("news", "brewed");
    until_shared(to_tea, &mut there, "news").await;

    // An aggregated ack from node A gets the answer of node B's client: the server count
    // (PUBSUB SHARDNUMSUB, added up over the cluster's nodes) says there are two nodes. The
    // client answers every time it is asked; a request or an answer that a busy machine
    // slowed past the bus's deadline is asked again.
    let there_id = there.id().to_owned();
    let answering = tokio::spawn(async move {
        while let Ok(asked) = there.wait_for("who?").await {
            asked.ack("from b").ok();
        }
    });
    let mut answered = false;
    for _ in 0..10 {
        let answers = within(
            a.server
                .io()
                .main()
                .to("tea")
                .timeout(Duration::from_secs(2))
                .emit_with_ack::<_, String>("who?", &()),
        )
        .await;
        let Ok(answers) = answers else { continue };
        if let [(id, Ok(answer))] = &answers[..] {
            assert_eq!(
                (id.to_string(), answer.as_str()),
                (there_id.clone(), "from b")
            );
            answered = true;
            break;
        }
    }
    assert!(answered, "node B's client answered node A's request");
    answering.abort();

    // WebSocket hub: a broadcast on node A reaches a client of node B.
    let url = format!("ws://{}/ws", b.server.addr());
    let (mut ws, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    assert_eq!(within(next_text(&mut ws)).await, "welcome");
    until_heard(&a.ws, &mut ws, "across the cluster").await;

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
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start().await;
    let (a, b) = (node(&cluster).await, node(&cluster).await);
    let (mut here, mut there) = (client(&a).await, client(&b).await);
    until_shared(
        || a.server.io().main().emit("both", &()),
        &mut there,
        "both",
    )
    .await;

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

    // Back: the heartbeat reconnects, and the nodes subscribe again once the restarted masters
    // rejoined the cluster.
    cluster.restart().await;
    until_shared(
        || a.server.io().main().emit("back", &()),
        &mut there,
        "back",
    )
    .await;
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// Sharded pub/sub follows a channel to its new master: the old one drops the channel's
/// subscriptions when its slot moves, each node subscribes again on the new one (and on no
/// other, so that a message comes once), and messages cross again.
#[tokio::test]
async fn a_channel_whose_slot_moves_to_another_master_is_subscribed_there_only() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = RedisCluster::start().await;
    let (a, b) = (node(&cluster).await, node(&cluster).await);
    let url = format!("ws://{}/ws", a.server.addr());
    let (mut ws, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    assert_eq!(within(next_text(&mut ws)).await, "welcome");
    until_heard(&b.ws, &mut ws, "before").await;

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

    until_heard(&b.ws, &mut ws, "after").await;
    drop(ws);
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// The state the nodes share (`tongxun::shared`) on a cluster: its scripts run there, since its
/// keys share one hash tag, and every one of them is on one master.
#[tokio::test]
async fn two_nodes_on_a_redis_cluster_see_one_set_of_shared_names_groups_and_logs() {
    use tongxun::shared::{Claim, Holder, SharedState};

    let _one = ONE_AT_A_TIME.lock().await;
    support::init_tracing();
    let cluster = RedisCluster::start().await;
    let (a, b) = (SharedState::new(), SharedState::new());
    // Built, so that their buses carry the state; not serving.
    let built = |state: &SharedState| {
        let mut config = Config::default();
        config.redis_url = Some(cluster.url());
        config.redis_cluster = true;
        Server::builder()
            .config(config)
            .shared_state(state.clone())
            .build()
    };
    let (_a, _b) = (built(&a), built(&b));
    let claimed = answered(async || a.names("nicks").claim("ada", "s1", "Ada").await).await;
    assert_eq!(claimed, Claim::Claimed);
    let held = answered(async || b.names("nicks").claim("ada", "s2", "ADA").await).await;
    let ada = Holder {
        owner: "s1".into(),
        value: "Ada".into(),
    };
    assert_eq!(held, Claim::Held(ada));

    answered(async || a.groups("rooms").add("general", "s1", "Ada").await).await;
    answered(async || b.groups("rooms").add("general", "s2", "Grace").await).await;
    let members = answered(async || b.groups("rooms").members("general").await).await;
    let mut members: Vec<String> = members.into_iter().map(|m| m.value).collect();
    members.sort();
    assert_eq!(members, ["Ada", "Grace"]);

    let id = answered(async || a.log("history", 4).append("general", "hello").await).await;
    let kept = answered(async || b.log("history", 4).recent("general").await).await;
    assert_eq!(
        kept.iter()
            .map(|e| (e.id, e.data.as_str()))
            .collect::<Vec<_>>(),
        [(id, "hello")]
    );

    let holding: Vec<String> = cluster
        .cli_each(&["DBSIZE"])
        .into_iter()
        .filter(|n| n != "0")
        .collect();
    assert_eq!(holding.len(), 1, "one master holds the shared state");
}
