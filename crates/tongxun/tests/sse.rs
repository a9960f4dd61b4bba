//! The SSE hub over real sockets: framing, multi-topic streams, resume, resync, auth, HTTP
//! publishing, keep-alive, slow subscribers, fan-out and shutdown.

#[path = "support/sse.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{
    Frame, SseClient, TestServer, open, open_small_buffer, publish, request, subscribe, wait_until,
};
use tongxun::sse::{PublishError, SseConfig, SseEvent, SseHub, SubscribeAuth, SubscribeRejection};

const PUBLISH_TOKEN: &str = "publisher-secret";

fn config() -> SseConfig {
    let mut config = SseConfig::default();
    config.publish_token = Some(PUBLISH_TOKEN.into());
    config
}

async fn server_with(config: SseConfig) -> TestServer {
    TestServer::start(SseHub::new(config)).await
}

async fn server() -> TestServer {
    server_with(config()).await
}

async fn send(hub: &SseHub, topic: &str, event: SseEvent) -> u64 {
    hub.publish(topic, event).await.expect("published").seq()
}

fn datas(frames: &[Frame]) -> Vec<&str> {
    frames.iter().map(Frame::data).collect()
}

#[tokio::test]
async fn stream_has_sse_headers_and_is_never_compressed() {
    let server = server().await;
    let client = subscribe(
        server.addr,
        "/events?topic=a",
        &[
            ("Accept-Encoding", "gzip, br"),
            ("Accept", "text/event-stream"),
        ],
    )
    .await;
    assert_eq!(client.head.status, 200);
    assert_eq!(
        client.head.header("content-type"),
        Some("text/event-stream")
    );
    assert_eq!(client.head.header("cache-control"), Some("no-cache"));
    assert_eq!(client.head.header("x-accel-buffering"), Some("no"));
    assert_eq!(client.head.header("content-encoding"), None);
    assert_eq!(client.head.header("content-length"), None);
    server.stop().await;
}

#[tokio::test]
async fn stream_opens_with_retry_and_a_ready_event_carrying_its_position() {
    let mut config = config();
    config.retry = Duration::from_millis(1500);
    let server = server_with(config).await;
    send(&server.hub, "b", SseEvent::new("before")).await;
    send(&server.hub, "b", SseEvent::new("before")).await;

    let mut client = subscribe(server.addr, "/events?topic=a&topic=b", &[]).await;
    let first = client.next_frame().await.unwrap();
    assert_eq!(first.retry, Some(1500));
    assert_eq!(first.event.as_deref(), Some("ready"));
    assert_eq!(first.data(), r#"{"topics":["a","b"]}"#);
    // A fresh stream starts at the end of each topic: no history replayed.
    assert_eq!((first.position("a"), first.position("b")), (0, 2));
    let (epoch, list) = first.id().split_once(';').unwrap();
    assert_eq!(epoch.len(), 8);
    assert_eq!(list, "a:0,b:2");
    server.stop().await;
}

#[tokio::test]
async fn events_carry_ids_names_and_multi_line_data() {
    let server = server().await;
    let mut client = subscribe(server.addr, "/events?topic=news", &[]).await;
    client.ready().await;

    let hub = &server.hub;
    assert_eq!(send(hub, "news", SseEvent::new("plain")).await, 1);
    assert_eq!(
        send(
            hub,
            "news",
            SseEvent::new("one\ntwo\r\nthree\rfour").event("story")
        )
        .await,
        2
    );
    assert_eq!(send(hub, "news", SseEvent::new("")).await, 3);
    assert_eq!(send(hub, "news", SseEvent::new("trailing\n")).await, 4);
    assert_eq!(send(hub, "news", SseEvent::new("\r\n\r\n")).await, 5);

    let plain = client.next_event().await;
    assert_eq!((plain.event.as_deref(), plain.data()), (None, "plain"));
    assert_eq!(plain.position("news"), 1);
    let story = client.next_event().await;
    assert_eq!(story.event.as_deref(), Some("story"));
    assert_eq!(story.data(), "one\ntwo\nthree\nfour");
    assert_eq!(story.position("news"), 2);
    let empty = client.next_event().await;
    assert_eq!((empty.data(), empty.position("news")), ("", 3));
    assert_eq!(client.next_event().await.data(), "trailing\n");
    assert_eq!(client.next_event().await.data(), "\n\n");
    server.stop().await;
}

#[tokio::test]
async fn one_stream_carries_several_topics_with_a_position_for_each() {
    let server = server().await;
    let mut client = subscribe(server.addr, "/events?topic=a&topic=b&topic=a", &[]).await;
    let ready = client.ready().await;
    assert_eq!(
        ready.data(),
        r#"{"topics":["a","b"]}"#,
        "duplicates are dropped"
    );

    let hub = &server.hub;
    send(hub, "a", SseEvent::new("a1")).await;
    send(hub, "b", SseEvent::new("b1")).await;
    send(hub, "c", SseEvent::new("not subscribed")).await;
    send(hub, "a", SseEvent::new("a2")).await;

    let e1 = client.next_event().await;
    let e2 = client.next_event().await;
    let e3 = client.next_event().await;
    assert_eq!(
        datas(&[e1.clone(), e2.clone(), e3.clone()]),
        ["a1", "b1", "a2"]
    );
    assert!(e1.id().ends_with(";a:1,b:0"), "{e1:?}");
    assert!(e2.id().ends_with(";a:1,b:1"), "{e2:?}");
    assert!(e3.id().ends_with(";a:2,b:1"), "{e3:?}");
    server.stop().await;
}

#[tokio::test]
async fn publish_returns_monotonic_ids_per_topic() {
    let hub = SseHub::new(SseConfig::default());
    let a1 = hub.publish("a", SseEvent::new("x")).await.unwrap();
    let b1 = hub.publish("b", SseEvent::new("x")).await.unwrap();
    let a2 = hub.publish("a", SseEvent::new("x")).await.unwrap();
    assert_eq!((a1.seq(), b1.seq(), a2.seq()), (1, 1, 2));
    assert_eq!(a2.topic(), "a");
    let (epoch, rest) = a2
        .to_string()
        .split_once(';')
        .map(|(e, r)| (e.to_owned(), r.to_owned()))
        .unwrap();
    assert_eq!(rest, "a:2");
    assert!(a1.to_string().starts_with(&epoch));
}

#[tokio::test]
async fn resume_with_last_event_id_replays_exactly_what_was_missed_in_every_topic() {
    let server = server().await;
    let hub = &server.hub;
    let mut client = subscribe(server.addr, "/events?topic=a&topic=b", &[]).await;
    client.ready().await;
    send(hub, "a", SseEvent::new("a1")).await;
    send(hub, "b", SseEvent::new("b1")).await;
    assert_eq!(client.next_event().await.data(), "a1");
    assert_eq!(client.next_event().await.data(), "b1");
    let last_id = client.last_id.clone().unwrap();
    drop(client);

    // Published while the client was away, interleaved across topics.
    for n in 2..=4 {
        send(hub, "a", SseEvent::new(format!("a{n}"))).await;
        send(hub, "b", SseEvent::new(format!("b{n}"))).await;
    }
    let mut client = subscribe(
        server.addr,
        "/events?topic=a&topic=b",
        &[("Last-Event-ID", &last_id)],
    )
    .await;
    let ready = client.ready().await;
    assert_eq!(
        ready.id(),
        last_id,
        "ready restates where the stream starts"
    );
    let mut replayed = Vec::new();
    for _ in 0..6 {
        replayed.push(client.next_event().await);
    }
    send(hub, "a", SseEvent::new("a5")).await;
    let live = client.next_event().await;

    // Each topic exactly, and the topics interleaved as they were published.
    assert_eq!(datas(&replayed), ["a2", "b2", "a3", "b3", "a4", "b4"]);
    let ids: Vec<(u64, u64)> = replayed
        .iter()
        .map(|f| (f.position("a"), f.position("b")))
        .collect();
    assert_eq!(ids, [(2, 1), (2, 2), (3, 2), (3, 3), (4, 3), (4, 4)]);
    assert_eq!(live.data(), "a5");
    assert!(live.id().ends_with(";a:5,b:4"), "{live:?}");
    assert_eq!(server.hub.stats().replayed, 6);
    server.stop().await;
}

#[tokio::test]
async fn first_connection_resumes_from_the_last_event_id_query_parameter() {
    let server = server().await;
    let hub = &server.hub;
    let first = hub.publish("a", SseEvent::new("1")).await.unwrap();
    send(hub, "a", SseEvent::new("2")).await;
    send(hub, "a", SseEvent::new("3")).await;

    // A published event's id is a valid one-topic resume point.
    let target = format!("/events?topic=a&lastEventId={first}");
    let mut client = subscribe(server.addr, &target, &[]).await;
    client.ready().await;
    assert_eq!(client.next_event().await.data(), "2");
    assert_eq!(client.next_event().await.data(), "3");
    server.stop().await;
}

#[tokio::test]
async fn last_event_id_header_wins_over_the_query_parameter() {
    let server = server().await;
    let hub = &server.hub;
    let one = hub.publish("a", SseEvent::new("1")).await.unwrap();
    let two = hub.publish("a", SseEvent::new("2")).await.unwrap();
    send(hub, "a", SseEvent::new("3")).await;

    // The query parameter stays in the URL across reconnects; the header is newer.
    let target = format!("/events?topic=a&lastEventId={one}");
    let mut client = subscribe(server.addr, &target, &[("Last-Event-ID", &two.to_string())]).await;
    client.ready().await;
    assert_eq!(client.next_event().await.data(), "3");
    server.stop().await;
}

#[tokio::test]
async fn a_topic_added_since_the_id_starts_live_without_resync() {
    let server = server().await;
    let hub = &server.hub;
    let a1 = hub.publish("a", SseEvent::new("a1")).await.unwrap();
    send(hub, "a", SseEvent::new("a2")).await;
    send(hub, "b", SseEvent::new("b1 before")).await;
    let mut client = subscribe(
        server.addr,
        "/events?topic=a&topic=b",
        &[("Last-Event-ID", &a1.to_string())],
    )
    .await;
    let ready = client.ready().await;
    assert_eq!((ready.position("a"), ready.position("b")), (1, 1));
    assert_eq!(client.next_event().await.data(), "a2");
    send(hub, "b", SseEvent::new("b2")).await;
    assert_eq!(client.next_event().await.data(), "b2");
    server.stop().await;
}

#[tokio::test]
async fn resync_event_names_the_topics_history_no_longer_reaches() {
    let mut config = config();
    config.history_len = 3;
    let server = server_with(config).await;
    let hub = &server.hub;
    let mut client = subscribe(server.addr, "/events?topic=a&topic=b", &[]).await;
    let start = client.ready().await.id().to_owned();
    drop(client);

    for n in 1..=5 {
        send(hub, "a", SseEvent::new(format!("a{n}"))).await; // 5 > 3: history lost a1, a2
    }
    send(hub, "b", SseEvent::new("b1")).await; // within history

    let mut client = subscribe(
        server.addr,
        "/events?topic=a&topic=b",
        &[("Last-Event-ID", &start)],
    )
    .await;
    let (resyncs, ready) = client.opening().await;
    assert_eq!(resyncs.len(), 1);
    let resync: serde_json::Value = serde_json::from_str(resyncs[0].data()).unwrap();
    assert_eq!(
        resync,
        serde_json::json!({"topics": ["a"], "reason": "history_exceeded"})
    );
    // The resync and ready ids put `a` at its end, so the client does not resync again.
    assert_eq!(resyncs[0].id(), ready.id());
    assert_eq!((ready.position("a"), ready.position("b")), (5, 0));
    // `b` still resumes exactly.
    assert_eq!(client.next_event().await.data(), "b1");
    send(hub, "a", SseEvent::new("a6")).await;
    assert_eq!(client.next_event().await.data(), "a6");
    assert_eq!(hub.stats().resyncs, 1);
    server.stop().await;
}

#[tokio::test]
async fn resync_for_ids_of_another_run_or_not_of_this_hub() {
    let server = server().await;
    send(&server.hub, "a", SseEvent::new("a1")).await;
    for id in ["0badc0de;a:1", "garbage", "17", "abc;a:999"] {
        let mut client = subscribe(server.addr, "/events?topic=a", &[("Last-Event-ID", id)]).await;
        let (resyncs, ready) = client.opening().await;
        assert_eq!(resyncs.len(), 1, "{id}");
        let resync: serde_json::Value = serde_json::from_str(resyncs[0].data()).unwrap();
        assert_eq!(
            resync,
            serde_json::json!({"topics": ["a"], "reason": "unknown_id"}),
            "{id}"
        );
        assert_eq!(ready.position("a"), 1);
    }
    // A position past the end of this run's history is not one it ever gave out.
    let epoch = server
        .hub
        .publish("a", SseEvent::new("a2"))
        .await
        .unwrap()
        .to_string();
    let ahead = format!("{};a:99", epoch.split_once(';').unwrap().0);
    let mut client = subscribe(server.addr, "/events?topic=a", &[("Last-Event-ID", &ahead)]).await;
    let (resyncs, _) = client.opening().await;
    assert!(resyncs[0].data().contains("unknown_id"));
    server.stop().await;
}

#[tokio::test]
async fn subscribe_requests_are_validated_with_clear_400s() {
    let mut config = config();
    config.max_topics = 2;
    let server = server_with(config).await;
    // Duplicates do not count.
    subscribe(server.addr, "/events?topic=a&topic=b&topic=a", &[])
        .await
        .ready()
        .await;
    for (target, message) in [
        ("/events", "at least one topic is required"),
        ("/events?other=1", "at least one topic is required"),
        ("/events?topic=", "it is empty"),
        ("/events?topic=a%20b", "only ASCII letters"),
        ("/events?topic=a,b", "only ASCII letters"),
        ("/events?topic=a&topic=b&topic=c", "at most 2 topics"),
        (
            "/events?topic=a&topic=b&topic=a&topic=c",
            "at most 2 topics",
        ),
    ] {
        let reply = open(server.addr, target, &[]).await.err().expect("refused");
        assert_eq!(reply.head.status, 400, "{target}");
        assert_eq!(reply.head.header("content-type"), Some("application/json"));
        assert!(
            reply.error().contains(message),
            "{target}: {}",
            reply.error()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn token_auth_answers_401_without_a_valid_token() {
    let mut config = config();
    config.subscribe_auth = SubscribeAuth::Token("reader".into());
    let server = server_with(config).await;
    for (target, headers) in [
        ("/events?topic=a", &[][..]),
        ("/events?topic=a&token=wrong", &[][..]),
        ("/events?topic=a", &[("Authorization", "Bearer wrong")][..]),
        (
            "/events?topic=a",
            &[("Authorization", "Basic cmVhZGVy")][..],
        ),
    ] {
        let reply = open(server.addr, target, headers)
            .await
            .err()
            .expect("refused");
        assert_eq!(reply.head.status, 401, "{target} {headers:?}");
        assert_eq!(reply.head.header("www-authenticate"), Some("Bearer"));
        assert_eq!(reply.error(), "missing or invalid token");
    }
    subscribe(server.addr, "/events?topic=a&token=reader", &[])
        .await
        .ready()
        .await;
    subscribe(
        server.addr,
        "/events?topic=a",
        &[("Authorization", "Bearer reader")],
    )
    .await
    .ready()
    .await;
    server.stop().await;
}

#[tokio::test]
async fn custom_auth_can_stop_a_client_with_204_or_forbid_topics() {
    let mut config = config();
    config.subscribe_auth = SubscribeAuth::custom(|req| match req.token() {
        Some("signed-out") => Err(SubscribeRejection::Stop),
        Some("user") if req.topics().iter().all(|t| t.starts_with("public/")) => Ok(()),
        Some("user") => Err(SubscribeRejection::Forbidden),
        _ => Err(SubscribeRejection::Unauthorized),
    });
    let server = server_with(config).await;

    let stop = open(server.addr, "/events?topic=public/a&token=signed-out", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(stop.head.status, 204);
    assert_eq!(stop.body, "");
    let forbidden = open(
        server.addr,
        "/events?topic=public/a&topic=private&token=user",
        &[],
    )
    .await
    .err()
    .unwrap();
    assert_eq!(forbidden.head.status, 403);
    assert_eq!(
        forbidden.error(),
        "not allowed to subscribe to these topics"
    );
    let missing = open(server.addr, "/events?topic=public/a", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(missing.head.status, 401);
    subscribe(server.addr, "/events?topic=public/a&token=user", &[])
        .await
        .ready()
        .await;
    server.stop().await;
}

#[tokio::test]
async fn http_publish_reaches_subscribers_and_returns_the_id() {
    let server = server().await;
    let mut client = subscribe(server.addr, "/events?topic=prices", &[]).await;
    client.ready().await;

    let reply = publish(
        server.addr,
        "/events",
        PUBLISH_TOKEN,
        r#"{"topic":"prices","event":"price","data":"64000\r\n65000"}"#,
    )
    .await;
    assert_eq!(reply.head.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["topic"], "prices");
    assert_eq!(answer["seq"], 1);
    let event = client.next_event().await;
    assert_eq!(event.event.as_deref(), Some("price"));
    assert_eq!(event.data(), "64000\n65000");
    assert_eq!(event.id(), answer["id"].as_str().unwrap());

    // Data that is not a string is sent as compact JSON.
    let reply = publish(
        server.addr,
        "/events",
        PUBLISH_TOKEN,
        r#"{"topic":"prices","data":{"btc": [1, 2]}}"#,
    )
    .await;
    assert_eq!(reply.head.status, 200, "{}", reply.body);
    let event = client.next_event().await;
    assert_eq!(
        (event.event.as_deref(), event.data()),
        (None, r#"{"btc":[1,2]}"#)
    );
    server.stop().await;
}

#[tokio::test]
async fn http_publish_errors_are_clear_4xx_json() {
    let mut config = config();
    config.max_data_len = 100;
    let server = server_with(config).await;
    let addr = server.addr;
    let json = [
        ("Authorization", "Bearer publisher-secret"),
        ("Content-Type", "application/json"),
    ];

    // (request headers, body, expected status, part of the expected error message)
    type Case<'a> = (Vec<(&'a str, &'a str)>, String, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("Content-Type", "application/json")],
            r#"{"topic":"a","data":"x"}"#.into(),
            401,
            "missing or invalid token",
        ),
        (
            vec![
                ("Authorization", "Bearer nope"),
                ("Content-Type", "application/json"),
            ],
            r#"{"topic":"a","data":"x"}"#.into(),
            401,
            "missing or invalid token",
        ),
        (
            vec![("Authorization", "Bearer publisher-secret")],
            r#"{"topic":"a","data":"x"}"#.into(),
            415,
            "application/json",
        ),
        (
            vec![
                ("Authorization", "Bearer publisher-secret"),
                ("Content-Type", "text/plain"),
            ],
            "x".into(),
            415,
            "application/json",
        ),
        (json.to_vec(), "{not json".into(), 400, "invalid body"),
        (json.to_vec(), "".into(), 400, "invalid body"),
        (
            json.to_vec(),
            r#"{"data":"x"}"#.into(),
            422,
            "missing field `topic`",
        ),
        (
            json.to_vec(),
            r#"{"topic":"a"}"#.into(),
            422,
            "missing field `data`",
        ),
        (
            json.to_vec(),
            r#"{"topic":"a","data":"x","extra":1}"#.into(),
            422,
            "unknown field `extra`",
        ),
        (
            json.to_vec(),
            r#"{"topic":5,"data":"x"}"#.into(),
            422,
            "invalid type",
        ),
        (
            json.to_vec(),
            r#"{"topic":"a b","data":"x"}"#.into(),
            422,
            "invalid topic name",
        ),
        (
            json.to_vec(),
            r#"{"topic":"a","event":"x\ny","data":"x"}"#.into(),
            422,
            "control character",
        ),
        (
            json.to_vec(),
            r#"{"topic":"a","event":"resync","data":"x"}"#.into(),
            422,
            "reserved",
        ),
        (
            json.to_vec(),
            r#"{"topic":"a","data":null}"#.into(),
            422,
            "null",
        ),
        (
            json.to_vec(),
            r#"{"topic":"a","data":"x","id":"7"}"#.into(),
            422,
            "the hub assigns ids",
        ),
        (
            json.to_vec(),
            format!(r#"{{"topic":"a","data":"{}"}}"#, "x".repeat(101)),
            413,
            "more than the limit of 100",
        ),
        (
            json.to_vec(),
            format!(r#"{{"topic":"a","data":"{}"}}"#, "x".repeat(5000)),
            413,
            "larger than 1224 bytes",
        ),
    ];
    for (headers, body, status, message) in cases {
        let reply = request(addr, "POST", "/events", &headers, body.as_bytes()).await;
        assert_eq!(reply.head.status, status, "{body:?}: {}", reply.body);
        assert_eq!(
            reply.head.header("content-type"),
            Some("application/json"),
            "{body:?}"
        );
        assert!(
            reply.error().contains(message),
            "{body:?}: {}",
            reply.error()
        );
    }
    assert_eq!(server.hub.stats().published, 0);
    server.stop().await;
}

#[tokio::test]
async fn http_publish_is_refused_with_403_when_no_token_is_configured() {
    let server = server_with(SseConfig::default()).await;
    let reply = publish(
        server.addr,
        "/events",
        "anything",
        r#"{"topic":"a","data":"x"}"#,
    )
    .await;
    assert_eq!(reply.head.status, 403);
    assert!(reply.error().contains("disabled"), "{}", reply.error());
    server.stop().await;
}

#[tokio::test]
async fn rust_publish_validates_topic_event_and_size() {
    let mut config = SseConfig::default();
    config.max_data_len = 4;
    let hub = SseHub::new(config);
    assert!(matches!(
        hub.publish("", SseEvent::new("x")).await,
        Err(PublishError::InvalidTopic(_))
    ));
    assert!(matches!(
        hub.publish("a", SseEvent::new("x").event("")).await,
        Err(PublishError::InvalidEventName(_))
    ));
    assert_eq!(
        hub.publish("a", SseEvent::new("x").event("ready")).await,
        Err(PublishError::ReservedEventName("ready"))
    );
    assert_eq!(
        hub.publish("a", SseEvent::new("12345")).await,
        Err(PublishError::DataTooLarge { len: 5, max: 4 })
    );
    assert_eq!(hub.stats().published, 0);
    assert_eq!(hub.stats().topics, 0, "a refused event creates no topic");
}

#[tokio::test(start_paused = true)]
async fn idle_streams_get_a_keep_alive_comment_at_the_interval() {
    let mut config = config();
    config.keep_alive = Duration::from_secs(15);
    let server = server_with(config).await;
    let mut client = subscribe(server.addr, "/events?topic=a", &[]).await;
    client.ready().await;
    let start = tokio::time::Instant::now();
    let frame = client.next_frame_untimed().await.unwrap();
    assert_eq!(frame.comments, ["keep-alive"]);
    assert_eq!(frame.data, None);
    assert_eq!(start.elapsed(), Duration::from_secs(15));

    // Output postpones the next keep-alive.
    tokio::time::advance(Duration::from_secs(10)).await;
    send(&server.hub, "a", SseEvent::new("x")).await;
    let event_at = tokio::time::Instant::now();
    assert_eq!(client.next_frame_untimed().await.unwrap().data(), "x");
    let frame = client.next_frame_untimed().await.unwrap();
    assert_eq!(frame.comments, ["keep-alive"]);
    assert_eq!(event_at.elapsed(), Duration::from_secs(15));
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_zero_keep_alive_interval_sends_no_comments() {
    let mut config = config();
    config.keep_alive = Duration::ZERO;
    let server = server_with(config).await;
    let mut client = subscribe(server.addr, "/events?topic=a", &[]).await;
    client.ready().await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    send(&server.hub, "a", SseEvent::new("x")).await;
    let frame = client.next_frame_untimed().await.unwrap();
    assert_eq!((frame.data(), frame.comments.len()), ("x", 0));
    server.stop().await;
}

#[tokio::test]
async fn a_slow_subscriber_is_disconnected_without_holding_back_others_and_resumes_losslessly() {
    let mut config = config();
    config.subscriber_queue = 4;
    config.history_len = 10_000;
    let server = server_with(config).await;
    let hub = &server.hub;

    // The slow client reads its opening, then nothing; its socket buffer is small.
    let mut slow = open_small_buffer(server.addr, "/events?topic=t").await;
    slow.ready().await;
    let mut fast = subscribe(server.addr, "/events?topic=t", &[]).await;
    fast.ready().await;

    // Large events so that the slow client's socket and the server's buffers fill quickly.
    let payload = "x".repeat(32 * 1024);
    let mut sent = 0u64;
    while hub.stats().lagged == 0 {
        assert!(sent < 5_000, "the slow subscriber was never disconnected");
        sent = send(hub, "t", SseEvent::new(format!("{sent} {payload}"))).await;
        // The fast client keeps up; publishing never waited for the slow one.
        let event = fast.next_event().await;
        assert_eq!(event.position("t"), sent);
    }
    for _ in 0..5 {
        sent = send(hub, "t", SseEvent::new(format!("{sent} {payload}"))).await;
        assert_eq!(fast.next_event().await.position("t"), sent);
    }
    let stats = hub.stats();
    assert_eq!(stats.lagged, 1);
    assert_eq!(
        stats.subscribers, 2,
        "the slow stream is out of the topic but its connection is still open"
    );

    // The slow client reads what reached it: a prefix, in order, then the end of the stream.
    let received = slow.until_end().await;
    let seqs: Vec<u64> = received.iter().map(|f| f.position("t")).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!((seqs.len() as u64) < sent);
    // Reconnecting with its last id, it receives the rest from history: nothing lost or repeated.
    let last_id = slow.last_id.clone().unwrap();
    let mut again = subscribe(
        server.addr,
        "/events?topic=t",
        &[("Last-Event-ID", &last_id)],
    )
    .await;
    again.ready().await;
    for expected in seqs.len() as u64 + 1..=sent {
        let event = again.next_event().await;
        assert_eq!(event.position("t"), expected);
        assert!(event.data().starts_with(&format!("{} ", expected - 1)));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_to_1000_subscribers_delivers_every_event_in_order() {
    const SUBSCRIBERS: usize = 1_000;
    const EVENTS: u64 = 200;
    let server = server().await;
    let addr = server.addr;

    let started = Instant::now();
    let mut clients = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let mut client = subscribe(addr, "/events?topic=fan&topic=other", &[]).await;
        client.ready().await;
        clients.push(client);
    }
    let connected = started.elapsed();
    assert_eq!(server.hub.stats().subscribers, SUBSCRIBERS);

    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client: SseClient| {
            tokio::spawn(async move {
                for expected in 1..=EVENTS {
                    let event = client.next_event().await;
                    assert_eq!(event.position("fan"), expected);
                    assert_eq!(event.data(), format!("event {expected}\nsecond line"));
                }
            })
        })
        .collect();

    let publishing = Instant::now();
    for n in 1..=EVENTS {
        send(
            &server.hub,
            "fan",
            SseEvent::new(format!("event {n}\r\nsecond line")).event("tick"),
        )
        .await;
    }
    let published = publishing.elapsed();
    for reader in readers {
        reader
            .await
            .expect("every subscriber got every event in order");
    }
    let delivered = publishing.elapsed();
    let stats = server.hub.stats();
    assert_eq!(stats.delivered, SUBSCRIBERS as u64 * EVENTS);
    assert_eq!(stats.lagged, 0);
    println!(
        "fan-out: {SUBSCRIBERS} subscribers connected in {connected:?}; {EVENTS} events published in \
         {published:?}, all {} deliveries read in {delivered:?}",
        stats.delivered
    );
    server.stop().await;
}

#[tokio::test]
async fn vanished_subscribers_are_removed_and_unused_topics_forgotten() {
    let server = server().await;
    let mut client = subscribe(server.addr, "/events?topic=made-up&topic=kept", &[]).await;
    client.ready().await;
    send(&server.hub, "kept", SseEvent::new("x")).await;
    assert_eq!(server.hub.stats().topics, 2);
    drop(client);
    let hub = server.hub.clone();
    wait_until("the server noticed the closed connection", || {
        hub.stats().subscribers == 0
    })
    .await;
    // `made-up` never had an event: nothing of it remains. `kept` keeps its history.
    assert_eq!(hub.stats().topics, 1);
    send(&server.hub, "kept", SseEvent::new("y")).await;
    server.stop().await;
}

#[tokio::test]
async fn disconnect_all_ends_streams_cleanly_and_clients_resume() {
    let server = server().await;
    let hub = &server.hub;
    let mut client = subscribe(server.addr, "/events?topic=a", &[]).await;
    client.ready().await;
    send(hub, "a", SseEvent::new("1")).await;
    assert_eq!(client.next_event().await.data(), "1");
    assert_eq!(hub.disconnect_all(), 1);
    send(hub, "a", SseEvent::new("2")).await;
    assert!(
        client.until_end().await.is_empty(),
        "ended without sending more"
    );

    let last_id = client.last_id.clone().unwrap();
    let mut client = subscribe(
        server.addr,
        "/events?topic=a",
        &[("Last-Event-ID", &last_id)],
    )
    .await;
    client.ready().await;
    assert_eq!(client.next_event().await.data(), "2");
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_ends_every_stream_with_a_comment() {
    let mut server = server().await;
    let mut a = subscribe(server.addr, "/events?topic=a", &[]).await;
    let mut b = subscribe(server.addr, "/events?topic=b&topic=a", &[]).await;
    a.ready().await;
    b.ready().await;
    server.begin_shutdown();
    for client in [&mut a, &mut b] {
        let frame = client.next_frame().await.unwrap();
        assert_eq!(frame.comments, ["server shutting down, reconnect"]);
        assert_eq!(
            client.next_frame().await,
            None,
            "then the stream ends cleanly"
        );
    }
    assert_eq!(
        server.hub.publish("a", SseEvent::new("late")).await,
        Err(PublishError::ShutDown)
    );
    server.stop().await;
}

#[tokio::test]
async fn after_shutdown_a_new_stream_ends_at_once_so_the_client_retries_later() {
    let server = server().await;
    server.hub.shutdown().await;
    let reply = request(server.addr, "GET", "/events?topic=a", &[], b"").await;
    assert_eq!(
        reply.head.status, 200,
        "not an error status, which would stop the client for good"
    );
    assert_eq!(reply.head.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        reply.body,
        "retry: 3000\n\n: server shutting down, reconnect\n\n"
    );
    let reply = publish(
        server.addr,
        "/events",
        PUBLISH_TOKEN,
        r#"{"topic":"a","data":"x"}"#,
    )
    .await;
    assert_eq!(reply.head.status, 503);
    server.stop().await;
}

#[tokio::test]
async fn a_custom_path_serves_get_and_post() {
    let mut config = config();
    config.path = "/api/stream".into();
    let server = server_with(config).await;
    let mut client = subscribe(server.addr, "/api/stream?topic=a", &[]).await;
    client.ready().await;
    let reply = publish(
        server.addr,
        "/api/stream",
        PUBLISH_TOKEN,
        r#"{"topic":"a","data":"x"}"#,
    )
    .await;
    assert_eq!(reply.head.status, 200);
    assert_eq!(client.next_event().await.data(), "x");
    assert_eq!(
        request(server.addr, "GET", "/events?topic=a", &[], b"")
            .await
            .head
            .status,
        404
    );
    server.stop().await;
}
