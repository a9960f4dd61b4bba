//! Connecting: namespaces, auth, per-socket rooms, disconnects and graceful shutdown.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use support::{Client, Packet, TestServer, within};
use tokio::sync::mpsc;
use tongxun::{Ack, Config, ConnectError, DisconnectReason, Handshake, Namespace, Server, Socket};

#[tokio::test]
async fn main_namespace_exists_without_a_handler() {
    let server = TestServer::start(Server::builder().build()).await;
    let client = server.client("/").await;
    assert!(!client.sid.is_empty());
}

#[tokio::test]
async fn main_namespace_can_be_switched_off() {
    let mut config = Config::default();
    config.default_namespace = false;
    let server = TestServer::start(Server::builder().config(config).build()).await;
    let refused = Client::connect(server.addr, "/", None)
        .await
        .err()
        .expect("refused");
    assert_eq!(refused, json!({ "message": "Invalid namespace" }));
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
    let server = TestServer::start(Server::builder().namespace_with("/secure", ns).build()).await;

    let refused = Client::connect(server.addr, "/secure", Some(json!({ "token": "bad" }))).await;
    assert_eq!(refused.err(), Some(json!({ "message": "invalid token" })));
    let refused = Client::connect(server.addr, "/secure", None).await;
    assert_eq!(refused.err(), Some(json!({ "message": "missing token" })));

    let mut client = Client::connect(server.addr, "/secure", Some(json!({ "token": "good" })))
        .await
        .unwrap();
    assert_eq!(
        client.emit_with_ack("user", json!([])).await,
        vec![json!("user-of-/secure")]
    );
    // The refused sockets' stores are gone; only the connected one remains.
    assert_eq!(server.io.live_stores(), 1);
}

#[tokio::test]
async fn dynamic_namespaces_tell_the_concrete_path() {
    let ns = Namespace::new(|socket: Socket| async move {
        socket.on("where", |socket: Socket, ack: Ack| async move {
            ack.send(socket.ns())
        });
    });
    let server = TestServer::start(
        Server::builder()
            .dynamic_namespace("/tenant/{id}", ns)
            .build(),
    )
    .await;
    let mut a = server.client("/tenant/7").await;
    let mut b = server.client("/tenant/acme").await;
    assert_eq!(
        a.emit_with_ack("where", json!([])).await,
        vec![json!("/tenant/7")]
    );
    assert_eq!(
        b.emit_with_ack("where", json!([])).await,
        vec![json!("/tenant/acme")]
    );
}

#[tokio::test]
async fn every_socket_is_in_a_room_named_by_its_id() {
    let server = TestServer::start(
        Server::builder()
            .namespace("/", |socket: Socket| async move {
                socket.on("rooms", |socket: Socket, ack: Ack| async move {
                    ack.send(&socket.rooms())
                });
            })
            .build(),
    )
    .await;
    let mut client = server.client("/").await;
    let rooms = client.emit_with_ack("rooms", json!([])).await;
    assert_eq!(rooms, vec![json!([client.sid.clone()])]);
}

#[tokio::test]
async fn disconnect_listeners_see_the_reason_and_the_store_which_is_freed_after() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = TestServer::start(
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
        server.client("/").await.close().await;
        let (nick, reason, rooms) = within(rx.recv()).await.unwrap();
        assert_eq!(nick, "ada");
        assert_eq!(reason, DisconnectReason::ClientNSDisconnect);
        assert_eq!(rooms, 1, "rooms are still there in the disconnect listener");
    }
    // Freed once the disconnect listeners returned and socketioxide let go of the socket.
    within(async {
        while server.io.live_stores() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn stores_return_to_zero_after_many_connect_disconnect_cycles() {
    let server = TestServer::start(
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
        let mut client = server.client("/").await;
        client.emit("ping", json!([])).await;
        client.expect_event("pong").await;
        client.close().await;
    }
    within(async {
        while server.io.live_stores() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn server_side_disconnect_sends_a_disconnect_packet() {
    let server = TestServer::start(
        Server::builder()
            .namespace("/", |socket: Socket| async move {
                socket.on("bye", |socket: Socket| async move { socket.disconnect() });
            })
            .build(),
    )
    .await;
    let mut client = server.client("/").await;
    client.emit("bye", json!([])).await;
    assert_eq!(client.recv().await, Some(Packet::Disconnect));
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_handlers_finish_and_closes_clients() {
    let finished = Arc::new(AtomicBool::new(false));
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let flag = finished.clone();
    let server = TestServer::start(
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
    let mut client = server.client("/").await;
    client.emit("work", json!([])).await;
    within(started.recv()).await.unwrap();
    server.shutdown().await;
    assert!(
        finished.load(Ordering::SeqCst),
        "the in-flight handler finished before serve returned"
    );
    assert_eq!(
        client.recv().await,
        None,
        "the client's connection is closed"
    );
}
