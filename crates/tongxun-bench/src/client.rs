//! The load client: a WebSocket client light enough that 10,000 of them cost the bench little,
//! speaking Engine.IO 4 / Socket.IO 5 on top (or raw text messages for the WebSocket peers).
//!
//! One [`Conn`] is one TCP connection owned by one task: it reads into a reusable buffer and
//! parses frames in place, so receiving a message allocates nothing. Engine.IO pings (`2`) are
//! answered (`3`) inside [`Conn::recv`] and [`Conn::service`]; the caller only sees events
//! (`42[...]`), acknowledgements (`43N[...]`) and raw text messages.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Initial read buffer of one connection; it grows only for a frame larger than this.
const READ_BUFFER: usize = 8 * 1024;
/// Time allowed for one connection's whole handshake (TCP, WebSocket, Engine.IO, Socket.IO).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Connections per loopback source address. One address's connections share the ephemeral
/// ports of Linux's default range (32768–60999, 28,232 ports): past about 28,000 connections
/// from one address, `connect` runs out of them.
const CONNS_PER_SOURCE: u64 = 20_000;
/// Source addresses tried for one connection when the first ones have no free port left.
const SOURCE_ATTEMPTS: usize = 8;

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Microseconds since the first call in this process: the send timestamp carried in payloads,
/// comparable across every connection of the bench.
pub(crate) fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What a connection speaks on top of WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Engine.IO 4 / Socket.IO 5 on `/socket.io/`, namespace `/`.
    SocketIo,
    /// Plain WebSocket text messages on `/ws`.
    RawWs,
    /// Server-Sent Events over HTTP/1.1, not WebSocket: see [`crate::sse_client`].
    Sse,
}

/// A message the server sent, borrowed from the connection's buffer until the next call.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// A Socket.IO event: the JSON array `["name", ...args]`.
    Event(&'a [u8]),
    /// A Socket.IO acknowledgement: its id and the JSON array of its arguments.
    Ack(u64, &'a [u8]),
    /// A raw WebSocket text message.
    Text(&'a [u8]),
}

/// What an Engine.IO / Socket.IO text packet is, by its first bytes.
enum Kind {
    Ping,
    Event,
    Ack { id: u64, args_at: usize },
    Ignored,
    Closed(&'static str),
}

fn classify(packet: &[u8]) -> Kind {
    match packet {
        [b'2', ..] => Kind::Ping,
        [b'4', b'2', ..] => Kind::Event,
        [b'4', b'3', rest @ ..] => {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            match parse_u64(&rest[..digits]) {
                Some(id) => Kind::Ack {
                    id,
                    args_at: 2 + digits,
                },
                None => Kind::Ignored,
            }
        }
        [b'4', b'1', ..] => Kind::Closed("the server disconnected the socket"),
        [b'1', ..] => Kind::Closed("the server closed the engine.io session"),
        _ => Kind::Ignored,
    }
}

/// One WebSocket connection to a peer.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    protocol: Protocol,
    /// Received bytes; `buf[head..tail]` is not parsed yet.
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    /// The frame being written, reused.
    out: Vec<u8>,
    /// State of the xorshift generator for masking keys.
    rng: u32,
}

impl Conn {
    /// Opens a connection: TCP, the WebSocket upgrade and, for Socket.IO, the Engine.IO open
    /// packet and the namespace connect (`40` answered by `40{"sid":...}`).
    pub(crate) async fn connect(addr: SocketAddr, protocol: Protocol) -> Result<Conn> {
        Self::connect_with(addr, protocol, "").await
    }

    /// As [`connect`](Self::connect), with `query` (such as `role=sender`) added to the
    /// Socket.IO handshake's query, as `socket.io-client`'s `query` option does.
    pub(crate) async fn connect_with(
        addr: SocketAddr,
        protocol: Protocol,
        query: &str,
    ) -> Result<Conn> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(addr, protocol, query))
            .await
            .context("handshake timed out")?
    }

    async fn connect_inner(addr: SocketAddr, protocol: Protocol, query: &str) -> Result<Conn> {
        static SEEDS: AtomicU32 = AtomicU32::new(0x9E37_79B9);
        let path = match protocol {
            Protocol::SocketIo if query.is_empty() => {
                "/socket.io/?EIO=4&transport=websocket".to_owned()
            }
            Protocol::SocketIo => format!("/socket.io/?EIO=4&transport=websocket&{query}"),
            Protocol::RawWs => "/ws".to_owned(),
            Protocol::Sse => bail!("an SSE peer takes no WebSocket connections"),
        };
        let stream = tcp_connect(addr).await.context("tcp connect")?;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream,
            protocol,
            buf: vec![0; READ_BUFFER],
            head: 0,
            tail: 0,
            out: Vec::with_capacity(128),
            rng: SEEDS.fetch_add(0x6D2B_79F5, Ordering::Relaxed) | 1,
        };
        let key = conn.websocket_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        conn.stream.write_all(request.as_bytes()).await?;
        conn.read_upgrade_response().await?;
        if protocol == Protocol::SocketIo {
            conn.socketio_handshake().await?;
        }
        Ok(conn)
    }

    /// A `Sec-WebSocket-Key`: 16 pseudo-random bytes in base64.
    fn websocket_key(&mut self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bytes = [0u8; 18]; // 16 random bytes, padded to a multiple of 3
        for chunk in bytes[..16].chunks_mut(4) {
            chunk.copy_from_slice(&self.next_random().to_le_bytes()[..chunk.len()]);
        }
        let mut key = String::with_capacity(24);
        for group in bytes.chunks(3) {
            let n = (u32::from(group[0]) << 16) | (u32::from(group[1]) << 8) | u32::from(group[2]);
            for shift in [18, 12, 6, 0] {
                key.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            }
        }
        // 16 bytes encode to 22 characters and `==`.
        key.truncate(22);
        key.push_str("==");
        key
    }

    fn next_random(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }

    async fn read_upgrade_response(&mut self) -> Result<()> {
        loop {
            if let Some(end) = find(&self.buf[..self.tail], b"\r\n\r\n") {
                let head = &self.buf[..end];
                if !head.starts_with(b"HTTP/1.1 101") {
                    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                    bail!(
                        "websocket upgrade refused: {}",
                        String::from_utf8_lossy(line)
                    );
                }
                self.head = end + 4;
                return Ok(());
            }
            self.fill().await.context("reading the upgrade response")?;
        }
    }

    async fn socketio_handshake(&mut self) -> Result<()> {
        let (start, end) = self.next_text().await?;
        if !self.buf[start..end].starts_with(b"0{") {
            bail!(
                "expected an engine.io open packet, got {:?}",
                String::from_utf8_lossy(&self.buf[start..end])
            );
        }
        self.send_text(&[b"40"]).await?;
        loop {
            let (start, end) = self.next_text().await?;
            match &self.buf[start..end] {
                [b'2', ..] => self.send_text(&[b"3"]).await?,
                [b'4', b'0', ..] => return Ok(()),
                [b'4', b'4', ..] => bail!(
                    "connect refused: {}",
                    String::from_utf8_lossy(&self.buf[start + 2..end])
                ),
                [b'6'] => {}
                other => bail!(
                    "unexpected packet before connect: {:?}",
                    String::from_utf8_lossy(other)
                ),
            }
        }
    }

    /// Waits for the next event, acknowledgement or raw message. Engine.IO pings are answered
    /// on the way.
    ///
    /// # Errors
    /// When the connection closed, the server disconnected the socket, or a frame is invalid.
    pub(crate) async fn recv(&mut self) -> Result<Incoming<'_>> {
        loop {
            let (start, end) = self.next_text().await?;
            if self.protocol == Protocol::RawWs {
                return Ok(Incoming::Text(&self.buf[start..end]));
            }
            match classify(&self.buf[start..end]) {
                Kind::Ping => self.send_text(&[b"3"]).await?,
                Kind::Event => return Ok(Incoming::Event(&self.buf[start + 2..end])),
                Kind::Ack { id, args_at } => {
                    return Ok(Incoming::Ack(id, &self.buf[start + args_at..end]));
                }
                Kind::Ignored => {}
                Kind::Closed(why) => bail!(why),
            }
        }
    }

    /// Handles what already arrived without waiting: answers pings and drops other messages.
    /// For a connection that only sends, so that the server never times it out.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub(crate) async fn service(&mut self) -> Result<()> {
        loop {
            while let Some((op, start, end)) = self.parse_frame()? {
                if let Some((start, end)) = self.control(op, start, end).await?
                    && self.protocol == Protocol::SocketIo
                {
                    match classify(&self.buf[start..end]) {
                        Kind::Ping => self.send_text(&[b"3"]).await?,
                        Kind::Closed(why) => bail!(why),
                        _ => {}
                    }
                }
            }
            self.make_room();
            match self.stream.try_read(&mut self.buf[self.tail..]) {
                Ok(0) => bail!("connection closed by the server"),
                Ok(n) => self.tail += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends a Socket.IO event on namespace `/`: `body` is the JSON array `["name", ...args]`.
    /// With `ack`, the server answers with acknowledgement `ack`.
    pub(crate) async fn emit(&mut self, body: &[u8], ack: Option<u64>) -> Result<()> {
        let mut digits = [0u8; 20];
        let id = match ack {
            Some(id) => format_u64(id, &mut digits),
            None => &[],
        };
        self.send_text(&[b"42", id, body]).await
    }

    /// Sends one text frame whose payload is the concatenation of `parts`.
    pub(crate) async fn send_text(&mut self, parts: &[&[u8]]) -> Result<()> {
        self.write_frame(OP_TEXT, parts).await
    }

    /// The next text frame's payload, as a range of `buf`; control frames are handled.
    async fn next_text(&mut self) -> Result<(usize, usize)> {
        loop {
            if let Some((op, start, end)) = self.parse_frame()? {
                if let Some(text) = self.control(op, start, end).await? {
                    return Ok(text);
                }
                continue;
            }
            self.fill().await?;
        }
    }

    /// Answers a control frame; returns the payload range of a text frame.
    async fn control(
        &mut self,
        op: u8,
        start: usize,
        end: usize,
    ) -> Result<Option<(usize, usize)>> {
        match op {
            OP_TEXT => Ok(Some((start, end))),
            OP_BINARY | OP_PONG => Ok(None),
            OP_PING => {
                let payload = self.buf[start..end].to_vec();
                self.write_frame(OP_PONG, &[&payload]).await?;
                Ok(None)
            }
            OP_CLOSE => bail!("the server closed the websocket"),
            other => bail!("unsupported websocket opcode {other:#x} (fragmented message?)"),
        }
    }

    /// Parses one complete frame at `head`, consuming it: its opcode and payload range.
    fn parse_frame(&mut self) -> Result<Option<(u8, usize, usize)>> {
        let b = &self.buf[self.head..self.tail];
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x80 == 0 {
            bail!("fragmented websocket messages are not supported");
        }
        if b[1] & 0x80 != 0 {
            bail!("the server sent a masked frame");
        }
        let (len, header) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&b[2..10]);
                (usize::try_from(u64::from_be_bytes(len))?, 10)
            }
            126 | 127 => return Ok(None),
            n => (usize::from(n), 2),
        };
        if b.len() < header + len {
            return Ok(None);
        }
        let op = b[0] & 0x0f;
        let start = self.head + header;
        self.head = start + len;
        Ok(Some((op, start, start + len)))
    }

    /// Moves unparsed bytes to the front when the free space runs low; grows the buffer when
    /// one frame does not fit.
    fn make_room(&mut self) {
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        } else if self.buf.len() - self.tail < self.buf.len() / 4 {
            if self.head > 0 {
                self.buf.copy_within(self.head..self.tail, 0);
                self.tail -= self.head;
                self.head = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
    }

    async fn fill(&mut self) -> Result<()> {
        self.make_room();
        let n = self.stream.read(&mut self.buf[self.tail..]).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        self.tail += n;
        Ok(())
    }

    async fn write_frame(&mut self, op: u8, parts: &[&[u8]]) -> Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mask = self.next_random().to_le_bytes();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.push(0x80 | op);
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        let mut i = 0;
        for part in parts {
            for &byte in *part {
                out.push(byte ^ mask[i & 3]);
                i += 1;
            }
        }
        let written = self.stream.write_all(&out).await;
        self.out = out;
        Ok(written?)
    }
}

/// The source address of the `n`th connection this process opens (from 0): 127.0.0.2 for the
/// first [`CONNS_PER_SOURCE`], 127.0.0.3 for the next, and on through 127.0.0.0/8. A block is
/// never used again in a process, so the ports that its closed connections left in `TIME_WAIT`
/// (on the bench's side, which closes first) are not wanted again either.
fn source_address(n: u64) -> Ipv4Addr {
    const FIRST: u32 = u32::from_be_bytes([127, 0, 0, 2]);
    const LAST: u32 = u32::from_be_bytes([127, 255, 255, 254]);
    let block = u32::try_from(n / CONNS_PER_SOURCE).unwrap_or(u32::MAX);
    Ipv4Addr::from(FIRST.saturating_add(block).min(LAST))
}

/// Where the next connection's block starts, once block `n / CONNS_PER_SOURCE` is full.
fn next_block(n: u64) -> u64 {
    (n / CONNS_PER_SOURCE + 1) * CONNS_PER_SOURCE
}

/// A TCP connection to `addr`; to a loopback IPv4 address, from the source address of
/// [`source_address`], so that more than one address's ephemeral ports' worth of connections
/// can be open at once. The socket is bound to that address with `IP_BIND_ADDRESS_NO_PORT`:
/// `connect` then picks the port for the whole 4-tuple, as for an unbound socket (a plain
/// `bind` to port 0 searches the address's ports one by one, slower and slower as they fill
/// up, and never takes one a closed connection left in `TIME_WAIT`). An address whose ports
/// are all taken is skipped for the next block.
pub(crate) async fn tcp_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    static OPENED: AtomicU64 = AtomicU64::new(0);
    if !(addr.is_ipv4() && addr.ip().is_loopback()) {
        return TcpStream::connect(addr).await;
    }
    let mut last = None;
    for _ in 0..SOURCE_ATTEMPTS {
        let n = OPENED.fetch_add(1, Ordering::Relaxed);
        let socket = TcpSocket::new_v4()?;
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::IpBindAddressNoPort,
            &true,
        )?;
        socket.bind(SocketAddr::from((source_address(n), 0)))?;
        match socket.connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                OPENED.fetch_max(next_block(n), Ordering::Relaxed);
                last = Some(e);
            }
            connected => return connected,
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into()))
}

/// Opens `n` connections, at most `concurrency` handshakes at a time.
pub(crate) async fn connect_many(
    addr: SocketAddr,
    protocol: Protocol,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Conn>> {
    connect_many_with(addr, protocol, "", n, concurrency).await
}

/// As [`connect_many`], each handshake with `query` (see [`Conn::connect_with`]).
pub(crate) async fn connect_many_with(
    addr: SocketAddr,
    protocol: Protocol,
    query: &str,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Conn>> {
    futures_util::stream::iter(0..n)
        .map(|_| Conn::connect_with(addr, protocol, query))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .flatten()
    })
}

/// The unsigned integer after `key` (such as `"t":`) in a small JSON text.
pub(crate) fn json_u64(json: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(json, key)? + key.len();
    let digits = json[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    parse_u64(&json[at..at + digits])
}

/// Writes `n` in decimal into `buf`; returns the digits.
pub(crate) fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_socketio_packets() {
        assert!(matches!(classify(b"2"), Kind::Ping));
        assert!(matches!(classify(br#"42["tick",{}]"#), Kind::Event));
        assert!(matches!(
            classify(br#"4317[{"t":1}]"#),
            Kind::Ack { id: 17, args_at: 4 }
        ));
        assert!(matches!(classify(b"41"), Kind::Closed(_)));
        assert!(matches!(classify(b"6"), Kind::Ignored));
    }

    #[test]
    fn spreads_connections_over_loopback_source_addresses() {
        assert_eq!(source_address(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_address(19_999), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_address(20_000), Ipv4Addr::new(127, 0, 0, 3));
        // 100,000 connections: five addresses, each well under its 28,232 ports.
        assert_eq!(source_address(99_999), Ipv4Addr::new(127, 0, 0, 6));
        assert_eq!(source_address(254 * 20_000), Ipv4Addr::new(127, 0, 1, 0));
        assert_eq!(source_address(u64::MAX), Ipv4Addr::new(127, 255, 255, 254));
        assert_eq!(next_block(0), 20_000);
        assert_eq!(next_block(20_000), 40_000);
        assert_eq!(next_block(39_999), 40_000);
    }

    #[test]
    fn reads_numbers_from_small_json() {
        let body = br#"["tick",{"r":3,"s":41,"t":123456}]"#;
        assert_eq!(json_u64(body, br#""t":"#), Some(123_456));
        assert_eq!(json_u64(body, br#""r":"#), Some(3));
        assert_eq!(json_u64(body, br#""x":"#), None);
        let mut buf = [0u8; 20];
        assert_eq!(format_u64(0, &mut buf), b"0");
        assert_eq!(
            format_u64(18_446_744_073_709_551_615, &mut buf),
            b"18446744073709551615"
        );
    }
}
