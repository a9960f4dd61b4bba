//! Broadcasting from Rust: selections, aggregated acks, and slow consumers, through the test
//! kit's Socket.IO client (and one raw client that stops reading).

mod support;

use std::time::Duration;

use serde_json::json;
use support::within;
use tokio::sync::mpsc;
use tongxun::{AckError, Config, Server, Socket};
use tongxun_test::{TestClient, TestServer};

async fn start(server: Server) -> TestServer {
    support::init_tracing();
    TestServer::start(server).await.expect("a loopback port")
}

async fn client(server: &TestServer) -> TestClient {
    server.connect("/").await.expect("connected")
}

fn rooms_server(config: Config) -> Server {
    Server::builder()
        .config(config)
        .namespace("/", |socket: Socket| async move {
            socket.on("join", |socket: Socket, tongxun::Data(room): tongxun::Data<String>, ack: tongxun::Ack| async move {
                match socket.join(room) {
                    Ok(()) => ack.send(&()),
                    Err(e) => ack.send(&serde_json::json!({ "error": e.to_string() })),
                }
            });
        })
        .build()
}

#[tokio::test]
async fn io_of_an_unknown_namespace_is_none() {
    let server = start(rooms_server(Config::default())).await;
    assert!(server.io().of("/nowhere").is_none());
    assert!(server.io().of("/").is_some());
}

#[tokio::test]
async fn aggregated_acks_report_each_socket_and_time_out_the_silent_one() {
    let server = start(rooms_server(Config::default())).await;
    let mut answering = Vec::new();
    for _ in 0..3 {
        answering.push(client(&server).await);
    }
    let mut silent = client(&server).await;
    let io = server.io().clone();
    let asked = tokio::spawn(async move {
        io.main()
            .timeout(Duration::from_millis(300))
            .emit_with_ack::<_, u32>("count?", &())
            .await
            .unwrap()
    });
    for (n, client) in answering.iter_mut().enumerate() {
        let asked = client.wait_for("count?").await.unwrap();
        assert!(asked.args().is_empty(), "() is no argument");
        asked.ack(&n).unwrap();
    }
    silent.wait_for("count?").await.unwrap();
    let mut answers = within(asked).await.unwrap();
    answers.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(answers.len(), 4);
    for (id, answer) in answers {
        match answering.iter().position(|c| c.id() == id.to_string()) {
            Some(n) => assert_eq!(answer.unwrap(), n as u32),
            None => {
                assert_eq!(id.to_string(), silent.id());
                assert!(matches!(answer, Err(AckError::Timeout)));
            }
        }
    }
}

#[tokio::test]
async fn sockets_of_a_room_expose_their_stores() {
    let server = start(rooms_server(Config::default())).await;
    let a = client(&server).await;
    let b = client(&server).await;
    let _c = client(&server).await;
    let () = a.emit_with_ack("join", "tea").await.unwrap();
    let () = b.emit_with_ack("join", "tea").await.unwrap();
    for socket in server.io().main().sockets() {
        socket.store().set("id", &socket.id().to_string()).unwrap();
    }
    let mut ids: Vec<String> = server
        .io()
        .main()
        .to("tea")
        .sockets()
        .iter()
        .map(|s| s.store().get("id").unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![a.id().to_owned(), b.id().to_owned()];
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_client_that_stops_reading_misses_counted_broadcasts_while_others_get_all() {
    let mut config = Config::default();
    config.max_buffer_size = 16;
    let server = start(rooms_server(config)).await;
    let mut fast = client(&server).await;
    // A raw client that never reads again (the kit's client always reads).
    let stalled = support::Client::connect(server.addr(), "/", None)
        .await
        .unwrap();

    let (progress_tx, mut progress) = mpsc::unbounded_channel::<u64>();
    let reader = tokio::spawn(async move {
        for expected in 0..300u64 {
            let blob = fast.wait_for("blob").await.unwrap();
            assert_eq!(blob.args()[0], json!(expected), "in order, none missing");
            progress_tx.send(expected).unwrap();
        }
    });
    let payload = "x".repeat(32 * 1024);
    for n in 0..300u64 {
        server
            .io()
            .main()
            .emit("blob", &(n, &payload))
            .await
            .unwrap();
        // Lockstep with the reading client, so that only the stalled one can fall behind.
        assert_eq!(within(progress.recv()).await, Some(n));
    }
    within(reader).await.unwrap();
    assert!(
        server.io().dropped_deliveries() > 0,
        "the stalled client's misses are counted"
    );
    drop(stalled);
}

/// Two nodes on one Redis: a broadcast says whether the other nodes were told.
#[cfg(feature = "redis")]
#[tokio::test]
async fn while_redis_is_away_a_broadcast_reaches_this_nodes_sockets_and_says_that_it_reached_no_other()
 {
    let redis = support::redis::RedisServer::start().await;
    let node = |url: String| {
        let mut config = Config::default();
        config.redis_url = Some(url);
        start(rooms_server(config))
    };
    let (a, b) = (node(redis.url()).await, node(redis.url()).await);
    let (mut here, mut there) = (client(&a).await, client(&b).await);

    a.io().main().emit("news", "both").await.unwrap();
    assert_eq!(
        there
            .wait_for("news")
            .await
            .unwrap()
            .data::<String>()
            .unwrap(),
        "both"
    );
    here.wait_for("news").await.unwrap();

    let port = redis.port;
    drop(redis);
    let away = a.io().main().emit("news", "only here").await;
    assert!(
        matches!(away, Err(tongxun::BroadcastError::ThisNodeOnly)),
        "{away:?}"
    );
    assert_eq!(
        here.wait_for("news")
            .await
            .unwrap()
            .data::<String>()
            .unwrap(),
        "only here"
    );
    // Known away now: told at once, every time.
    for _ in 0..3 {
        let away = a.io().main().emit("ignored", &()).await;
        assert!(
            matches!(away, Err(tongxun::BroadcastError::ThisNodeOnly)),
            "{away:?}"
        );
    }

    // Back: the heartbeat reconnects; a broadcast that returns Ok reached the other node.
    let _redis = support::redis::RedisServer::on(port).await;
    // Each attempt waits for the other node's client to hear it, at most half a second, as
    // the JS cluster test does.
    let mut back = false;
    for _ in 0..40 {
        let sent = a.io().main().emit("back", &()).await;
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
    assert!(back, "cross-node delivery resumed once Redis was back");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
