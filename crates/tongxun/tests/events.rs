//! Events and acknowledgements: listeners, ordering, acks both ways and failures, through the
//! test kit's Socket.IO client; the cases that pin ack ids on the wire use the raw client.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use support::{Packet, within};
use tokio::sync::{Notify, mpsc};
use tongxun::{Ack, AckError, Config, Data, Event, Namespace, Server, Socket};
use tongxun_test::{TestClient, TestServer};

async fn start(server: Server) -> TestServer {
    support::init_tracing();
    TestServer::start(server).await.expect("a loopback port")
}

async fn client(server: &TestServer) -> TestClient {
    server.connect("/").await.expect("connected")
}

/// Emits `event` with `data` and returns the acknowledgement's first argument.
async fn ask<T: Serialize + ?Sized>(client: &TestClient, event: &str, data: &T) -> Value {
    client.emit_with_ack(event, data).await.expect("an answer")
}

fn server_with<F, Fut>(on_connect: F) -> Server
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Server::builder().namespace("/", on_connect).build()
}

#[tokio::test]
async fn a_burst_of_events_is_handled_in_arrival_order_while_handlers_await() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = start(server_with(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on("n", move |Data(n): Data<u64>| {
                let tx = tx.clone();
                async move {
                    // Await a varying amount so that any reordering would show.
                    for _ in 0..(n % 5) {
                        tokio::task::yield_now().await;
                    }
                    tokio::time::sleep(Duration::from_micros(n % 3 * 100)).await;
                    tx.send(n).unwrap();
                }
            });
        }
    }))
    .await;
    let client = client(&server).await;
    for n in 0..1000u64 {
        client.emit("n", &n).unwrap();
    }
    let mut received = Vec::new();
    while received.len() < 1000 {
        received.push(within(rx.recv()).await.unwrap());
    }
    assert_eq!(received, (0..1000).collect::<Vec<_>>());
}

/// Most events are handled on the receive path itself, with no task; one whose handler waits
/// moves on to a task, and the events behind it queue. A handler that yields wakes the waker of
/// the poll it was given; that the inline poll's no-op waker loses the wake-up must not matter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_that_finish_at_once_and_handlers_that_wait_keep_arrival_order() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = start(server_with(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on("n", move |Data(n): Data<u64>, ack: Ack| {
                let tx = tx.clone();
                async move {
                    match n % 4 {
                        0 | 1 => {}
                        2 => tokio::task::yield_now().await,
                        _ => tokio::time::sleep(Duration::from_micros(200)).await,
                    }
                    tx.send(n).unwrap();
                    ack.send(&n)
                }
            });
        }
    }))
    .await;
    let client = client(&server).await;
    for n in 0..2000u64 {
        client.emit("n", &n).unwrap();
    }
    // The last one asks for an acknowledgement: it is answered after every other was handled.
    assert_eq!(ask(&client, "n", &2000u64).await, json!(2000));
    let mut received = Vec::new();
    while received.len() < 2001 {
        received.push(within(rx.recv()).await.unwrap());
    }
    assert_eq!(received, (0..=2000).collect::<Vec<_>>());
}

#[tokio::test]
async fn events_sent_while_the_connect_handler_awaits_are_not_lost() {
    let server = start(server_with(|socket: Socket| async move {
        tokio::time::sleep(Duration::from_millis(100)).await; // e.g. a database lookup
        socket.on("early", |ack: Ack| async move { ack.send("seen") });
    }))
    .await;
    let client = client(&server).await;
    assert_eq!(ask(&client, "early", &()).await, json!("seen"));
}

#[tokio::test]
async fn a_parallel_namespace_runs_a_later_event_while_an_earlier_one_waits() {
    let gate = Arc::new(Notify::new());
    let ns = Namespace::new(move |socket: Socket| {
        let gate = gate.clone();
        async move {
            let waiting = gate.clone();
            socket.on("slow", move |ack: Ack| {
                let waiting = waiting.clone();
                async move {
                    waiting.notified().await; // released only by "fast"
                    ack.send("slow done")
                }
            });
            let release = gate.clone();
            socket.on("fast", move |ack: Ack| {
                let release = release.clone();
                async move {
                    release.notify_one();
                    ack.send("fast done")
                }
            });
        }
    })
    .parallel();
    let server =
        support::TestServer::start(Server::builder().namespace_with("/", ns).build()).await;
    let mut client = server.client("/").await;
    client.send_raw(r#"420["slow"]"#.to_owned()).await;
    client.send_raw(r#"421["fast"]"#.to_owned()).await;
    let mut acks = Vec::new();
    while acks.len() < 2 {
        if let Some(Packet::Ack { id, args }) = client.recv().await {
            acks.push((id, args));
        }
    }
    assert_eq!(
        acks,
        vec![(1, vec![json!("fast done")]), (0, vec![json!("slow done")])]
    );
}

#[tokio::test]
async fn several_listeners_once_off_and_the_catch_all() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let server = start(server_with(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            let (a, b, c, any) = (tx.clone(), tx.clone(), tx.clone(), tx.clone());
            socket.on("e", move || {
                let a = a.clone();
                async move { a.send("first".into()).unwrap() }
            });
            let second = socket.on("e", move || {
                let b = b.clone();
                async move { b.send("second".into()).unwrap() }
            });
            socket.once("e", move || {
                let c = c.clone();
                async move { c.send("once".into()).unwrap() }
            });
            socket.on_any(move |Event(name): Event| {
                let any = any.clone();
                async move { any.send(format!("any:{name}")).unwrap() }
            });
            assert_eq!(socket.listener_count("e"), 3);
            socket.on("drop-second", move |socket: Socket, ack: Ack| async move {
                ack.send(&socket.off_listener(second))
            });
            socket.on("drop-all", |socket: Socket, ack: Ack| async move {
                ack.send(&socket.off("e"))
            });
        }
    }))
    .await;
    let client = client(&server).await;
    let mut next = async || within(rx.recv()).await.unwrap();

    client.emit("e", &()).unwrap();
    assert_eq!(
        [next().await, next().await, next().await, next().await],
        ["any:e", "first", "second", "once"]
    );
    client.emit("e", &()).unwrap();
    assert_eq!(
        [next().await, next().await, next().await],
        ["any:e", "first", "second"]
    );

    assert_eq!(ask(&client, "drop-second", &()).await, json!(true));
    assert_eq!(next().await, "any:drop-second");
    client.emit("e", &()).unwrap();
    assert_eq!([next().await, next().await], ["any:e", "first"]);

    assert_eq!(ask(&client, "drop-all", &()).await, json!(1));
    assert_eq!(next().await, "any:drop-all");
    client.emit("e", &()).unwrap();
    client.emit("marker", &()).unwrap();
    assert_eq!(
        [next().await, next().await],
        ["any:e", "any:marker"],
        "no listener of e is left"
    );
}

#[tokio::test]
async fn server_acks_resolve_time_out_fail_to_decode_and_end_on_disconnect() {
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<String, AckError>>();
    let server = start(server_with(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on("ask", move |socket: Socket, Data(timeout_ms): Data<u64>| {
                let tx = tx.clone();
                async move {
                    let answer = socket
                        .timeout(Duration::from_millis(timeout_ms))
                        .emit_with_ack::<_, String>("q", &"?")
                        .await;
                    tx.send(answer).unwrap();
                }
            });
        }
    }))
    .await;
    let mut client = client(&server).await;

    client.emit("ask", &5000).unwrap();
    let question = client.wait_for("q").await.unwrap();
    assert_eq!(question.args(), [json!("?")]);
    question.ack("forty-two").unwrap();
    assert_eq!(within(rx.recv()).await.unwrap().unwrap(), "forty-two");

    client.emit("ask", &5000).unwrap();
    let question = client.wait_for("q").await.unwrap();
    question.ack(&json!({ "not": "a string" })).unwrap();
    assert!(matches!(
        within(rx.recv()).await.unwrap(),
        Err(AckError::Decode(_))
    ));

    client.emit("ask", &50).unwrap();
    client.wait_for("q").await.unwrap(); // never answered
    assert!(matches!(
        within(rx.recv()).await.unwrap(),
        Err(AckError::Timeout)
    ));

    client.emit("ask", &5000).unwrap();
    client.wait_for("q").await.unwrap();
    client.disconnect().await;
    let outcome = within(rx.recv()).await.unwrap();
    assert!(
        matches!(outcome, Err(AckError::Disconnected)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn failures_answer_the_ack_and_leave_the_socket_usable() {
    let server = start(server_with(|socket: Socket| async move {
        socket.on("typed", |Data((a, b)): Data<(u8, String)>, ack: Ack| async move { ack.send(&format!("{a}{b}")) });
        socket.on("boom", |Data(n): Data<u32>| async move {
            assert!(n > 100, "n too small");
        });
        socket.on("fail", || async { Err::<(), _>("refused") });
        socket.on("twice", |ack: Ack| async move {
            ack.clone().send("one").unwrap();
            let again = ack.send("two").unwrap_err();
            assert!(matches!(again, tongxun::SendError::AlreadyAcknowledged));
        });
    }))
    .await;
    let client = client(&server).await;
    let wrong = ask(&client, "typed", &(300, "x")).await;
    assert!(
        wrong["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid payload for event \"typed\""),
        "{wrong:?}"
    );
    assert_eq!(ask(&client, "typed", &(3, "x")).await, json!("3x"));
    assert_eq!(
        ask(&client, "boom", &1).await,
        json!({ "error": "internal server error" })
    );
    assert_eq!(
        ask(&client, "fail", &()).await,
        json!({ "error": "refused" })
    );
    assert_eq!(ask(&client, "twice", &()).await, json!("one"));
    assert_eq!(ask(&client, "typed", &(4, "y")).await, json!("4y"));
}

#[tokio::test]
async fn too_many_pending_events_are_refused_with_an_error_ack() {
    let mut config = Config::default();
    config.max_pending_events = 4;
    let gate = Arc::new(Notify::new());
    let waiting = gate.clone();
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let server = support::TestServer::start(
        Server::builder()
            .config(config)
            .namespace("/", move |socket: Socket| {
                let (waiting, started_tx) = (waiting.clone(), started_tx.clone());
                async move {
                    socket.on("block", move || {
                        let (waiting, started_tx) = (waiting.clone(), started_tx.clone());
                        async move {
                            started_tx.send(()).unwrap();
                            waiting.notified().await
                        }
                    });
                    socket.on("queued", |ack: Ack| async move { ack.send("handled") });
                }
            })
            .build(),
    )
    .await;
    let mut client = server.client("/").await;
    client.send_raw(r#"42["block"]"#.to_owned()).await;
    within(started.recv()).await.unwrap();
    // The first event is running; the next four wait; the fifth and sixth are refused.
    for id in 0..6 {
        client.send_raw(format!(r#"42{id}["queued"]"#)).await;
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        if let Some(Packet::Ack { id, args }) = client.recv().await {
            answers.push((id, args));
        }
    }
    // The refused ones are answered at once; the four queued ones wait for the blocker.
    assert_eq!(
        answers,
        vec![
            (4, vec![json!({ "error": "too many pending events" })]),
            (5, vec![json!({ "error": "too many pending events" })])
        ]
    );
    gate.notify_one();
    for id in 0..4 {
        assert_eq!(
            client.recv().await,
            Some(Packet::Ack {
                id,
                args: vec![json!("handled")]
            })
        );
    }
}

fn dispatched_server<F, Fut>(dispatch: tongxun::Dispatch, on_connect: F) -> Server
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Server::builder()
        .namespace_with("/", Namespace::new(on_connect).dispatch(dispatch))
        .build()
}

#[tokio::test]
async fn ordered_start_lets_a_waiting_handler_be_released_by_a_later_event_of_its_socket() {
    let gate = Arc::new(Notify::new());
    let (tx, mut starts) = mpsc::unbounded_channel();
    let server = support::TestServer::start(dispatched_server(
        tongxun::Dispatch::OrderedStart,
        move |socket: Socket| {
            let (gate, tx) = (gate.clone(), tx.clone());
            async move {
                let (wait_gate, wait_tx) = (gate.clone(), tx.clone());
                socket.on("wait", move |ack: Ack| {
                    let (gate, tx) = (wait_gate.clone(), wait_tx.clone());
                    async move {
                        tx.send("wait").unwrap();
                        gate.notified().await;
                        ack.send("released")
                    }
                });
                socket.on("release", move |ack: Ack| {
                    let (gate, tx) = (gate.clone(), tx.clone());
                    async move {
                        tx.send("release").unwrap();
                        gate.notify_one();
                        ack.send("done")
                    }
                });
            }
        },
    ))
    .await;
    let mut client = server.client("/").await;
    client.send_raw(r#"420["wait"]"#.to_owned()).await;
    client.send_raw(r#"421["release"]"#.to_owned()).await;
    // Under `Ordered` the second event would wait for the first, which waits for it.
    let mut answers = Vec::new();
    while answers.len() < 2 {
        if let Some(Packet::Ack { id, args }) = within(client.recv()).await {
            answers.push((id, args));
        }
    }
    answers.sort_by_key(|(id, _)| *id);
    assert_eq!(
        answers,
        vec![(0, vec![json!("released")]), (1, vec![json!("done")])]
    );
    assert_eq!(starts.recv().await, Some("wait"));
    assert_eq!(starts.recv().await, Some("release"));
    server.shutdown().await;
}

#[tokio::test]
async fn ordered_start_starts_a_burst_of_handlers_in_arrival_order() {
    let (tx, mut starts) = mpsc::unbounded_channel();
    let server = start(dispatched_server(
        tongxun::Dispatch::OrderedStart,
        move |socket: Socket| {
            let tx = tx.clone();
            async move {
                socket.on("n", move |Data(n): Data<u64>| {
                    let tx = tx.clone();
                    async move {
                        // Recorded before the first await: the part that runs in order.
                        tx.send(n).unwrap();
                        tokio::time::sleep(Duration::from_millis((n * 7) % 5)).await;
                    }
                });
            }
        },
    ))
    .await;
    let client = client(&server).await;
    for n in 0..300 {
        client.emit("n", &n).unwrap();
    }
    for n in 0..300 {
        assert_eq!(within(starts.recv()).await, Some(n));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_ordered_handler_awaiting_its_own_client_s_ack_does_not_deadlock() {
    let server = support::TestServer::start(dispatched_server(
        tongxun::Dispatch::Ordered,
        |socket: Socket| async move {
            socket.on(
                "ask",
                async |socket: Socket, ack: Ack| -> Result<(), tongxun::HandlerError> {
                    let answer: String = socket.emit_with_ack("question", &()).await?;
                    ack.send(&answer)?;
                    Ok(())
                },
            );
        },
    ))
    .await;
    let mut client = server.client("/").await;
    client.send_raw(r#"427["ask"]"#.to_owned()).await;
    let (_, ack) = client.expect_event("question").await;
    client
        .ack(ack.expect("an ack id"), json!(["forty-two"]))
        .await;
    loop {
        if let Some(Packet::Ack { id: 7, args }) = within(client.recv()).await {
            assert_eq!(args, vec![json!("forty-two")]);
            break;
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn middleware_refuses_an_event_before_any_listener_even_a_once_listener() {
    let server = start(server_with(|socket: Socket| async move {
        socket.middleware(|Event(name): Event, Data(n): Data<i64>| async move {
            if n < 0 {
                return Err(format!("{name}: negative"));
            }
            Ok(())
        });
        socket.once("n", |Data(n): Data<i64>, ack: Ack| async move {
            ack.send(&(n * 2))
        });
    }))
    .await;
    let client = client(&server).await;
    assert_eq!(
        ask(&client, "n", &-1).await,
        json!({ "error": "n: negative" })
    );
    // The refused event did not use up the `once` listener.
    assert_eq!(ask(&client, "n", &21).await, json!(42));
    // A payload the middleware cannot extract is refused too.
    let answer = ask(&client, "n", &"x").await;
    assert!(answer["error"].is_string(), "{answer:?}");
    server.shutdown().await.unwrap();
}

/// An extractor of the app's: the nickname the socket stored.
struct Nick(String);

impl tongxun::extract::FromEvent for Nick {
    fn from_event(
        ctx: &mut tongxun::extract::EventContext,
    ) -> Result<Self, tongxun::extract::ExtractError> {
        ctx.socket()
            .store()
            .get("nick")
            .map(Nick)
            .map_err(|_| tongxun::extract::ExtractError::refused("pick a nickname first"))
    }
}

#[tokio::test]
async fn an_apps_own_extractor_reads_the_context_and_its_refusal_reaches_the_ack() {
    async fn on_connect(socket: Socket) {
        socket.on(
            "nick",
            async |socket: Socket,
                   Data(nick): Data<String>,
                   ack: Ack|
                   -> Result<(), tongxun::HandlerError> {
                socket.store().set("nick", &nick)?;
                ack.send(&nick)?;
                Ok(())
            },
        );
        socket.on(
            "say",
            |Nick(nick): Nick, Data(text): Data<String>, ack: Ack| async move {
                ack.send(&format!("{nick}: {text}"))
            },
        );
        socket.on("inspect", |ctx: Inspect, ack: Ack| async move {
            ack.send(&ctx.0)
        });
    }
    /// The event's name, whether an ack was asked for, and its arguments decoded.
    struct Inspect((String, bool, (u8, u8)));
    impl tongxun::extract::FromEvent for Inspect {
        fn from_event(
            ctx: &mut tongxun::extract::EventContext,
        ) -> Result<Self, tongxun::extract::ExtractError> {
            Ok(Inspect((
                ctx.event().to_owned(),
                ctx.ack_requested(),
                ctx.decode()?,
            )))
        }
    }
    let server = start(Server::builder().namespace("/", on_connect).build()).await;
    let client = client(&server).await;
    assert_eq!(
        ask(&client, "say", "hello").await,
        json!({ "error": "pick a nickname first" })
    );
    ask(&client, "nick", "ada").await;
    assert_eq!(ask(&client, "say", "hello").await, json!("ada: hello"));
    let inspected: (String, bool, (u8, u8)) =
        client.emit_with_ack("inspect", &(1, 2)).await.unwrap();
    assert_eq!(inspected, ("inspect".to_owned(), true, (1, 2)));
    server.shutdown().await.unwrap();
}

#[derive(Clone)]
struct Greeting(&'static str);

#[derive(Clone)]
struct Seat(u32);

#[tokio::test]
async fn handlers_take_the_apps_state_and_the_sockets_extensions_and_miss_them_clearly() {
    async fn on_connect(socket: Socket) {
        let greeting: Greeting = socket.io().state().expect("given to the builder");
        socket.extensions().insert(Seat(7));
        socket.on(
            "hello",
            |tongxun::State(g): tongxun::State<Greeting>, ack: Ack| async move { ack.send(&g.0) },
        );
        socket.on(
            "seat",
            |tongxun::Extension(seat): tongxun::Extension<Seat>, ack: Ack| async move {
                ack.send(&seat.0)
            },
        );
        socket.on("missing", |_: tongxun::State<u64>, ack: Ack| async move {
            ack.send(&1)
        });
        socket.on(
            "no-ext",
            |_: tongxun::Extension<u64>, ack: Ack| async move { ack.send(&1) },
        );
        socket.on("connected-with", move |ack: Ack| async move {
            ack.send(&greeting.0)
        });
    }
    let server = Server::builder()
        .state(Greeting("hi"))
        .namespace("/", on_connect)
        .routes_with(|io| {
            axum::Router::new().route(
                "/greeting",
                axum::routing::get(move || async move { io.state::<Greeting>().unwrap().0 }),
            )
        })
        .build();
    let server = start(server).await;
    let client = client(&server).await;
    assert_eq!(ask(&client, "hello", &()).await, json!("hi"));
    assert_eq!(ask(&client, "seat", &()).await, json!(7));
    assert_eq!(ask(&client, "connected-with", &()).await, json!("hi"));
    let missing = ask(&client, "missing", &()).await;
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains("no state of type u64")
    );
    let no_ext = ask(&client, "no-ext", &()).await;
    assert!(
        no_ext["error"]
            .as_str()
            .unwrap()
            .contains("no extension of type u64")
    );

    let mut http = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut http,
        b"GET /greeting HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    within(tokio::io::AsyncReadExt::read_to_string(
        &mut http,
        &mut answer,
    ))
    .await
    .unwrap();
    assert!(answer.ends_with("\r\n\r\nhi"), "{answer}");
    server.shutdown().await.unwrap();
}
