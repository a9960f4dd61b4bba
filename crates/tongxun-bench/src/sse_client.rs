//! The Server-Sent Events load client: subscribers light enough that 10,000 of them cost the
//! bench little, and a publisher that `POST`s events over one keep-alive connection.
//!
//! A [`Subscriber`] is one HTTP/1.1 `GET` over one TCP connection, owned by one task. It reads
//! into one buffer, removes the chunked transfer encoding in place (the payload is moved over
//! the chunk headers, never copied elsewhere) and parses the `id:`, `event:` and `data:` lines
//! where they lie, so that receiving an event allocates nothing.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The endpoint of both SSE peers: `GET` subscribes, `POST` publishes.
pub(crate) const PATH: &str = "/events";
/// The one topic of the scenario.
pub(crate) const TOPIC: &str = "bench";
/// The endpoint of a `tongxun::hub::Hub` (the hub peer): `POST` publishes to every transport.
pub(crate) const HUB_PATH: &str = "/publish";
/// The bearer token both SSE peers (and the hub peer) expect on a `POST`.
pub(crate) const PUBLISH_TOKEN: &str = "bench-publish-token";

/// Initial read buffer of one subscriber; it grows only for an event larger than about this.
const READ_BUFFER: usize = 4 * 1024;
/// The largest the read buffer may grow to.
const MAX_BUFFER: usize = 1 << 20;
/// Time allowed to open one stream (TCP connect, request, response head).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// One dispatched event, borrowed from the subscriber's buffer until the next call.
#[derive(Debug)]
pub(crate) struct Event<'a> {
    /// The number ending the `id:` line (tongxun's `epoch;topic:seq` as well as a bare `seq`),
    /// if the event had an id ending with one.
    pub(crate) seq: Option<u64>,
    /// The `event:` name; `None` for an unnamed (`message`) event.
    pub(crate) name: Option<&'a [u8]>,
    /// The `data:` line (the bench's events have exactly one).
    pub(crate) data: &'a [u8],
}

/// Where the chunked decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// This many payload bytes of the current chunk are still to come.
    Data(usize),
    /// The CRLF after a chunk's payload.
    Crlf,
    /// The last chunk arrived: the server ended the stream.
    End,
}

/// One `GET` stream.
///
/// The buffer holds, in order: the event being parsed and unparsed payload
/// (`buf[event..body_end]`, lines parsed up to `line`), then bytes already decoded (garbage),
/// then raw bytes not decoded yet (`buf[raw..tail]`).
#[derive(Debug)]
pub(crate) struct Subscriber {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of the event being parsed: nothing before it is needed any more.
    event: usize,
    /// Start of the next line to parse.
    line: usize,
    body_end: usize,
    raw: usize,
    tail: usize,
    /// `None` for a body that is not chunked (it lasts until the connection closes).
    chunk: Option<Chunk>,
    /// Fields of the event being parsed; ranges of `buf`.
    seq: Option<u64>,
    name: Option<(usize, usize)>,
    data: Option<(usize, usize)>,
}

impl Subscriber {
    /// Opens a stream on topic [`TOPIC`]: `GET /events?topic=bench`, answered by `200` with
    /// `text/event-stream`.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Subscriber> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(addr))
            .await
            .context("opening the stream timed out")?
    }

    async fn connect_inner(addr: SocketAddr) -> Result<Subscriber> {
        let mut stream = crate::client::tcp_connect(addr)
            .await
            .context("tcp connect")?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {PATH}?topic={TOPIC} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = vec![0; READ_BUFFER];
        let mut tail = 0;
        let end = loop {
            if let Some(end) = find(&buf[..tail], b"\r\n\r\n") {
                break end;
            }
            if tail == buf.len() {
                bail!("response head larger than {READ_BUFFER} bytes");
            }
            let n = stream.read(&mut buf[tail..]).await?;
            if n == 0 {
                bail!("connection closed before the response head");
            }
            tail += n;
        };
        let head = &buf[..end];
        if !head.starts_with(b"HTTP/1.1 200") {
            let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
            bail!("subscribe refused: {}", String::from_utf8_lossy(line));
        }
        if header(head, b"content-type").is_none_or(|v| !v.starts_with(b"text/event-stream")) {
            bail!("the response is not text/event-stream");
        }
        let chunked =
            header(head, b"transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
        let body = end + 4;
        Ok(Subscriber {
            stream,
            buf,
            event: body,
            line: body,
            body_end: if chunked { body } else { tail },
            raw: if chunked { body } else { tail },
            tail,
            chunk: chunked.then_some(Chunk::Size),
            seq: None,
            name: None,
            data: None,
        })
    }

    /// Waits for the next event with data. Comments, `retry:` and blocks without data are
    /// skipped.
    ///
    /// # Errors
    /// When the stream ends (the server ended it or closed the connection), or its framing is
    /// invalid.
    pub(crate) async fn next_event(&mut self) -> Result<Event<'_>> {
        loop {
            if let Some((start, end)) = self.next_line() {
                if start == end {
                    let (seq, name, data) = (self.seq.take(), self.name.take(), self.data.take());
                    self.event = self.line;
                    if let Some((ds, de)) = data {
                        return Ok(Event {
                            seq,
                            name: name.map(|(ns, ne)| &self.buf[ns..ne]),
                            data: &self.buf[ds..de],
                        });
                    }
                } else {
                    self.field(start, end)?;
                }
                continue;
            }
            if self.chunk == Some(Chunk::End) {
                bail!("the server ended the stream");
            }
            self.fill().await?;
        }
    }

    /// The next complete line of the payload without its line break, as a range of `buf`.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        let at = self.buf[self.line..self.body_end]
            .iter()
            .position(|&b| b == b'\n')?;
        let start = self.line;
        let mut end = start + at;
        self.line = end + 1;
        if end > start && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        Some((start, end))
    }

    /// Takes in one `field: value` line of the event being parsed.
    fn field(&mut self, start: usize, end: usize) -> Result<()> {
        let line = &self.buf[start..end];
        if line[0] == b':' {
            return Ok(()); // a comment, such as `: keep-alive`
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let mut value = (start + colon + 1).min(end);
        if value < end && self.buf[value] == b' ' {
            value += 1;
        }
        match &line[..colon] {
            b"id" => {
                let id = &self.buf[value..end];
                let digits = id.iter().rev().take_while(|b| b.is_ascii_digit()).count();
                self.seq = parse_u64(&id[id.len() - digits..]);
            }
            b"event" => self.name = Some((value, end)),
            b"data" if self.data.is_some() => bail!("an event with several data lines"),
            b"data" => self.data = Some((value, end)),
            _ => {}
        }
        Ok(())
    }

    /// Reads more bytes and decodes them.
    async fn fill(&mut self) -> Result<()> {
        self.make_room()?;
        let n = self.stream.read(&mut self.buf[self.tail..]).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        self.tail += n;
        self.decode()
    }

    /// Moves the decoded payload of new chunks next to the payload before it.
    fn decode(&mut self) -> Result<()> {
        let Some(mut chunk) = self.chunk else {
            self.body_end = self.tail;
            self.raw = self.tail;
            return Ok(());
        };
        loop {
            let raw = &self.buf[self.raw..self.tail];
            match chunk {
                Chunk::Data(left) => {
                    let n = left.min(raw.len());
                    if n == 0 {
                        break;
                    }
                    if self.raw != self.body_end {
                        self.buf.copy_within(self.raw..self.raw + n, self.body_end);
                    }
                    self.body_end += n;
                    self.raw += n;
                    chunk = if n == left {
                        Chunk::Crlf
                    } else {
                        Chunk::Data(left - n)
                    };
                }
                Chunk::Crlf if raw.len() < 2 => break,
                Chunk::Crlf => {
                    if &raw[..2] != b"\r\n" {
                        bail!("a chunk not followed by CRLF");
                    }
                    self.raw += 2;
                    chunk = Chunk::Size;
                }
                Chunk::Size => {
                    let Some(eol) = find(raw, b"\r\n") else {
                        if raw.len() > 64 {
                            bail!("a chunk-size line longer than 64 bytes");
                        }
                        break;
                    };
                    let hex = raw[..eol].split(|&b| b == b';').next().unwrap_or_default();
                    let size = parse_hex(hex.trim_ascii()).context("a bad chunk size")?;
                    self.raw += eol + 2;
                    chunk = if size == 0 {
                        Chunk::End
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::End => break,
            }
        }
        self.chunk = Some(chunk);
        Ok(())
    }

    /// Drops what was parsed when the free space runs low, and grows the buffer when one event
    /// does not fit.
    fn make_room(&mut self) -> Result<()> {
        if self.buf.len() - self.tail >= self.buf.len() / 4 {
            return Ok(());
        }
        let garbage = self.raw - self.body_end;
        if self.event > 0 || garbage > 0 {
            // The event being parsed and the payload after it, then the raw bytes.
            let kept = self.body_end - self.event;
            self.buf.copy_within(self.event..self.body_end, 0);
            self.buf.copy_within(self.raw..self.tail, kept);
            let shift = self.event;
            self.tail -= shift + garbage;
            self.raw = kept;
            self.body_end = kept;
            self.line -= shift;
            for range in [&mut self.name, &mut self.data].into_iter().flatten() {
                range.0 -= shift;
                range.1 -= shift;
            }
            self.event = 0;
        }
        if self.buf.len() - self.tail < self.buf.len() / 4 {
            if self.buf.len() >= MAX_BUFFER {
                bail!("an event larger than {MAX_BUFFER} bytes");
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        Ok(())
    }
}

/// Opens `n` streams, at most `concurrency` at a time.
pub(crate) async fn connect_many(
    addr: SocketAddr,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Subscriber>> {
    futures_util::stream::iter(0..n)
        .map(|_| Subscriber::connect(addr))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// Publishes events with `POST /events` (or, [`hub`](Self::hub), `POST /publish`) on one
/// keep-alive connection. Requests are pipelined: [`publish`](Self::publish) only writes, and
/// the answers are read by [`service`](Self::service), so that a slow answer never delays the
/// next send.
#[derive(Debug)]
pub(crate) struct Publisher {
    stream: TcpStream,
    addr: SocketAddr,
    /// Where requests go: [`PATH`], or [`HUB_PATH`].
    path: &'static str,
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    out: Vec<u8>,
    /// Requests sent and not answered yet.
    pending: u64,
}

impl Publisher {
    /// Connects to the peer, to publish with `POST /events`.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Publisher> {
        Self::connect_to(addr, PATH).await
    }

    /// Connects to a `tongxun::hub::Hub`'s endpoint, to publish with `POST /publish` and
    /// [`post`](Self::post) (same bearer token).
    pub(crate) async fn hub(addr: SocketAddr) -> Result<Publisher> {
        Self::connect_to(addr, HUB_PATH).await
    }

    async fn connect_to(addr: SocketAddr, path: &'static str) -> Result<Publisher> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, crate::client::tcp_connect(addr))
            .await
            .context("tcp connect timed out")??;
        stream.set_nodelay(true)?;
        Ok(Publisher {
            stream,
            addr,
            path,
            buf: vec![0; READ_BUFFER],
            head: 0,
            tail: 0,
            out: Vec::with_capacity(512),
            pending: 0,
        })
    }

    /// Sends `{"topic":"bench","data":"<data>"}`; `data` is sent as a JSON string, so subscribers
    /// receive it as it is.
    pub(crate) async fn publish(&mut self, data: &[u8]) -> Result<()> {
        let mut body = Vec::with_capacity(data.len() + 48);
        body.extend_from_slice(br#"{"topic":""#);
        body.extend_from_slice(TOPIC.as_bytes());
        body.extend_from_slice(br#"","data":""#);
        for &b in data {
            if b == b'"' || b == b'\\' {
                body.push(b'\\');
            }
            body.push(b);
        }
        body.extend_from_slice(b"\"}");
        self.post(&body).await
    }

    /// Sends `body`, a JSON text, as it is.
    pub(crate) async fn post(&mut self, body: &[u8]) -> Result<()> {
        self.out.clear();
        self.out.extend_from_slice(
            format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {PUBLISH_TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                self.path,
                self.addr,
                body.len()
            )
            .as_bytes(),
        );
        self.out.extend_from_slice(body);
        self.stream.write_all(&self.out).await?;
        self.pending += 1;
        Ok(())
    }

    /// Requests not answered yet.
    pub(crate) fn pending(&self) -> u64 {
        self.pending
    }

    /// Reads the answers that already arrived, without waiting.
    ///
    /// # Errors
    /// When an answer is not `200`, or the connection closed.
    pub(crate) async fn service(&mut self) -> Result<()> {
        loop {
            self.take_answers()?;
            if self.tail == self.buf.len() {
                if self.head == 0 {
                    self.buf.resize(self.buf.len() * 2, 0);
                } else {
                    self.buf.copy_within(self.head..self.tail, 0);
                    self.tail -= self.head;
                    self.head = 0;
                }
            }
            match self.stream.try_read(&mut self.buf[self.tail..]) {
                Ok(0) => bail!("the publish connection was closed by the server"),
                Ok(n) => self.tail += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Consumes every complete answer in the buffer.
    fn take_answers(&mut self) -> Result<()> {
        while let Some(end) = find(&self.buf[self.head..self.tail], b"\r\n\r\n") {
            let head = &self.buf[self.head..self.head + end];
            let len = header(head, b"content-length")
                .and_then(parse_u64)
                .context("a publish answer without Content-Length")?;
            let body_at = self.head + end + 4;
            let Some(body_end) = body_at
                .checked_add(usize::try_from(len)?)
                .filter(|&e| e <= self.tail)
            else {
                return Ok(());
            };
            if !head.starts_with(b"HTTP/1.1 200") {
                let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                bail!(
                    "publish refused: {} {}",
                    String::from_utf8_lossy(line),
                    String::from_utf8_lossy(&self.buf[body_at..body_end])
                );
            }
            self.head = body_end;
            self.pending = self.pending.saturating_sub(1);
        }
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        Ok(())
    }
}

/// The value of header `name` (lowercase) in a response head.
fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name)
            .then(|| line[colon + 1..].trim_ascii())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

fn parse_hex(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(n * 16 + v as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream cut into chunks of awkward sizes, written in pieces that split chunk headers,
    /// lines and CRLFs, long enough to move the buffer's contents and grow it once.
    #[tokio::test]
    async fn decodes_chunked_streams_in_place() {
        let mut payload = b"retry: 3000\nid: e1;bench:0\nevent: ready\ndata: {}\n\n".to_vec();
        for seq in 1..=300u64 {
            let data = if seq == 150 {
                "x".repeat(6000)
            } else {
                format!("{{\"t\":{seq}}}")
            };
            let line_end = if seq % 2 == 0 { "\r\n" } else { "\n" };
            payload.extend_from_slice(
                format!(
                    ": keep-alive\n\nid: e1;bench:{seq}{line_end}data: {data}{line_end}{line_end}"
                )
                .as_bytes(),
            );
        }
        let mut wire = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                         transfer-encoding: chunked\r\n\r\n"
            .to_vec();
        let mut at = 0;
        for size in [1usize, 7, 64, 3, 500, 37, 4096, 13].iter().cycle() {
            let end = (at + size).min(payload.len());
            wire.extend_from_slice(format!("{:x}\r\n", end - at).as_bytes());
            wire.extend_from_slice(&payload[at..end]);
            wire.extend_from_slice(b"\r\n");
            at = end;
            if at == payload.len() {
                break;
            }
        }
        wire.extend_from_slice(b"0\r\n\r\n");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let n = socket.read(&mut request).await.unwrap();
            assert!(request[..n].starts_with(b"GET /events?topic=bench HTTP/1.1\r\n"));
            for piece in wire.chunks(29) {
                socket.write_all(piece).await.unwrap();
                socket.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        });

        let mut subscriber = Subscriber::connect(addr).await.unwrap();
        let ready = subscriber.next_event().await.unwrap();
        assert_eq!((ready.seq, ready.name), (Some(0), Some(&b"ready"[..])));
        for seq in 1..=300u64 {
            let event = subscriber.next_event().await.unwrap();
            assert_eq!((event.seq, event.name), (Some(seq), None));
            if seq == 150 {
                assert_eq!(event.data.len(), 6000);
            } else {
                assert_eq!(event.data, format!("{{\"t\":{seq}}}").as_bytes());
            }
        }
        let end = subscriber.next_event().await.unwrap_err();
        assert!(end.to_string().contains("ended the stream"), "{end}");
        server.await.unwrap();
    }

    #[test]
    fn reads_headers_and_numbers() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                     transfer-encoding: chunked\r\ncontent-length: 17";
        assert_eq!(
            header(head, b"content-type"),
            Some(&b"text/event-stream"[..])
        );
        assert_eq!(header(head, b"transfer-encoding"), Some(&b"chunked"[..]));
        assert_eq!(
            header(head, b"content-length").and_then(parse_u64),
            Some(17)
        );
        assert_eq!(header(head, b"x-missing"), None);
        assert_eq!(parse_hex(b"1A"), Some(26));
        assert_eq!(parse_hex(b"z"), None);
        assert_eq!(parse_u64(b"12x"), None);
    }
}
