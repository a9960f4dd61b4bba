//! The registry through a hub and its clients: recipients, order, topics, byte bounds, stats.

use super::*;
use crate::ws::broadcasts::{Reader, Taken};
use crate::ws::outbox::Outgoing;
use crate::ws::request::WsRequest;
use crate::ws::{WsClient, WsHub};

fn join(hub: &WsHub) -> WsClient {
    let inner = hub.inner.clone();
    let shared = Arc::new(ClientShared::new(
        inner.next_id(),
        WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new()),
        None,
    ));
    inner.register(shared.clone());
    WsClient { hub: inner, shared }
}

fn next_message(client: &WsClient) -> Option<WsMessage> {
    let mut batch = Vec::with_capacity(1);
    match client.shared.next_outgoing(&mut batch, u64::MAX) {
        Outgoing::Messages => batch.pop(),
        _ => None,
    }
}

/// What a writer reading `reader` would send `client`.
fn next_broadcast(reader: &mut Reader, client: &WsClient) -> Option<WsMessage> {
    loop {
        match reader.try_take() {
            Taken::Broadcast(b) if b.except == Some(client.id()) => {}
            Taken::Broadcast(b) => return Some(b.message),
            _ => return None,
        }
    }
}

#[test]
fn a_broadcast_is_one_buffer_shared_by_every_reader() {
    let hub = WsHub::default();
    let clients: Vec<WsClient> = (0..3).map(|_| join(&hub)).collect();
    let mut readers: Vec<Reader> = (0..3).map(|_| hub.inner.broadcasts.reader().0).collect();
    let message = WsMessage::json(&serde_json::json!({ "big": "x".repeat(10_000) })).unwrap();
    let payload = message.as_bytes().as_ptr();
    assert_eq!(hub.broadcast(message), 3);
    for (client, reader) in clients.iter().zip(&mut readers) {
        let queued = next_broadcast(reader, client).unwrap();
        assert_eq!(
            queued.as_bytes().as_ptr(),
            payload,
            "the payload was copied"
        );
        assert!(next_message(client).is_none(), "nothing in the queue");
    }
}

#[test]
fn broadcast_others_and_publish_pick_their_recipients() {
    let hub = WsHub::default();
    let [a, b, c] = [join(&hub), join(&hub), join(&hub)];
    let [mut ra, mut rb, mut rc] = [(); 3].map(|()| hub.inner.broadcasts.reader().0);
    assert_eq!(a.broadcast_others("hi"), 2);
    assert!(next_broadcast(&mut ra, &a).is_none());
    assert_eq!(next_broadcast(&mut rb, &b).unwrap().as_text(), Some("hi"));
    assert_eq!(next_broadcast(&mut rc, &c).unwrap().as_text(), Some("hi"));

    assert_eq!(a.subscribe("t"), Ok(true));
    assert_eq!(b.subscribe("t"), Ok(true));
    assert_eq!(b.subscribe("t"), Ok(false));
    assert_eq!(hub.subscriber_count("t"), 2);
    assert_eq!(hub.publish("t", "news"), 2);
    assert_eq!(a.publish_others("t", "mine"), 1);
    assert_eq!(next_message(&a).unwrap().as_text(), Some("news"));
    assert_eq!(next_message(&b).unwrap().as_text(), Some("news"));
    assert_eq!(next_message(&b).unwrap().as_text(), Some("mine"));
    assert!(next_message(&c).is_none());
    assert_eq!(hub.publish("nobody", "x"), 0);
}

#[test]
fn a_message_queued_after_a_broadcast_waits_for_it() {
    let hub = WsHub::default();
    let a = join(&hub);
    let mut reader = hub.inner.broadcasts.reader().0;
    hub.broadcast("first");
    a.send("second").unwrap();
    let mut batch = Vec::with_capacity(4);
    // The writer has taken no broadcast yet: the queued message must wait.
    assert!(matches!(
        a.shared.next_outgoing(&mut batch, reader.taken()),
        Outgoing::Behind
    ));
    assert_eq!(
        next_broadcast(&mut reader, &a).unwrap().as_text(),
        Some("first")
    );
    assert!(matches!(
        a.shared.next_outgoing(&mut batch, reader.taken()),
        Outgoing::Messages
    ));
    assert_eq!(batch[0].as_text(), Some("second"));
}

#[test]
fn a_close_goes_out_after_the_broadcasts_published_before_it() {
    let hub = WsHub::default();
    let a = join(&hub);
    let mut reader = hub.inner.broadcasts.reader().0;
    hub.broadcast("last words");
    a.close(1000, "bye");
    hub.broadcast("too late");
    let mut batch = Vec::with_capacity(4);
    assert!(matches!(
        a.shared.next_outgoing(&mut batch, reader.taken()),
        Outgoing::Behind
    ));
    assert_eq!(
        next_broadcast(&mut reader, &a).unwrap().as_text(),
        Some("last words")
    );
    assert!(matches!(
        a.shared.next_outgoing(&mut batch, reader.taken()),
        Outgoing::Close(_)
    ));
}

#[test]
fn topics_are_validated_and_bounded() {
    let hub = WsHub::new(WsConfig {
        max_topics_per_client: 2,
        ..WsConfig::default()
    });
    let a = join(&hub);
    assert_eq!(a.subscribe(""), Err(SubscribeError::InvalidTopic));
    assert_eq!(
        a.subscribe(&"x".repeat(MAX_TOPIC_LEN + 1)),
        Err(SubscribeError::InvalidTopic)
    );
    assert_eq!(a.subscribe(&"x".repeat(MAX_TOPIC_LEN)), Ok(true));
    assert_eq!(a.subscribe("b"), Ok(true));
    assert_eq!(a.subscribe("c"), Err(SubscribeError::TooManyTopics));
    assert!(a.unsubscribe("b"));
    assert!(!a.unsubscribe("b"));
    assert_eq!(hub.subscriber_count("b"), 0);
    assert_eq!(a.subscribe("c"), Ok(true));
    assert_eq!(a.topics(), vec!["c".to_owned(), "x".repeat(MAX_TOPIC_LEN)]);
}

#[test]
fn a_client_that_leaves_leaves_its_topics_and_can_no_longer_join_any() {
    let hub = WsHub::default();
    let a = join(&hub);
    a.subscribe("t").unwrap();
    hub.inner.unregister(&a.shared);
    assert_eq!(hub.subscriber_count("t"), 0);
    assert_eq!(hub.client_count(), 0);
    assert_eq!(a.subscribe("u"), Err(SubscribeError::Closed));
    assert!(hub.client(a.id()).is_none());
    assert_eq!(hub.send_to(a.id(), "x"), Err(WsSendError::Closed));
}

/// A client with its place in the log, whose writer never runs: it reads nothing.
fn join_stalled(hub: &WsHub) -> WsClient {
    let inner = hub.inner.clone();
    let shared = Arc::new(ClientShared::new(
        inner.next_id(),
        WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new()),
        None,
    ));
    let (reader, bytes) = inner.broadcasts.reader();
    shared.attach_log(reader, bytes);
    inner.register(shared.clone());
    WsClient { hub: inner, shared }
}

fn byte_bound_hub(policy: OverflowPolicy) -> WsHub {
    WsHub::new(WsConfig {
        max_queued_bytes: 800,
        overflow_policy: policy,
        ..WsConfig::default()
    })
}

#[test]
fn a_stalled_client_is_closed_before_the_broadcasts_it_holds_pass_the_byte_bound() {
    let hub = byte_bound_hub(OverflowPolicy::Close);
    let a = join_stalled(&hub);
    for n in 1..=7 {
        hub.broadcast(vec![0u8; 100]);
        assert_eq!(a.queued_bytes(), n * 100);
    }
    // 700 bytes is seven eighths of the bound: the next broadcast would pass it.
    hub.broadcast(vec![0u8; 100]);
    assert_eq!(hub.stats().slow_clients_closed, 1);
    assert_eq!(a.queued_bytes(), 0, "it left the log");
    assert_eq!(hub.stats().queued_messages, 0);
}

#[test]
fn a_stalled_client_loses_its_oldest_broadcasts_and_queued_messages_under_drop_oldest() {
    let hub = byte_bound_hub(OverflowPolicy::DropOldest);
    let a = join_stalled(&hub);
    a.send(vec![1u8; 100]).unwrap();
    for _ in 0..20 {
        hub.broadcast(vec![0u8; 100]);
        assert!(a.queued_bytes() <= 800, "{} bytes", a.queued_bytes());
    }
    a.send(vec![2u8; 100]).unwrap();
    assert_eq!(a.queued_bytes(), 700);
    let stats = hub.stats();
    // 22 messages of 100 bytes, 7 kept.
    assert_eq!((stats.messages_dropped, stats.slow_clients_closed), (15, 0));
    assert_eq!(
        a.shared.queued_bytes(),
        100,
        "only the newest queued message is left"
    );
}

#[test]
fn stats_count_drops_and_queued_messages() {
    let hub = WsHub::new(WsConfig {
        queue_capacity: 2,
        overflow_policy: OverflowPolicy::DropOldest,
        ..WsConfig::default()
    });
    let a = join(&hub);
    for _ in 0..5 {
        a.send("x").unwrap();
    }
    let stats = hub.stats();
    assert_eq!(stats.clients, 1);
    assert_eq!(stats.queued_messages, 2);
    assert_eq!(stats.messages_dropped, 3);
    assert_eq!(stats.slow_clients_closed, 0);
}
