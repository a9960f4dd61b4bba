//! The test client against a real tongxun server, over both transports.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;
use tongxun::{Ack, Data, DisconnectReason, HandlerError, Server, Socket};
use tongxun_test::{ClientError, Closed, HandshakeError, TestServer, Transport};

const TRANSPORTS: [Transport; 2] = [Transport::WebSocket, Transport::Polling];

/// `/` answers `add`, echoes binary, asks the client a question and disconnects on `bye`;
/// `/admin` tells its query parameter.
fn app() -> Server {
    Server::builder()
        .namespace("/", |socket: Socket| async move {
            socket.on(
                "add",
                |Data((a, b)): Data<(i64, i64)>, ack: Ack| async move { ack.send(&(a + b)) },
            );
            socket.on(
                "upload",
                |Data((name, file)): Data<(String, Bytes)>, ack: Ack| async move {
                    let mut reversed = file.to_vec();
                    reversed.reverse();
                    ack.send(&(name, file.len(), Bytes::from(reversed)))
                },
            );
            socket.on(
                "ask",
                async |socket: Socket, ack: Ack| -> Result<(), HandlerError> {
                    let answer: String = socket.emit_with_ack("question", "your name?").await?;
                    ack.send(&answer)?;
                    Ok(())
                },
            );
            socket.on("bye", |socket: Socket| async move { socket.disconnect() });
        })
        .namespace("/admin", |socket: Socket| async move {
            let role = socket.handshake().query("role").unwrap_or_default();
            socket.emit("role", &role).ok();
        })
        .build()
}

async fn start() -> TestServer {
    TestServer::start(app()).await.expect("a loopback port")
}

#[tokio::test]
async fn acknowledgements_come_back_decoded_over_both_transports() {
    let server = start().await;
    for transport in TRANSPORTS {
        let client = server
            .client()
            .transport(transport)
            .connect()
            .await
            .unwrap();
        let sum: i64 = client.emit_with_ack("add", &(40, 2)).await.unwrap();
        assert_eq!(sum, 42, "{transport:?}");
        // Many at once: answered in any order, each to its own request.
        let client = &client;
        let asks =
            (0..20).map(|n| async move { client.emit_with_ack::<_, i64>("add", &(n, n)).await });
        let sums = futures_util::future::try_join_all(asks).await.unwrap();
        assert_eq!(
            sums,
            (0..20).map(|n| 2 * n).collect::<Vec<_>>(),
            "{transport:?}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn binary_travels_as_attachments_both_ways() {
    let server = start().await;
    for transport in TRANSPORTS {
        let client = server
            .client()
            .transport(transport)
            .connect()
            .await
            .unwrap();
        let file = Bytes::from_static(&[0, 1, 2, 255]);
        let (name, len, reversed): (String, usize, Bytes) = client
            .emit_with_ack("upload", &("a.bin", file))
            .await
            .unwrap();
        assert_eq!((name.as_str(), len), ("a.bin", 4), "{transport:?}");
        assert_eq!(
            reversed,
            Bytes::from_static(&[255, 2, 1, 0]),
            "{transport:?}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_answers_the_servers_acknowledgement_request() {
    let server = start().await;
    for transport in TRANSPORTS {
        let client = server
            .client()
            .transport(transport)
            .connect()
            .await
            .unwrap();
        client.on("question", |event| {
            assert!(event.wants_ack());
            let question: String = event.data().unwrap();
            event.ack(&format!("ada, to {question:?}")).unwrap();
        });
        let answer: String = client.emit_with_ack("ask", &()).await.unwrap();
        assert_eq!(answer, "ada, to \"your name?\"", "{transport:?}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn namespaces_see_the_query_and_unknown_ones_are_refused() {
    let server = start().await;
    for transport in TRANSPORTS {
        let mut admin = server
            .client()
            .transport(transport)
            .namespace("admin")
            .query("role", "owner")
            .connect()
            .await
            .unwrap();
        assert_eq!(admin.namespace(), "/admin");
        let role: String = admin.wait_for("role").await.unwrap().data().unwrap();
        assert_eq!(role, "owner", "{transport:?}");

        let refused = server
            .client()
            .transport(transport)
            .namespace("/nowhere")
            .connect()
            .await;
        match refused {
            Err(HandshakeError::Refused { message, .. }) => {
                assert_eq!(message, "Invalid namespace");
            }
            other => panic!("{transport:?}: expected a refusal, got {other:?}"),
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unhandled_event_is_left_to_the_clients_timeout() {
    let server = start().await;
    let client = server
        .client()
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let answer = client.emit_with_ack::<_, i64>("nobody-listens", &1).await;
    assert!(matches!(answer, Err(ClientError::Timeout)), "{answer:?}");
    // The client still works after a timeout.
    let sum: i64 = client.emit_with_ack("add", &(1, 1)).await.unwrap();
    assert_eq!(sum, 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn disconnects_are_told_apart_on_both_sides() {
    let (reasons, mut reason) = mpsc::unbounded_channel();
    let server = Server::builder()
        .namespace("/", move |socket: Socket| {
            let reasons = reasons.clone();
            async move {
                socket.on("bye", |socket: Socket| async move { socket.disconnect() });
                socket.on_disconnect(move |_: Socket, reason: DisconnectReason| {
                    let reasons = reasons.clone();
                    async move { reasons.send(reason).unwrap() }
                });
            }
        })
        .build();
    let server = TestServer::start(server).await.unwrap();
    for transport in TRANSPORTS {
        let mut client = server
            .client()
            .transport(transport)
            .connect()
            .await
            .unwrap();
        client.emit("bye", &()).unwrap();
        assert_eq!(client.closed().await.unwrap(), Closed::ServerDisconnect);
        assert!(!client.connected());
        assert!(matches!(
            client.emit("add", &()),
            Err(ClientError::Disconnected)
        ));
        assert_eq!(
            reason.recv().await,
            Some(DisconnectReason::ServerNSDisconnect)
        );

        let client = server
            .client()
            .transport(transport)
            .connect()
            .await
            .unwrap();
        client.disconnect().await;
        assert_eq!(
            reason.recv().await,
            Some(DisconnectReason::ClientNSDisconnect)
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_of_other_names_wait_in_order_for_later_reads() {
    let server = Server::builder()
        .namespace("/", |socket: Socket| async move {
            for n in 0..3 {
                socket.emit("tick", &n).ok();
            }
            socket.emit("ready", &json!({ "ticks": 3 })).ok();
        })
        .build();
    let server = TestServer::start(server).await.unwrap();
    let mut client = server.connect("/").await.unwrap();
    let ready = client.wait_for("ready").await.unwrap();
    assert_eq!(ready.args(), [json!({ "ticks": 3 })]);
    assert!(!ready.wants_ack());
    assert!(matches!(ready.ack(&()), Err(ClientError::NoAckRequested)));
    for n in 0..3 {
        let tick = client.next_event().await.unwrap();
        assert_eq!((tick.name(), tick.data::<i64>().unwrap()), ("tick", n));
    }
    server.shutdown().await.unwrap();
}
