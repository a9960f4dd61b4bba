//! Connecting: namespaces, auth, per-socket rooms, disconnects and graceful shutdown, through
//! the test kit's Socket.IO client.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use support::within;
use tokio::sync::mpsc;
use tongxun::{Ack, Config, ConnectError, DisconnectReason, Handshake, Namespace, Server, Socket};
use tongxun_test::{Closed, HandshakeError, TestClient, TestServer};

async fn start(server: Server) -> TestServer {
    support::init_tracing();
    TestServer::start(server).await.expect("a loopback port")
}

async fn client(server: &TestServer, ns: &str) -> TestClient {
    server.connect(ns).await.expect("connected")
}

/// The `connect_error` message and data of a refused connection.
async fn refusal(server: &TestServer, ns: &str, auth: Option<serde_json::Value>) -> String {
    let mut builder = server.client().namespace(ns);
    if let Some(auth) = auth {
        builder = builder.auth(auth);
    }
    match builder.connect().await {
        Err(HandshakeError::Refused { message, data }) => {
            assert_eq!(data, None);
            message
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn main_namespace_exists_without_a_handler() {
    let server = start(Server::builder().build()).await;
    let client = client(&server, "/").await;
    assert!(!client.id().is_empty());
}

#[tokio::test]
async fn main_namespace_can_be_switched_off() {
    let mut config = Config::default();
    config.default_namespace = false;
    let server = start(Server::builder().config(config).build()).await;
    assert_eq!(refusal(&server, "/", None).await, "Invalid namespace");
}

async fn check(handshake: Handshake) -> Result<(), ConnectError> {
    #[derive(serde::Deserialize)]
    struct Auth {
        token: String,
    }
    let auth: Auth = handshake
        .auth()
        .map_err(|_| ConnectError::new("missing token"))?;
    if auth.token != "good" {
        return Err(ConnectError::new("invalid token"));
    }
    handshake
        .store()
        .set("user", &format!("user-of-{}", handshake.ns()))
        .unwrap();
    Ok(())
}

#[tokio::test]
async fn auth_refuses_with_its_message_and_passes_what_it_learnt() {
    let ns = Namespace::new(|socket: Socket| async move {
        socket.on("user", |socket: Socket, ack: Ack| async move {
            ack.send(&socket.store().get::<String>("user").unwrap())
        });
    })
    .auth(check);
    let server = start(Server::builder().namespace_with("/secure", ns).build()).await;

    let bad = Some(json!({ "token": "bad" }));
    assert_eq!(refusal(&server, "/secure", bad).await, "invalid token");
    assert_eq!(refusal(&server, "/secure", None).await, "missing token");

    let client = server
        .client()
        .namespace("/secure")
        .auth(json!({ "token": "good" }))
        .connect()
        .await
        .unwrap();
    let user: String = client.emit_with_ack("user", &()).await.unwrap();
    assert_eq!(user, "user-of-/secure");
    // The refused sockets' stores are gone; only the connected one remains.
    assert_eq!(server.io().live_stores(), 1);
}

#[tokio::test]
async fn dynamic_namespaces_tell_the_concrete_path() {
    let ns = Namespace::new(|socket: Socket| async move {
        socket.on("where", |socket: Socket, ack: Ack| async move {
            ack.send(socket.ns())
        });
    });
    let server = start(
        Server::builder()
            .dynamic_namespace("/tenant/{id}", ns)
            .build(),
    )
    .await;
    for path in ["/tenant/7", "/tenant/acme"] {
        let client = client(&server, path).await;
        let answer: String = client.emit_with_ack("where", &()).await.unwrap();
        assert_eq!(answer, path);
    }
}

#[tokio::test]
async fn every_socket_is_in_a_room_named_by_its_id() {
    let server = start(
        Server::builder()
            .namespace("/", |socket: Socket| async move {
                socket.on("rooms", |socket: Socket, ack: Ack| async move {
                    ack.send(&socket.rooms())
                });
            })
            .build(),
    )
    .await;
    let client = client(&server, "/").await;
    let rooms: Vec<String> = client.emit_with_ack("rooms", &()).await.unwrap();
    assert_eq!(rooms, [client.id()]);
}

#[tokio::test]
async fn disconnect_listeners_see_the_reason_and_the_store_which_is_freed_after() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = start(
        Server::builder()
            .namespace("/", move |socket: Socket| {
                let tx = tx.clone();
                async move {
                    socket.store().set("nick", "ada").unwrap();
                    socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| {
                        let tx = tx.clone();
                        async move {
                            let nick: String = socket.store().get("nick").unwrap();
                            tx.send((nick, reason, socket.rooms().len())).unwrap();
                        }
                    });
                }
            })
            .build(),
    )
    .await;
    for _ in 0..3 {
        client(&server, "/").await.disconnect().await;
        let (nick, reason, rooms) = within(rx.recv()).await.unwrap();
        assert_eq!(nick, "ada");
        assert_eq!(reason, DisconnectReason::ClientNSDisconnect);
        assert_eq!(rooms, 1, "rooms are still there in the disconnect listener");
    }
    // Freed once the disconnect listeners returned and socketioxide let go of the socket.
    within(async {
        while server.io().live_stores() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn stores_return_to_zero_after_many_connect_disconnect_cycles() {
    let server = start(
        Server::builder()
            .namespace("/", |socket: Socket| async move {
                socket.store().set("blob", &vec![0u8; 256]).unwrap();
                // A listener that captures its own socket must not keep it alive.
                let me = socket.clone();
                socket.on("ping", move || {
                    let me = me.clone();
                    async move { me.emit("pong", &()) }
                });
            })
            .build(),
    )
    .await;
    for _ in 0..200 {
        let mut client = client(&server, "/").await;
        client.emit("ping", &()).unwrap();
        client.wait_for("pong").await.unwrap();
        client.disconnect().await;
    }
    within(async {
        while server.io().live_stores() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn server_side_disconnect_sends_a_disconnect_packet() {
    let server = start(
        Server::builder()
            .namespace("/", |socket: Socket| async move {
                socket.on("bye", |socket: Socket| async move { socket.disconnect() });
            })
            .build(),
    )
    .await;
    let mut client = client(&server, "/").await;
    client.emit("bye", &()).unwrap();
    assert_eq!(client.closed().await.unwrap(), Closed::ServerDisconnect);
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_handlers_finish_and_closes_clients() {
    let finished = Arc::new(AtomicBool::new(false));
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let flag = finished.clone();
    let server = start(
        Server::builder()
            .namespace("/", move |socket: Socket| {
                let (flag, started_tx) = (flag.clone(), started_tx.clone());
                async move {
                    socket.on("work", move || {
                        let (flag, started_tx) = (flag.clone(), started_tx.clone());
                        async move {
                            started_tx.send(()).unwrap();
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            flag.store(true, Ordering::SeqCst);
                        }
                    });
                }
            })
            .build(),
    )
    .await;
    let mut client = client(&server, "/").await;
    client.emit("work", &()).unwrap();
    within(started.recv()).await.unwrap();
    server.shutdown().await.unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "the in-flight handler finished before serve returned"
    );
    assert_eq!(
        client.closed().await.unwrap(),
        Closed::TransportClose,
        "the client's connection is closed"
    );
}
