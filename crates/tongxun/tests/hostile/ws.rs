//! The WebSocket hub against clients that stop reading, and against frames no well-behaved
//! client sends. The clients speak raw RFC 6455 over their own TCP sockets: the one that stops
//! reading never reads a byte after the handshake, whatever the server sends it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tongxun::ws::{ClientId, OverflowPolicy, WsConfig, WsHub, WsMessage, WsSendError};

use crate::support::TestServer;

/// Time any single step may take before the test is reported as hung.
const STEP: Duration = Duration::from_secs(30);
/// The byte bound of the flood tests: 1 MiB.
const BOUND: usize = 1024 * 1024;
/// Size of each flood message: 64 KiB, so the bound holds a handful of them.
const SIZE: usize = 64 * 1024;
/// Messages in a flood: 25 MiB, several times what the kernel buffers for a client that does
/// not read (about 4 MiB here: the server's send buffer grows up to `tcp_wmem`'s maximum).
const FLOOD: u32 = 400;

async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("step timed out")
}

/// Waits until `done` holds, letting the server's tasks run in between.
async fn until(mut done: impl FnMut() -> bool) {
    within(async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// A WebSocket client over a plain TCP socket: frames are written and read by hand.
struct RawClient {
    stream: TcpStream,
    /// Bytes read past the handshake, not parsed yet.
    buffer: Vec<u8>,
}

/// A frame from the server (never masked).
#[derive(Debug)]
struct ServerFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl ServerFrame {
    fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

impl RawClient {
    /// Connects with the smallest receive buffer the kernel allows, so that a client that does
    /// not read stops taking bytes early.
    async fn connect(addr: SocketAddr) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = within(socket.connect(addr)).await.unwrap();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut client = Self {
            stream,
            buffer: Vec::new(),
        };
        let end = loop {
            if let Some(end) = client.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            client.fill().await;
        };
        let head = String::from_utf8_lossy(&client.buffer[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        client.buffer.drain(..end);
        client
    }

    /// Reads what the socket has into the buffer; fails the test at the end of the stream.
    async fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = within(self.stream.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        self.buffer.extend_from_slice(&chunk[..n]);
    }

    async fn need(&mut self, n: usize) {
        while self.buffer.len() < n {
            self.fill().await;
        }
    }

    /// The next frame from the server.
    async fn frame(&mut self) -> ServerFrame {
        self.need(2).await;
        let (fin, opcode) = (self.buffer[0] & 0x80 != 0, self.buffer[0] & 0x0f);
        assert_eq!(self.buffer[1] & 0x80, 0, "the server masked a frame");
        let (len, header) = match self.buffer[1] & 0x7f {
            126 => {
                self.need(4).await;
                (
                    usize::from(u16::from_be_bytes([self.buffer[2], self.buffer[3]])),
                    4,
                )
            }
            127 => {
                self.need(10).await;
                let len = u64::from_be_bytes(self.buffer[2..10].try_into().unwrap());
                (usize::try_from(len).unwrap(), 10)
            }
            len => (usize::from(len), 2),
        };
        self.need(header + len).await;
        let payload = self.buffer[header..header + len].to_vec();
        self.buffer.drain(..header + len);
        ServerFrame {
            fin,
            opcode,
            payload,
        }
    }

    /// Reads frames until the server's close frame; returns its code and the data frames that
    /// came before it.
    async fn read_to_close(&mut self) -> (u16, Vec<ServerFrame>) {
        let mut data = Vec::new();
        loop {
            let frame = self.frame().await;
            match frame.opcode {
                8 => return (frame.close_code().expect("a close code"), data),
                9 | 10 => {}
                _ => data.push(frame),
            }
        }
    }

    /// Answers the server's close frame with `code`, completing the close handshake.
    async fn answer_close(&mut self, code: u16) {
        self.send(true, 8, &code.to_be_bytes()).await;
    }

    /// Writes one masked frame with `header_len` announced as its payload length (normally
    /// `payload.len()`).
    async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8], header_len: u64) {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![(u8::from(fin) << 7) | opcode];
        match header_len {
            0..=125 => frame.push(0x80 | header_len as u8),
            126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(header_len as u16).to_be_bytes());
            }
            _ => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&header_len.to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        self.stream.write_all(&frame).await.unwrap();
    }

    async fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.send_frame(fin, opcode, payload, payload.len() as u64)
            .await;
    }
}

/// A hub without handlers (messages from clients are ignored), on a server of its own.
async fn start(config: WsConfig) -> (TestServer, WsHub) {
    let hub = WsHub::new(config);
    let server = TestServer::start(tongxun::Server::builder().ws(hub.clone()).build()).await;
    (server, hub)
}

fn flood_config(policy: OverflowPolicy) -> WsConfig {
    let mut config = WsConfig::default();
    config.ping_interval = Duration::ZERO;
    config.max_queued_bytes = BOUND;
    config.overflow_policy = policy;
    // Long enough for the slow client to read its way to the close frame afterwards.
    config.close_timeout = Duration::from_secs(60);
    config
}

/// Connects a raw client and returns it with its id, once the hub registered it.
async fn join_raw(server: &TestServer, hub: &WsHub) -> (RawClient, ClientId) {
    let before = hub.client_ids();
    let client = RawClient::connect(server.addr).await;
    until(|| hub.client_count() > before.len()).await;
    let id = hub
        .client_ids()
        .into_iter()
        .find(|id| !before.contains(id))
        .unwrap();
    (client, id)
}

/// A message of [`SIZE`] bytes carrying `index` in its first four.
fn numbered(index: u32) -> WsMessage {
    let mut payload = vec![0u8; SIZE];
    payload[..4].copy_from_slice(&index.to_be_bytes());
    WsMessage::binary(payload)
}

fn index_of(payload: &[u8]) -> u32 {
    u32::from_be_bytes(payload[..4].try_into().unwrap())
}

/// What a flood of broadcasts left behind.
struct Flood {
    slow: RawClient,
    /// The most bytes the hub held for the slow client at any point.
    max_held: u64,
    /// The most bytes the hub held for all clients at any point.
    max_held_by_hub: u64,
}

/// A raw client that never reads and a tokio-tungstenite client that reads everything; the hub
/// broadcasts [`FLOOD`] messages of [`SIZE`] bytes, and after each the reading client must
/// receive it before the next goes out.
async fn flood_with_broadcasts(server: &TestServer, hub: &WsHub) -> Flood {
    let (slow, slow_id) = join_raw(server, hub).await;
    let url = format!("ws://{}/ws", server.addr);
    let (mut reader, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    until(|| hub.client_count() == 2).await;
    let slow_client = hub.client(slow_id).unwrap();

    let (mut max_held, mut max_held_by_hub) = (0, 0);
    for index in 0..FLOOD {
        hub.broadcast(numbered(index));
        max_held = max_held.max(slow_client.queued_bytes());
        max_held_by_hub = max_held_by_hub.max(hub.stats().queued_bytes);
        let received = loop {
            match within(reader.next()).await {
                Some(Ok(Message::Binary(payload))) => break payload,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("the reading client got {other:?}"),
            }
        };
        assert_eq!(index_of(&received), index, "the reading client missed one");
        max_held = max_held.max(slow_client.queued_bytes());
    }
    drop(reader);
    Flood {
        slow,
        max_held,
        max_held_by_hub,
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_1013_before_the_server_holds_more_than_max_queued_bytes_for_it()
 {
    let (server, hub) = start(flood_config(OverflowPolicy::Close)).await;
    let mut flood = flood_with_broadcasts(&server, &hub).await;

    let bound = BOUND as u64;
    assert!(
        flood.max_held <= bound,
        "the hub held {} bytes for the slow client, over the bound of {bound}",
        flood.max_held
    );
    assert!(
        flood.max_held > bound / 2,
        "the slow client never fell behind: {} bytes at most",
        flood.max_held
    );
    // The reading client holds at most the message on its way.
    assert!(flood.max_held_by_hub <= bound + SIZE as u64);
    let stats = hub.stats();
    assert_eq!(stats.slow_clients_closed, 1, "{stats:?}");
    assert_eq!(stats.messages_dropped, 0);

    // Reading at last, the slow client finds what the kernel had buffered, then 1013.
    let (code, data) = flood.slow.read_to_close().await;
    assert_eq!(code, 1013);
    assert!((data.len() as u32) < FLOOD);
    flood.slow.answer_close(code).await;
    until(|| hub.client_count() == 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_oldest_broadcasts_under_drop_oldest_and_the_server_never_holds_more_than_max_queued_bytes_for_it()
 {
    let (server, hub) = start(flood_config(OverflowPolicy::DropOldest)).await;
    let mut flood = flood_with_broadcasts(&server, &hub).await;

    let bound = BOUND as u64;
    assert!(
        flood.max_held <= bound,
        "the hub held {} bytes for the slow client, over the bound of {bound}",
        flood.max_held
    );
    let stats = hub.stats();
    assert!(stats.messages_dropped > 0, "nothing was dropped: {stats:?}");
    assert_eq!(stats.slow_clients_closed, 0);

    // Reading at last, the slow client gets increasing indices up to the last one; with what
    // was dropped for it, that is every message.
    let mut received = 0u64;
    let mut last = None;
    while last != Some(FLOOD - 1) {
        let frame = flood.slow.frame().await;
        assert!(frame.fin && frame.opcode == 2, "unexpected {frame:?}");
        let index = index_of(&frame.payload);
        assert!(
            last.is_none_or(|last| index > last),
            "{index} after {last:?}"
        );
        last = Some(index);
        received += 1;
    }
    assert_eq!(received + hub.stats().messages_dropped, u64::from(FLOOD));
    assert_eq!(hub.client_count(), 1);
    drop(flood.slow);
    until(|| hub.client_count() == 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_1013_once_messages_sent_to_it_reach_max_queued_bytes()
 {
    let (server, hub) = start(flood_config(OverflowPolicy::Close)).await;
    let (mut slow, slow_id) = join_raw(&server, &hub).await;
    let slow_client = hub.client(slow_id).unwrap();

    let mut max_held = 0;
    let mut refused = None;
    for index in 0..FLOOD {
        if let Err(error) = hub.send_to(slow_id, numbered(index)) {
            refused = Some((index, error));
            break;
        }
        max_held = max_held.max(slow_client.queued_bytes());
        // Lets the writer move what the socket takes.
        tokio::task::yield_now().await;
    }
    let (index, error) = refused.expect("every message was queued");
    assert_eq!(error, WsSendError::QueueFull);
    assert!(max_held <= BOUND as u64, "held {max_held} bytes");
    assert!(max_held > BOUND as u64 / 2, "held {max_held} bytes at most");
    assert_eq!(slow_client.queued_bytes(), 0, "the queue was not discarded");
    assert_eq!(hub.stats().slow_clients_closed, 1);
    assert_eq!(
        hub.send_to(slow_id, numbered(index + 1)),
        Err(WsSendError::Closed)
    );

    let (code, data) = slow.read_to_close().await;
    assert_eq!(code, 1013);
    assert!((data.len() as u32) < index);
    slow.answer_close(code).await;
    until(|| hub.client_count() == 0).await;
    server.shutdown().await;
}

fn limited_config() -> WsConfig {
    let mut config = WsConfig::default();
    config.ping_interval = Duration::ZERO;
    config.max_message_size = 1024;
    config
}

#[tokio::test]
async fn a_message_over_max_message_size_closes_with_1009() {
    let (server, hub) = start(limited_config()).await;
    let (mut client, _) = join_raw(&server, &hub).await;
    client.send(true, 2, &[7u8; 1025]).await;
    let (code, data) = client.read_to_close().await;
    assert_eq!((code, data.len()), (1009, 0));
    assert_eq!(hub.stats().oversized_messages, 1);
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn a_frame_announcing_more_than_max_message_size_closes_with_1009_before_its_payload() {
    let (server, hub) = start(limited_config()).await;
    let (mut client, _) = join_raw(&server, &hub).await;
    // A terabyte announced, nothing sent: the header alone is refused.
    client.send_frame(true, 2, &[], 1 << 40).await;
    let (code, _) = client.read_to_close().await;
    assert_eq!(code, 1009);
    assert_eq!(hub.stats().oversized_messages, 1);
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn fragments_adding_up_past_max_message_size_close_with_1009() {
    let (server, hub) = start(limited_config()).await;
    let (mut client, _) = join_raw(&server, &hub).await;
    client.send(false, 2, &[1u8; 600]).await;
    client.send(false, 0, &[2u8; 300]).await;
    client.send(true, 0, &[3u8; 300]).await;
    let (code, _) = client.read_to_close().await;
    assert_eq!(code, 1009);
    assert_eq!(hub.stats().oversized_messages, 1);
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_left_half_finished_for_a_new_one_closes_with_1002() {
    let (server, hub) = start(limited_config()).await;
    let (mut client, _) = join_raw(&server, &hub).await;
    client.send(false, 1, b"half a ").await;
    // A ping may come between fragments; a new text message may not.
    client.send(true, 9, b"still here").await;
    let pong = client.frame().await;
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (10, &b"still here"[..])
    );
    client.send(true, 1, b"another message").await;
    let (code, _) = client.read_to_close().await;
    assert_eq!(code, 1002);
    assert_eq!(hub.stats().protocol_errors, 1);
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn a_continuation_without_a_first_fragment_closes_with_1002() {
    let (server, hub) = start(limited_config()).await;
    let (mut client, _) = join_raw(&server, &hub).await;
    client.send(true, 0, b"the end of nothing").await;
    let (code, _) = client.read_to_close().await;
    assert_eq!(code, 1002);
    assert_eq!(hub.stats().protocol_errors, 1);
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_holds_at_most_max_topics_per_client_topics_of_at_most_max_topic_len_bytes() {
    let mut config = limited_config();
    config.max_topics_per_client = 4;
    let (server, hub) = start(config).await;
    let (mut client, id) = join_raw(&server, &hub).await;
    let mut subscribe = async |topic: &str| {
        let command = serde_json::json!({ "subscribe": topic }).to_string();
        client.send(true, 1, command.as_bytes()).await;
        let answer = client.frame().await;
        assert_eq!(answer.opcode, 1);
        serde_json::from_slice::<serde_json::Value>(&answer.payload).unwrap()
    };
    for n in 0..4 {
        let topic = format!("t{n}");
        assert_eq!(
            subscribe(&topic).await,
            serde_json::json!({ "subscribed": topic })
        );
    }
    assert_eq!(
        subscribe("t4").await,
        serde_json::json!({ "error": "too many topics", "subscribe": "t4" })
    );
    let long = "x".repeat(tongxun::ws::MAX_TOPIC_LEN + 1);
    assert_eq!(
        subscribe(&long).await,
        serde_json::json!({ "error": "invalid topic", "subscribe": long })
    );
    assert_eq!(hub.client(id).unwrap().topics().len(), 4);
    assert_eq!(hub.subscriber_count("t4"), 0);
    drop(client);
    server.shutdown().await;
}

/// Autobahn 9.1.5: a message larger than `max_queued_bytes`, echoed to a client that held
/// nothing, is sent whole; the byte bound is about what piles up, not about one message.
#[tokio::test]
async fn one_message_larger_than_max_queued_bytes_is_still_echoed_to_a_client_that_held_nothing() {
    let mut config = WsConfig::default();
    config.ping_interval = Duration::ZERO;
    config.topic_commands = false;
    config.max_message_size = 16 * 1024 * 1024;
    let bound = config.max_queued_bytes;
    let hub = WsHub::builder()
        .config(config)
        .on_message(
            |client: tongxun::ws::WsClient, message: WsMessage| async move { client.send(message) },
        )
        .build();
    let server = TestServer::start(tongxun::Server::builder().ws(hub.clone()).build()).await;
    let url = format!("ws://{}/ws", server.addr);
    let (mut client, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    let big = vec![7u8; 2 * bound];
    futures_util::SinkExt::send(&mut client, Message::Binary(big.clone().into()))
        .await
        .unwrap();
    let echoed = loop {
        match within(client.next()).await {
            Some(Ok(Message::Binary(payload))) => break payload,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected the echo, got {other:?}"),
        }
    };
    assert_eq!(echoed.len(), big.len());
    assert_eq!(hub.stats().slow_clients_closed, 0);
    drop(client);
    server.shutdown().await;
}

/// The same for a broadcast: one larger than `max_queued_bytes` reaches a client that held
/// nothing.
#[tokio::test]
async fn one_broadcast_larger_than_max_queued_bytes_still_reaches_a_client_that_held_nothing() {
    let mut config = WsConfig::default();
    config.ping_interval = Duration::ZERO;
    let bound = config.max_queued_bytes;
    let (server, hub) = start(config).await;
    let url = format!("ws://{}/ws", server.addr);
    let (mut client, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    until(|| hub.client_count() == 1).await;
    hub.broadcast(WsMessage::binary(vec![9u8; 2 * bound]));
    let received = loop {
        match within(client.next()).await {
            Some(Ok(Message::Binary(payload))) => break payload,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected the broadcast, got {other:?}"),
        }
    };
    assert_eq!(received.len(), 2 * bound);
    assert_eq!(hub.stats().slow_clients_closed, 0);
    drop(client);
    server.shutdown().await;
}
