//! The outbox alone: bounds, overflow policies, and the order in which things go out.

use super::*;

fn client() -> ClientShared {
    ClientShared::new(
        ClientId::new(1),
        WsRequest::new("/ws".parse().unwrap(), http::HeaderMap::new()),
        None,
    )
}

/// Offers a message under a count bound only.
fn offer(
    c: &ClientShared,
    message: WsMessage,
    after: u64,
    capacity: usize,
    policy: OverflowPolicy,
) -> Enqueued {
    let limits = Limits {
        capacity,
        max_bytes: 1 << 30,
        policy,
    };
    c.enqueue(message, after, 0, limits)
}

fn bytes_limits(max_bytes: u64, policy: OverflowPolicy) -> Limits {
    Limits {
        capacity: 1000,
        max_bytes,
        policy,
    }
}

#[test]
fn the_byte_bound_admits_seven_eighths_and_always_one_message() {
    let limits = bytes_limits(800, OverflowPolicy::Close);
    assert_eq!((limits.check_every(), limits.admit()), (100, 700));
    let c = client();
    // A client that holds nothing takes a message of any size.
    let big = WsMessage::binary(vec![0u8; 2000]);
    assert_eq!(c.enqueue(big, 0, 0, limits), Enqueued::Queued);
    assert_eq!(c.queued_bytes(), 2000);
    assert_eq!(
        c.enqueue(WsMessage::text("x"), 0, 0, limits),
        Enqueued::OverflowedBytes
    );
    assert_eq!(
        c.queued_bytes(),
        0,
        "the discarded queue is no longer counted"
    );
    assert_eq!(drain(&c), ["<close 1013>"]);
}

#[test]
fn the_byte_bound_drops_the_oldest_until_the_new_message_fits() {
    let limits = bytes_limits(800, OverflowPolicy::DropOldest);
    let c = client();
    let hundred = |n: u8| WsMessage::text(char::from(b'a' + n).to_string().repeat(100));
    for n in 0..7 {
        assert_eq!(c.enqueue(hundred(n), 0, 0, limits), Enqueued::Queued);
    }
    assert_eq!(c.held_bytes(0), 700);
    assert_eq!(
        c.enqueue(hundred(7), 0, 0, limits),
        Enqueued::DroppedOldest {
            dropped: 1,
            first: true
        }
    );
    assert_eq!(
        c.enqueue(hundred(8), 0, 0, limits),
        Enqueued::DroppedOldest {
            dropped: 1,
            first: false
        }
    );
    assert_eq!(c.held_bytes(0), 700);
    let sent = drain(&c);
    assert_eq!(sent.len(), 7);
    assert!(
        sent[0].starts_with('c') && sent[6].starts_with('i'),
        "{sent:?}"
    );
    assert_eq!(c.close_reason_and_drops().1, 2);
}

#[test]
fn the_byte_bound_drops_the_newest_under_drop_newest() {
    let limits = bytes_limits(800, OverflowPolicy::DropNewest);
    let c = client();
    let message = || WsMessage::binary(vec![0u8; 400]);
    assert_eq!(c.enqueue(message(), 0, 0, limits), Enqueued::Queued);
    assert_eq!(
        c.enqueue(message(), 0, 0, limits),
        Enqueued::DroppedNewest { first: true }
    );
    assert_eq!(c.held_bytes(0), 400);
}

fn drain(client: &ClientShared) -> Vec<String> {
    let mut out = Vec::new();
    // A batch of two shows that a longer queue takes several turns.
    let mut batch = Vec::with_capacity(2);
    loop {
        match client.next_outgoing(&mut batch, u64::MAX) {
            Outgoing::Messages => {
                assert!(batch.len() <= 2);
                out.extend(batch.drain(..).map(|m| m.as_text().unwrap().to_owned()));
            }
            Outgoing::Ping => out.push("<ping>".into()),
            Outgoing::Close(f) => out.push(format!("<close {}>", u16::from(f.code))),
            Outgoing::Idle | Outgoing::Behind | Outgoing::Stopped => return out,
            Outgoing::Missed(_) | Outgoing::OverBudget => unreachable!("no broadcast log"),
        }
    }
}

#[test]
fn drop_oldest_keeps_the_newest_messages() {
    let c = client();
    for i in 0..5 {
        offer(
            &c,
            WsMessage::text(i.to_string()),
            0,
            3,
            OverflowPolicy::DropOldest,
        );
    }
    assert_eq!(drain(&c), ["2", "3", "4"]);
    assert_eq!(c.close_reason_and_drops().1, 2);
}

#[test]
fn drop_newest_refuses_new_messages() {
    let c = client();
    let outcomes: Vec<_> = (0..4)
        .map(|i| {
            offer(
                &c,
                WsMessage::text(i.to_string()),
                0,
                2,
                OverflowPolicy::DropNewest,
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            Enqueued::Queued,
            Enqueued::Queued,
            Enqueued::DroppedNewest { first: false },
            Enqueued::DroppedNewest { first: false }
        ]
    );
    assert_eq!(drain(&c), ["0", "1"]);
}

#[test]
fn overflow_under_the_close_policy_discards_the_queue_and_closes_with_1013() {
    let c = client();
    assert_eq!(
        offer(&c, WsMessage::text("a"), 0, 1, OverflowPolicy::Close),
        Enqueued::Queued
    );
    assert_eq!(
        offer(&c, WsMessage::text("b"), 0, 1, OverflowPolicy::Close),
        Enqueued::Overflowed
    );
    assert_eq!(
        offer(&c, WsMessage::text("c"), 0, 1, OverflowPolicy::Close),
        Enqueued::Closed
    );
    assert!(c.is_closing());
    assert_eq!(drain(&c), ["<close 1013>"]);
    assert_eq!(
        c.close_reason_and_drops().0,
        Some(WsDisconnectReason::SlowConsumer)
    );
}

#[test]
fn stopping_discards_the_queue_and_stops_the_writer() {
    let c = client();
    offer(&c, WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
    c.queue_ping();
    c.stop();
    assert!(matches!(
        c.next_outgoing(&mut Vec::with_capacity(4), 0),
        Outgoing::Stopped
    ));
    assert_eq!(
        offer(&c, WsMessage::text("b"), 0, 10, OverflowPolicy::Close),
        Enqueued::Closed
    );
}

#[test]
fn pings_go_first_and_a_close_goes_out_after_the_queued_messages() {
    let c = client();
    let away = || close_frame(CloseCode::Away, "bye");
    offer(&c, WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
    c.queue_ping();
    assert!(matches!(
        c.next_outgoing(&mut Vec::new(), 0),
        Outgoing::Ping
    ));
    offer(&c, WsMessage::text("b"), 0, 10, OverflowPolicy::Close);
    c.queue_ping();
    assert!(c.close(away(), WsDisconnectReason::ServerShutdown, false, 0));
    assert!(!c.close(away(), WsDisconnectReason::ServerShutdown, false, 0));
    let late = offer(&c, WsMessage::text("c"), 0, 10, OverflowPolicy::Close);
    assert_eq!(late, Enqueued::Closed);
    // A closing connection sends no more pings.
    assert_eq!(drain(&c), ["a", "b", "<close 1001>"]);
}

#[test]
fn close_reasons_are_cut_on_a_char_boundary() {
    let reason = "é".repeat(100);
    let frame = close_frame(CloseCode::Normal, &reason);
    assert_eq!(frame.reason.len(), 122);
}

#[test]
fn a_queued_message_waits_for_the_broadcasts_published_before_it() {
    let c = client();
    offer(&c, WsMessage::text("a"), 0, 10, OverflowPolicy::Close);
    offer(&c, WsMessage::text("b"), 2, 10, OverflowPolicy::Close);
    let mut batch = Vec::with_capacity(8);
    assert!(matches!(c.next_outgoing(&mut batch, 1), Outgoing::Messages));
    assert_eq!(batch, [WsMessage::text("a")]);
    batch.clear();
    assert!(matches!(c.next_outgoing(&mut batch, 1), Outgoing::Behind));
    assert!(matches!(c.next_outgoing(&mut batch, 2), Outgoing::Messages));
    assert_eq!(batch, [WsMessage::text("b")]);
}

#[test]
fn a_drained_queue_gives_its_memory_back() {
    let c = client();
    for i in 0..1000 {
        offer(
            &c,
            WsMessage::text(i.to_string()),
            0,
            2000,
            OverflowPolicy::Close,
        );
    }
    assert_eq!(drain(&c).len(), 1000);
    assert_eq!(c.outbox().queue.capacity(), 0);
}
