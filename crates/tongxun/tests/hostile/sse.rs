//! The SSE hub against clients and publishers that try to make it hold topics and history: ever
//! new topic names, large events, idle topics, forgotten topics, bad `Last-Event-ID`s.
//! `docs/security.md` ("SSE hub") describes each bound.

// The SSE helpers bring their own copy of `support/serve.rs`, beside the one of the Socket.IO
// helpers in `main.rs`: two small copies of a test server, no shared state.
#[expect(
    clippy::duplicate_mod,
    reason = "the SSE and Socket.IO helpers each include serve.rs"
)]
#[path = "../support/sse.rs"]
mod support;

use std::time::Duration;

use support::{SseClient, TestServer, open, publish, subscribe, wait_until};
use tongxun::sse::{PublishError, SseConfig, SseEvent, SseHub};

const TOKEN: &str = "publisher-secret";

fn config() -> SseConfig {
    let mut config = SseConfig::default();
    config.publish_token = Some(TOKEN.into());
    config
}

async fn server_with(config: SseConfig) -> TestServer {
    TestServer::start(SseHub::new(config)).await
}

/// `POST /events` with this topic and data; the status and the JSON answer.
async fn post(server: &TestServer, topic: &str, data: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "topic": topic, "data": data }).to_string();
    let reply = publish(server.addr, "/events", TOKEN, &body).await;
    (reply.head.status, reply.json())
}

/// Yields until `condition` holds, failing the test after many rounds; for tests on a paused
/// clock, where sleeping would move time and a timeout never fires while the test yields.
async fn yield_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("gave up waiting until {what}");
}

/// Lets every task that is ready run (the sweep among them) without moving the clock.
async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

fn resync_of(frame: &support::Frame) -> serde_json::Value {
    serde_json::from_str(frame.data()).expect("resync data is JSON")
}

#[tokio::test]
async fn publishing_to_ever_new_topics_never_holds_more_than_max_live_topics() {
    let mut config = config();
    config.max_live_topics = 8;
    let server = server_with(config).await;
    let hub = &server.hub;
    for n in 0..8 {
        let (status, answer) = post(&server, &format!("t{n}"), "x").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(hub.topic_count(), n + 1);
    }
    for n in 8..40 {
        let (status, answer) = post(&server, &format!("t{n}"), "x").await;
        assert_eq!(status, 503, "topic {n}: {answer}");
        assert_eq!(
            answer["error"],
            "the hub already holds its maximum of 8 topics"
        );
        assert_eq!(hub.topic_count(), 8);
    }
    assert_eq!(
        hub.publish("from-rust", SseEvent::new("x")).await,
        Err(PublishError::TooManyTopics { max: 8 })
    );
    assert_eq!(hub.stats().topics_refused, 33);
    // Topics the hub holds keep working.
    let (status, answer) = post(&server, "t3", "y").await;
    assert_eq!((status, &answer["seq"]), (200, &serde_json::json!(2)));
    // Forgetting one makes room for a new one.
    assert!(hub.forget("t0").await.unwrap());
    assert_eq!(post(&server, "t8", "x").await.0, 200);
    assert_eq!(hub.topic_count(), 8);
    server.stop().await;
}

#[tokio::test]
async fn streams_asking_for_new_topics_at_the_limit_end_at_once_and_hold_nothing() {
    let mut config = config();
    config.max_live_topics = 4;
    let server = server_with(config).await;
    let hub = server.hub.clone();
    let mut holder = subscribe(
        server.addr,
        "/events?topic=made-up-1&topic=made-up-2&topic=made-up-3&topic=made-up-4",
        &[],
    )
    .await;
    holder.ready().await;
    assert_eq!(hub.topic_count(), 4);

    // One new topic among existing ones: the whole stream is refused, nothing registered. It
    // is a 200 that ends at once with one clear comment, so that a browser retries later.
    for target in ["/events?topic=made-up-1&topic=fresh", "/events?topic=fresh"] {
        let refused = support::request(
            server.addr,
            "GET",
            target,
            &[("Accept", "text/event-stream")],
            b"",
        )
        .await;
        assert_eq!(refused.head.status, 200);
        assert_eq!(
            refused.head.header("content-type"),
            Some("text/event-stream")
        );
        assert_eq!(
            refused.body,
            "retry: 3000\n\n: too many topics on this server, retry later\n\n"
        );
        assert_eq!(hub.topic_count(), 4);
    }
    assert_eq!(hub.stats().topics_refused, 2);
    assert_eq!(hub.stats().subscribers, 1);

    // Existing topics still open.
    let mut existing = subscribe(server.addr, "/events?topic=made-up-2", &[]).await;
    existing.ready().await;
    drop((holder, existing));
    wait_until("the streams closed", || hub.stats().subscribers == 0).await;
    assert_eq!(
        hub.topic_count(),
        0,
        "topics without events leave with their streams"
    );
    let mut now_open = subscribe(server.addr, "/events?topic=fresh", &[]).await;
    now_open.ready().await;
    assert_eq!(hub.topic_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn history_bytes_never_exceed_max_history_bytes() {
    const MAX: usize = 64 * 1024;
    let mut config = config();
    config.max_history_bytes = MAX;
    let server = server_with(config).await;
    let hub = &server.hub;
    let mut live = subscribe(
        server.addr,
        "/events?topic=big-0&topic=big-1&topic=big-2",
        &[],
    )
    .await;
    live.ready().await;

    let data = "x".repeat(4096);
    let mut first_id = None;
    for n in 0..60 {
        let (status, answer) = post(&server, &format!("big-{}", n % 3), &data).await;
        assert_eq!(status, 200, "{answer}");
        first_id.get_or_insert_with(|| answer["id"].as_str().unwrap().to_owned());
        assert!(
            hub.history_bytes() <= MAX,
            "after {} events: {} bytes",
            n + 1,
            hub.history_bytes()
        );
    }
    // The bound is used, not merely respected by keeping nothing.
    assert!(
        hub.history_bytes() > MAX - 2 * 4200,
        "{}",
        hub.history_bytes()
    );
    assert_eq!(hub.stats().history_bytes, hub.history_bytes());
    assert!(hub.stats().history_evicted >= 60 - MAX as u64 / 4096);
    // Live delivery does not depend on history: the subscriber got every event.
    for _ in 0..60 {
        assert_eq!(live.next_event().await.data().len(), 4096);
    }
    // A resume from before the dropped events gets resync, not a partial replay.
    let first_id = first_id.unwrap();
    let mut resumed = subscribe(
        server.addr,
        "/events?topic=big-0",
        &[("Last-Event-ID", &first_id)],
    )
    .await;
    let (resyncs, ready) = resumed.opening().await;
    assert_eq!(
        resyncs.iter().map(resync_of).collect::<Vec<_>>(),
        [serde_json::json!({"topics": ["big-0"], "reason": "history_exceeded"})]
    );
    assert_eq!(ready.position("big-0"), 20);
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_topic_is_forgotten_with_its_history_and_a_resume_into_it_gets_resync() {
    let mut config = config();
    config.topic_idle_timeout = Duration::from_secs(60);
    let server = server_with(config).await;
    let hub = server.hub.clone();
    let mut listened = subscribe(server.addr, "/events?topic=listened", &[]).await;
    listened.ready().await;

    let old = hub.publish("idle", SseEvent::new("old-1")).await.unwrap();
    hub.publish("idle", SseEvent::new("old-2")).await.unwrap();
    hub.publish("listened", SseEvent::new("kept"))
        .await
        .unwrap();
    assert_eq!((hub.topic_count(), hub.stats().topics_forgotten), (2, 0));
    assert!(hub.history_bytes() > 0);

    // Not before its time.
    tokio::time::advance(Duration::from_secs(59)).await;
    settle().await;
    assert_eq!(hub.topic_count(), 2, "forgotten before its idle timeout");
    // The sweep runs every quarter of the timeout: gone by 60 s + 15 s.
    tokio::time::advance(Duration::from_secs(16)).await;
    yield_until("the idle topic is forgotten", || hub.topic_count() == 1).await;
    assert_eq!(hub.stats().topics_forgotten, 1);
    let kept_bytes = hub.history_bytes();

    // A topic with a subscriber is never idle, however long.
    tokio::time::advance(Duration::from_secs(3600)).await;
    settle().await;
    assert_eq!(hub.topic_count(), 1);
    assert_eq!(hub.history_bytes(), kept_bytes);
    assert_eq!(listened.next_event().await.data(), "kept");

    // A new life of the topic: a resume from the old id gets resync, never old-2 or new-1.
    hub.publish("idle", SseEvent::new("new-1")).await.unwrap();
    let old_id = old.to_string();
    let mut resumed = subscribe(
        server.addr,
        "/events?topic=idle",
        &[("Last-Event-ID", &old_id)],
    )
    .await;
    let (resyncs, _) = resumed.opening().await;
    assert_eq!(
        resyncs.iter().map(resync_of).collect::<Vec<_>>(),
        [serde_json::json!({"topics": ["idle"], "reason": "history_exceeded"})]
    );
    hub.publish("idle", SseEvent::new("new-2")).await.unwrap();
    assert_eq!(resumed.next_event().await.data(), "new-2");
    server.stop().await;
}

#[tokio::test]
async fn forget_ends_the_topics_streams_and_a_resume_into_it_gets_resync_not_old_events() {
    let server = server_with(config()).await;
    let hub = server.hub.clone();
    let mut client = subscribe(server.addr, "/events?topic=chat:room&topic=other", &[]).await;
    client.ready().await;
    for text in ["secret-1", "secret-2"] {
        assert_eq!(post(&server, "chat:room", text).await.0, 200);
        assert_eq!(client.next_event().await.data(), text);
    }
    let before = hub.history_bytes();
    assert!(before > 0);

    assert!(hub.forget("chat:room").await.unwrap());
    assert_eq!(
        client.until_end().await,
        Vec::new(),
        "the stream ends cleanly"
    );
    let last_id = client.last_id.clone().expect("an id");
    assert_eq!(hub.history_bytes(), 0);
    wait_until("the stream closed", || hub.stats().subscribers == 0).await;
    assert_eq!(
        hub.topic_count(),
        0,
        "`other` had no events and no one left on it"
    );
    assert!(
        !hub.forget("chat:room").await.unwrap(),
        "nothing left to forget"
    );

    // More events than the old position: a numbering that restarted would replay `after-3`.
    for text in ["after-1", "after-2", "after-3"] {
        assert_eq!(post(&server, "chat:room", text).await.0, 200);
    }
    assert_eq!(post(&server, "other", "other-1").await.0, 200);
    let mut resumed = subscribe(
        server.addr,
        "/events?topic=chat:room&topic=other",
        &[("Last-Event-ID", &last_id)],
    )
    .await;
    let (resyncs, _) = resumed.opening().await;
    assert_eq!(
        resyncs.iter().map(resync_of).collect::<Vec<_>>(),
        [serde_json::json!({"topics": ["chat:room"], "reason": "history_exceeded"})]
    );
    // `other` resumes exactly; `chat:room` continues live from now.
    assert_eq!(resumed.next_event().await.data(), "other-1");
    assert_eq!(post(&server, "chat:room", "live").await.0, 200);
    assert_eq!(resumed.next_event().await.data(), "live");
    server.stop().await;
}

/// Opens a stream on `topic` resuming from `id`; its `resync` frames and the `ready` frame.
async fn resume(server: &TestServer, topic: &str, id: &str) -> (SseClient, Vec<serde_json::Value>) {
    let target = format!("/events?topic={topic}");
    let mut client = match open(server.addr, &target, &[("Last-Event-ID", id)]).await {
        Ok(client) => client,
        Err(reply) => panic!(
            "id of {} bytes: {} {:?}",
            id.len(),
            reply.head.status,
            reply.body
        ),
    };
    let (resyncs, _) = client.opening().await;
    (client, resyncs.iter().map(resync_of).collect())
}

#[tokio::test]
async fn bad_last_event_ids_get_a_clear_resync_and_hold_nothing() {
    let server = server_with(config()).await;
    let hub = server.hub.clone();
    let id = hub
        .publish("a", SseEvent::new("a1"))
        .await
        .unwrap()
        .to_string();
    let epoch = id.split_once(';').unwrap().0.to_owned();
    let bytes = hub.history_bytes();

    let made_up = |n: usize| {
        (0..n)
            .map(|i| format!("t{i}:1"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let unknown = [
        "garbage".to_owned(),
        ";;;,,,:::".to_owned(),
        format!("{epoch};a:99999999999999999999"),
        format!("{epoch};a:{}", u64::MAX),
        format!("{epoch};a:-1"),
        "0badc0de;a:1".to_owned(),
        format!("{epoch};a:1,{}", "x".repeat(16 * 1024)),
        format!("{epoch};{}", made_up(2000)),
        "\u{1F600};a:1".to_owned(),
    ];
    let mut open_streams = Vec::new();
    for bad in &unknown {
        let (client, resyncs) = resume(&server, "a", bad).await;
        assert_eq!(
            resyncs,
            [serde_json::json!({"topics": ["a"], "reason": "unknown_id"})],
            "id {:?}",
            &bad[..bad.len().min(40)]
        );
        open_streams.push(client);
    }
    // Many positions of topics the stream does not ask for: `a` resumes, nothing else is made.
    let many = format!("{epoch};{},a:1", made_up(700));
    assert!(many.len() < 8 * 1024);
    let (client, resyncs) = resume(&server, "a", &many).await;
    assert_eq!(resyncs, Vec::<serde_json::Value>::new());
    open_streams.push(client);

    assert_eq!(
        hub.topic_count(),
        1,
        "an id names topics, it does not create them"
    );
    assert_eq!(hub.history_bytes(), bytes);
    assert_eq!(hub.stats().resyncs, unknown.len() as u64);
    // Every stream is live and exact.
    hub.publish("a", SseEvent::new("a2")).await.unwrap();
    for client in &mut open_streams {
        assert_eq!(client.next_event().await.data(), "a2");
    }
    drop(open_streams);
    wait_until("the streams closed", || hub.stats().subscribers == 0).await;
    assert_eq!(hub.topic_count(), 1);
    assert_eq!(hub.history_bytes(), 2 * bytes);
    server.stop().await;
}

/// The same bounds when the history is in Redis: a real `redis-server` on a free port.
#[cfg(feature = "redis")]
mod redis_backed {
    use super::support::subscribe;
    use super::*;
    use crate::support::redis::RedisServer;

    const PREFIX: &str = "tongxun:sse:{/events}:";

    #[tokio::test]
    async fn with_redis_forget_deletes_the_stream_and_streams_expire_when_idle() {
        let redis = RedisServer::start().await;
        let mut sse = config();
        sse.topic_idle_timeout = Duration::from_secs(120);
        let hub = SseHub::new(sse);
        let mut config = tongxun::Config::default();
        config.redis_url = Some(format!("redis://127.0.0.1:{}", redis.port));
        let built = tongxun::Server::builder()
            .config(config)
            .sse(hub.clone())
            .build();
        let server = crate::support::TestServer::start(built).await;
        let post = |data: &'static str| async move {
            let body = serde_json::json!({ "topic": "chat:room", "data": data }).to_string();
            let reply = publish(server.addr, "/events", TOKEN, &body).await;
            assert_eq!(reply.head.status, 200, "{}", reply.body);
            reply.json()["id"].as_str().unwrap().to_owned()
        };
        let old_id = post("secret-1").await;
        post("secret-2").await;
        let log = format!("{PREFIX}log:chat:room");
        let seq = format!("{PREFIX}seq:chat:room");
        // -1 would be a stream that never expires.
        let ttl: i64 = redis.cli(&["PTTL", &log]).parse().unwrap();
        assert!(
            ttl > 0 && ttl <= 120_000,
            "the stream expires when idle: {ttl}"
        );
        assert_eq!(redis.cli(&["XLEN", &log]), "2");

        assert!(hub.forget("chat:room").await.unwrap());
        assert_eq!(redis.cli(&["EXISTS", &log, &seq]), "0");
        assert!(!hub.forget("chat:room").await.unwrap());

        for data in ["after-1", "after-2", "after-3"] {
            post(data).await;
        }
        let mut resumed = subscribe(
            server.addr,
            "/events?topic=chat:room",
            &[("Last-Event-ID", &old_id)],
        )
        .await;
        let (resyncs, _) = resumed.opening().await;
        assert_eq!(
            resyncs.iter().map(resync_of).collect::<Vec<_>>(),
            [serde_json::json!({"topics": ["chat:room"], "reason": "history_exceeded"})]
        );
        post("live").await;
        assert_eq!(resumed.next_event().await.data(), "live");
        drop(resumed);
        server.shutdown().await;
    }
}
