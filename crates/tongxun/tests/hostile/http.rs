//! HTTP connections: a client that sends its request head slowly, or nothing, or keeps a
//! connection idle, has it closed after `Config::header_read_timeout`, while requests being
//! answered (a long poll, an upgraded WebSocket) are not cut.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tongxun::{Config, Server};

use crate::support::{STEP, TestServer, within};

/// The header-read timeout of these tests' servers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Slowloris connections the issue saw on main, and silent ones beside them.
const SLOWLORIS: usize = 3_000;
const SILENT: usize = 500;
/// Delay between two bytes of a slowloris head.
const TRICKLE: Duration = Duration::from_millis(200);

fn server() -> Server {
    let mut config = Config::default();
    config.header_read_timeout = HEADER_READ_TIMEOUT;
    Server::builder().config(config).build()
}

/// A polling Engine.IO handshake, the first request a browser sends.
const HANDSHAKE: &str =
    "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: tongxun.test\r\n\r\n";

/// An HTTP/1.1 response whose body has a `Content-Length`.
struct Response {
    status: u16,
    body: String,
}

/// Reads one response from `stream`.
async fn read_response(stream: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0; 4096];
        let n = within(stream.read(&mut chunk))
            .await
            .expect("read a response");
        assert!(n > 0, "connection closed before a complete response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).expect("UTF-8 head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    while buf.len() < head_end + length {
        let mut chunk = [0; 4096];
        let n = within(stream.read(&mut chunk)).await.expect("read a body");
        assert!(n > 0, "connection closed in the middle of a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    Response {
        status,
        body: String::from_utf8(buf[head_end..head_end + length].to_vec()).expect("UTF-8 body"),
    }
}

/// Sends `request` on a new connection and reads its response.
async fn request(addr: SocketAddr, request: &str) -> (TcpStream, Response) {
    let mut stream = within(TcpStream::connect(addr)).await.unwrap();
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let response = read_response(&mut stream).await;
    (stream, response)
}

/// Waits for the server to close `stream` (EOF or a reset), failing if it sends anything or
/// keeps the connection open longer than [`STEP`].
async fn expect_closed(stream: &mut TcpStream, what: &str) {
    let mut byte = [0; 1];
    match tokio::time::timeout(STEP, stream.read(&mut byte)).await {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(_)) => panic!("the server answered {what} instead of closing it"),
        Err(_) => panic!("the server kept {what} open"),
    }
}

/// Opens a Socket.IO session over HTTP long-polling and joins `/`; returns its sid.
async fn polling_session(addr: SocketAddr) -> String {
    let (_, open) = request(addr, HANDSHAKE).await;
    assert_eq!(open.status, 200);
    assert!(
        open.body.starts_with("0{\"sid\":"),
        "expected an Engine.IO open packet, got {}",
        open.body
    );
    let open: serde_json::Value = serde_json::from_str(&open.body[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    let (_, posted) = request(addr, &post(&sid, "40")).await;
    assert_eq!((posted.status, posted.body.as_str()), (200, "ok"));
    // Engine.IO pings as soon as the session opens: take that ping and answer it, so that no
    // packet but the test's own can answer the next poll.
    let (mut joined, mut pinged) = (false, false);
    while !(joined && pinged) {
        let (_, answer) = request(addr, &poll(&sid)).await;
        assert_eq!(answer.status, 200, "got {}", answer.body);
        for packet in answer.body.split('\x1e') {
            match packet {
                "2" => pinged = true,
                _ if packet.starts_with("40{\"sid\":") => joined = true,
                _ => panic!("unexpected packet {packet:?}"),
            }
        }
    }
    let (_, ponged) = request(addr, &post(&sid, "3")).await;
    assert_eq!((ponged.status, ponged.body.as_str()), (200, "ok"));
    sid
}

/// A polling POST of `payload` to session `sid`.
fn post(sid: &str, payload: &str) -> String {
    format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: tongxun.test\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
}

/// A long-polling GET of session `sid`.
fn poll(sid: &str) -> String {
    format!(
        "GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: tongxun.test\r\n\r\n"
    )
}

/// A connection that, accepted after `addr`'s other connections, has been closed for sending
/// nothing: proof that the header-read timeout has passed for what was opened before it.
async fn timeout_passed(addr: SocketAddr) {
    let mut probe = within(TcpStream::connect(addr)).await.unwrap();
    expect_closed(&mut probe, "a silent probe connection").await;
}

/// Sends half a request head, then one more byte every [`TRICKLE`], until the server closes
/// the connection (which a read or a write then reports).
async fn slowloris(mut stream: TcpStream) {
    let half =
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: tongxun.test\r\nX-Slow: ";
    if stream.write_all(half).await.is_err() {
        return;
    }
    let mut trickle = tokio::time::interval(TRICKLE);
    let mut byte = [0; 1];
    loop {
        tokio::select! {
            read = stream.read(&mut byte) => {
                assert!(!matches!(read, Ok(n) if n > 0), "the server answered half a head");
                return;
            }
            _ = trickle.tick() => {
                if stream.write_all(b"a").await.is_err() {
                    return;
                }
            }
        }
    }
}

/// As many of `wanted` connections as the descriptor limit comfortably allows, given that
/// each takes two descriptors (the client's and the server's) and `others` are needed too.
fn fitting(wanted: usize, others: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("read RLIMIT_NOFILE");
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // Room for the runtime, the test harness and other tests of this binary.
    let spare = limit.saturating_sub(others * 2 + 512);
    let fits = wanted.min(spare / 2);
    if fits < wanted {
        eprintln!("RLIMIT_NOFILE is {limit}: opening {fits} connections, not {wanted}");
    }
    fits
}

#[tokio::test]
async fn slowloris_and_silent_connections_are_closed_while_clients_still_connect() {
    let silent_count = fitting(SILENT, 0);
    let slow_count = fitting(SLOWLORIS, silent_count);
    assert!(slow_count > 0, "no descriptors to spare for the test");
    let server = TestServer::start(server()).await;

    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..slow_count {
        let stream = within(TcpStream::connect(server.addr)).await.unwrap();
        slow.spawn(slowloris(stream));
    }
    let mut silent = tokio::task::JoinSet::new();
    for _ in 0..silent_count {
        let mut stream = within(TcpStream::connect(server.addr)).await.unwrap();
        silent.spawn(async move { expect_closed(&mut stream, "a silent connection").await });
    }

    // Meanwhile, clients connect as usual: over long-polling and over WebSocket.
    let (_, open) = request(server.addr, HANDSHAKE).await;
    assert_eq!(open.status, 200);
    assert!(open.body.starts_with("0{\"sid\":"), "got {}", open.body);
    let client = server.client("/").await;
    assert!(!client.sid.is_empty());

    // Every attacking connection is closed by the server, each within its own bounded wait.
    let mut closed = 0;
    while let Some(done) = within(slow.join_next()).await {
        done.expect("a slowloris connection was closed");
        closed += 1;
    }
    while let Some(done) = within(silent.join_next()).await {
        done.expect("a silent connection was closed");
        closed += 1;
    }
    assert_eq!(closed, slow_count + silent_count);

    // Those connections released, the server still answers.
    let (_, open) = request(server.addr, HANDSHAKE).await;
    assert!(open.body.starts_with("0{\"sid\":"), "got {}", open.body);
    server.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let server = TestServer::start(server()).await;
    let (mut stream, open) = request(server.addr, HANDSHAKE).await;
    assert_eq!(open.status, 200);
    // Kept alive after its response (HTTP/1.1), then closed for sending no other request.
    expect_closed(&mut stream, "an idle keep-alive connection").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_keep_alive_connection_busy_with_quick_requests_is_never_taken_for_idle() {
    let server = TestServer::start(server()).await;
    let mut stream = within(TcpStream::connect(server.addr)).await.unwrap();
    let request = "GET /nothing-here HTTP/1.1\r\nHost: tongxun.test\r\n\r\n";
    // Request after request, each answered at once, until a silent probe opened now was
    // closed: the busy connection has outlived the header-read timeout meanwhile.
    let passed = tokio::spawn(timeout_passed(server.addr));
    let mut answered = 0;
    while !passed.is_finished() {
        within(stream.write_all(request.as_bytes())).await.unwrap();
        assert_eq!(
            read_response(&mut stream).await.status,
            404,
            "request {answered}"
        );
        answered += 1;
    }
    passed.await.unwrap();
    within(stream.write_all(request.as_bytes())).await.unwrap();
    assert_eq!(
        read_response(&mut stream).await.status,
        404,
        "after {answered} requests"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn long_poll_outlasting_the_header_read_timeout_is_answered() {
    let server = TestServer::start(server()).await;
    let sid = polling_session(server.addr).await;

    // A long poll waits for the next packet: none until the server emits one.
    let mut waiting = within(TcpStream::connect(server.addr)).await.unwrap();
    within(waiting.write_all(poll(&sid).as_bytes()))
        .await
        .unwrap();
    timeout_passed(server.addr).await;

    server.io.main().emit("tick", &json!(1)).await.unwrap();
    let answer = read_response(&mut waiting).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, r#"42["tick",1]"#);
    server.shutdown().await;
}

#[tokio::test]
async fn open_websocket_outlasts_the_header_read_timeout() {
    let server = TestServer::start(server()).await;
    let mut client = server.client("/").await;
    timeout_passed(server.addr).await;

    server.io.main().emit("tick", &json!(1)).await.unwrap();
    let (args, _) = client.expect_event("tick").await;
    assert_eq!(args, vec![json!(1)]);
    server.shutdown().await;
}

#[cfg(feature = "sse")]
#[tokio::test]
async fn sse_stream_outlasting_the_header_read_timeout_keeps_delivering() {
    use tongxun::sse::{SseConfig, SseEvent, SseHub};

    let hub = SseHub::new(SseConfig::default());
    let mut config = Config::default();
    config.header_read_timeout = HEADER_READ_TIMEOUT;
    let server = TestServer::start(Server::builder().config(config).sse(hub.clone()).build()).await;
    let mut stream = within(TcpStream::connect(server.addr)).await.unwrap();
    let subscribe = "GET /events?topic=news HTTP/1.1\r\nHost: tongxun.test\r\n\
                     Accept: text/event-stream\r\n\r\n";
    within(stream.write_all(subscribe.as_bytes()))
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = [0; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = within(stream.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "connection closed before the stream's head");
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(received.starts_with(b"HTTP/1.1 200 "), "got {received:?}");
    timeout_passed(server.addr).await;

    hub.publish("news", SseEvent::new("still here"))
        .await
        .unwrap();
    while !received.windows(16).any(|w| w == b"data: still here") {
        let n = within(stream.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "the SSE stream was closed");
        received.extend_from_slice(&chunk[..n]);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn routes_see_the_peer_address_as_connect_info() {
    use axum::extract::ConnectInfo;
    use axum::routing::get;

    let routes = axum::Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let server = TestServer::start(server().merge(routes)).await;
    let (stream, answer) = request(server.addr, "GET /peer HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, stream.local_addr().unwrap().to_string());
    server.shutdown().await;
}

#[tokio::test]
async fn head_with_too_many_headers_is_answered_431() {
    let server = TestServer::start(server()).await;
    // hyper's bound: 100 headers (with `Host`, this head has 101).
    let mut head = String::from("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: t\r\n");
    for n in 0..100 {
        head.push_str(&format!("X-Header-{n}: {n}\r\n"));
    }
    head.push_str("\r\n");
    let (mut stream, answer) = request(server.addr, &head).await;
    assert_eq!(answer.status, 431);
    expect_closed(&mut stream, "a connection whose head was refused").await;
    server.shutdown().await;
}

#[tokio::test]
async fn head_of_hypers_largest_size_is_answered_431() {
    let server = TestServer::start(server()).await;
    // hyper's bound: a read buffer of 8 KiB + 100 × 4 KiB that still holds no complete head.
    // Sending exactly that much leaves nothing unread for the server to reset on.
    const MAX_HEAD: usize = 8192 + 4096 * 100;
    let mut head = String::from("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX-Big: ");
    head.push_str(&"a".repeat(MAX_HEAD - head.len()));
    let (mut stream, answer) = request(server.addr, &head).await;
    assert_eq!(answer.status, 431);
    expect_closed(&mut stream, "a connection whose head was refused").await;
    server.shutdown().await;
}

#[tokio::test]
async fn polling_post_over_max_payload_is_answered_413() {
    let mut config = Config::default();
    config.header_read_timeout = HEADER_READ_TIMEOUT;
    config.max_payload = 1_000;
    let server = TestServer::start(Server::builder().config(config).build()).await;
    let sid = polling_session(server.addr).await;
    let message = format!("42[\"big\",\"{}\"]", "a".repeat(1_000));
    let (_, answer) = request(server.addr, &post(&sid, &message)).await;
    assert_eq!(answer.status, 413);
    // The session is closed with it.
    let (_, after) = request(server.addr, &poll(&sid)).await;
    assert_eq!(after.status, 400, "got {}", after.body);
    server.shutdown().await;
}

/// The HTTP/2 connection preface a client with prior knowledge sends, with empty SETTINGS.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
/// HTTP/2 frame types.
const DATA: u8 = 0x0;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
/// `SETTINGS_MAX_CONCURRENT_STREAMS`.
const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// An HTTP/2 frame: type, flags, stream and payload.
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// The next frame, or `None` once the server closed the connection.
async fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
    let mut header = [0; 9];
    stream.read_exact(&mut header).await.ok()?;
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: header[3],
        flags: header[4],
        stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff,
        payload,
    })
}

/// Opens an HTTP/2 connection with prior knowledge; returns it with the server's SETTINGS.
async fn h2_connect(addr: SocketAddr) -> (TcpStream, Vec<(u16, u32)>) {
    let mut stream = within(TcpStream::connect(addr)).await.unwrap();
    within(stream.write_all(H2_PREFACE)).await.unwrap();
    // The server speaks HTTP/2: its first frame is its SETTINGS on stream 0.
    let settings = within(read_frame(&mut stream))
        .await
        .expect("the server's SETTINGS");
    assert_eq!((settings.kind, settings.stream), (SETTINGS, 0));
    let settings = settings
        .payload
        .chunks_exact(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect();
    // SETTINGS ACK.
    within(stream.write_all(&[0, 0, 0, SETTINGS, 0x1, 0, 0, 0, 0]))
        .await
        .unwrap();
    (stream, settings)
}

#[tokio::test]
async fn idle_http2_connection_is_closed_after_the_header_read_timeout() {
    let mut config = Config::default();
    config.header_read_timeout = HEADER_READ_TIMEOUT;
    config.http2_max_concurrent_streams = 7;
    let server = TestServer::start(Server::builder().config(config).build()).await;
    let (mut stream, settings) = h2_connect(server.addr).await;
    assert!(
        settings.contains(&(MAX_CONCURRENT_STREAMS, 7)),
        "SETTINGS {settings:?}"
    );
    // With no stream opened, the server closes the connection (after whatever frames it sent).
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(STEP, stream.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the server kept an idle HTTP/2 connection open"
    );
    server.shutdown().await;
}

/// A HEADERS frame (HPACK literals, no Huffman) for `GET path` on `stream`, ending the stream.
fn h2_get(stream: u32, path: &str) -> Vec<u8> {
    let authority = "tongxun.test";
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    for (index, value) in [(0x04, path), (0x01, authority)] {
        // Literal without indexing, name from the static table (:path, :authority).
        block.push(index);
        block.push(u8::try_from(value.len()).expect("a short header value"));
        block.extend_from_slice(value.as_bytes());
    }
    let len = block.len();
    let mut frame = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, 0x1, 0x5];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(&block);
    frame
}

#[tokio::test]
async fn http2_peer_that_answers_no_ping_is_disconnected() {
    let mut config = Config::default();
    // Only the pings can close this connection within the test's patience.
    config.header_read_timeout = Duration::from_secs(60);
    config.http2_keep_alive_interval = Duration::from_secs(1);
    config.http2_keep_alive_timeout = Duration::from_secs(1);
    let server = TestServer::start(Server::builder().config(config).build()).await;
    let sid = polling_session(server.addr).await;
    let (mut stream, _) = h2_connect(server.addr).await;
    // A long poll keeps a stream open: no packet comes before the Engine.IO ping (25 s).
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    within(stream.write_all(&h2_get(1, &path))).await.unwrap();

    let mut pinged = false;
    let closed = tokio::time::timeout(STEP, async {
        while let Some(frame) = read_frame(&mut stream).await {
            // The response head may come at once; its DATA only with a packet.
            assert!(
                !(frame.kind == DATA && frame.stream == 1 && !frame.payload.is_empty()),
                "the long poll was answered before the ping timed out"
            );
            pinged |= frame.kind == PING && frame.flags & 0x1 == 0;
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept a peer that answers no ping"
    );
    assert!(pinged, "the server closed the connection without pinging");
    server.shutdown().await;
}
