//! Broadcasting from Rust: selections, aggregated acks, and slow consumers.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Client, TestServer, within};
use tokio::sync::mpsc;
use tongxun::{AckError, Config, Server, Socket};

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
    let server = TestServer::start(rooms_server(Config::default())).await;
    assert!(server.io.of("/nowhere").is_none());
    assert!(server.io.of("/").is_some());
}

#[tokio::test]
async fn aggregated_acks_report_each_socket_and_time_out_the_silent_one() {
    let server = TestServer::start(rooms_server(Config::default())).await;
    let mut answering = Vec::new();
    for _ in 0..3 {
        answering.push(server.client("/").await);
    }
    let mut silent = server.client("/").await;
    let io = server.io.clone();
    let asked = tokio::spawn(async move {
        io.main()
            .timeout(Duration::from_millis(300))
            .emit_with_ack::<_, u32>("count?", &())
            .await
            .unwrap()
    });
    for (n, client) in answering.iter_mut().enumerate() {
        let (args, id) = client.expect_event("count?").await;
        assert!(args.is_empty(), "() is no argument");
        client.ack(id.unwrap(), json!([n])).await;
    }
    silent.expect_event("count?").await;
    let mut answers = within(asked).await.unwrap();
    answers.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(answers.len(), 4);
    for (id, answer) in answers {
        match answering.iter().position(|c| c.sid == id.to_string()) {
            Some(n) => assert_eq!(answer.unwrap(), n as u32),
            None => {
                assert_eq!(id.to_string(), silent.sid);
                assert!(matches!(answer, Err(AckError::Timeout)));
            }
        }
    }
}

#[tokio::test]
async fn sockets_of_a_room_expose_their_stores() {
    let server = TestServer::start(rooms_server(Config::default())).await;
    let mut a = server.client("/").await;
    let mut b = server.client("/").await;
    let _c = server.client("/").await;
    a.emit_with_ack("join", json!(["tea"])).await;
    b.emit_with_ack("join", json!(["tea"])).await;
    for socket in server.io.main().sockets() {
        socket.store().set("id", &socket.id().to_string()).unwrap();
    }
    let mut ids: Vec<String> = server
        .io
        .main()
        .to("tea")
        .sockets()
        .iter()
        .map(|s| s.store().get("id").unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![a.sid.clone(), b.sid.clone()];
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_client_that_stops_reading_misses_counted_broadcasts_while_others_get_all() {
    let mut config = Config::default();
    config.max_buffer_size = 16;
    let server = TestServer::start(rooms_server(config)).await;
    let mut fast = server.client("/").await;
    let stalled = Client::connect(server.addr, "/", None).await.unwrap(); // never reads again

    let (progress_tx, mut progress) = mpsc::unbounded_channel::<u64>();
    let reader = tokio::spawn(async move {
        for expected in 0..300u64 {
            let (args, _) = fast.expect_event("blob").await;
            assert_eq!(args[0], json!(expected), "in order, none missing");
            progress_tx.send(expected).unwrap();
        }
    });
    let payload = "x".repeat(32 * 1024);
    for n in 0..300u64 {
        server.io.main().emit("blob", &(n, &payload)).await.unwrap();
        // Lockstep with the reading client, so that only the stalled one can fall behind.
        assert_eq!(within(progress.recv()).await, Some(n));
    }
    within(reader).await.unwrap();
    assert!(
        server.io.dropped_deliveries() > 0,
        "the stalled client's misses are counted"
    );
    drop(stalled);
}
