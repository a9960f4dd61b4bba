//! Helpers for the SSE hub tests: a server on `127.0.0.1:0` and a small HTTP/1.1 client over a
//! raw `TcpStream` that reads chunked event streams.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tongxun::sse::SseHub;

#[path = "serve.rs"]
mod serve;
use serve::Running;

/// How long a test waits for anything before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A tongxun server serving `hub` on a free loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: SseHub,
    running: Running,
}

impl TestServer {
    pub async fn start(hub: SseHub) -> Self {
        let running = Running::start(tongxun::Server::builder().sse(hub.clone()).build()).await;
        Self {
            addr: running.addr,
            hub,
            running,
        }
    }

    /// Triggers graceful shutdown, without waiting for it to finish.
    pub fn begin_shutdown(&mut self) {
        self.running.begin_shutdown();
    }

    /// Shuts the server down and waits until `serve` returned.
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// A response head.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Reply {
    pub head: Head,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The `error` message of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_owned()
    }
}

/// One block of an event stream, fields as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`, as a client rebuilds them.
    pub data: Option<String>,
    pub retry: Option<u64>,
    pub comments: Vec<String>,
}

impl Frame {
    pub fn data(&self) -> &str {
        self.data.as_deref().expect("data")
    }

    pub fn id(&self) -> &str {
        self.id.as_deref().expect("id")
    }

    /// The position this frame's id records for `topic`.
    pub fn position(&self, topic: &str) -> u64 {
        let (_, list) = self.id().split_once(';').expect("epoch");
        list.split(',')
            .find_map(|item| {
                let (t, seq) = item.split_once(':')?;
                (t == topic).then(|| seq.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no position for {topic} in {:?}", self.id))
    }
}

async fn write_request(
    stream: &mut TcpStream,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        request.push_str("Connection: close\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
}

async fn read_head(reader: &mut BufReader<TcpStream>) -> Head {
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').expect("header");
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Head { status, headers }
}

/// Sends one request with `Connection: close` and reads the whole answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let run = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        write_request(&mut stream, method, target, headers, body, true).await;
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader).await;
        let mut raw = Vec::new();
        if head
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            let mut body = Body {
                reader,
                done: false,
            };
            while let Some(chunk) = body.chunk().await {
                raw.extend_from_slice(&chunk);
            }
        } else if let Some(len) = head.header("content-length") {
            raw.resize(len.parse().unwrap(), 0);
            reader.read_exact(&mut raw).await.unwrap();
        } else {
            reader.read_to_end(&mut raw).await.unwrap();
        }
        Reply {
            head,
            body: String::from_utf8(raw).unwrap(),
        }
    };
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("reply in time")
}

/// `POST` a JSON body with a bearer token.
pub async fn publish(addr: SocketAddr, path: &str, token: &str, body: &str) -> Reply {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

/// A chunked response body.
struct Body {
    reader: BufReader<TcpStream>,
    done: bool,
}

impl Body {
    /// The next chunk, `None` after the last one.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut line = String::new();
        if self.reader.read_line(&mut line).await.unwrap() == 0 {
            panic!("connection closed inside a chunked body");
        }
        let size = usize::from_str_radix(line.trim_end(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {line:?}"));
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk).await.unwrap();
        assert_eq!(&chunk[size..], b"\r\n", "chunk not followed by CRLF");
        chunk.truncate(size);
        if size == 0 {
            self.done = true;
            return None;
        }
        Some(chunk)
    }
}

/// An open event stream.
pub struct SseClient {
    pub head: Head,
    body: Body,
    buf: Vec<u8>,
    /// The `id` of the last frame that had one, as a browser remembers it.
    pub last_id: Option<String>,
}

/// Opens `GET target` with these headers; the answer may or may not be a stream.
pub async fn open(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<SseClient, Reply> {
    open_with(TcpStream::connect(addr).await.unwrap(), target, headers).await
}

/// Like [`open`], over a socket with a small receive buffer, for a client that reads slowly.
pub async fn open_small_buffer(addr: SocketAddr, target: &str) -> SseClient {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    open_with(stream, target, &[]).await.expect("a stream")
}

async fn open_with(
    mut stream: TcpStream,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<SseClient, Reply> {
    let run = async {
        write_request(&mut stream, "GET", target, headers, b"", false).await;
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader).await;
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if head.status == 200 && chunked {
            return Ok(SseClient {
                head,
                body: Body {
                    reader,
                    done: false,
                },
                buf: Vec::new(),
                last_id: None,
            });
        }
        let mut raw = Vec::new();
        if let Some(len) = head.header("content-length") {
            raw.resize(len.parse().unwrap(), 0);
            reader.read_exact(&mut raw).await.unwrap();
        } else if chunked {
            let mut body = Body {
                reader,
                done: false,
            };
            while let Some(chunk) = body.chunk().await {
                raw.extend_from_slice(&chunk);
            }
        }
        Err(Reply {
            head,
            body: String::from_utf8(raw).unwrap(),
        })
    };
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("answer in time")
}

/// Opens a stream that must succeed.
pub async fn subscribe(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> SseClient {
    match open(addr, target, headers).await {
        Ok(client) => client,
        Err(reply) => panic!(
            "expected a stream, got {} {:?}",
            reply.head.status, reply.body
        ),
    }
}

impl SseClient {
    /// The next line of the stream without its `\n`, `None` at the end of the body.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                let line = String::from_utf8(line[..at].to_vec()).expect("utf-8");
                assert!(
                    !line.contains('\r'),
                    "the hub only writes \\n line breaks: {line:?}"
                );
                return Some(line);
            }
            let chunk = self.body.chunk().await?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next block (up to a blank line), including comment-only blocks; `None` when the
    /// stream ended cleanly.
    pub async fn next_frame_untimed(&mut self) -> Option<Frame> {
        let mut frame = Frame::default();
        loop {
            let Some(line) = self.line().await else {
                assert!(
                    self.buf.is_empty() && frame == Frame::default(),
                    "stream ended inside an event"
                );
                return None;
            };
            if line.is_empty() {
                if frame.id.is_some() {
                    self.last_id = frame.id.clone();
                }
                return Some(frame);
            }
            if let Some(comment) = line.strip_prefix(':') {
                frame.comments.push(comment.trim_start().to_owned());
                continue;
            }
            let (field, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("field without ': ' {line:?}"));
            match field {
                "id" => {
                    assert!(frame.id.is_none(), "two ids in one event");
                    frame.id = Some(value.to_owned());
                }
                "event" => {
                    assert!(frame.event.is_none(), "two event names in one event");
                    frame.event = Some(value.to_owned());
                }
                "data" => {
                    frame.data = Some(match frame.data.take() {
                        None => value.to_owned(),
                        Some(before) => format!("{before}\n{value}"),
                    });
                }
                "retry" => frame.retry = Some(value.parse().expect("retry in ms")),
                other => panic!("unknown field {other:?}"),
            }
        }
    }

    /// Like [`next_frame_untimed`](Self::next_frame_untimed), failing the test after
    /// [`PATIENCE`].
    pub async fn next_frame(&mut self) -> Option<Frame> {
        tokio::time::timeout(PATIENCE, self.next_frame_untimed())
            .await
            .expect("a frame in time")
    }

    /// The next event with data, skipping keep-alive comments; panics when the stream ends.
    pub async fn next_event(&mut self) -> Frame {
        loop {
            let frame = self.next_frame().await.expect("stream still open");
            if frame.data.is_some() {
                return frame;
            }
            assert!(
                frame.id.is_none() && frame.event.is_none(),
                "a block without data: {frame:?}"
            );
        }
    }

    /// Reads the opening of a stream (`retry` and the `ready` event), returning the `ready` frame
    /// and any `resync` frames before it.
    pub async fn opening(&mut self) -> (Vec<Frame>, Frame) {
        let first = self.next_frame().await.expect("an opening");
        assert!(
            first.retry.is_some(),
            "the stream opens with retry: {first:?}"
        );
        let mut resyncs = Vec::new();
        let mut frame = first;
        loop {
            match frame.event.as_deref() {
                Some("resync") => resyncs.push(frame),
                Some("ready") => return (resyncs, frame),
                _ => panic!("unexpected frame in the opening: {frame:?}"),
            }
            frame = self.next_event().await;
        }
    }

    /// Reads the opening and expects no `resync`.
    pub async fn ready(&mut self) -> Frame {
        let (resyncs, ready) = self.opening().await;
        assert!(resyncs.is_empty(), "unexpected resync: {resyncs:?}");
        ready
    }

    /// Reads until the stream ends cleanly, returning the events (frames with data) on the way.
    pub async fn until_end(&mut self) -> Vec<Frame> {
        let mut events = Vec::new();
        while let Some(frame) = self.next_frame().await {
            if frame.data.is_some() {
                events.push(frame);
            }
        }
        events
    }
}

/// Waits, polling, until `condition` holds; fails the test after [`PATIENCE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
